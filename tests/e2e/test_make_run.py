"""`make run`'s launcher as a newcomer uses it: up, log in, stop, start again; a dying service is reported."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from runtime.embedded_pg import free_port
from tests.fixtures.organizations import organization_body

ROOT = Path(__file__).resolve().parents[2]


def _env(run_dir: Path, port: int) -> dict[str, str]:
    env = {
        **os.environ,
        "STACK_RUN_DIR": str(run_dir),
        "GATEWAY_PORT": str(port),
        "PLATFORM_ADMIN_EMAIL": "e2e-admin@collect.local",
        "PLATFORM_ADMIN_PASSWORD": "e2e-admin-password",
    }
    for key in (
        "DATABASE_URL",
        "STRIPE_API_KEY",
        "QONTO_LOGIN",
        "QONTO_SECRET_KEY",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "SLACK_WEBHOOK_URL",
    ):
        env.pop(key, None)
    return env


def _start(
    run_dir: Path, port: int, command: tuple[str, ...] = (sys.executable, "-m", "stack")
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command, cwd=ROOT, env=_env(run_dir, port), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _wait_up(process: subprocess.Popen[str], timeout: float = 90) -> str:
    assert process.stdout is not None
    seen = []
    deadline = time.monotonic() + timeout
    for line in process.stdout:
        seen.append(line)
        if "Ctrl-C stops everything" in line:
            return "".join(seen)
        if time.monotonic() > deadline:
            break
    raise AssertionError("the stack did not come up:\n" + "".join(seen))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def _onboarding_shows_through_the_sandbox_webhook(gateway: str, admin: dict[str, str]) -> None:
    """The launcher registered the gateway at the Stripe sandbox: account.updated alone enables the org."""
    with httpx.Client(base_url=gateway, headers=admin, timeout=10) as http:
        org = http.post("/v1/organizations", json=organization_body()).json()
        assert http.post(f"/v1/organizations/{org['id']}/stripe-account", json={}).status_code == 200
        link = http.post(
            f"/v1/organizations/{org['id']}/onboarding-link",
            json={"return_url": "https://e2e.test/done", "refresh_url": "https://e2e.test/again"},
        ).json()
        assert httpx.get(link["url"], follow_redirects=False, timeout=10).status_code in (302, 303)
        for _ in range(100):
            if http.get(f"/v1/organizations/{org['id']}").json()["charges_enabled"]:
                return
            time.sleep(0.1)
    raise AssertionError("account.updated never reached the organisation through the webhook")


def _the_daily_report_lands_in_the_local_slack(gateway: str, admin: dict[str, str], run_dir: Path) -> None:
    """No SLACK_WEBHOOK_URL: Banking posts to the launcher's sink, and `python -m stack.slack` prints it."""
    sent = httpx.post(f"{gateway}/v1/reports/daily/send", json={"date": "2026-01-15"}, headers=admin, timeout=30)
    assert sent.status_code == 200, sent.text
    shown = subprocess.run(
        [sys.executable, "-m", "stack.slack", f"--run-dir={run_dir}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "--- message 1" in shown and "Daily report 2026-01-15" in shown, shown


def _reap(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()
    if process.stdout is not None:
        process.stdout.close()


@pytest.fixture
def run_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "run"


def test_make_run_starts_everything_and_ctrl_c_leaves_no_process(run_dir: Path) -> None:
    port = free_port()
    for attempt in (1, 2):  # a second run after a clean stop works too
        process = _start(run_dir, port)
        try:
            banner = _wait_up(process)
            gateway = f"http://127.0.0.1:{port}"
            assert gateway in banner and "e2e-admin@collect.local" in banner
            assert httpx.get(f"{gateway}/readyz", timeout=5).status_code == 200
            token = httpx.post(
                f"{gateway}/v1/auth/token",
                json={"email": "e2e-admin@collect.local", "password": "e2e-admin-password"},
                timeout=10,
            ).json()["access_token"]
            me = httpx.get(f"{gateway}/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=5)
            assert me.json()["role"] == "platform_admin"
            if attempt == 1:
                _onboarding_shows_through_the_sandbox_webhook(gateway, {"Authorization": f"Bearer {token}"})
                _the_daily_report_lands_in_the_local_slack(gateway, {"Authorization": f"Bearer {token}"}, run_dir)
            stack = orjson.loads((run_dir / "stack.json").read_bytes())
            assert stack["gateway"] == gateway
            assert set(stack["services"]) == {"accounts", "payments", "terminal", "banking"}
            assert set(stack["sandboxes"]) == {"stripe", "qonto"}
            pids = [int(p) for p in (run_dir / "stack.pids").read_text().split()]
            assert len(pids) == 9, attempt  # postgres, Slack sink, 2 sandboxes, 4 services, gateway
            process.send_signal(signal.SIGINT)
            assert process.wait(30) == 0
            assert not [pid for pid in pids if _alive(pid)]
        finally:
            _reap(process)


def test_a_service_that_dies_is_reported(run_dir: Path) -> None:
    process = _start(run_dir, free_port())
    try:
        _wait_up(process)
        pids = [int(p) for p in (run_dir / "stack.pids").read_text().split()]
        accounts = next(pid for pid in pids if b"services.accounts" in Path(f"/proc/{pid}/cmdline").read_bytes())
        os.kill(accounts, signal.SIGKILL)
        output, _ = process.communicate(timeout=30)
        assert process.returncode == 1
        assert "accounts exited unexpectedly" in output, output
        assert not [pid for pid in pids if _alive(pid)]
    finally:
        _reap(process)


def test_sigterm_to_make_itself_stops_the_stack(run_dir: Path) -> None:
    """make does not forward a signal sent to it alone (by a process manager, an IDE): the launcher
    notices that make is gone and stops everything."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    process = _start(run_dir, free_port(), ("make", "--no-print-directory", "run"))
    try:
        _wait_up(process)
        pids = [int(p) for p in (run_dir / "stack.pids").read_text().split()]
        assert len(pids) == 9
        launcher = int(Path(f"/proc/{pids[-1]}/stat").read_text().rsplit(")", 1)[1].split()[1])
        assert b"stack" in Path(f"/proc/{launcher}/cmdline").read_bytes()
        process.send_signal(signal.SIGTERM)  # to make's pid only, not to its process group
        process.wait(30)
        deadline = time.monotonic() + 60
        while _alive(launcher):  # it stops every child, then exits
            assert time.monotonic() < deadline, "the launcher outlived make"
            time.sleep(0.1)
        assert not [pid for pid in pids if _alive(pid)]
        assert not (run_dir / "stack.pids").exists()
    finally:
        _reap(process)
