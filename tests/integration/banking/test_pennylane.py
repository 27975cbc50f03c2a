"""The Pennylane push through the real parts: Payments' books and Banking's store in PostgreSQL, the
Pennylane sandbox over HTTP (4 requests per second per token here, so pushes meet 429s).

An organisation's sales, fees, refunds and payouts land once each as balanced ledger entries that agree
with its FEC; a lost answer, a run stopped between Pennylane's commit and our record, and two runs at
once leave no duplicate; the token is stored sealed; failures are recorded and reported."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import grpc
import pytest
from collect.banking.v1 import banking_pb2 as pb
from collect.banking.v1 import banking_pb2_grpc

from runtime.stripe_api import close_stripe_client
from sandbox.pennylane.state import Company
from sandbox.pennylane.testing import RunningPennylaneSandbox
from services.banking import fec, pennylane
from services.banking.context import Banking
from services.banking.main import make_banking
from tests.fixtures.fec import account_totals, checked_fec
from tests.fixtures.organizations import OrgContext, onboarded_organization
from tests.fixtures.stack import Stack
from tests.integration.banking.conftest import pay_out, sell, today

SIREN = "732829320"


def _banking_stub(stack: Stack) -> banking_pb2_grpc.BankingServiceStub:
    return banking_pb2_grpc.BankingServiceStub(grpc.aio.insecure_channel(stack.target("banking")))


def _as(headers: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return (("authorization", headers["Authorization"]),)


def _service(stack: Stack) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {stack.signer.service_token('tests')}"),)


def _mapping(pl: RunningPennylaneSandbox, company: Company) -> dict[str, Any]:
    """The company's ids of every FEC journal and account (created at the sandbox when it lacks one)."""
    journals = {j["code"]: j["id"] for j in company.journals.values()}
    accounts = {a["number"]: a["id"] for a in company.accounts.values()}
    for code, label in fec.JOURNALS.items():
        if code not in journals:
            journals[code] = pl.state.create_journal(company, {"code": code, "label": label})["id"]
    for number, label in fec.ACCOUNTS.items():
        if number not in accounts:
            accounts[number] = pl.state.create_account(company, {"number": number, "label": label})["id"]
    return {
        "journal_ids": {code: journals[code] for code in fec.JOURNALS},
        "ledger_account_ids": {number: accounts[number] for number in fec.ACCOUNTS},
    }


@pytest.fixture
async def in_process(bank_stack: Stack) -> AsyncIterator[Banking]:
    """Banking's use cases on the stack's own pool and settings, to stop a push at a chosen moment."""
    banking = make_banking(bank_stack.deps["banking"])
    try:
        yield banking
    finally:
        await banking.http.aclose()
        await close_stripe_client(banking.stripe)


async def _org_with_books(stack: Stack, amounts: list[int], refund: int = 0) -> OrgContext:
    """An organisation (1 % platform fee) with card sales today, one partial refund and a payout."""
    org = await onboarded_organization(stack, fee_percent_bps=100)
    await sell(stack, org, amounts)
    if refund:
        listed = (await stack.http.get("/v1/payments", params={"limit": "100"}, headers=org.admin_headers)).json()
        answer = await stack.http.post(
            f"/v1/payments/{listed['data'][0]['id']}/refunds",
            headers={**org.admin_headers, "Idempotency-Key": uuid.uuid4().hex},
            json={"amount": refund},
        )
        assert answer.status_code == 201, answer.text
    await pay_out(stack, org)
    admin = await stack.admin_headers()
    patched = await stack.http.patch(f"/v1/organizations/{org.id}", headers=admin, json={"siren": SIREN})
    assert patched.status_code == 200, patched.text
    return org


async def _configure(stack: Stack, org: OrgContext, company: Company) -> pb.PennylaneSettings:
    """The organisation's own admin sets its Pennylane company (token, journals, accounts)."""
    answer = await _banking_stub(stack).PutPennylaneSettings(
        pb.PutPennylaneSettingsRequest(
            organization_id=org.id,
            api_token=company.token,
            start_date=today(),
            enabled=True,
            **_mapping(stack.extras["pennylane"], company),
        ),
        metadata=_as(org.admin_headers),
    )
    return answer.settings


async def _push(stack: Stack, org: OrgContext) -> pb.PennylanePushResult:
    answer = await _banking_stub(stack).PushToPennylane(
        pb.PushToPennylaneRequest(entities=[org.id], to_date=today()), metadata=_service(stack)
    )
    assert answer.ran
    (result,) = answer.results
    return result


