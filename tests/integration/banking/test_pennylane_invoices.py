"""An organisation that pushes its sales as customer invoices, through the real parts (Payments' books,
Banking's store, the Pennylane sandbox at 4 requests per second per token, so pushes meet 429s).

Its card and cash sales land as finalized invoices (its refund as a credit note) to one walk-in
customer, the rest of each sale's entry as a ledger entry settling that customer, everything else as
ledger entries: Pennylane's ledger, its own invoice entries included, is the FEC. A credit note is linked
to the invoice of the sale it gives back, whichever run pushed that invoice. A run stopped after
Pennylane stored an invoice and lost answers leave no duplicate; a change of `sales_as` books nothing twice."""

from __future__ import annotations

import grpc
import pytest
from collect.banking.v1 import banking_pb2 as pb

from sandbox.pennylane.testing import RunningPennylaneSandbox
from services.banking import fec
from services.banking.context import Banking
from services.banking.pennylane_invoices import WALK_IN_NAME
from tests.fixtures.stack import Stack
from tests.integration.banking import pennylane_support
from tests.integration.banking.conftest import sell, today
from tests.integration.banking.pennylane_support import (
    as_service,
    assert_invoices_and_ledger_are_the_fec,
    assert_totals_are_the_fec,
    banking_stub,
    configure,
    credited_invoices,
    fec_rows,
    mapping,
    not_pushed,
    org_with_books,
    push,
    refund_last_sale,
    stop_a_push_once_pennylane_stores,
)

in_process = pennylane_support.in_process
INVOICES = pb.PENNYLANE_SALES_AS_CUSTOMER_INVOICES


async def test_sales_land_as_invoices_the_rest_as_ledger_entries_equal_to_the_fec(bank_stack: Stack) -> None:
    stack = bank_stack
    pl: RunningPennylaneSandbox = stack.extras["pennylane"]
    org = await org_with_books(stack, [1000, 2500, 4000, 1500], refund=700, cash=[1200, 800])
    company = pl.add_company("invoices")
    settings = await configure(stack, org, company, INVOICES)
    assert settings.sales_as == INVOICES
    refused_before = pl.state.refused

    result = await push(stack, org)

    rows = await fec_rows(stack, org)
    assert {"VE", "CA", "BQ"} <= {cells[0] for cells in rows}
    invoices = assert_invoices_and_ledger_are_the_fec(pl, company, rows)
    assert not result.failures and result.pushed == len({cells[2] for cells in rows})
    assert result.invoiced == len(invoices) == 7  # 4 card sales, 2 cash sales, 1 refund
    assert sorted(i["amount"] for i in invoices if i["amount"].startswith("-")) == ["-7.00"]  # the credit note
    ((note, credited),) = credited_invoices(pl, company).items()  # linked to the invoice of its sale
    assert credited is not None and credited.split("-")[0] == note.split("-")[0] and credited != note
    assert {i["customer"]["id"] for i in invoices} == {c["id"] for c in company.customers.values()}
    (customer,) = company.customers.values()
    assert customer["name"] == WALK_IN_NAME and customer["emails"] == []  # nothing about the buyers
    assert result.rate_limited > 0 and pl.state.refused > refused_before  # 429s met and waited out

    again = await push(stack, org)
    assert (again.pushed, again.found, again.unchanged, again.invoiced) == (0, 0, result.pushed, 0)
    assert_invoices_and_ledger_are_the_fec(pl, company, rows)


async def test_a_run_stopped_after_an_invoice_and_lost_answers_leave_no_duplicate(
    bank_stack: Stack, in_process: Banking
) -> None:
    stack = bank_stack
    pl: RunningPennylaneSandbox = stack.extras["pennylane"]
    org = await org_with_books(stack, [1300, 900, 2100], refund=400)
    company = pl.add_company("invoices crash")
    await configure(stack, org, company, INVOICES)

    # Stopped (as a crash would) after Pennylane stored the first invoice, before Banking recorded it.
    await stop_a_push_once_pennylane_stores(pl, in_process, org.id, "/customer_invoices")
    assert len(pl.invoices(company)) == 1 and len(company.customers) == 1
    stopped = [(f.status, f.document) for f in await not_pushed(stack, org)]
    assert stopped == [("sending", pb.PENNYLANE_DOCUMENT_CUSTOMER_INVOICE)]

    # The next two creations are stored but their answers lost: the stopped invoice's settlement and
    # the next invoice.
    pl.lose_answers(503, count=2)
    result = await push(stack, org)

    rows = await fec_rows(stack, org)
    assert not result.failures and result.found == 2  # the stopped run's invoice, the next lost answer's
    assert result.pushed + result.found + result.unchanged == len({cells[2] for cells in rows})
    assert_invoices_and_ledger_are_the_fec(pl, company, rows)
    assert await not_pushed(stack, org) == []


