"""The Qonto v2 read API of the sandbox, over real HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from sandbox.qonto.testing import RunningQontoSandbox

MAIN = "collect-sandbox-bank-account-1"
SECOND = "collect-sandbox-bank-account-2"

TRANSACTION_FIELDS = {
    "id",
    "transaction_id",
    "amount",
    "amount_cents",
    "side",
    "operation_type",
    "currency",
    "local_amount",
    "local_amount_cents",
    "local_currency",
    "label",
    "reference",
    "note",
    "status",
    "settled_at",
    "emitted_at",
    "updated_at",
    "settled_balance_cents",
    "vat_amount_cents",
    "vat_rate",
    "attachment_ids",
    "label_ids",
    "bank_account_id",
}


async def _list(http: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    params.setdefault("bank_account_id", MAIN)
    response = await http.get("/v2/transactions", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize(
    "authorization",
    [None, "collect-sandbox:wrong", "Bearer sandbox-secret", "Basic Y29sbGVjdC1zYW5kYm94OnNhbmRib3gtc2VjcmV0"],
)
async def test_bad_credentials_get_401(qonto: RunningQontoSandbox, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    async with httpx.AsyncClient(base_url=qonto.url, headers=headers) as client:
        for path in ("/v2/organization", f"/v2/transactions?bank_account_id={MAIN}", "/_sandbox/webhooks"):
            response = await client.get(path)
            assert response.status_code == 401
            assert response.json()["errors"][0]["code"] == "unauthorized"
        assert (await client.get("/_sandbox/health")).status_code == 200


async def test_custom_credentials() -> None:
    from sandbox.qonto.testing import run_qonto_sandbox

    async with (
        run_qonto_sandbox(login="acme", secret_key="s3cret") as qs,
        httpx.AsyncClient(base_url=qs.url) as client,
    ):
        assert (await client.get("/v2/organization", headers={"Authorization": "acme:s3cret"})).status_code == 200
        assert (await client.get("/v2/organization", headers=qs.auth_headers)).status_code == 200
        bad = {"Authorization": "collect-sandbox:sandbox-secret"}
        assert (await client.get("/v2/organization", headers=bad)).status_code == 401


async def test_organization_lists_bank_accounts_with_balances(
    qonto: RunningQontoSandbox, http: httpx.AsyncClient
) -> None:
    await qonto.inject(amount_cents=2_500, side="credit")
    await qonto.inject(amount_cents=1_000, side="debit")
    await qonto.inject(amount_cents=300, side="debit", status="pending")
    await qonto.inject(amount_cents=99_999, side="credit", status="declined")
    org = (await http.get("/v2/organization")).json()["organization"]
    assert org["slug"] == "collect-sandbox" and org["legal_name"]
    main, second = org["bank_accounts"]
    assert main["slug"] == MAIN and main["main"] is True and second["main"] is False
    assert main["iban"].startswith("FR76") and second["iban"].startswith("FR76")
    assert main["status"] == "active" and main["currency"] == "EUR" and main["bic"]
    assert main["balance_cents"] == 1_000_000 + 2_500 - 1_000
    assert main["authorized_balance_cents"] == main["balance_cents"] - 300
    assert main["balance"] == pytest.approx(main["balance_cents"] / 100)
    for key in ("slug", "iban", "bic", "currency", "balance", "balance_cents", "authorized_balance"):
        assert key in main
    assert {"authorized_balance_cents", "name", "updated_at", "status", "main"} <= set(main)


async def test_transaction_shape(qonto: RunningQontoSandbox, http: httpx.AsyncClient) -> None:
    created = await qonto.inject(
        amount_cents=12_345, side="credit", label="STRIPE PAYMENTS UK LTD", reference="po_1", note="n"
    )
    (txn,) = (await _list(http))["transactions"]
    assert txn == created
    assert set(txn) >= TRANSACTION_FIELDS
    assert txn["amount_cents"] == 12_345 and txn["amount"] == 123.45
    assert txn["local_amount_cents"] == 12_345 and txn["local_currency"] == "EUR"
    assert txn["transaction_id"] == "collect-sandbox-1-transaction-1"
    assert txn["status"] == "completed" and txn["settled_at"] and txn["settled_at"].endswith("Z")
    assert txn["settled_balance_cents"] == 1_000_000 + 12_345
    org = (await http.get("/v2/organization")).json()["organization"]
    assert txn["bank_account_id"] == org["bank_accounts"][0]["id"]
    single = await http.get(f"/v2/transactions/{txn['id']}")
    assert single.json()["transaction"] == txn


async def test_account_selection(qonto: RunningQontoSandbox, http: httpx.AsyncClient) -> None:
    await qonto.inject(amount_cents=100, bank_account_id=SECOND)
    await qonto.inject(amount_cents=200)
    org = (await http.get("/v2/organization")).json()["organization"]
    second = org["bank_accounts"][1]
    by_slug = await _list(http, bank_account_id=SECOND)
    by_id = await _list(http, bank_account_id=second["id"])
    by_iban = await _list(http, bank_account_id="", iban=second["iban"])
    assert [t["amount_cents"] for t in by_slug["transactions"]] == [100]
    assert by_id == by_slug == by_iban
    assert by_slug["transactions"][0]["transaction_id"] == "collect-sandbox-2-transaction-1"

    missing = await http.get("/v2/transactions")
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["source"]["parameter"] == "bank_account_id"
    unknown = await http.get("/v2/transactions", params={"iban": "FR7600000000000000000000000"})
    assert unknown.status_code == 404


async def test_pagination_across_pages(qonto: RunningQontoSandbox, http: httpx.AsyncClient) -> None:
    for n in range(250):
        await qonto.inject(amount_cents=n + 1, reference=f"ref-{n}")
    seen: list[int] = []
    metas = []
    for page in (1, 2, 3, 4):
        body = await _list(http, current_page=page, per_page=100, sort_by="updated_at:asc")
        metas.append(body["meta"])
        seen.extend(t["amount_cents"] for t in body["transactions"])
    assert seen == list(range(1, 251))
    assert metas[0] == {
        "current_page": 1,
        "next_page": 2,
        "prev_page": None,
        "total_pages": 3,
        "total_count": 250,
        "per_page": 100,
    }
    assert metas[2]["next_page"] is None and metas[2]["prev_page"] == 2
    assert metas[3]["current_page"] == 4 and metas[3]["next_page"] is None
    default = await _list(http)
    assert default["meta"]["per_page"] == 100 and len(default["transactions"]) == 100
    too_many = await http.get("/v2/transactions", params={"bank_account_id": MAIN, "per_page": 101})
    assert too_many.status_code == 422
    bad_page = await http.get("/v2/transactions", params={"bank_account_id": MAIN, "current_page": 0})
    assert bad_page.status_code == 422


async def test_status_filter_defaults_to_completed(qonto: RunningQontoSandbox, http: httpx.AsyncClient) -> None:
    for status in ("pending", "completed", "declined", "reversed"):
        await qonto.inject(amount_cents=100, status=status, reference=status)
    assert [t["status"] for t in (await _list(http))["transactions"]] == ["completed"]
    body = await _list(http, **{"status[]": ["pending", "declined"]})
    assert sorted(t["status"] for t in body["transactions"]) == ["declined", "pending"]
    every = await _list(http, **{"status[]": ["pending", "completed", "declined", "reversed"]})
    assert every["meta"]["total_count"] == 4
    bad = await http.get("/v2/transactions", params={"bank_account_id": MAIN, "status[]": "lost"})
    assert bad.status_code == 422


async def test_side_and_date_filters(qonto: RunningQontoSandbox, http: httpx.AsyncClient) -> None:
    day = datetime(2026, 3, 1, tzinfo=UTC)
    for n in range(5):
        await qonto.inject(
            amount_cents=100 + n,
            side="credit" if n % 2 == 0 else "debit",
            settled_at=(day + timedelta(days=n)).isoformat(),
        )
    credits = await _list(http, side="credit")
    assert [t["amount_cents"] for t in credits["transactions"]] == [104, 102, 100]
    window = await _list(
        http,
        settled_at_from=(day + timedelta(days=1)).isoformat(),
        settled_at_to="2026-03-04T00:00:00.000Z",
    )
    assert [t["amount_cents"] for t in window["transactions"]] == [103, 102, 101]

    everything = await _list(http, sort_by="updated_at:asc")
    cursor = everything["transactions"][2]["updated_at"]
    since = await _list(http, updated_at_from=cursor, sort_by="updated_at:asc")
    assert [t["amount_cents"] for t in since["transactions"]] == [102, 103, 104]
    until = await _list(http, updated_at_to=cursor, sort_by="updated_at:asc")
    assert [t["amount_cents"] for t in until["transactions"]] == [100, 101, 102]
    bad = await http.get("/v2/transactions", params={"bank_account_id": MAIN, "updated_at_from": "yesterday"})
    assert bad.status_code == 422


async def test_sorting(qonto: RunningQontoSandbox, http: httpx.AsyncClient) -> None:
    # Settled dates in the opposite order of creation, so the two sorts differ.
    for n in range(3):
        await qonto.inject(amount_cents=10 + n, settled_at=f"2026-01-0{5 - n}T12:00:00Z")
    amounts = lambda body: [t["amount_cents"] for t in body["transactions"]]  # noqa: E731
    assert amounts(await _list(http)) == [10, 11, 12]  # default settled_at:desc
    assert amounts(await _list(http, sort_by="settled_at:asc")) == [12, 11, 10]
    assert amounts(await _list(http, sort_by="updated_at:asc")) == [10, 11, 12]
    assert amounts(await _list(http, sort_by="updated_at:desc")) == [12, 11, 10]
    bad = await http.get("/v2/transactions", params={"bank_account_id": MAIN, "sort_by": "amount:asc"})
    assert bad.status_code == 422


async def test_stripe_payout_credit_and_status_change_over_http(http: httpx.AsyncClient) -> None:
    # Exactly what the Stripe sandbox sends when a payout lands.
    payout = {
        "amount_cents": 48_210,
        "currency": "EUR",
        "side": "credit",
        "operation_type": "transfer",
        "label": "STRIPE PAYMENTS UK LTD",
        "reference": "COLLECT PAYOUT po_123",
        "settled_at": "2026-11-20T08:00:00Z",
        "status": "completed",
    }
    created = await http.post("/_sandbox/transactions", json=payout)
    assert created.status_code == 201
    txn = created.json()["transaction"]
    assert txn["amount_cents"] == 48_210 and txn["reference"] == "COLLECT PAYOUT po_123"
    assert txn["settled_at"] == "2026-11-20T08:00:00.000Z"

    pending = await http.post("/_sandbox/transactions", json={"amount_cents": 700, "status": "pending"})
    pending_txn = pending.json()["transaction"]
    assert pending_txn["settled_at"] is None and pending_txn["settled_balance_cents"] is None
    patched = await http.patch(
        f"/_sandbox/transactions/{pending_txn['transaction_id']}", json={"status": "completed", "note": "ok"}
    )
    assert patched.status_code == 200
    done = patched.json()["transaction"]
    assert done["status"] == "completed" and done["settled_at"] and done["note"] == "ok"
    assert done["updated_at"] > pending_txn["updated_at"]
    assert done["settled_balance_cents"] == 1_000_000 + 48_210 + 700

    changed = await _list(http, updated_at_from=done["updated_at"])
    assert [t["id"] for t in changed["transactions"]] == [done["id"]]

    refused = await http.patch(f"/_sandbox/transactions/{done['id']}", json={"amount_cents": 1})
    assert refused.status_code == 422
    assert (await http.patch("/_sandbox/transactions/nope", json={"status": "completed"})).status_code == 404
    for bad in (
        {"amount_cents": 1.5},
        {"amount_cents": -3},
        {"side": "sideways", "amount_cents": 1},
        {"amount_cents": 1, "operation_type": "teleport"},
        {"amount_cents": 1, "amount": 0.01},
        {},
    ):
        assert (await http.post("/_sandbox/transactions", json=bad)).status_code == 422, bad
    assert (await http.post("/_sandbox/transactions", content=b"{nope")).status_code == 400
    # Refused requests consume no transaction number.
    after = await http.post("/_sandbox/transactions", json={"amount_cents": 1})
    assert after.json()["transaction"]["transaction_id"] == "collect-sandbox-1-transaction-3"


async def test_idempotency_key_replays_creation(http: httpx.AsyncClient) -> None:
    fields = {"amount_cents": 5_000, "reference": "po_once"}
    headers = {"X-Qonto-Idempotency-Key": "payout-po_once"}
    first = await http.post("/_sandbox/transactions", json=fields, headers=headers)
    second = await http.post("/_sandbox/transactions", json=fields, headers=headers)
    assert first.json() == second.json()
    assert (await _list(http))["meta"]["total_count"] == 1
    other = await http.post("/_sandbox/transactions", json={"amount_cents": 1}, headers=headers)
    assert other.status_code == 422


async def test_unix_timestamps_are_accepted(http: httpx.AsyncClient) -> None:
    response = await http.post("/_sandbox/transactions", json={"amount_cents": 1, "settled_at": 1_767_225_600})
    assert response.json()["transaction"]["settled_at"] == "2026-01-01T00:00:00.000Z"


async def test_session_fixture_is_usable(qonto_sandbox: RunningQontoSandbox) -> None:
    txn = await qonto_sandbox.inject(amount_cents=4_200, reference="session-fixture")
    async with httpx.AsyncClient(base_url=qonto_sandbox.url, headers=qonto_sandbox.auth_headers) as client:
        found = await client.get(f"/v2/transactions/{txn['transaction_id']}")
    assert found.json()["transaction"]["reference"] == "session-fixture"


async def test_unknown_routes_answer_qonto_errors(http: httpx.AsyncClient) -> None:
    missing = await http.get("/v2/nothing-here")
    assert missing.status_code == 404 and missing.json()["errors"][0]["code"] == "not_found"
    wrong_method = await http.delete("/v2/organization")
    assert wrong_method.status_code == 405 and wrong_method.json()["errors"][0]["code"] == "method_not_allowed"
