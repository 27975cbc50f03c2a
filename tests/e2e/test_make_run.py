"""`make run`'s launcher as a newcomer uses it: up, log in, stop, start again; a dying service is reported."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

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


def _onboarding_shows_through_the_sandbox_webhook(gateway: str, admin: dict[str, str]) -> dict[str, Any]:
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
            current: dict[str, Any] = http.get(f"/v1/organizations/{org['id']}").json()
            if current["charges_enabled"]:
                return current
            time.sleep(0.1)
    raise AssertionError("account.updated never reached the organisation through the webhook")


def _every_process_exports_metrics_and_logs_json(run_dir: Path, stack: dict[str, Any], banner: str) -> None:
    """Each process listed in stack.json serves /metrics (the banner says where); the gateway's has
    its requests by route template, each service's its RPCs; every log line is one JSON object."""
    assert set(stack["metrics"]) == {"gateway", "accounts", "payments", "terminal", "banking"}
    for name, url in stack["metrics"].items():
        assert url in banner
        samples = _scrape(url)
        if name == "gateway":
            assert ("http_server_request_duration_seconds_count", "http_route", "/v1/me") in samples
        else:  # the launcher's health checks at least
            assert ("rpc_server_duration_seconds_count", "rpc_service", "grpc.health.v1.Health") in samples, name
    accounts = _scrape(stack["metrics"]["accounts"])
    assert ("rpc_server_duration_seconds_count", "rpc_service", "collect.accounts.v1.AccountsService") in accounts
    for name in stack["metrics"]:
        lines = (run_dir / "logs" / f"{name}.log").read_text().splitlines()
        parsed = [orjson.loads(line) for line in lines if line.strip()]
        assert parsed and all(isinstance(entry, dict) and entry.get("service") == name for entry in parsed), name
    access = [
        e for e in parsed_log(run_dir, "gateway") if e.get("logger") == "gateway.access" and e["route"] == "/v1/me"
    ]
    assert access and all(len(e["request_id"]) == 32 and len(e["trace_id"]) == 32 for e in access)


def _scrape(url: str) -> set[tuple[str, str, str]]:
    """(sample name, label, value) of every label of every sample at a /metrics URL."""
    from prometheus_client.parser import text_string_to_metric_families

    families = text_string_to_metric_families(httpx.get(url, timeout=10).text)
    return {(s.name, k, v) for family in families for s in family.samples for k, v in s.labels.items()}


def parsed_log(run_dir: Path, name: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in (run_dir / "logs" / f"{name}.log").read_text().splitlines() if line.strip()]


