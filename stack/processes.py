"""Child processes of the local stack: start with logs under .run/logs, stop in reverse order."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ProcessSpec:
    """How to start one process of the stack: what the supervisor needs to start it again after a crash.
    (Per-process settings, e.g. a metrics port, belong in `env`.)"""

    name: str
    args: list[str]
    env: dict[str, str]
    url: str
    # Its health check: "http://…" answers 200, or "grpc://host:port" answers SERVING.
    probe: str = ""


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    url: str
    stop_signal: int = signal.SIGTERM
    # None for adopted processes (PostgreSQL): they are not restarted.
    spec: ProcessSpec | None = None


@dataclass
class Supervisor:
    run_dir: Path
    children: list[Child] = field(default_factory=list)

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "stack.pids"

    def start(self, name: str, args: list[str], env: dict[str, str], url: str, probe: str = "") -> Child:
        spec = ProcessSpec(name, args, env, url, probe)
        log_path = self.run_dir / "logs" / f"{name}.log"
        child = Child(name, self._spawn(spec, log_path), log_path, url, spec=spec)
        self.children.append(child)
        self._write_pids()
        return child

    def restart(self, child: Child) -> None:
        """Starts a dead child again from its spec (same arguments, environment and port)."""
        assert child.spec is not None and child.process.poll() is not None
        child.process = self._spawn(child.spec, child.log_path)
        self._write_pids()

    @staticmethod
    def _spawn(spec: ProcessSpec, log_path: Path) -> subprocess.Popen[bytes]:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            return subprocess.Popen(
                [sys.executable, *spec.args],
                env=spec.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches the launcher, which stops children in order
            )

    def adopt(
        self, name: str, process: subprocess.Popen[bytes], log_path: Path, url: str, stop_signal: int = signal.SIGTERM
    ) -> None:
        self.children.append(Child(name, process, log_path, url, stop_signal))
        self._write_pids()

    def dead(self) -> Child | None:
        for child in self.children:
            if child.process.poll() is not None:
                return child
        return None

    def stop_all(self, timeout: float = 10.0) -> None:
        for child in reversed(self.children):
            if child.process.poll() is None:
                child.process.send_signal(child.stop_signal)
                try:
                    child.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    child.process.kill()
                    child.process.wait()
        self.children.clear()
        self.pid_file.unlink(missing_ok=True)

    def _write_pids(self) -> None:
        self.pid_file.write_text("\n".join(str(c.process.pid) for c in self.children))

    def kill_leftovers(self) -> int:
        """Stops processes a previous launcher left behind (e.g. after it was SIGKILLed)."""
        if not self.pid_file.exists():
            return 0
        stopped = 0
        for line in self.pid_file.read_text().split():
            try:
                os.kill(int(line), signal.SIGTERM)
                stopped += 1
            except (ValueError, ProcessLookupError, PermissionError):
                continue
        if stopped:
            time.sleep(1.0)
        self.pid_file.unlink(missing_ok=True)
        return stopped


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