async def test_changing_sales_as_never_books_an_entry_twice(bank_stack: Stack) -> None:
    stack = bank_stack
    pl: RunningPennylaneSandbox = stack.extras["pennylane"]
    org = await org_with_books(stack, [1100, 600])
    company = pl.add_company("switch")
    await configure(stack, org, company)  # ledger entries
    first = await push(stack, org)
    assert first.invoiced == 0 and first.pushed > 0

    await configure(stack, org, company, INVOICES)
    await sell(stack, org, [1700])  # a sale after the change
    second = await push(stack, org)

    rows = await fec_rows(stack, org)
    # What was pushed before the change stays whole ledger entries: only the new sale is an invoice.
    assert_totals_are_the_fec(pl, company, rows)
    assert second.invoiced == 1 and [i["amount"] for i in pl.invoices(company)] == ["17.00"]
    assert (second.unchanged, second.pushed) == (first.pushed, 1)


async def test_sales_as_over_http_and_the_platform_stays_on_ledger_entries(bank_stack: Stack) -> None:
    stack = bank_stack
    pl: RunningPennylaneSandbox = stack.extras["pennylane"]
    org = await org_with_books(stack, [1400])
    company = pl.add_company("http invoices")
    path = f"/v1/organizations/{org.id}/pennylane"
    body = {"api_token": company.token, "start_date": today(), "sales_as": "customer_invoices", **mapping(pl, company)}
    saved = await stack.http.put(path, headers=org.admin_headers, json=body)
    assert saved.status_code == 200, saved.text
    assert saved.json()["sales_as"] == "customer_invoices"
    refused = await stack.http.put(path, headers=org.admin_headers, json={**body, "sales_as": "invoices"})
    assert refused.status_code == 400 and refused.json()["code"] == "validation_error"

    admin = await stack.admin_headers()
    pushed = await stack.http.post(
        "/v1/banking/pennylane/push", headers=admin, json={"entities": [org.id], "to_date": today()}
    )
    assert pushed.status_code == 200, pushed.text
    (result,) = pushed.json()["results"]
    assert result["invoiced"] == 1 and result["failures"] == []
    assert (await stack.http.get(path, headers=org.admin_headers)).json()["sales_as"] == "customer_invoices"
    assert_invoices_and_ledger_are_the_fec(pl, company, await fec_rows(stack, org))

    platform = await stack.http.put(
        "/v1/banking/pennylane",
        headers=admin,
        json={"api_token": "t" * 20, "start_date": today(), "sales_as": "customer_invoices"},
    )
    assert platform.status_code == 400, platform.text
    assert [e["field"] for e in platform.json()["errors"]] == ["sales_as"]
    with pytest.raises(grpc.aio.AioRpcError) as refused_rpc:
        await banking_stub(stack).PutPlatformPennylaneSettings(
            pb.PutPlatformPennylaneSettingsRequest(
                settings=pb.PennylaneSettingsChange(api_token="t" * 20, start_date=today(), sales_as=INVOICES)
            ),
            metadata=as_service(stack),
        )
    assert refused_rpc.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_an_entry_refused_as_a_ledger_entry_is_invoiced_once_mapped(bank_stack: Stack) -> None:
    """A refusal left nothing at Pennylane: after a change to invoices the entry follows the new choice."""
    stack = bank_stack
    pl: RunningPennylaneSandbox = stack.extras["pennylane"]
    org = await org_with_books(stack, [1900])
    company = pl.add_company("unmapped then invoices")
    partial = mapping(pl, company)
    del partial["ledger_account_ids"][fec.SALES]

    await configure(stack, org, company, pb.PENNYLANE_SALES_AS_LEDGER_ENTRIES, partial)
    assert [f.reference.split("-")[0] for f in (await push(stack, org)).failures] == ["VE"]
    await configure(stack, org, company, INVOICES, partial)
    refused = await push(stack, org)
    assert len(refused.failures) == 1 and "706000" in refused.failures[0].error
    assert {f.document for f in await not_pushed(stack, org)} == {
        pb.PENNYLANE_DOCUMENT_LEDGER_ENTRY,
        pb.PENNYLANE_DOCUMENT_CUSTOMER_INVOICE,
    }
    assert pl.invoices(company) == []

    await configure(stack, org, company, INVOICES)
    done = await push(stack, org)
    assert (done.invoiced, done.failures) == (1, [])
    assert_invoices_and_ledger_are_the_fec(pl, company, await fec_rows(stack, org))
    assert await not_pushed(stack, org) == []


