"""The launcher's supervisor on real child processes: a killed child comes back with backoff and is
counted in status.json; a child without a spec (the database) is handed back as fatal; and the
`<SERVICE>_ADDR` lists callers balance across."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from runtime.clients import channel_target
from stack.processes import Supervisor
from stack.supervisor import Backoff, Healer

SLEEPER = ["-c", "import time; time.sleep(120)"]


def test_the_backoff_doubles_up_to_its_maximum() -> None:
    backoff = Backoff(initial=0.25, maximum=2.0)
    assert [backoff.delay(n) for n in range(1, 7)] == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]


def test_a_service_address_may_list_its_replicas() -> None:
    assert channel_target("127.0.0.1:5001") == "127.0.0.1:5001"
    assert channel_target("dns:///payments:50051") == "dns:///payments:50051"
    assert channel_target("127.0.0.1:5001, 127.0.0.1:5002") == "ipv4:127.0.0.1:5001,127.0.0.1:5002"
    assert channel_target("[::1]:5001,[::1]:5002") == "ipv6:[::1]:5001,[::1]:5002"


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[Supervisor]:
    supervisor = Supervisor(tmp_path)
    yield supervisor
    supervisor.stop_all(timeout=5)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _tick_until(healer: Healer, clock: Clock, check: object, step: float = 0.05) -> None:
    for _ in range(400):
        assert healer.tick() is None
        if check():  # type: ignore[operator]
            return
        clock.now += step
        time.sleep(0.01)
    raise AssertionError("never happened")


def test_a_killed_child_is_started_again_after_its_backoff_and_counted(supervisor: Supervisor, tmp_path: Path) -> None:
    child = supervisor.start("worker", SLEEPER, dict(os.environ), "worker")
    clock = Clock()
    healer = Healer(supervisor, tmp_path / "status.json", backoff=Backoff(initial=1.0), clock=clock)
    assert healer.tick() is None
    first = child.process.pid
    os.kill(first, signal.SIGKILL)
    child.process.wait()
    assert healer.tick() is None
    status = orjson.loads((tmp_path / "status.json").read_bytes())["processes"]["worker"]
    assert status["status"] == "waiting to restart" and status["restarts"] == 1 and status["last_exit_code"] == -9
    clock.now += 0.9
    assert healer.tick() is None and child.process.pid == first  # not before its backoff
    clock.now += 0.2
    _tick_until(healer, clock, lambda: child.process.pid != first)
    _tick_until(healer, clock, lambda: _status(tmp_path)["status"] == "running")
    assert _status(tmp_path)["pid"] == child.process.pid and child.process.poll() is None
    assert int((tmp_path / "stack.pids").read_text()) == child.process.pid

    os.kill(child.process.pid, signal.SIGKILL)  # again at once: the backoff doubles
    child.process.wait()
    healer.tick()
    assert _status(tmp_path)["restarts"] == 2
    second = child.process.pid
    clock.now += 1.5
    healer.tick()
    assert child.process.pid == second
    clock.now += 0.6
    healer.tick()
    assert child.process.pid != second


def test_a_child_without_a_spec_is_fatal(supervisor: Supervisor, tmp_path: Path) -> None:
    process = subprocess.Popen([sys.executable, *SLEEPER])
    supervisor.adopt("postgres", process, tmp_path / "postgres.log", "postgres")
    healer = Healer(supervisor, tmp_path / "status.json")
    assert healer.tick() is None
    process.kill()
    process.wait()
    dead = healer.tick()
    assert dead is not None and dead.name == "postgres"


def _status(tmp_path: Path) -> dict[str, object]:
    worker: dict[str, object] = orjson.loads((tmp_path / "status.json").read_bytes())["processes"]["worker"]
    return worker
