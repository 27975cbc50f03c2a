"""The Pennylane sandbox over HTTP: bearer tokens per company, balanced ledger entries, Pennylane's
error shape, filters and pages, 25 requests per 5 s per token, and a state file across restarts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from sandbox.pennylane.app import API
from sandbox.pennylane.state import Company
from sandbox.pennylane.testing import RunningPennylaneSandbox, run_pennylane_sandbox


def _entry(company: Company, piece: str, amount: str = "12.50", **changes: Any) -> dict[str, Any]:
    body = {
        "date": "2026-11-20",
        "label": "vente pi_1",
        "journal_id": company.journal_id("VE"),
        "currency": "EUR",
        "piece_number": piece,
        "ledger_entry_lines": [
            {"debit": amount, "credit": "0.00", "ledger_account_id": company.account_id("467000")},
            {"debit": "0.00", "credit": amount, "ledger_account_id": company.account_id("706000")},
        ],
    }
    return {**body, **changes}


def _client(sandbox: RunningPennylaneSandbox, company: Company) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=sandbox.api_url, headers={"Authorization": f"Bearer {company.token}"})


async def test_entries_are_per_company_balanced_and_findable(pennylane_sandbox: RunningPennylaneSandbox) -> None:
    company, other = pennylane_sandbox.add_company("A"), pennylane_sandbox.add_company("B")
    async with _client(pennylane_sandbox, company) as http, _client(pennylane_sandbox, other) as other_http:
        created = await http.post("/ledger_entries", json=_entry(company, "VE-pi_1"))
        assert created.status_code == 201, created.text
        entry = created.json()
        assert entry["piece_number"] == "VE-pi_1"
        assert [(line["debit"], line["credit"]) for line in entry["ledger_entry_lines"]] == [
            ("12.50", "0.00"),
            ("0.00", "12.50"),
        ]
        assert int(created.headers["ratelimit-limit"]) == 25
        # No idempotency at Pennylane: the same piece number is a second entry.
        again = await http.post("/ledger_entries", json=_entry(company, "VE-pi_1"))
        assert again.status_code == 201 and again.json()["id"] != entry["id"]
        assert (await other_http.get(f"/ledger_entries/{entry['id']}")).status_code == 404
        rules = [
            {"field": "journal_id", "operator": "eq", "value": str(company.journal_id("VE"))},
            {"field": "date", "operator": "eq", "value": "2026-11-20"},
        ]
        listed = (await http.get("/ledger_entries", params={"filter": json.dumps(rules), "per_page": 1})).json()
        assert (listed["total_items"], listed["total_pages"], len(listed["items"])) == (2, 2, 1)
        elsewhere = [{"field": "date", "operator": "eq", "value": "2026-11-21"}]
        assert (await http.get("/ledger_entries", params={"filter": json.dumps(elsewhere)})).json()["items"] == []
        accounts = (
            await http.get(
                "/ledger_accounts",
                params={"filter": json.dumps([{"field": "number", "operator": "eq", "value": "706000"}])},
            )
        ).json()
        assert [a["id"] for a in accounts["items"]] == [company.account_id("706000")]


async def test_refusals_in_pennylanes_shape(pennylane_sandbox: RunningPennylaneSandbox) -> None:
    company, other = pennylane_sandbox.add_company("A"), pennylane_sandbox.add_company("B")
    async with _client(pennylane_sandbox, company) as http:
        unbalanced = _entry(company, "x")
        unbalanced["ledger_entry_lines"][1]["credit"] = "12.49"
        answer = await http.post("/ledger_entries", json=unbalanced)
        assert answer.status_code == 422
        assert answer.json()["error"] == "unprocessable_entity"
        assert answer.json()["details"]["field"] == "ledger_entry_lines"
        foreign = _entry(company, "x", journal_id=other.journal_id("VE"))
        assert (await http.post("/ledger_entries", json=foreign)).status_code == 404
        assert (await http.post("/ledger_entries", json=_entry(company, "x", amount="1.234"))).status_code == 422
        assert (await http.post("/ledger_entries", json=_entry(company, "x", date="20/11/2026"))).status_code == 422
    async with httpx.AsyncClient(base_url=pennylane_sandbox.api_url) as anonymous:
        refused = await anonymous.get("/journals", headers={"Authorization": "Bearer nope"})
        assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
    assert company.entries == {}


async def test_25_requests_per_5_seconds_per_token() -> None:
    async with run_pennylane_sandbox() as sandbox:
        company, other = sandbox.add_company("A"), sandbox.add_company("B")
        async with _client(sandbox, company) as http, _client(sandbox, other) as other_http:
            answers = [await http.get("/journals") for _ in range(26)]
            assert [a.status_code for a in answers] == [200] * 25 + [429]
            refused = answers[-1]
            assert 1 <= int(refused.headers["retry-after"]) <= 5
            assert refused.headers["ratelimit-remaining"] == "0"
            assert "Rate limit exceeded" in refused.json()["message"]
            assert (await other_http.get("/journals")).status_code == 200  # per token


async def test_state_file_keeps_companies_and_entries(tmp_path: Path) -> None:
    state_file = str(tmp_path / "pennylane.json")
    async with run_pennylane_sandbox(state_file=state_file) as sandbox:
        company = sandbox.add_company("A")
        async with _client(sandbox, company) as http:
            assert (await http.post("/ledger_entries", json=_entry(company, "VE-1"))).status_code == 201
    async with (
        run_pennylane_sandbox(state_file=state_file) as again,
        httpx.AsyncClient(base_url=f"{again.url}{API}", headers={"Authorization": f"Bearer {company.token}"}) as http,
    ):
        listed = (await http.get("/ledger_entries")).json()
        assert [e["piece_number"] for e in listed["items"]] == ["VE-1"]
