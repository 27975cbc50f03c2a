"""Healing the local stack as an orchestrator would: a crashed service, gateway or sandbox is started
again with exponential backoff on the same port while the others keep serving; each restart is
logged and counted in `.run/status.json`. Only the loss of a process without a spec to restart it
(the embedded PostgreSQL) is fatal: the launcher stops the stack then.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
import orjson
from grpc_health.v1 import health_pb2, health_pb2_grpc

from stack.processes import Child, Supervisor, tail


def http_ok(url: str) -> bool:
    return httpx.get(url, timeout=1.0).status_code == 200


def grpc_serving(target: str) -> bool:
    with grpc.insecure_channel(target) as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
        return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)


def check_health(child: Child) -> bool:
    """Whether the child passes the health check of its spec (alive, when it has none)."""
    check = child.spec.probe if child.spec is not None else ""
    if check.startswith("grpc://"):
        return grpc_serving(check.removeprefix("grpc://"))
    if check:
        return http_ok(check)
    return child.process.poll() is None


@dataclass(frozen=True)
class Backoff:
    """Delay before the n-th consecutive restart: initial x 2^(n-1), at most `maximum`; a process
    that stayed healthy for `reset_after` seconds starts from `initial` again (as CrashLoopBackOff)."""

    initial: float = 0.25
    maximum: float = 15.0
    reset_after: float = 10.0

    def delay(self, consecutive: int) -> float:
        return float(min(self.maximum, self.initial * 2 ** max(0, consecutive - 1)))


@dataclass
class _State:
    restarts: int = 0
    consecutive: int = 0
    last_exit_code: int | None = None
    restart_at: float | None = None  # waiting to be started again
    died_at: float | None = None  # not healthy since (None: healthy)
    healthy_since: float | None = None
    last_recovery_seconds: float | None = None


@dataclass
class Healer:
    """Called every few hundred milliseconds by the launcher's loop (`tick`)."""

    supervisor: Supervisor
    status_path: Path
    # Whether a (re)started child answers its health check; cheap, short timeouts.
    probe: Callable[[Child], bool] = check_health
    backoff: Backoff = field(default_factory=Backoff)
    clock: Callable[[], float] = time.monotonic
    _states: dict[str, _State] = field(default_factory=dict)
    _written: bool = False

    def tick(self) -> Child | None:
        """Restarts what is due and returns a dead child that cannot be restarted (the stack must stop)."""
        now = self.clock()
        changed = False
        for child in self.supervisor.children:
            state = self._states.setdefault(child.name, _State(healthy_since=now))
            if state.restart_at is None and child.process.poll() is not None:
                if child.spec is None:
                    return child
                changed = True
                self._died(child, state, now)
            elif state.restart_at is not None and now >= state.restart_at:
                changed = True
                state.restart_at = None
                self.supervisor.restart(child)
                self._say(f"{child.name} started again (pid {child.process.pid}, restart {state.restarts})")
            elif state.died_at is not None and state.restart_at is None and self._probe(child):
                changed = True
                state.last_recovery_seconds = now - state.died_at
                state.died_at, state.healthy_since = None, now
                self._say(f"{child.name} is healthy again, {state.last_recovery_seconds:.1f} s after it exited")
            elif (
                state.consecutive
                and state.healthy_since is not None
                and now - state.healthy_since >= self.backoff.reset_after
            ):
                state.consecutive = 0
        if changed or not self._written:
            self.write_status()
        return None

    def _died(self, child: Child, state: _State, now: float) -> None:
        state.restarts += 1
        state.consecutive += 1
        state.last_exit_code = child.process.returncode
        state.died_at = state.died_at if state.died_at is not None else now
        state.healthy_since = None
        delay = self.backoff.delay(state.consecutive)
        state.restart_at = now + delay
        self._say(
            f"{child.name} exited with code {child.process.returncode}; restarting it in {delay:.2f} s "
            f"(restart {state.restarts}); last lines of {child.log_path}:\n{tail(child.log_path, 5)}"
        )

    def _probe(self, child: Child) -> bool:
        try:
            return self.probe(child)
        except Exception:  # any failure of the check means: not healthy yet
            return False

    def restarts(self) -> dict[str, int]:
        return {name: state.restarts for name, state in self._states.items()}

    def write_status(self) -> None:
        """`.run/status.json`: every process with its pid, state and restart count."""
        processes = {}
        for child in self.supervisor.children:
            state = self._states.get(child.name, _State())
            if state.restart_at is not None:
                status = "waiting to restart"
            elif state.died_at is not None:
                status = "starting"
            else:
                status = "running"
            processes[child.name] = {
                "pid": child.process.pid,
                "url": child.url,
                "status": status,
                "restarts": state.restarts,
                "last_exit_code": state.last_exit_code,
                "last_recovery_seconds": state.last_recovery_seconds,
            }
        tmp = self.status_path.with_name(self.status_path.name + ".tmp")
        tmp.write_bytes(orjson.dumps({"processes": processes}, option=orjson.OPT_INDENT_2))
        tmp.replace(self.status_path)
        self._written = True

    @staticmethod
    def _say(line: str) -> None:
        print(f"[supervisor] {line}", file=sys.stderr, flush=True)
