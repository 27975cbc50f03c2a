"""Payments → payout paid at Stripe → credit at Qonto → sync (webhook and pull) → reconciled → daily report → FEC."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from typing import Any

from tests.fixtures.organizations import onboarded_organization
from tests.fixtures.stack import Stack
from tests.integration.banking.conftest import eventually, pay_out, sell, today


async def _bank_credit(stack: Stack, headers: dict[str, str], reference: str) -> dict[str, Any] | None:
    answer = await stack.http.get("/v1/banking/transactions", params={"limit": "100"}, headers=headers)
    assert answer.status_code == 200, answer.text
    return next((t for t in answer.json()["data"] if t["reference"] == reference), None)


async def test_payments_to_reconciled_daily_report_and_fec(bank_stack: Stack) -> None:
    stack = bank_stack
    admin = await stack.admin_headers()
    org = await onboarded_organization(stack, fee_percent_bps=100)
    await sell(stack, org, [1000, 2500])
    payout = await pay_out(stack, org)

    # The Stripe sandbox credited Qonto; Qonto's signed webhook reached Banking through the gateway.
    credit = await eventually(lambda: _bank_credit(stack, admin, payout["id"]), "the Qonto webhook")
    assert credit["amount"] == payout["amount"] and credit["side"] == "credit" and credit["reconciled"] is False
    assert credit["legal_entity"] is None or credit["legal_entity"] == "holding"
    pulled = await stack.http.post("/v1/banking/sync", headers=admin)
    assert pulled.status_code == 200 and pulled.json()["fetched"] >= 1
    assert pulled.json()["inserted"] == 0  # the webhook had stored it already: same row, no duplicate
    credit = await _bank_credit(stack, admin, payout["id"])
    assert credit is not None and credit["legal_entity"] == "holding" and credit["iban"]

    run = await stack.http.post("/v1/banking/reconciliation/run", headers=admin, json={})
    assert run.status_code == 200, run.text
    assert run.json()["created"] == 1 and run.json()["unmatched_payouts"] == 0
    again = await stack.http.post(
        "/v1/banking/reconciliation/run", headers=admin, json={"from": today(), "to": today()}
    )
    assert again.json()["created"] == 0 and again.json()["matched"] >= 1  # idempotent

    state = (await stack.http.get("/v1/banking/reconciliation", headers=admin)).json()
    [match] = [m for m in state["matches"] if m["bank_transaction_id"] == credit["id"]]
    assert match["rule"] == "reference" and match["difference"] == 0 and payout["id"] in match["explanation"]
    payouts = (await stack.http.get("/v1/banking/payouts", headers=admin)).json()["data"]
    [stored] = [p for p in payouts if p["stripe_payout_id"] == payout["id"]]
    assert stored["reconciled"] and stored["organization_id"] == org.id and match["payout_ids"] == [stored["id"]]

    rules = {
        "entities": [{"entity": "holding", "tax_rate_bps": 2500}, {"entity": "asso", "tax_rate_bps": 0}],
        "rules": [{"entity": "holding", "share_bps": 4000}, {"entity": "asso", "share_bps": 6000}],
    }
    assert (await stack.http.put("/v1/banking/allocation-rules", headers=admin, json=rules)).status_code == 200

    answer = await stack.http.get("/v1/reports/daily", params={"date": today()}, headers=admin)
    assert answer.status_code == 200, answer.text
    report = answer.json()
    [line] = [o for o in report["organizations"] if o["organization_id"] == org.id]
    assert line["organization_name"] == org.organization["name"]
    assert (line["count"], line["gross"], line["refunds"]) == (2, 3500, 0)
    assert line["net"] == line["gross"] - line["fees"] and line["fees"] >= 35
    assert (
        line["payouts"] == payout["amount"] == line["bank_credits"] and line["reconciled"] and line["difference"] == 0
    )
    assert report["bank"]["credits"] == payout["amount"]
    assert report["reconciled"] is True and report["reconciliation"]["unmatched_payouts"] == 0
    allocation = {a["entity"]: a for a in report["allocation"]}
    net = report["totals"]["net"]
    assert allocation["holding"]["revenue"] + allocation["asso"]["revenue"] == net
    assert allocation["holding"]["revenue"] == net * 4000 // 10_000 or allocation["holding"]["revenue"] == -(
        -net * 4000 // 10_000
    )
    assert report["tax"]["baseline_entity"] == "holding"
    assert report["tax"]["difference"] == report["tax"]["estimated_total"] - report["tax"]["baseline_estimated"] < 0

    ranged = await stack.http.get(
        "/v1/banking/allocation-report", params={"from": today(), "to": today()}, headers=admin
    )
    assert ranged.status_code == 200, ranged.text
    assert ranged.json()["net"] == net and ranged.json()["allocation"] == report["allocation"]
    assert ranged.json()["tax"] == report["tax"]

    as_csv = await stack.http.get("/v1/reports/daily", params={"date": today(), "format": "csv"}, headers=admin)
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(as_csv.text)))
    assert any(row[1:2] == [org.id] and row[4] == "3500" for row in rows)

    fec = await stack.http.get("/v1/banking/exports/fec", params={"from": today(), "to": today()}, headers=admin)
    assert fec.status_code == 200, fec.text
    lines = fec.text.rstrip("\n").split("\n")
    assert lines[0].startswith("JournalCode\tJournalLib\tEcritureNum")
    sums: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in lines[1:]:
        cells = row.split("\t")
        assert len(cells) == 18
        sums[cells[2]][0] += int(cells[11].replace(",", ""))
        sums[cells[2]][1] += int(cells[12].replace(",", ""))
    assert sums and all(debit == credit for debit, credit in sums.values())
    # The platform's books: its commission on the sales (VE); the organisation's payout and the bank
    # credit it became are the organisation's books (tests/integration/banking/test_books.py).
    assert {num[:2] for num in sums} == {"VE"}
    assert "\t706100\t" in fec.text and "\t706000\t" not in fec.text

    sent = await stack.http.post("/v1/reports/daily/send", headers=admin, json={"date": today()})
    assert sent.status_code == 200 and sent.json()["sent"] is True, sent.text
    message = stack.extras["slack"].received[-1]
    assert today() in message["text"] and "reconciled" in message["text"] and message["blocks"]
