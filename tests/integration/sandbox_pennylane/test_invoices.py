"""The Pennylane sandbox's customers and customer invoices over HTTP, and Banking's client on them:
validation like Pennylane's, finalized invoices (and credit notes) booked in the sales journal, no
idempotency on invoices (found by external reference instead), a state file keeping them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.pennylane.app import API
from sandbox.pennylane.state import Company
from sandbox.pennylane.testing import RunningPennylaneSandbox, run_pennylane_sandbox
from services.banking.pennylane_api import PennylaneClient, PennylaneError

ADDRESS = {"address": "1 rue de la Caserne", "postal_code": "75001", "city": "Paris", "country_alpha2": "FR"}


def _client(sandbox: RunningPennylaneSandbox, company: Company) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=sandbox.api_url, headers={"Authorization": f"Bearer {company.token}"})


def _invoice(customer: int, reference: str, price: str = "12.50", **changes: Any) -> dict[str, Any]:
    line = {"label": "vente", "quantity": 1, "unit": "piece", "raw_currency_unit_price": price, "vat_rate": "exempt"}
    body = {
        "date": "2026-11-20",
        "deadline": "2026-11-20",
        "customer_id": customer,
        "draft": False,
        "external_reference": reference,
        "invoice_lines": [line],
    }
    return {**body, **changes}


def _lines(entry: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(line["ledger_account"]["number"], line["debit"], line["credit"]) for line in entry["ledger_entry_lines"]]


async def _customer(http: httpx.AsyncClient, reference: str = "walk-in") -> dict[str, Any]:
    created = await http.post(
        "/company_customers",
        json={"name": "Ventes comptoir", "billing_address": ADDRESS, "external_reference": reference},
    )
    assert created.status_code == 201, created.text
    customer: dict[str, Any] = created.json()
    return customer


async def test_customers_are_unique_by_reference_and_have_their_own_account(
    pennylane_sandbox: RunningPennylaneSandbox,
) -> None:
    company = pennylane_sandbox.add_company("customers")
    async with _client(pennylane_sandbox, company) as http:
        customer = await _customer(http)
        assert company.accounts[customer["ledger_account"]["id"]]["number"].startswith("411")
        taken = await http.post(
            "/company_customers", json={"name": "x", "billing_address": ADDRESS, "external_reference": "walk-in"}
        )
        assert taken.status_code == 422 and taken.json()["details"]["field"] == "external_reference"
        no_address = await http.post("/company_customers", json={"name": "x"})
        assert no_address.status_code == 422 and no_address.json()["details"]["field"] == "billing_address"
        rules = [{"field": "external_reference", "operator": "eq", "value": "walk-in"}]
        listed = (await http.get("/customers", params={"filter": json.dumps(rules)})).json()
        assert [c["id"] for c in listed["items"]] == [customer["id"]]


async def test_finalized_invoices_and_credit_notes_are_booked_drafts_are_not(
    pennylane_sandbox: RunningPennylaneSandbox,
) -> None:
    company = pennylane_sandbox.add_company("invoices")
    sales, refunds = company.account_id("706000"), company.account_id("709000")
    async with _client(pennylane_sandbox, company) as http:
        customer = await _customer(http)
        own = company.accounts[customer["ledger_account"]["id"]]["number"]
        invoice = (await http.post("/customer_invoices", json=_invoice(customer["id"], "VE-pi_1"))).json()
        assert (invoice["invoice_number"], invoice["amount"], invoice["draft"]) == ("F-2026-00001", "12.50", False)
        lines = [
            {**_invoice(0, "")["invoice_lines"][0], "raw_currency_unit_price": "-7.00", "ledger_account_id": refunds}
        ]
        credit_note = await http.post(
            "/customer_invoices", json=_invoice(customer["id"], "VE-re_1", invoice_lines=lines)
        )
        assert credit_note.status_code == 201, credit_note.text
        assert (credit_note.json()["amount"], credit_note.json()["status"]) == ("-7.00", "credit_note")
        taxed = [{**_invoice(0, "")["invoice_lines"][0], "vat_rate": "FR_200", "ledger_account_id": sales}]
        with_vat = (
            await http.post("/customer_invoices", json=_invoice(customer["id"], "x", invoice_lines=taxed))
        ).json()
        assert (with_vat["currency_amount_before_tax"], with_vat["tax"], with_vat["amount"]) == (
            "12.50",
            "2.50",
            "15.00",
        )
        draft = (await http.post("/customer_invoices", json=_invoice(customer["id"], "d", draft=True))).json()
        assert draft["ledger_entry"] is None and draft["invoice_number"] is None
    booked = {e["id"]: e for e in pennylane_sandbox.entries(company)}
    assert len(booked) == 3
    assert _lines(booked[invoice["ledger_entry"]["id"]]) == [(own, "12.50", "0.00"), ("706000", "0.00", "12.50")]
    assert _lines(booked[credit_note.json()["ledger_entry"]["id"]]) == [
        (own, "0.00", "7.00"),
        ("709000", "7.00", "0.00"),
    ]
    assert _lines(booked[with_vat["ledger_entry"]["id"]]) == [
        (own, "15.00", "0.00"),
        ("706000", "0.00", "12.50"),
        ("445710", "0.00", "2.50"),
    ]
    assert {e["journal"]["code"] for e in booked.values()} == {"VE"}  # the company's sales journal


@pytest.mark.parametrize(
    ("changes", "status", "field"),
    [
        ({"customer_id": 1}, 404, "customer_id"),
        ({"draft": None}, 422, "draft"),
        ({"deadline": "20/11/2026"}, 422, "deadline"),
        ({"invoice_lines": []}, 422, "invoice_lines"),
        ({"credited_invoice_id": 1}, 400, "credited_invoice_id"),  # removed by Pennylane: link_credit_note
    ],
)
async def test_invoices_are_validated_like_pennylane(
    pennylane_sandbox: RunningPennylaneSandbox, changes: dict[str, Any], status: int, field: str
) -> None:
    company = pennylane_sandbox.add_company("validation")
    async with _client(pennylane_sandbox, company) as http:
        customer = await _customer(http)
        refused = await http.post("/customer_invoices", json=_invoice(customer["id"], "x", **changes))
        assert refused.status_code == status and refused.json()["details"]["field"] == field
        line = _invoice(0, "")["invoice_lines"][0]
        for bad in (
            {"vat_rate": "FR_199"},
            {"raw_currency_unit_price": "1.234"},
            {"quantity": 0},
            {"ledger_account_id": 1},
        ):
            answer = await http.post(
                "/customer_invoices", json=_invoice(customer["id"], "x", invoice_lines=[{**line, **bad}])
            )
            assert answer.status_code in (404, 422), bad
    assert company.invoices == {} and company.entries == {}


async def test_a_credit_note_is_linked_once_to_an_invoice_it_does_not_exceed(
    pennylane_sandbox: RunningPennylaneSandbox,
) -> None:
    company = pennylane_sandbox.add_company("credit notes")
    async with httpx.AsyncClient() as http, _client(pennylane_sandbox, company) as raw:
        customer = await _customer(raw)
        other = await _customer(raw, "other")
        invoice = (await raw.post("/customer_invoices", json=_invoice(customer["id"], "VE-pi_1", "10.00"))).json()
        notes = [
            (await raw.post("/customer_invoices", json=_invoice(who, f"VE-re_{i}", price))).json()
            for i, (who, price) in enumerate(
                [(customer["id"], "-7.00"), (customer["id"], "-3.00"), (customer["id"], "-0.01"), (other["id"], "-1")]
            )
        ]
        client = PennylaneClient(http, pennylane_sandbox.api_base, company.token)

        async def refused(invoice_id: int, note_id: int, status: int) -> str:
            with pytest.raises(PennylaneError) as error:
                await client.link_credit_note(invoice_id, note_id)
            assert error.value.status == status, str(error.value)
            return str(error.value)

        await refused(invoice["id"] + 10_000, notes[0]["id"], 404)  # an unknown invoice
        await refused(invoice["id"], notes[0]["id"] + 10_000, 404)  # an unknown credit note
        await refused(invoice["id"], invoice["id"], 422)  # an invoice is no credit note
        await refused(notes[0]["id"], notes[1]["id"], 422)  # a credit note credits no credit note
        await refused(invoice["id"], notes[3]["id"], 422)  # another customer's
        linked = await client.link_credit_note(invoice["id"], notes[0]["id"])
        assert linked["id"] == invoice["id"]
        assert (await client.customer_invoice(notes[0]["id"]))["credited_invoice"]["id"] == invoice["id"]
        assert "already linked" in await refused(invoice["id"], notes[0]["id"], 422)  # once
        await client.link_credit_note(invoice["id"], notes[1]["id"])  # 7.00 + 3.00: the whole invoice
        assert "exceed" in await refused(invoice["id"], notes[2]["id"], 422)  # one cent more
        assert (await client.customer_invoice(notes[2]["id"]))["credited_invoice"] is None
        second = (await raw.post("/customer_invoices", json=_invoice(customer["id"], "VE-pi_2", "5.00"))).json()
        pennylane_sandbox.lose_answers(503)  # a link kept, its answer lost: maybe done, not retried
        with pytest.raises(PennylaneError) as lost:
            await client.link_credit_note(second["id"], notes[2]["id"])
        assert lost.value.maybe_created
        assert (await client.customer_invoice(notes[2]["id"]))["credited_invoice"]["id"] == second["id"]


async def test_no_idempotency_the_client_finds_an_invoice_by_external_reference(
    pennylane_sandbox: RunningPennylaneSandbox,
) -> None:
    company = pennylane_sandbox.add_company("client")
    async with httpx.AsyncClient() as http, _client(pennylane_sandbox, company) as raw:
        customer = await _customer(raw)

        async def no_wait(seconds: float) -> None:
            return None

        client = PennylaneClient(http, pennylane_sandbox.api_base, company.token, sleep=no_wait)
        assert (await client.find_customer("walk-in") or {}).get("id") == customer["id"]
        assert await client.find_customer_invoice("VE-pi_7") is None
        pennylane_sandbox.lose_answers(502)
        with pytest.raises(PennylaneError) as lost:
            await client.create_customer_invoice(_invoice(customer["id"], "VE-pi_7"))
        assert lost.value.maybe_created
        found = await client.find_customer_invoice("VE-pi_7")
        assert found is not None and found["external_reference"] == "VE-pi_7"
        # Like Pennylane: the same reference again is a second invoice, hence the lookup first.
        await client.create_customer_invoice(_invoice(customer["id"], "VE-pi_7"))
    assert [i["external_reference"] for i in pennylane_sandbox.invoices(company)] == ["VE-pi_7", "VE-pi_7"]


async def test_state_file_keeps_customers_and_invoices(tmp_path: Path) -> None:
    state_file = str(tmp_path / "pennylane.json")
    async with run_pennylane_sandbox(state_file=state_file) as sandbox:
        company = sandbox.add_company("A")
        async with _client(sandbox, company) as http:
            customer = await _customer(http)
            assert (await http.post("/customer_invoices", json=_invoice(customer["id"], "VE-1"))).status_code == 201
    async with (
        run_pennylane_sandbox(state_file=state_file) as again,
        httpx.AsyncClient(base_url=f"{again.url}{API}", headers={"Authorization": f"Bearer {company.token}"}) as http,
    ):
        assert [i["external_reference"] for i in (await http.get("/customer_invoices")).json()["items"]] == ["VE-1"]
        assert [c["id"] for c in (await http.get("/customers")).json()["items"]] == [customer["id"]]