async def test_a_refund_of_a_sale_pushed_in_an_earlier_run_is_linked_to_its_invoice(bank_stack: Stack) -> None:
    stack = bank_stack
    pl: RunningPennylaneSandbox = stack.extras["pennylane"]
    org = await org_with_books(stack, [1800])
    company = pl.add_company("credit note later")
    await configure(stack, org, company, INVOICES)
    assert (await push(stack, org)).invoiced == 1

    payment_id = await refund_last_sale(stack, org, 600)
    # The credit note's creation and its link are both kept by Pennylane and their answers lost: the
    # credit note is found by its reference, the link seen on the credit note, neither sent twice.
    pl.lose_answers(503, count=2)
    later = await push(stack, org)

    assert (later.invoiced, later.found, later.pushed, list(later.failures)) == (1, 1, 0, [])
    assert pl.state.lost_answers == []
    ((note, credited),) = credited_invoices(pl, company).items()
    assert credited == f"VE-{payment_id}" and note != credited
    assert_invoices_and_ledger_are_the_fec(pl, company, await fec_rows(stack, org))
    again = await push(stack, org)  # linked once: nothing more to do
    assert (again.pushed, again.found, list(again.failures)) == (0, 0, [])


async def test_a_credit_note_waits_for_the_invoice_it_credits(bank_stack: Stack) -> None:
    """The sale's invoice is refused (its account unmapped): its refund's credit note is not sent unlinked,
    it waits, and goes (linked) right after the invoice once the mapping is fixed."""
    stack = bank_stack
    pl: RunningPennylaneSandbox = stack.extras["pennylane"]
    org = await org_with_books(stack, [2200])
    payment_id = await refund_last_sale(stack, org, 900)
    company = pl.add_company("credit note waits")
    partial = mapping(pl, company)
    del partial["ledger_account_ids"][fec.SALES]

    await configure(stack, org, company, INVOICES, partial)
    waiting = await push(stack, org)
    errors = {f.reference: f.error for f in waiting.failures}
    assert "706000" in errors[f"VE-{payment_id}"]
    (refund_reference,) = [r for r in errors if r != f"VE-{payment_id}"]
    assert f"waits for the invoice it credits (VE-{payment_id})" in errors[refund_reference]
    assert pl.invoices(company) == []  # no credit note without its invoice

    await configure(stack, org, company, INVOICES)
    done = await push(stack, org)

    assert (done.invoiced, list(done.failures)) == (2, [])
    assert credited_invoices(pl, company) == {refund_reference: f"VE-{payment_id}"}
    assert_invoices_and_ledger_are_the_fec(pl, company, await fec_rows(stack, org))
    assert await not_pushed(stack, org) == []


async def test_an_invoiced_entry_whose_books_changed_is_listed_until_they_are_back(
    bank_stack: Stack, in_process: Banking
) -> None:
    """A finalized invoice is not amended by the push: the divergence is recorded, listed with the
    failures (and so counted and alerted on) at each run, and gone once the books are what was pushed.
    (What Pennylane got is stood for by the digest the push kept of it.)"""
    stack = bank_stack
    pl: RunningPennylaneSandbox = stack.extras["pennylane"]
    org = await org_with_books(stack, [2700])
    company = pl.add_company("invoiced diverged")
    await configure(stack, org, company, INVOICES)
    assert (await push(stack, org)).invoiced == 1
    (invoice,) = pl.invoices(company)
    reference = invoice["external_reference"]
    where = "WHERE entity = $1 AND reference = $2"
    async with in_process.pool.acquire() as conn:
        kept = await conn.fetchval(f"SELECT DISTINCT digest FROM pennylane_entries {where}", org.id, reference)
        await conn.execute(f"UPDATE pennylane_entries SET digest = $3 {where}", org.id, reference, "0" * 64)
    sent_before = (len(pl.entries(company)), len(pl.invoices(company)))

    diverged = await push(stack, org)

    assert [(f.reference, "books changed" in f.error) for f in diverged.failures] == [(reference, True)]
    assert [(f.reference, f.status) for f in await not_pushed(stack, org)] == [(reference, "pushed")]
    assert (len(pl.entries(company)), len(pl.invoices(company))) == sent_before  # nothing sent
    async with in_process.pool.acquire() as conn:
        await conn.execute(f"UPDATE pennylane_entries SET digest = $3 {where}", org.id, reference, kept)
    back = await push(stack, org)
    assert (list(back.failures), back.pushed) == ([], 0)
    assert await not_pushed(stack, org) == []
