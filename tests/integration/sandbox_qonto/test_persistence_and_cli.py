"""State files and the command line: the sandbox as ``make run`` starts it."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import httpx

from runtime.webhook_signatures import verify_qonto_signature
from sandbox.qonto.testing import run_qonto_sandbox

from .conftest import Receiver

REPO_ROOT = Path(__file__).resolve().parents[3]


async def test_state_survives_a_restart(tmp_path: Path, receiver: Receiver) -> None:
    state_file = tmp_path / "qonto" / "state.json"
    async with run_qonto_sandbox(state_file=str(state_file)) as qs:
        pending = await qs.inject(amount_cents=100, status="pending", reference="keep-me")
        await qs.add_webhook(receiver.url, "persisted-secret")
        await qs.wait_for_deliveries()
    document = json.loads(state_file.read_text())
    assert document["version"] == 1 and len(document["transactions"]) == 1

    async with run_qonto_sandbox(state_file=str(state_file)) as qs:
        assert qs.state.get_transaction(pending["transaction_id"]).to_api() == pending
        later = await qs.inject(amount_cents=5)
        assert later["transaction_id"] == "collect-sandbox-1-transaction-2"  # counters carry on
        assert later["updated_at"] > pending["updated_at"]
        done = await qs.update(pending["id"], status="completed")
        await qs.wait_for_deliveries()
        async with httpx.AsyncClient(base_url=qs.url, headers=qs.auth_headers) as http:
            org = (await http.get("/v2/organization")).json()["organization"]
    assert org["bank_accounts"][0]["balance_cents"] == 1_000_000 + 100 + 5
    assert done["status"] == "completed"
    # The subscription (and its secret) came back from the file too.
    assert len(receiver.requests) == 2  # subscribed after the first transaction
    for delivery in receiver.requests:
        verify_qonto_signature(delivery.headers["x-qonto-signature"], delivery.body, ["persisted-secret"])


async def test_command_line_serves_until_sigterm(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sandbox.qonto",
        "--port",
        "0",
        "--state-file",
        str(tmp_path / "state.json"),
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), timeout=15)).decode()
        assert line.startswith("qonto sandbox listening on http://127.0.0.1:"), line
        url = line.rsplit(" ", 1)[-1].strip()
        async with httpx.AsyncClient(base_url=url) as http:
            assert (await http.get("/_sandbox/health")).json()["status"] == "ok"
            auth = {"Authorization": "collect-sandbox:sandbox-secret"}
            created = await http.post("/_sandbox/transactions", json={"amount_cents": 321}, headers=auth)
            assert created.status_code == 201
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=15)
        assert process.returncode == 0, stderr.decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.communicate()
    saved = json.loads((tmp_path / "state.json").read_text())
    assert [t["amount_cents"] for t in saved["transactions"]] == [321]
