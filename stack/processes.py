"""Child processes of the local stack: start with logs under .run/logs, stop in reverse order."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    url: str
    stop_signal: int = signal.SIGTERM


@dataclass
class Supervisor:
    run_dir: Path
    children: list[Child] = field(default_factory=list)

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "stack.pids"

    def start(self, name: str, args: list[str], env: dict[str, str], url: str) -> Child:
        log_dir = self.run_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / f"{name}.log"
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                [sys.executable, *args],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches the launcher, which stops children in order
            )
        child = Child(name, process, log_path, url)
        self.children.append(child)
        self._write_pids()
        return child

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
