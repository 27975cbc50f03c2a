"""The Pennylane push through the real parts: Payments' books and Banking's store in PostgreSQL, the
Pennylane sandbox over HTTP (4 requests per second per token here, so pushes meet 429s).

An organisation's sales, fees, refunds and payouts land once each as balanced ledger entries that agree
with its FEC; a lost answer, a run stopped between Pennylane's commit and our record, and two runs at
once leave no duplicate; the token is stored sealed; failures are recorded and reported."""

from __future__ import annotations

import asyncio

import asyncpg
import grpc
import pytest
from collect.banking.v1 import banking_pb2 as pb

from sandbox.pennylane.testing import RunningPennylaneSandbox
from services.banking import fec, pennylane
from services.banking.context import Banking
from tests.fixtures.organizations import onboarded_organization
from tests.fixtures.stack import Stack
from tests.integration.banking import pennylane_support
from tests.integration.banking.conftest import today
from tests.integration.banking.pennylane_support import (
    as_member,
    as_service,
    assert_ledger_is_the_fec,
    banking_stub,
    configure,
    fec_rows,
    mapping,
    not_pushed,
    org_with_books,
    push,
    stop_a_push_once_pennylane_stores,
)

in_process = pennylane_support.in_process


async def test_books_land_once_as_balanced_ledger_entries_through_429s(bank_stack: Stack) -> None:
    stack = bank_stack
    pl: RunningPennylaneSandbox = stack.extras["pennylane"]
    org = await org_with_books(stack, [1000, 2500, 4000, 1500, 3000], refund=700)
    company = pl.add_company("org books")
    settings = await configure(stack, org, company)
    assert settings.api_token_set and settings.organization_id == org.id
    refused_before = pl.state.refused

    result = await push(stack, org)

    rows = await fec_rows(stack, org)
    journals = {cells[0] for cells in rows}
    assert {"VE", "BQ"} <= journals  # sales and refunds, the payout (with its Stripe fees when any)
    assert result.pushed == len({cells[2] for cells in rows}) and not result.failures
    assert result.rate_limited > 0 and pl.state.refused > refused_before  # 429s met and waited out
    assert_ledger_is_the_fec(pl, company, rows)
    again = await push(stack, org)
    assert (again.pushed, again.found, again.unchanged) == (0, 0, result.pushed)
    assert_ledger_is_the_fec(pl, company, rows)


async def test_a_lost_answer_and_a_run_stopped_mid_push_leave_no_duplicate(
    bank_stack: Stack, in_process: Banking
) -> None:
    stack = bank_stack
    pl: RunningPennylaneSandbox = stack.extras["pennylane"]
    org = await org_with_books(stack, [1200, 800, 2600])
    company = pl.add_company("crash")
    await configure(stack, org, company)

    # The run is stopped (as a crash would) after Pennylane stored an entry and before Banking recorded it.
    await stop_a_push_once_pennylane_stores(pl, in_process, org.id)
    assert len(pl.entries(company)) == 1
    assert [f.status for f in await not_pushed(stack, org)] == ["sending"]

    # The next creation is stored but its answer is lost (a 503).
    pl.lose_answers(503)
    result = await push(stack, org)

    rows = await fec_rows(stack, org)
    assert result.found == 2 and not result.failures  # the stopped run's entry and the lost answer's
    assert result.pushed + result.found == len({cells[2] for cells in rows})
    assert_ledger_is_the_fec(pl, company, rows)
    assert await not_pushed(stack, org) == []


async def test_two_runs_at_once_push_once(bank_stack: Stack, in_process: Banking) -> None:
    stack = bank_stack
    pl: RunningPennylaneSandbox = stack.extras["pennylane"]
    org = await org_with_books(stack, [900, 1100])
    company = pl.add_company("concurrent")
    await configure(stack, org, company)

    with pl.holding_creations() as gate:
        first = asyncio.create_task(pennylane.push(in_process, entities=[org.id]))
        await gate.committed.wait()  # the first run holds the lock, mid-push
        assert await pennylane.push(in_process, entities=[org.id]) is None
        answer = await banking_stub(stack).PushToPennylane(
            pb.PushToPennylaneRequest(entities=[org.id]), metadata=as_service(stack)
        )
        assert not answer.ran
        gate.release.set()
        results = await first
    assert results is not None and not results[0].failures
    assert_ledger_is_the_fec(pl, company, await fec_rows(stack, org))