async def _fec_rows(stack: Stack, org: OrgContext) -> list[list[str]]:
    day = today()
    answer = await stack.http.get(
        f"/v1/organizations/{org.id}/exports/fec", params={"from": day, "to": day}, headers=org.admin_headers
    )
    assert answer.status_code == 200, answer.text
    return checked_fec(answer.text)[0]


def _assert_ledger_is_the_fec(pl: RunningPennylaneSandbox, company: Company, rows: list[list[str]]) -> None:
    """One balanced ledger entry per FEC entry, each reference once, the same totals per account."""
    entries = pl.entries(company)
    pieces = [e["piece_number"] for e in entries]
    assert len(pieces) == len(set(pieces)), pieces
    assert len(entries) == len({cells[2] for cells in rows})
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for entry in entries:
        lines = entry["ledger_entry_lines"]
        cents = [(round(float(line["debit"]) * 100), round(float(line["credit"]) * 100)) for line in lines]
        assert sum(d for d, _ in cents) == sum(c for _, c in cents)
        for line, (debit, credit) in zip(lines, cents, strict=True):
            totals[line["ledger_account"]["number"]][0] += debit
            totals[line["ledger_account"]["number"]][1] += credit
    for account in {cells[4] for cells in rows}:
        assert tuple(totals[account]) == account_totals(rows, account), account


async def test_books_land_once_as_balanced_ledger_entries_through_429s(bank_stack: Stack) -> None:
    stack = bank_stack
    pl: RunningPennylaneSandbox = stack.extras["pennylane"]
    org = await _org_with_books(stack, [1000, 2500, 4000, 1500, 3000], refund=700)
    company = pl.add_company("org books")
    settings = await _configure(stack, org, company)
    assert settings.api_token_set and settings.organization_id == org.id
    refused_before = pl.state.refused

    result = await _push(stack, org)

    rows = await _fec_rows(stack, org)
    journals = {cells[0] for cells in rows}
    assert {"VE", "BQ"} <= journals  # sales and refunds, the payout (with its Stripe fees when any)
    assert result.pushed == len({cells[2] for cells in rows}) and not result.failures
    assert result.rate_limited > 0 and pl.state.refused > refused_before  # 429s met and waited out
    _assert_ledger_is_the_fec(pl, company, rows)
    again = await _push(stack, org)
    assert (again.pushed, again.found, again.unchanged) == (0, 0, result.pushed)
    _assert_ledger_is_the_fec(pl, company, rows)


async def test_a_lost_answer_and_a_run_stopped_mid_push_leave_no_duplicate(
    bank_stack: Stack, in_process: Banking
) -> None:
    stack = bank_stack
    pl: RunningPennylaneSandbox = stack.extras["pennylane"]
    org = await _org_with_books(stack, [1200, 800, 2600])
    company = pl.add_company("crash")
    await _configure(stack, org, company)

    # The run is stopped (as a crash would) after Pennylane stored an entry and before Banking recorded it.
    with pl.holding_creations() as gate:
        run = asyncio.create_task(pennylane.push(in_process, entities=[org.id]))
        await gate.committed.wait()
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
    assert len(pl.entries(company)) == 1
    status = await _banking_stub(stack).GetPennylaneSettings(
        pb.GetPennylaneSettingsRequest(organization_id=org.id), metadata=_as(org.admin_headers)
    )
    assert [f.status for f in status.failures] == ["sending"]

    # The next creation is stored but its answer is lost (a 503).
    pl.lose_answers(503)
    result = await _push(stack, org)

    rows = await _fec_rows(stack, org)
    assert result.found == 2 and not result.failures  # the stopped run's entry and the lost answer's
    assert result.pushed + result.found == len({cells[2] for cells in rows})
    _assert_ledger_is_the_fec(pl, company, rows)
    status = await _banking_stub(stack).GetPennylaneSettings(
        pb.GetPennylaneSettingsRequest(organization_id=org.id), metadata=_as(org.admin_headers)
    )
    assert list(status.failures) == []


async def test_two_runs_at_once_push_once(bank_stack: Stack, in_process: Banking) -> None:
    stack = bank_stack
    pl: RunningPennylaneSandbox = stack.extras["pennylane"]
    org = await _org_with_books(stack, [900, 1100])
    company = pl.add_company("concurrent")
    await _configure(stack, org, company)

    with pl.holding_creations() as gate:
        first = asyncio.create_task(pennylane.push(in_process, entities=[org.id]))
        await gate.committed.wait()  # the first run holds the lock, mid-push
        assert await pennylane.push(in_process, entities=[org.id]) is None
        answer = await _banking_stub(stack).PushToPennylane(
            pb.PushToPennylaneRequest(entities=[org.id]), metadata=_service(stack)
        )
        assert not answer.ran
        gate.release.set()
        results = await first
    assert results is not None and not results[0].failures
    _assert_ledger_is_the_fec(pl, company, await _fec_rows(stack, org))