def _play(run_dir: Path, port: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stack.play", f"--run-dir={run_dir}", *args],
        cwd=ROOT,
        env=_env(run_dir, port),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _sales_payout_and_bank_reconcile(gateway: str, admin: dict[str, str], org: dict[str, Any], run_dir: Path) -> str:
    """The README walkthrough's outside world: the phone (`stack.play present`), Stripe's payout and the
    bank credit it brings (`stack.play payout`); the day's report ends reconciled. Returns the day."""
    port = int(gateway.rsplit(":", 1)[1])
    with httpx.Client(base_url=gateway, timeout=30) as http:
        agent = {"email": f"agent-{uuid.uuid4().hex[:8]}@e2e.test", "password": "agent-password-123"}
        made = http.post(
            f"/v1/organizations/{org['id']}/members", headers=admin, json={**agent, "name": "A", "role": "agent"}
        )
        assert made.status_code == 201, made.text
        seller = {"Authorization": f"Bearer {http.post('/v1/auth/token', json=agent).json()['access_token']}"}
        sales = [
            http.post(
                "/v1/payments", headers={**seller, "Idempotency-Key": uuid.uuid4().hex}, json={"amount": 1500}
            ).json()
            for _ in range(2)
        ]
        approved = _play(run_dir, port, "present", sales[0]["id"], "--card", "approve")
        assert approved.returncode == 0 and f"payment {sales[0]['id']}: succeeded" in approved.stdout, approved
        declined = _play(run_dir, port, "present", sales[1]["id"], "--card", "decline")
        assert declined.returncode == 1 and "declined: generic_decline" in declined.stdout, declined
        paid = _play(run_dir, port, "payout", org["stripe_account_id"])
        assert paid.returncode == 0 and ": paid" in paid.stdout, paid
        day = datetime.now(ZoneInfo("Europe/Paris")).date().isoformat()
        for _ in range(100):  # the bank credit reaches Banking by Qonto's webhook
            assert http.post("/v1/banking/reconciliation/run", headers=admin, json={}).status_code == 200
            report = http.get("/v1/reports/daily", params={"date": day}, headers=admin).json()
            [line] = [o for o in report["organizations"] if o["organization_id"] == org["id"]]
            if line["reconciled"] and line["bank_credits"] > 0:
                break
            time.sleep(0.2)
        assert line["gross"] == 1500 and line["count"] == 1 and line["payouts"] == line["bank_credits"] > 0, line
        assert report["reconciled"] is True, report
    return day


def _the_daily_report_lands_in_the_local_slack(gateway: str, admin: dict[str, str], run_dir: Path, day: str) -> None:
    """No SLACK_WEBHOOK_URL: Banking posts to the launcher's sink, and `python -m stack.slack` prints it."""
    sent = httpx.post(f"{gateway}/v1/reports/daily/send", json={"date": day}, headers=admin, timeout=30)
    assert sent.status_code == 200 and sent.json()["sent"], sent.text
    shown = subprocess.run(
        [sys.executable, "-m", "stack.slack", f"--run-dir={run_dir}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"Daily report {day}: net 15.00 EUR" in shown and "reconciled" in shown, shown


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
            stack = orjson.loads((run_dir / "stack.json").read_bytes())
            if attempt == 1:
                _every_process_exports_metrics_and_logs_json(run_dir, stack, banner)
            assert stack["gateway"] == gateway
            assert set(stack["services"]) == {"accounts", "payments", "terminal", "banking"}
            assert set(stack["sandboxes"]) == {"stripe", "qonto", "pennylane"}
            pids = [int(p) for p in (run_dir / "stack.pids").read_text().split()]
            assert len(pids) == 10, attempt  # postgres, Slack sink, 3 sandboxes, 4 services, gateway
            process.send_signal(signal.SIGINT)
            assert process.wait(30) == 0
            assert not [pid for pid in pids if _alive(pid)]
        finally:
            _reap(process)


def _status(run_dir: Path) -> dict[str, dict[str, object]]:
    processes: dict[str, dict[str, object]] = orjson.loads((run_dir / "status.json").read_bytes())["processes"]
    return processes


def test_a_killed_service_is_healed_and_only_the_database_stops_the_stack(run_dir: Path) -> None:
    port = free_port()
    process = _start(run_dir, port)
    try:
        _wait_up(process)
        before = _status(run_dir)
        os.kill(int(before["accounts"]["pid"]), signal.SIGKILL)  # type: ignore[call-overload]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            accounts = _status(run_dir)["accounts"]
            if accounts["restarts"] == 1 and accounts["status"] == "running":
                break
            time.sleep(0.1)
        assert accounts["pid"] != before["accounts"]["pid"] and accounts["last_exit_code"] == -9, accounts
        while time.monotonic() < deadline:  # the gateway reaches the new process on the same port
            ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
            if ready.status_code == 200:
                break
            time.sleep(0.1)
        assert ready.status_code == 200, ready.text
        assert process.poll() is None

        pids = [int(p["pid"]) for p in _status(run_dir).values()]  # type: ignore[call-overload]
        os.kill(int(before["postgres"]["pid"]), signal.SIGKILL)  # type: ignore[call-overload]
        output, _ = process.communicate(timeout=30)
        assert process.returncode == 1
        assert "accounts exited with code -9; restarting it" in output, output
        assert "postgres exited unexpectedly" in output, output
        assert not [pid for pid in pids if _alive(pid)]
    finally:
        _reap(process)


def test_make_run_plays_the_walkthrough_and_stops_on_sigterm_to_make(run_dir: Path) -> None:
    """`make run` as the README walkthrough drives it: sales on the phone, a payout, the bank credit,
    a reconciled report in the local Slack sink. Then make alone gets SIGTERM (as from a process
    manager or an IDE): make does not forward it, the launcher notices that make is gone and stops."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    port = free_port()
    process = _start(run_dir, port, ("make", "--no-print-directory", "run"))
    try:
        _wait_up(process)
        gateway = f"http://127.0.0.1:{port}"
        credentials = {"email": "e2e-admin@collect.local", "password": "e2e-admin-password"}
        admin = {
            "Authorization": f"Bearer {httpx.post(f'{gateway}/v1/auth/token', json=credentials).json()['access_token']}"
        }
        org = _onboarding_shows_through_the_sandbox_webhook(gateway, admin)
        day = _sales_payout_and_bank_reconcile(gateway, admin, org, run_dir)
        _the_daily_report_lands_in_the_local_slack(gateway, admin, run_dir, day)
        pids = [int(p) for p in (run_dir / "stack.pids").read_text().split()]
        assert len(pids) == 10  # postgres, Slack sink, 3 sandboxes, 4 services, gateway
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
