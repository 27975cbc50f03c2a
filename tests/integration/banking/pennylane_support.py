"""What the Pennylane push tests share: stubs and callers, a company's mapping of the books, an
organisation with books, its settings, a push and its FEC, and the check that Pennylane's ledger is the FEC."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

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


def banking_stub(stack: Stack) -> banking_pb2_grpc.BankingServiceStub:
    return banking_pb2_grpc.BankingServiceStub(grpc.aio.insecure_channel(stack.target("banking")))


def as_member(headers: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return (("authorization", headers["Authorization"]),)


def as_service(stack: Stack) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {stack.signer.service_token('tests')}"),)


def mapping(pl: RunningPennylaneSandbox, company: Company) -> dict[str, Any]:
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


async def stop_a_push_once_pennylane_stores(
    pl: RunningPennylaneSandbox, banking: Banking, entity: str, path: str | None = None
) -> None:
    """Runs a push of `entity` (an organisation id, `platform`) and stops it (as a crash would) once
    Pennylane has stored a creation (at `path`, when named) and before Banking could record it."""
    with pl.holding_creations(path) as gate:
        run = asyncio.create_task(pennylane.push(banking, entities=[entity]))
        await gate.committed.wait()
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run


async def not_pushed(stack: Stack, org: OrgContext) -> list[pb.PennylaneFailure]:
    """The organisation's entries not pushed, as its admin reads them."""
    status = await banking_stub(stack).GetPennylaneSettings(
        pb.GetPennylaneSettingsRequest(organization_id=org.id), metadata=as_member(org.admin_headers)
    )
    return list(status.failures)


async def org_with_books(stack: Stack, amounts: list[int], refund: int = 0, cash: Sequence[int] = ()) -> OrgContext:
    """An organisation (1 % platform fee) with card sales today, one partial refund, cash sales and a payout."""
    org = await onboarded_organization(stack, fee_percent_bps=100)
    await sell(stack, org, amounts)
    if cash:
        now = datetime.now(UTC).isoformat()
        items = [{"local_id": uuid.uuid4().hex, "amount": a, "method": "cash", "created_at": now} for a in cash]
        batch = await stack.http.post(
            "/v1/payments/offline-batch", headers=org.agent_headers, json={"transactions": items}
        )
        assert batch.status_code == 200 and all(r["status"] == "created" for r in batch.json()["results"]), batch.text
    if refund:
        await refund_last_sale(stack, org, refund)
    await pay_out(stack, org)
    admin = await stack.admin_headers()
    patched = await stack.http.patch(f"/v1/organizations/{org.id}", headers=admin, json={"siren": SIREN})
    assert patched.status_code == 200, patched.text
    return org


async def refund_last_sale(stack: Stack, org: OrgContext, amount: int) -> str:
    """Refunds `amount` of the organisation's latest payment; its id."""
    listed = (await stack.http.get("/v1/payments", params={"limit": "100"}, headers=org.admin_headers)).json()
    payment_id: str = listed["data"][0]["id"]
    answer = await stack.http.post(
        f"/v1/payments/{payment_id}/refunds",
        headers={**org.admin_headers, "Idempotency-Key": uuid.uuid4().hex},
        json={"amount": amount},
    )
    assert answer.status_code == 201, answer.text
    return payment_id


def credited_invoices(pl: RunningPennylaneSandbox, company: Company) -> dict[str, str | None]:
    """Each credit note's external reference → the external reference of the invoice it is linked to."""
    invoices = {i["id"]: i for i in pl.invoices(company)}
    return {
        note["external_reference"]: invoices[note["credited_invoice"]["id"]]["external_reference"]
        if note["credited_invoice"]
        else None
        for note in invoices.values()
        if note["status"] == "credit_note"
    }