async def test_the_token_is_sealed_and_failures_are_reported(bank_stack: Stack) -> None:
    stack = bank_stack
    pl: RunningPennylaneSandbox = stack.extras["pennylane"]
    org = await _org_with_books(stack, [1000], refund=0)
    company = pl.add_company("sealed")
    mapping = _mapping(pl, company)
    del mapping["ledger_account_ids"][fec.SALES]  # sales cannot be booked
    stub = _banking_stub(stack)
    await stub.PutPennylaneSettings(
        pb.PutPennylaneSettingsRequest(
            organization_id=org.id, api_token=company.token, start_date=today(), enabled=True, **mapping
        ),
        metadata=_as(org.admin_headers),
    )
    connection = await asyncpg.connect(stack.database.admin_url)
    try:
        sealed = await connection.fetchval(
            "SELECT api_token_ciphertext FROM banking.pennylane_settings WHERE entity = $1", org.id
        )
    finally:
        await connection.close()
    assert company.token not in sealed and sealed.startswith("v1:test:")

    result = await _push(stack, org)
    unmapped = [f for f in result.failures if "706000" in f.error]
    assert len(unmapped) == 1 and unmapped[0].reference.startswith("VE-")
    status = await stub.GetPennylaneSettings(
        pb.GetPennylaneSettingsRequest(organization_id=org.id), metadata=_as(org.admin_headers)
    )
    assert [(f.reference, f.status) for f in status.failures] == [(unmapped[0].reference, "failed")]
    assert "706000" in status.failures[0].error

    # Keeping the token (empty) and completing the mapping lets the next run push it.
    await stub.PutPennylaneSettings(
        pb.PutPennylaneSettingsRequest(
            organization_id=org.id, start_date=today(), enabled=True, **_mapping(stack.extras["pennylane"], company)
        ),
        metadata=_as(org.admin_headers),
    )
    again = await _push(stack, org)
    assert again.pushed == 1 and not again.failures
    _assert_ledger_is_the_fec(pl, company, await _fec_rows(stack, org))


async def test_settings_are_checked_and_scoped(bank_stack: Stack) -> None:
    stack = bank_stack
    org = await onboarded_organization(stack)
    other = await onboarded_organization(stack)
    stub = _banking_stub(stack)
    bad = pb.PutPennylaneSettingsRequest(
        organization_id=org.id, api_token="t" * 20, start_date="2026-13-01", journal_ids={"XX": 1}
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.PutPennylaneSettings(bad, metadata=_as(org.admin_headers))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fine = pb.PutPennylaneSettingsRequest(organization_id=other.id, api_token="t" * 20, start_date=today())
    with pytest.raises(grpc.aio.AioRpcError) as hidden:
        await stub.PutPennylaneSettings(fine, metadata=_as(org.admin_headers))
    assert hidden.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as agent:
        await stub.GetPennylaneSettings(
            pb.GetPennylaneSettingsRequest(organization_id=org.id), metadata=_as(org.agent_headers)
        )
    assert agent.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as platform:
        await stub.GetPennylaneSettings(pb.GetPennylaneSettingsRequest(platform=True), metadata=_as(org.admin_headers))
    assert platform.value.code() == grpc.StatusCode.PERMISSION_DENIED
    empty = await stub.GetPennylaneSettings(pb.GetPennylaneSettingsRequest(platform=True), metadata=_service(stack))
    assert empty.settings.platform and not empty.settings.api_token_set


async def test_settings_and_push_over_http(bank_stack: Stack) -> None:
    stack = bank_stack
    pl: RunningPennylaneSandbox = stack.extras["pennylane"]
    org = await _org_with_books(stack, [1300])
    company = pl.add_company("http")
    path = f"/v1/organizations/{org.id}/pennylane"
    body = {"api_token": company.token, "start_date": today(), **_mapping(pl, company)}
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
    _assert_ledger_is_the_fec(pl, company, await _fec_rows(stack, org))
    assert (await stack.http.post("/v1/banking/pennylane/push", headers=org.admin_headers)).status_code == 403
