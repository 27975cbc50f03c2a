"""Banking's Pennylane client against the sandbox: 429s waited out, reads retried, a creation whose
answer is lost reported as maybe created (never retried blindly), refusals reported with Pennylane's message."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
import pytest

from sandbox.pennylane.state import Company
from sandbox.pennylane.testing import RunningPennylaneSandbox
from services.banking.pennylane_api import PennylaneClient, PennylaneError


class Waits:
    """Records the waits instead of sleeping them (the sandbox's answers drive the test, not time)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


def _body(company: Company, piece: str) -> dict[str, Any]:
    return {
        "date": "2026-11-20",
        "label": "vente",
        "journal_id": company.journal_id("VE"),
        "currency": "EUR",
        "piece_number": piece,
        "ledger_entry_lines": [
            {"debit": "10.00", "credit": "0.00", "ledger_account_id": company.account_id("467000")},
            {"debit": "0.00", "credit": "10.00", "ledger_account_id": company.account_id("706000")},
        ],
    }


async def test_429_waits_retry_after_and_reads_retry_5xx(pennylane_sandbox: RunningPennylaneSandbox) -> None:
    company = pennylane_sandbox.add_company("client")
    waits = Waits()
    async with httpx.AsyncClient() as http:
        client = PennylaneClient(http, pennylane_sandbox.api_base, company.token, sleep=waits)
        pennylane_sandbox.inject_faults(429, count=2, retry_after=3)
        created = await client.create_ledger_entry(_body(company, "VE-1"))
        assert waits.seconds == [3.0, 3.0] and client.rate_limited == 2
        pennylane_sandbox.inject_faults(503, count=2)
        found = await client.find_ledger_entry(company.journal_id("VE"), date(2026, 11, 20), "VE-1")
        assert found is not None and found["id"] == created["id"]
        assert await client.find_ledger_entry(company.journal_id("VE"), date(2026, 11, 21), "VE-1") is None
    assert [e["piece_number"] for e in pennylane_sandbox.entries(company)] == ["VE-1"]


async def test_a_lost_creation_answer_is_maybe_created_and_not_retried(
    pennylane_sandbox: RunningPennylaneSandbox,
) -> None:
    company = pennylane_sandbox.add_company("client")
    async with httpx.AsyncClient() as http:
        client = PennylaneClient(http, pennylane_sandbox.api_base, company.token, sleep=Waits())
        pennylane_sandbox.lose_answers(502)
        with pytest.raises(PennylaneError) as lost:
            await client.create_ledger_entry(_body(company, "VE-2"))
        assert lost.value.maybe_created and lost.value.retryable
        assert len(pennylane_sandbox.entries(company)) == 1  # stored once, sent once
        pennylane_sandbox.inject_faults(503)
        with pytest.raises(PennylaneError) as refused_before:
            await client.create_ledger_entry(_body(company, "VE-3"))
        assert refused_before.value.maybe_created  # a 5xx on a creation: the caller must look it up


async def test_refusals_carry_pennylanes_message(pennylane_sandbox: RunningPennylaneSandbox) -> None:
    company = pennylane_sandbox.add_company("client")
    body = _body(company, "VE-4")
    body["ledger_entry_lines"][1]["credit"] = "9.99"
    async with httpx.AsyncClient() as http:
        client = PennylaneClient(http, pennylane_sandbox.api_base, company.token, sleep=Waits())
        with pytest.raises(PennylaneError) as unbalanced:
            await client.create_ledger_entry(body)
        assert unbalanced.value.status == 422 and not unbalanced.value.retryable
        assert "ledger_entry_lines" in str(unbalanced.value) and not unbalanced.value.maybe_created
        wrong = PennylaneClient(http, pennylane_sandbox.api_base, "not-a-token", sleep=Waits())
        with pytest.raises(PennylaneError) as unauthorized:
            await wrong.find_ledger_entry(1, date(2026, 11, 20), "x")
        assert unauthorized.value.status == 401
