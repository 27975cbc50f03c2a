"""State survives a restart when a state file is configured; the command line serves and stops cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from sandbox.stripe.testing import SandboxProcess, free_port, run_sandbox
from tests.fixtures.stripe_types import given, id_of


@pytest.mark.parametrize("live_objects", [0, 5_000], ids=["packed", "live"])
async def test_state_file_survives_restart(tmp_path: Path, live_objects: int) -> None:
    state_file = tmp_path / "stripe.json"
    async with run_sandbox(state_file=str(state_file), live_objects=live_objects) as sandbox:
        account = await sandbox.create_connected_account()
        intent = await account.client.v1.payment_intents.create_async(
            params={"amount": 3_000, "currency": "eur", "confirm": True, "payment_method": "pm_card_visa"}
        )
        refund = await account.client.v1.refunds.create_async(params={"payment_intent": intent.id, "amount": 1_000})
        endpoint = await sandbox.client().v1.webhook_endpoints.create_async(
            params={"url": "http://127.0.0.1:9/x", "enabled_events": ["payout.paid"]}
        )
        balance_before = (await account.client.v1.balance.retrieve_async()).available[0].amount
        platform_id = sandbox.state.platform_id
    assert state_file.exists()
    async with run_sandbox(state_file=str(state_file), live_objects=live_objects) as sandbox:
        assert sandbox.state.platform_id == platform_id
        client = sandbox.client(stripe_account=account.id)
        again = await client.v1.payment_intents.retrieve_async(intent.id)
        assert again.status == "succeeded"
        charge = await client.v1.charges.retrieve_async(id_of(again.latest_charge))
        assert charge.amount_refunded == 1_000 and given(charge.refunds).data[0].id == refund.id
        assert (await client.v1.balance.retrieve_async()).available[0].amount == balance_before
        assert (await sandbox.client().v1.webhook_endpoints.retrieve_async(endpoint.id)).url == "http://127.0.0.1:9/x"
        assert sandbox.state.store.objects[endpoint.id]["_secret"] == endpoint.secret
        await client.v1.refunds.create_async(params={"payment_intent": intent.id, "amount": 500})
        assert (await client.v1.charges.retrieve_async(charge.id)).amount_refunded == 1_500


async def test_state_is_saved_while_serving(tmp_path: Path) -> None:
    """Every second or so, from a forked copy of the process: a crash loses at most that."""
    state_file = tmp_path / "live.json"
    async with run_sandbox(state_file=str(state_file)) as sandbox:
        account = await sandbox.create_connected_account()
        for _ in range(100):
            if state_file.exists() and account.id in state_file.read_text():
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the running sandbox never saved its state")
        assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]


def test_command_line_serves_persists_and_stops_on_sigterm(tmp_path: Path) -> None:
    state_file = tmp_path / "cli.json"
    headers = {"Authorization": "Bearer sk_test_cli"}
    with SandboxProcess(state_file=state_file) as process:
        created = httpx.post(
            f"{process.url}/v1/terminal/locations",
            data={"display_name": "CLI", "address[country]": "FR"},
            headers=headers,
        )
        assert created.status_code == 200
        location_id = created.json()["id"]
    assert state_file.exists()
    with SandboxProcess(state_file=state_file) as process:
        fetched = httpx.get(f"{process.url}/v1/terminal/locations/{location_id}", headers=headers)
        assert fetched.json()["display_name"] == "CLI"

    port = free_port()
    repo = Path(__file__).resolve().parents[3]
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox.stripe", "--port", str(port)],
        cwd=repo,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == f"stripe sandbox listening on http://127.0.0.1:{port}"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


async def test_reset_forgets_everything() -> None:
    async with run_sandbox() as sandbox:
        account = await sandbox.create_connected_account()
        platform_id = sandbox.state.platform_id
        async with httpx.AsyncClient(base_url=sandbox.url) as http:
            assert (await http.post("/_sandbox/reset")).status_code == 200
        assert sandbox.state.platform_id == platform_id
        listed = await sandbox.client().v1.accounts.list_async()
        assert listed.data == []
        assert (await sandbox.client().v1.accounts.retrieve_current_async()).id == platform_id
        assert account.id not in sandbox.state.store.objects
