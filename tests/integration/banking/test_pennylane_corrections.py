"""The platform's books pushed to Pennylane, then changed (a bank line relabelled at Qonto, another one
reversed): the next push corrects what Pennylane holds the way accountants do — a reversing entry
(`<reference>.x<n>`) and the entry as the books now say (`<reference>.v<n+1>`) — so that Pennylane's
ledger is again the FEC per account, nothing is pushed twice, and a run stopped between the reversal
and the new revision resumes without a duplicate. Rows pushed before digests and bodies were kept are
compared with what Pennylane holds (read back) and corrected alike. Its own module: the platform's books
are the stack's."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from collect.banking.v1 import banking_pb2 as pb

from sandbox.pennylane.state import Company
from sandbox.pennylane.testing import RunningPennylaneSandbox
from services.banking.context import Banking
from services.banking.pennylane_books import PLATFORM
from tests.fixtures.fec import checked_fec
from tests.fixtures.stack import Stack
from tests.integration.banking import pennylane_support
from tests.integration.banking.conftest import today
from tests.integration.banking.pennylane_support import (
    as_service,
    banking_stub,
    ledger_totals,
    mapping,
    stop_a_push_once_pennylane_stores,
)

in_process = pennylane_support.in_process


async def _push(stack: Stack) -> pb.PennylanePushResult:
    answer = await banking_stub(stack).PushToPennylane(
        pb.PushToPennylaneRequest(entities=[PLATFORM], to_date=today()), metadata=as_service(stack)
    )
    (result,) = answer.results
    return result


async def _fec(stack: Stack) -> list[list[str]]:
    day = today()
    answer = await stack.http.get(
        "/v1/banking/exports/fec", params={"from": day, "to": day}, headers=await stack.admin_headers()
    )
    assert answer.status_code == 200, answer.text
    return checked_fec(answer.text)[0]


def _fec_balances(rows: list[list[str]]) -> dict[str, int]:
    balances: dict[str, int] = defaultdict(int)
    for cells in rows:
        debit, credit = (round(float(cells[i].replace(",", ".")) * 100) for i in (11, 12))
        balances[cells[4]] += debit - credit
    return {account: cents for account, cents in balances.items() if cents}


def _assert_ledger_is_the_fec(pl: RunningPennylaneSandbox, company: Company, rows: list[list[str]]) -> list[str]:
    """Pennylane's balance of every account is the FEC's, each piece is there once. The pieces."""
    pieces = [str(e["piece_number"]) for e in pl.entries(company)]
    assert len(pieces) == len(set(pieces)), pieces
    balances = {a: debit - credit for a, (debit, credit) in ledger_totals(pl, company).items() if debit != credit}
    assert balances == _fec_balances(rows)
    return pieces


async def _sync(stack: Stack) -> None:
    answer = await stack.http.post("/v1/banking/sync", headers=await stack.admin_headers())
    assert answer.status_code == 200, answer.text


async def test_books_changed_after_their_push_are_corrected_by_reversal_once(
    bank_stack: Stack, in_process: Banking
) -> None:
    stack = bank_stack
    pl: RunningPennylaneSandbox = stack.extras["pennylane"]
    qonto = stack.extras["qonto_sandbox"]
    fees: dict[str, Any] = await qonto.inject(amount_cents=1450, side="debit", label="FRAIS TENUE DE COMPTE")
    credit: dict[str, Any] = await qonto.inject(amount_cents=9900, side="credit", label="VIREMENT RECU")
    kept: dict[str, Any] = await qonto.inject(amount_cents=2500, side="credit", label="REMISE CHEQUE")
    await _sync(stack)
    company = pl.add_company("platform corrections")
    await banking_stub(stack).PutPlatformPennylaneSettings(
        pb.PutPlatformPennylaneSettingsRequest(
            settings=pb.PennylaneSettingsChange(
                api_token=company.token, start_date=today(), enabled=True, **mapping(pl, company)
            )
        ),
        metadata=as_service(stack),
    )
    first = await _push(stack)
    assert (first.pushed, list(first.failures)) == (3, [])
    _assert_ledger_is_the_fec(pl, company, await _fec(stack))

    # The books change after the push: one bank line relabelled, another reversed (no longer in the books).
    await qonto.update(fees["transaction_id"], label="FRAIS TENUE DE COMPTE NOVEMBRE")
    await qonto.update(credit["transaction_id"], status="reversed")
    await _sync(stack)
    corrected = await _push(stack)

    assert (corrected.pushed, corrected.unchanged, list(corrected.failures)) == (0, 1, [])
    pieces = _assert_ledger_is_the_fec(pl, company, await _fec(stack))
    fees_piece, credit_piece = f"BQ-{fees['transaction_id']}", f"BQ-{credit['transaction_id']}"
    assert {f"{fees_piece}.x1", f"{fees_piece}.v2", f"{credit_piece}.x1"} <= set(pieces)
    assert f"{credit_piece}.v2" not in pieces and f"BQ-{kept['transaction_id']}.x1" not in pieces
    (revised,) = [e for e in pl.entries(company) if e["piece_number"] == f"{fees_piece}.v2"]
    assert revised["label"] == "FRAIS TENUE DE COMPTE NOVEMBRE"
    again = await _push(stack)
    assert (again.pushed, again.unchanged, list(again.failures)) == (0, 2, [])
    assert len(pl.entries(company)) == len(pieces)  # nothing more sent

    # Changed again, and the run stops once Pennylane stored the reversal, before Banking recorded it.
    await qonto.update(fees["transaction_id"], label="FRAIS BANCAIRES")
    await _sync(stack)
    await stop_a_push_once_pennylane_stores(pl, in_process, PLATFORM, "/ledger_entries")
    resumed = await _push(stack)

    assert list(resumed.failures) == []
    pieces = _assert_ledger_is_the_fec(pl, company, await _fec(stack))
    assert {f"{fees_piece}.x2", f"{fees_piece}.v3"} <= set(pieces)  # the stored reversal found, not sent again
    assert list((await _platform_status(stack)).failures) == []

    # Rows as a push before digests and bodies were kept left them: what Pennylane holds is read back.
    async with in_process.pool.acquire() as conn:
        await conn.execute("UPDATE pennylane_entries SET digest = NULL, body = NULL WHERE entity = $1", PLATFORM)
    await qonto.update(kept["transaction_id"], label="REMISE CHEQUE 0042")  # changed since its push
    await qonto.update(fees["transaction_id"], status="reversed")  # gone since (its revision 3 at Pennylane)
    await _sync(stack)
    legacy = await _push(stack)

    assert (legacy.pushed, legacy.unchanged, list(legacy.failures)) == (0, 0, [])
    pieces = _assert_ledger_is_the_fec(pl, company, await _fec(stack))
    kept_piece = f"BQ-{kept['transaction_id']}"
    assert {f"{kept_piece}.x1", f"{kept_piece}.v2", f"{fees_piece}.x3"} <= set(pieces)
    settled = await _push(stack)
    assert (settled.pushed, settled.unchanged, list(settled.failures)) == (0, 1, [])
    assert len(pl.entries(company)) == len(pieces)
    assert list((await _platform_status(stack)).failures) == []


async def _platform_status(stack: Stack) -> pb.GetPennylaneSettingsResponse:
    answer = await banking_stub(stack).GetPlatformPennylaneSettings(
        pb.GetPlatformPennylaneSettingsRequest(), metadata=as_service(stack)
    )
    return answer.books
