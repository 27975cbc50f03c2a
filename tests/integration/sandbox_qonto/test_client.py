"""services.banking.qonto.QontoClient against the sandbox: pages, cursors, retries, errors."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from sandbox.qonto.testing import RunningQontoSandbox, run_qonto_sandbox
from services.banking.qonto import (
    QontoAuthError,
    QontoClient,
    QontoRequestError,
    QontoTransaction,
    QontoUnavailable,
)

MAIN = "collect-sandbox-bank-account-1"


@pytest_asyncio.fixture(loop_scope="session")
async def client(qonto: RunningQontoSandbox) -> AsyncIterator[QontoClient]:
    async with QontoClient(
        qonto.url, qonto.login, qonto.secret_key, timeout=5, backoff_base=0.01, backoff_max=0.05
    ) as qonto_client:
        yield qonto_client


async def _all(client: QontoClient, **kwargs: object) -> list[QontoTransaction]:
    return [txn async for txn in client.iter_transactions(**kwargs)]  # type: ignore[arg-type]


async def test_get_organization(client: QontoClient) -> None:
    org = await client.get_organization()
    assert org.slug == "collect-sandbox"
    main = org.bank_accounts[0]
    assert main.slug == MAIN and main.main and main.iban.startswith("FR76")
    assert main.balance_cents == 1_000_000 and isinstance(main.balance_cents, int)
    assert main.updated_at is not None and main.updated_at.tzinfo is not None


async def test_iterates_every_page_oldest_update_first(qonto: RunningQontoSandbox, client: QontoClient) -> None:
    for n in range(250):
        await qonto.inject(amount_cents=n + 1, status="pending" if n % 10 == 0 else "completed")
    before = len(qonto.state.dispatcher.attempts)
    txns = await _all(client, bank_account_id=MAIN)
    assert before == 0
    assert [t.amount_cents for t in txns] == list(range(1, 251))  # every status, by default
    assert all(isinstance(t.amount_cents, int) for t in txns)
    assert [t.updated_at for t in txns] == sorted(t.updated_at for t in txns if t.updated_at)
    first = txns[0]
    assert first.status == "pending" and first.settled_at is None and first.side == "credit"
    assert first.raw["id"] == first.id and first.signed_amount_cents == 1

    small_pages = await _all(client, bank_account_id=MAIN, per_page=7, statuses=("completed",))
    assert len(small_pages) == 225
    by_iban = await _all(client, iban=(await client.get_organization()).bank_accounts[0].iban)
    assert len(by_iban) == 250


async def test_updated_at_cursor_sees_later_changes(qonto: RunningQontoSandbox, client: QontoClient) -> None:
    first = await qonto.inject(amount_cents=100, status="pending")
    await qonto.inject(amount_cents=200)
    synced = await _all(client, bank_account_id=MAIN)
    cursor = max(t.updated_at for t in synced if t.updated_at)
    await qonto.update(first["id"], status="completed")
    changed = await _all(client, bank_account_id=MAIN, updated_at_from=cursor)
    # The cursor is inclusive: the last one synced comes again, then the change.
    assert [(t.amount_cents, t.status) for t in changed] == [(200, "completed"), (100, "completed")]
    assert changed[-1].updated_at is not None and changed[-1].updated_at > cursor


async def test_429_with_retry_after_is_waited_out(qonto: RunningQontoSandbox, client: QontoClient) -> None:
    await qonto.inject(amount_cents=1)
    qonto.inject_faults(429, count=2, retry_after=0)
    qonto.inject_faults(503, count=1)
    assert len(await _all(client, bank_account_id=MAIN)) == 1
    assert qonto.state.faults.remaining == 0

    qonto.inject_faults(429, count=1, retry_after=1)
    started = time.monotonic()
    assert (await client.get_organization()).slug
    assert time.monotonic() - started >= 1.0


async def test_persistent_failure_raises_unavailable(qonto: RunningQontoSandbox) -> None:
    async with QontoClient(qonto.url, qonto.login, qonto.secret_key, max_attempts=3, backoff_base=0.01) as client:
        qonto.inject_faults(500, count=3)
        with pytest.raises(QontoUnavailable, match="3 attempts"):
            await client.get_organization()
        assert qonto.state.faults.remaining == 0


async def test_connection_errors_are_retried_then_raise() -> None:
    calls = 0

    def refuse(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        raise httpx.ConnectError("refused", request=request)

    async with QontoClient(
        "http://qonto.invalid", "l", "s", max_attempts=4, backoff_base=0.001, transport=httpx.MockTransport(refuse)
    ) as client:
        with pytest.raises(QontoUnavailable, match="ConnectError"):
            await client.get_organization()
    assert calls == 4


async def test_bad_credentials_raise_auth_error_without_retry(qonto: RunningQontoSandbox) -> None:
    async with QontoClient(qonto.url, qonto.login, "wrong") as client:
        with pytest.raises(QontoAuthError):
            await client.get_organization()
        with pytest.raises(QontoAuthError):
            await _all(client, bank_account_id=MAIN)


async def test_bad_request_raises_request_error(client: QontoClient) -> None:
    with pytest.raises(QontoRequestError) as info:
        await _all(client, bank_account_id="no-such-account")
    assert info.value.status_code == 404
    with pytest.raises(ValueError):
        await _all(client)


async def test_sandbox_rate_limit_is_honoured_by_the_client() -> None:
    async with run_qonto_sandbox(rate_limit_per_10s=3) as qs:
        async with httpx.AsyncClient(base_url=qs.url, headers=qs.auth_headers) as raw:
            codes = [(await raw.get("/v2/organization")).status_code for _ in range(4)]
            limited = await raw.get("/v2/organization")
        assert codes == [200, 200, 200, 429]
        assert limited.status_code == 429 and 1 <= int(limited.headers["Retry-After"]) <= 10
        assert limited.json()["errors"][0]["code"] == "too_many_requests"
        # Sandbox controls are not rate limited.
        assert (await qs.inject(amount_cents=1))["amount_cents"] == 1

        qs.state.rate_limiter.reset()
        async with QontoClient(qs.url, qs.login, qs.secret_key, max_attempts=2, max_retry_after=0.05) as client:
            for _ in range(3):
                await client.get_organization()
            with pytest.raises(QontoUnavailable, match="429"):
                await client.get_organization()


async def test_base_url_may_include_v2(qonto: RunningQontoSandbox) -> None:
    async with QontoClient(qonto.url + "/v2/", qonto.login, qonto.secret_key) as client:
        assert (await client.get_organization()).slug == "collect-sandbox"


def test_amount_parsing_never_uses_floats() -> None:
    from services.banking.qonto import _transaction

    base = {"id": "t", "side": "debit", "status": "completed", "currency": "EUR"}
    assert _transaction({**base, "amount": 0.29}).amount_cents == 29
    assert _transaction({**base, "amount": "10,07"}).amount_cents == 1007
    assert _transaction({**base, "amount_cents": 1234, "amount": 99}).amount_cents == 1234
    assert _transaction({**base, "amount_cents": 5}).signed_amount_cents == -5
    with pytest.raises(Exception, match="whole number of cents"):
        _transaction({**base, "amount": 0.001})


async def test_retries_stop_at_the_rpc_deadline(qonto: RunningQontoSandbox, client: QontoClient) -> None:
    from runtime import deadlines

    qonto.inject_faults(429, count=1, retry_after=5)
    deadlines.set_deadline(0.5)
    started = time.monotonic()
    try:
        with pytest.raises(QontoUnavailable, match="deadline"):
            await client.get_organization()
    finally:
        deadlines.set_deadline(None)
    assert time.monotonic() - started < 0.5