async def test_the_token_is_sealed_and_failures_are_reported(bank_stack: Stack) -> None:
    stack = bank_stack
    pl: RunningPennylaneSandbox = stack.extras["pennylane"]
    org = await org_with_books(stack, [1000], refund=0)
    company = pl.add_company("sealed")
    partial = mapping(pl, company)
    del partial["ledger_account_ids"][fec.SALES]  # sales cannot be booked
    stub = banking_stub(stack)
    await stub.PutPennylaneSettings(
        pb.PutPennylaneSettingsRequest(
            organization_id=org.id,
            settings=pb.PennylaneSettingsChange(api_token=company.token, start_date=today(), enabled=True, **partial),
        ),
        metadata=as_member(org.admin_headers),
    )
    connection = await asyncpg.connect(stack.database.admin_url)
    try:
        sealed = await connection.fetchval(
            "SELECT api_token_ciphertext FROM banking.pennylane_settings WHERE entity = $1", org.id
        )
    finally:
        await connection.close()
    assert company.token not in sealed and sealed.startswith("v1:test:")

    result = await push(stack, org)
    unmapped = [f for f in result.failures if "706000" in f.error]
    assert len(unmapped) == 1 and unmapped[0].reference.startswith("VE-")
    status = await stub.GetPennylaneSettings(
        pb.GetPennylaneSettingsRequest(organization_id=org.id), metadata=as_member(org.admin_headers)
    )
    assert [(f.reference, f.status) for f in status.failures] == [(unmapped[0].reference, "failed")]
    assert "706000" in status.failures[0].error

    # Keeping the token (empty) and completing the mapping lets the next run push it.
    await stub.PutPennylaneSettings(
        pb.PutPennylaneSettingsRequest(
            organization_id=org.id,
            settings=pb.PennylaneSettingsChange(
                start_date=today(), enabled=True, **mapping(stack.extras["pennylane"], company)
            ),
        ),
        metadata=as_member(org.admin_headers),
    )
    again = await push(stack, org)
    assert again.pushed == 1 and not again.failures
    assert_ledger_is_the_fec(pl, company, await fec_rows(stack, org))


async def test_settings_are_checked_and_scoped(bank_stack: Stack) -> None:
    stack = bank_stack
    org = await onboarded_organization(stack)
    other = await onboarded_organization(stack)
    stub = banking_stub(stack)
    bad = pb.PutPennylaneSettingsRequest(
        organization_id=org.id,
        settings=pb.PennylaneSettingsChange(api_token="t" * 20, start_date="2026-13-01", journal_ids={"XX": 1}),
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.PutPennylaneSettings(bad, metadata=as_member(org.admin_headers))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fine = pb.PutPennylaneSettingsRequest(
        organization_id=other.id, settings=pb.PennylaneSettingsChange(api_token="t" * 20, start_date=today())
    )
    with pytest.raises(grpc.aio.AioRpcError) as hidden:
        await stub.PutPennylaneSettings(fine, metadata=as_member(org.admin_headers))
    assert hidden.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as agent:
        await stub.GetPennylaneSettings(
            pb.GetPennylaneSettingsRequest(organization_id=org.id), metadata=as_member(org.agent_headers)
        )
    assert agent.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as platform:
        await stub.GetPlatformPennylaneSettings(
            pb.GetPlatformPennylaneSettingsRequest(), metadata=as_member(org.admin_headers)
        )
    assert platform.value.code() == grpc.StatusCode.PERMISSION_DENIED
    empty = await stub.GetPlatformPennylaneSettings(
        pb.GetPlatformPennylaneSettingsRequest(), metadata=as_service(stack)
    )
    assert empty.books.settings.platform and not empty.books.settings.api_token_set


async def test_settings_and_push_over_http(bank_stack: Stack) -> None:
    stack = bank_stack
    pl: RunningPennylaneSandbox = stack.extras["pennylane"]
    org = await org_with_books(stack, [1300])
    company = pl.add_company("http")
    path = f"/v1/organizations/{org.id}/pennylane"
    body = {"api_token": company.token, "start_date": today(), **mapping(pl, company)}
    saved = await stack.http.put(path, headers=org.admin_headers, json=body)
    assert saved.status_code == 200, saved.text
    assert saved.json()["api_token_set"] and company.token not in saved.text
    refused = await stack.http.put(path, headers=org.admin_headers, json={**body, "journal_ids": {"ve": 1}})
    assert refused.status_code == 400 and refused.json()["code"] == "validation_error"
    assert (await stack.http.get(path, headers=org.agent_headers)).status_code == 403

    admin = await stack.admin_headers()
    pushed = await stack.http.post(
        "/v1/banking/pennylane/push", headers=admin, json={"entities": [org.id], "to_date": today()}
    )
    assert pushed.status_code == 200, pushed.text
    (result,) = pushed.json()["results"]
    assert result["entity"] == org.id and result["pushed"] > 0 and result["failures"] == []
    listed = (await stack.http.get(path, headers=org.admin_headers)).json()
    assert listed["failures"] == [] and listed["journal_ids"] == body["journal_ids"]
    assert_ledger_is_the_fec(pl, company, await fec_rows(stack, org))
    assert (await stack.http.post("/v1/banking/pennylane/push", headers=org.admin_headers)).status_code == 403