async def configure(
    stack: Stack,
    org: OrgContext,
    company: Company,
    sales_as: pb.PennylaneSalesAs.ValueType = pb.PENNYLANE_SALES_AS_UNSPECIFIED,
    ids: dict[str, Any] | None = None,
) -> pb.PennylaneSettings:
    """The organisation's own admin sets its Pennylane company (token, journals, accounts — `ids`, by default
    every one of the books' — and how its sales go)."""
    answer = await banking_stub(stack).PutPennylaneSettings(
        pb.PutPennylaneSettingsRequest(
            organization_id=org.id,
            settings=pb.PennylaneSettingsChange(
                api_token=company.token,
                start_date=today(),
                enabled=True,
                sales_as=sales_as,
                **(ids if ids is not None else mapping(stack.extras["pennylane"], company)),
            ),
        ),
        metadata=as_member(org.admin_headers),
    )
    return answer.settings


async def push(stack: Stack, org: OrgContext) -> pb.PennylanePushResult:
    answer = await banking_stub(stack).PushToPennylane(
        pb.PushToPennylaneRequest(entities=[org.id], to_date=today()), metadata=as_service(stack)
    )
    assert answer.ran
    (result,) = answer.results
    return result


async def fec_rows(stack: Stack, org: OrgContext) -> list[list[str]]:
    day = today()
    answer = await stack.http.get(
        f"/v1/organizations/{org.id}/exports/fec", params={"from": day, "to": day}, headers=org.admin_headers
    )
    assert answer.status_code == 200, answer.text
    return checked_fec(answer.text)[0]


def assert_ledger_is_the_fec(pl: RunningPennylaneSandbox, company: Company, rows: list[list[str]]) -> None:
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


def _cents(text: str) -> int:
    units, _, rest = text.lstrip("-").partition(".")
    return (int(units) * 100 + int((rest + "00")[:2])) * (-1 if text.startswith("-") else 1)


def ledger_totals(pl: RunningPennylaneSandbox, company: Company) -> dict[str, tuple[int, int]]:
    """(debits, credits) per account number over every ledger entry of the company (Pennylane's own
    entries of its invoices included), each entry balanced."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for entry in pl.entries(company):
        lines = [(_cents(line["debit"]), _cents(line["credit"])) for line in entry["ledger_entry_lines"]]
        assert sum(d for d, _ in lines) == sum(c for _, c in lines), entry
        for line, (debit, credit) in zip(entry["ledger_entry_lines"], lines, strict=True):
            totals[line["ledger_account"]["number"]][0] += debit
            totals[line["ledger_account"]["number"]][1] += credit
    return {account: (debit, credit) for account, (debit, credit) in totals.items()}


def assert_totals_are_the_fec(pl: RunningPennylaneSandbox, company: Company, rows: list[list[str]]) -> None:
    """Every FEC account has the FEC's debits and credits in Pennylane's ledger (its own invoice entries
    included); any other account is a customer's (411…), settled; our ledger entries' pieces are unique."""
    ours = [e["piece_number"] for e in pl.entries(company) if not str(e["piece_number"]).startswith(("F-", "AV-"))]
    assert len(ours) == len(set(ours)), ours
    totals = ledger_totals(pl, company)
    fec_accounts = {cells[4] for cells in rows}
    for account in fec_accounts:
        assert totals.get(account, (0, 0)) == account_totals(rows, account), account
    others = {account: sides for account, sides in totals.items() if account not in fec_accounts}
    assert all(account.startswith("411") and debit == credit for account, (debit, credit) in others.items()), others


def assert_invoices_and_ledger_are_the_fec(
    pl: RunningPennylaneSandbox, company: Company, rows: list[list[str]]
) -> list[dict[str, Any]]:
    """Pushed with sales as invoices: each invoiced FEC entry is one finalized invoice (each reference
    once) and one settlement, every other entry one ledger entry, and the totals are the FEC's. The invoices."""
    invoices = pl.invoices(company)
    references = [i["external_reference"] for i in invoices]
    assert len(references) == len(set(references)), references
    assert all(not i["draft"] and i["ledger_entry"] for i in invoices)  # finalized: booked
    invoiced = {c[2] for c in rows if c[0] in ("VE", "CA") and c[4] in (fec.SALES, fec.REFUNDS)}
    assert len(invoices) == len(invoiced)
    ours = [e for e in pl.entries(company) if not str(e["piece_number"]).startswith(("F-", "AV-"))]
    assert len(ours) == len({cells[2] for cells in rows})
    assert_totals_are_the_fec(pl, company, rows)
    return invoices
