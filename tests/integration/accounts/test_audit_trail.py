"""The audit trail: actions recorded with who, request and trace; scoping; pages; one chain under
concurrent appends; the verifier detects an edited and a deleted entry."""

from __future__ import annotations

import asyncio
import contextlib
import io
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest
from collect.accounts.v1 import accounts_pb2 as pb
from collect.accounts.v1 import accounts_pb2_grpc

from runtime.audit import AuditAnchor
from services.accounts import cli
from tests.fixtures.organizations import OrgContext, onboarded_organization
from tests.fixtures.polling import eventually
from tests.fixtures.stack import Stack
from tests.integration.payments.conftest import create_payment

AT = f"{(datetime.now(UTC) - timedelta(days=1)).date().isoformat()}T10:00:00Z"


@pytest.fixture(scope="module")
async def org(stack: Stack) -> OrgContext:
    return await onboarded_organization(stack)


@pytest.fixture(scope="module")
async def accounts_stub(stack: Stack) -> AsyncIterator[accounts_pb2_grpc.AccountsServiceStub]:
    async with grpc.aio.insecure_channel(stack.target("accounts")) as channel:
        yield accounts_pb2_grpc.AccountsServiceStub(channel)


def _as_service(stack: Stack, service: str = "payments") -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {stack.signer.service_token(service)}"),)


async def _audit(stack: Stack, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    answer = await stack.http.get("/v1/audit", headers=headers, params={"limit": 100, **params})
    assert answer.status_code == 200, answer.text
    data: list[dict[str, Any]] = answer.json()["data"]
    return data


def _trace_id(answer: Any) -> str:
    return str(answer.headers["traceparent"].split("-")[1])


async def test_a_role_change_is_recorded_with_actor_request_and_trace(stack: Stack, org: OrgContext) -> None:
    added = await stack.http.post(
        f"/v1/organizations/{org.id}/members",
        headers=org.admin_headers,
        json={
            "email": f"m-{uuid.uuid4().hex[:8]}@example.test",
            "name": "Marie",
            "role": "agent",
            "password": org.password,
        },
    )
    assert added.status_code == 201, added.text
    member_id = added.json()["id"]
    changed = await stack.http.patch(
        f"/v1/organizations/{org.id}/members/{member_id}", headers=org.admin_headers, json={"role": "org_admin"}
    )
    assert changed.status_code == 200, changed.text
    request_id = changed.headers["x-request-id"]
    entries = await _audit(stack, org.admin_headers, action="member.updated")
    [entry] = [e for e in entries if e["request_id"] == request_id]
    assert entry["organization_id"] == org.id and entry["targets"] == {"member_id": member_id}
    assert (entry["actor_id"], entry["actor_role"], entry["actor_organization_id"]) == (
        org.admin_id,
        "org_admin",
        org.id,
    )
    assert (entry["before"], entry["after"]) == ({"role": "agent"}, {"role": "org_admin"})
    assert entry["trace_id"] == _trace_id(changed)
    assert entry["source"] == "accounts" and entry["sequence"] >= 1 and len(entry["hash"]) == 64
    [creation] = await _audit(stack, org.admin_headers, action="member.created", actor_id=org.admin_id)
    assert creation["targets"] == {"member_id": member_id} and creation["after"] == {"role": "agent"}
    assert creation["request_id"] == added.headers["x-request-id"]
    # Creating the organisation, its account and members were recorded too; no personal data anywhere.
    everything = await stack.http.get("/v1/audit", headers=org.admin_headers, params={"limit": 100})
    actions = {e["action"] for e in everything.json()["data"]}
    assert {"organization.created", "stripe_account.created", "member.created", "member.updated"} <= actions
    for personal in (org.admin_email, org.agent_email, org.organization["name"], org.organization["email"]):
        assert personal not in everything.text


async def test_other_services_actions_arrive_through_their_outbox(stack: Stack, org: OrgContext) -> None:
    local_id = uuid.uuid4().hex
    batch = await stack.http.post(
        "/v1/payments/offline-batch",
        headers=org.agent_headers,
        json={"transactions": [{"local_id": local_id, "amount": 700, "method": "cash", "created_at": AT}]},
    )
    assert batch.status_code == 200, batch.text
    payment_id = batch.json()["results"][0]["payment_id"]

    async def recorded() -> list[dict[str, Any]]:
        entries = await _audit(stack, org.admin_headers, action="payment.recorded_offline", actor_id=org.agent_id)
        return [e for e in entries if e["targets"].get("payment_id") == payment_id]

    [entry] = await eventually(recorded, "the offline payment's audit entry")
    assert entry["source"] == "payments" and entry["actor_role"] == "agent" and entry["organization_id"] == org.id
    assert entry["request_id"] == batch.headers["x-request-id"] and entry["trace_id"] == _trace_id(batch)
    assert entry["after"]["amount"] == 700 and entry["after"]["currency"] == "eur"

    refund = await stack.http.post(
        f"/v1/payments/{payment_id}/refunds",
        headers={**org.admin_headers, "Idempotency-Key": uuid.uuid4().hex},
        json={"amount": 200},
    )
    assert refund.status_code in (200, 201), refund.text

    async def refunded() -> list[dict[str, Any]]:
        entries = await _audit(stack, org.admin_headers, action="refund.created")
        return [e for e in entries if e["targets"].get("payment_id") == payment_id]

    [entry] = await eventually(refunded, "the refund's audit entry")
    assert entry["actor_id"] == org.admin_id and entry["after"]["amount"] == 200


async def test_scoping_roles_and_filters(stack: Stack, org: OrgContext) -> None:
    other = await onboarded_organization(stack, onboard=False)
    mine = await _audit(stack, org.admin_headers)
    assert mine and {e["organization_id"] for e in mine} == {org.id}
    refused = await stack.http.get("/v1/audit", headers=org.admin_headers, params={"organization_id": other.id})
    assert refused.status_code == 404
    agent = await stack.http.get("/v1/audit", headers=org.agent_headers)
    assert agent.status_code == 403
    assert (await stack.http.get("/v1/audit")).status_code == 401
    admin = await stack.admin_headers()
    theirs = await _audit(stack, admin, organization_id=other.id)
    assert theirs and {e["organization_id"] for e in theirs} == {other.id}
    everyone = {e["organization_id"] for e in await _audit(stack, admin)}
    assert len(everyone) >= 1
    # Filters: an action, an actor, and a window that ends before everything.
    created = await _audit(stack, org.admin_headers, action="member.created")
    assert created and {e["action"] for e in created} == {"member.created"}
    assert "platform_admin" in {e["actor_role"] for e in created}
    past = await _audit(stack, org.admin_headers, to="2000-01-01T00:00:00Z")
    assert past == []
    for query, field in (({"from": "yesterday"}, "from"), ({"limit": 0}, "limit"), ({"action": "x" * 101}, "action")):
        bad = await stack.http.get("/v1/audit", headers=org.admin_headers, params=query)
        assert bad.status_code == 400 and [e["field"] for e in bad.json()["errors"]] == [field], bad.text


async def test_pages_cover_the_listing_once_newest_first(stack: Stack, org: OrgContext) -> None:
    full = await _audit(stack, org.admin_headers)
    assert len(full) >= 4
    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await stack.http.get("/v1/audit", headers=org.admin_headers, params=params)).json()
        seen += page["data"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    # Entries chained meanwhile (outside events applied late) can only come first in a newer listing.
    assert {e["id"] for e in full} <= {e["id"] for e in seen}
    assert len({e["id"] for e in seen}) == len(seen)
    stamps = [datetime.fromisoformat(e["recorded_at"]) for e in seen]
    assert stamps == sorted(stamps, reverse=True)
    bad = await stack.http.get("/v1/audit", headers=org.admin_headers, params={"cursor": "not-a-cursor"})
    assert bad.status_code == 400


def _record(organization_id: str, source_id: str, action: str = "payment.created") -> pb.AuditEntry:
    return pb.AuditEntry(
        organization_id=organization_id,
        actor_id=str(uuid.uuid4()),
        actor_role="agent",
        action=action,
        targets={"payment_id": str(uuid.uuid4())},
        after_json='{"amount": 1000, "currency": "eur"}',
        request_id=uuid.uuid4().hex,
        source_id=source_id,
    )


async def _chain(
    stack: Stack, accounts_stub: accounts_pb2_grpc.AccountsServiceStub, entries: int, *, concurrently: bool = False
) -> str:
    """A chain of its own (an organisation id no test shares) with `entries` entries."""
    chain = str(uuid.uuid4())
    requests = [pb.AppendAuditEntriesRequest(entries=[_record(chain, f"{chain}-{i}")]) for i in range(entries)]
    if concurrently:
        answers = await asyncio.gather(
            *(accounts_stub.AppendAuditEntries(r, metadata=_as_service(stack)) for r in requests)
        )
    else:
        answers = [await accounts_stub.AppendAuditEntries(r, metadata=_as_service(stack)) for r in requests]
    assert sum(a.appended for a in answers) == entries
    return chain


async def _verify(stack: Stack, chain: str, *options: str) -> tuple[int, str, str]:
    env = {**stack.env, "DATABASE_URL": stack.database.urls["accounts"]}
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err):
        status = await cli.run(["verify-audit", *(["--organization", chain] if chain else []), *options], env, out)
    return status, out.getvalue(), err.getvalue()


async def test_concurrent_appends_keep_one_chain_and_retries_chain_nothing_twice(
    stack: Stack, accounts_stub: accounts_pb2_grpc.AccountsServiceStub
) -> None:
    chain = await _chain(stack, accounts_stub, 30, concurrently=True)
    conn = await asyncpg.connect(stack.database.admin_url)
    try:
        sequences = await conn.fetch("SELECT sequence FROM accounts.audit_entries WHERE chain = $1", chain)
    finally:
        await conn.close()
    assert sorted(r["sequence"] for r in sequences) == list(range(1, 31))
    again = await accounts_stub.AppendAuditEntries(
        pb.AppendAuditEntriesRequest(entries=[_record(chain, f"{chain}-0"), _record(chain, f"{chain}-7")]),
        metadata=_as_service(stack),
    )
    assert again.appended == 0
    twice = await accounts_stub.AppendAuditEntries(
        pb.AppendAuditEntriesRequest(entries=[_record(chain, f"{chain}-30"), _record(chain, f"{chain}-30")]),
        metadata=_as_service(stack),
    )
    assert twice.appended == 1
    status, out, err = await _verify(stack, chain)
    assert status == 0, err
    assert '"checked":31' in out and '"intact":true' in out


async def test_only_services_append(
    stack: Stack, org: OrgContext, accounts_stub: accounts_pb2_grpc.AccountsServiceStub
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await accounts_stub.AppendAuditEntries(
            pb.AppendAuditEntriesRequest(entries=[_record(org.id, "forged")]),
            metadata=(("authorization", org.admin_headers["Authorization"]),),
        )
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as incomplete:
        await accounts_stub.AppendAuditEntries(
            pb.AppendAuditEntriesRequest(entries=[_record(org.id, "")]), metadata=_as_service(stack)
        )
    assert incomplete.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_the_service_role_cannot_change_an_entry(stack: Stack, org: OrgContext) -> None:
    conn = await asyncpg.connect(stack.database.urls["accounts"])
    try:
        for statement in (
            "UPDATE audit_entries SET action = 'x'",
            "DELETE FROM audit_entries",
            "TRUNCATE audit_entries",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement.replace("audit_entries", "accounts.audit_entries"))
    finally:
        await conn.close()


async def _tamper(stack: Stack, statement: str, *args: object) -> None:
    """As a superuser, with the append-only triggers off (what a determined intruder could do)."""
    conn = await asyncpg.connect(stack.database.admin_url)
    try:
        async with conn.transaction():
            await conn.execute("SET LOCAL session_replication_role = replica")
            await conn.execute(statement, *args)
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("statement", "sequence", "reason"),
    [
        ("UPDATE accounts.audit_entries SET after = '{\"amount\": 1}' WHERE chain = $1 AND sequence = 3", 3, "edited"),
        ("UPDATE accounts.audit_entries SET actor_id = 'someone' WHERE chain = $1 AND sequence = 1", 1, "edited"),
        ("DELETE FROM accounts.audit_entries WHERE chain = $1 AND sequence = 2", 3, "missing"),
        ("DELETE FROM accounts.audit_entries WHERE chain = $1 AND sequence = 5", 5, "newest ones were deleted"),
    ],
)
async def test_verify_detects_an_edited_or_deleted_entry(
    stack: Stack, accounts_stub: accounts_pb2_grpc.AccountsServiceStub, statement: str, sequence: int, reason: str
) -> None:
    chain = await _chain(stack, accounts_stub, 5)
    assert (await _verify(stack, chain))[0] == 0
    await _tamper(stack, statement, chain)
    status, out, err = await _verify(stack, chain)
    assert status == 1 and '"intact":false' in out
    assert f"audit chain {chain} broken at sequence {sequence}" in err and reason in err, err


async def test_a_policy_change_shows_before_and_after_but_no_name(stack: Stack) -> None:
    org = await onboarded_organization(stack, onboard=False, fee_percent_bps=100)
    admin = await stack.admin_headers()
    patched = await stack.http.patch(
        f"/v1/organizations/{org.id}", headers=admin, json={"fee_percent_bps": 250, "name": "Pompiers renamed"}
    )
    assert patched.status_code == 200, patched.text
    [entry] = await _audit(stack, admin, organization_id=org.id, action="organization.updated")
    assert entry["before"]["fee_percent_bps"] == 100 and entry["after"]["fee_percent_bps"] == 250
    assert entry["before"]["name"] == entry["after"]["name"] != "Pompiers renamed"  # said to change, not shown
    assert "Pompiers" not in str(entry)
    [created] = await _audit(stack, admin, organization_id=org.id, action="organization.created")
    assert created["after"]["fee_percent_bps"] == 100 and created["after"]["charge_model"] == "direct"
    assert not {"name", "email", "bank_account_iban"} & set(created["after"])


async def test_a_card_payment_created_then_canceled(stack: Stack, org: OrgContext) -> None:
    created = await create_payment(stack, org.agent_headers, amount=1200, capture_method="manual")
    canceled = await stack.http.post(f"/v1/payments/{created['id']}/cancel", headers=org.agent_headers)
    assert canceled.status_code == 200, canceled.text

    async def both() -> dict[str, dict[str, Any]]:
        entries = await _audit(stack, org.admin_headers, actor_id=org.agent_id)
        found = {e["action"]: e for e in entries if e["targets"].get("payment_id") == created["id"]}
        return found if {"payment.created", "payment.canceled"} <= set(found) else {}

    found = await eventually(both, "the payment's creation and cancellation in the audit trail")
    assert found["payment.created"]["targets"]["stripe_payment_intent"] == created["stripe_payment_intent_id"]
    assert found["payment.created"]["after"]["amount"] == 1200
    assert found["payment.canceled"]["after"]["status"] == "canceled"
    assert found["payment.canceled"]["request_id"] == canceled.headers["x-request-id"]


async def test_platform_actions_have_their_own_chain(stack: Stack, org: OrgContext) -> None:
    admin = await stack.admin_headers()
    model = f"audit-{uuid.uuid4().hex[:8]}"
    upserted = await stack.http.put(
        f"/v1/devices/tap-to-pay/android/{model}", headers=admin, json={"min_os_version": "13", "manufacturer": "X"}
    )
    assert upserted.status_code == 200, upserted.text

    async def recorded() -> list[dict[str, Any]]:
        entries = await _audit(stack, admin, action="tap_to_pay_device.upserted")
        return [e for e in entries if e["targets"] == {"model_identifier": model}]

    [entry] = await eventually(recorded, "the device upsert in the platform's chain")
    assert (
        entry["organization_id"] is None and entry["actor_role"] == "platform_admin" and entry["source"] == "terminal"
    )
    assert entry["after"] == {"certified": True, "min_os_version": "13"}
    assert entry["id"] not in {e["id"] for e in await _audit(stack, org.admin_headers)}
    # The platform admin seeded at start-up: no member asked, so the service is the actor.
    [seeded] = await _audit(stack, admin, action="platform_admin.created")
    assert (seeded["actor_id"], seeded["actor_role"], seeded["organization_id"]) == (
        "service:accounts",
        "service",
        None,
    )
    status, out, err = await _verify(stack, "platform")
    assert status == 0 and '"intact":true' in out, err


async def _anchor(stack: Stack, accounts_stub: accounts_pb2_grpc.AccountsServiceStub, chain: str) -> str:
    """The chain's head as the daily report carries it."""
    heads = await accounts_stub.ListAuditHeads(pb.ListAuditHeadsRequest(), metadata=_as_service(stack, "banking"))
    [head] = [h for h in heads.heads if h.chain == chain]
    return str(AuditAnchor.of_head(head.chain, head.sequence, head.hash))


async def test_an_anchor_detects_the_newest_entries_deleted_and_the_head_rewound(
    stack: Stack, accounts_stub: accounts_pb2_grpc.AccountsServiceStub, tmp_path: Path
) -> None:
    chain = await _chain(stack, accounts_stub, 5)
    anchor = await _anchor(stack, accounts_stub, chain)
    assert anchor.startswith(f"{chain}:5:")
    assert (await _verify(stack, chain, "--anchor", anchor))[0] == 0
    # The chain grows after the report: the anchor still holds (walking every chain too, where
    # other tests' tampered chains are named, not this one).
    for i in range(5, 7):
        appended = pb.AppendAuditEntriesRequest(entries=[_record(chain, f"{chain}-{i}")])
        await accounts_stub.AppendAuditEntries(appended, metadata=_as_service(stack))
    status, out, err = await _verify(stack, chain, "--anchor", anchor)
    assert status == 0 and '"intact":true' in out, err
    assert chain not in (await _verify(stack, "", "--anchor", anchor))[2]

    # A superuser deletes entries 4 to 7 and rewinds the head to entry 3: nothing inside the database shows it.
    await _tamper(stack, "DELETE FROM accounts.audit_entries WHERE chain = $1 AND sequence > 3", chain)
    await _tamper(
        stack,
        """UPDATE accounts.audit_chain_heads SET sequence = 3,
                  hash = (SELECT hash FROM accounts.audit_entries WHERE chain = $1 AND sequence = 3)
           WHERE chain = $1""",
        chain,
    )
    assert (await _verify(stack, chain))[0] == 0
    # The anchor the report kept does.
    status, out, err = await _verify(stack, chain, "--anchor", anchor)
    assert status == 1 and '"intact":false' in out
    assert f"audit chain {chain} broken at sequence 4" in err and "head rewound" in err, err
    anchors = tmp_path / "anchors.txt"
    anchors.write_text(f"# daily report\n{anchor}\n\nplatform:1:{'0' * 16}\n")
    status, out, err = await _verify(stack, "", "--anchors-file", str(anchors))
    assert status == 1 and f"audit chain {chain} broken at sequence 4" in err, err
    # The platform's first entry is not all zeros: a wrong hash is named too.
    assert "audit chain platform broken at sequence 1" in err and "does not match its anchor" in err, err


async def test_a_bad_anchor_is_refused_before_anything_is_checked(stack: Stack) -> None:
    for bad in ("platform", "platform:0:0123456789abcdef", "platform:3:xyz", "platform:x:0123456789abcdef"):
        with contextlib.redirect_stderr(io.StringIO()), pytest.raises(SystemExit) as refused:
            await _verify(stack, "", "--anchor", bad)
        assert refused.value.code == 2


async def test_onboarding_links_and_account_refreshes_are_recorded(stack: Stack, org: OrgContext) -> None:
    linked = await stack.http.post(
        f"/v1/organizations/{org.id}/onboarding-link",
        headers=org.admin_headers,
        json={"return_url": "https://example.test/done", "refresh_url": "https://example.test/again"},
    )
    assert linked.status_code in (200, 201), linked.text
    [link] = [
        e
        for e in await _audit(stack, org.admin_headers, action="stripe_account.onboarding_link_created")
        if e["request_id"] == linked.headers["x-request-id"]
    ]
    assert (link["actor_id"], link["actor_role"]) == (org.admin_id, "org_admin")
    assert link["targets"] == {"stripe_account": org.stripe_account_id}
    assert link["after"]["expires_at"] and linked.json()["url"] not in str(link)  # the link signs someone in

    admin = await stack.admin_headers()
    refreshed = await stack.http.get(
        f"/v1/organizations/{org.id}/stripe-account", headers=admin, params={"refresh": "true"}
    )
    assert refreshed.status_code == 200, refreshed.text
    [entry] = [
        e
        for e in await _audit(stack, admin, organization_id=org.id, action="stripe_account.refreshed")
        if e["request_id"] == refreshed.headers["x-request-id"]
    ]
    assert entry["actor_role"] == "platform_admin" and entry["targets"] == {"stripe_account": org.stripe_account_id}
    assert entry["after"]["charges_enabled"] is refreshed.json()["charges_enabled"]
    assert set(entry["before"]) == {"charges_enabled", "payouts_enabled", "details_submitted", "requirements_due"}
    # Reading the stored status changes nothing and records nothing.
    plain = await stack.http.get(f"/v1/organizations/{org.id}/stripe-account", headers=admin)
    assert plain.status_code == 200
    recorded = await _audit(stack, admin, organization_id=org.id, action="stripe_account.refreshed")
    assert plain.headers["x-request-id"] not in {e["request_id"] for e in recorded}


async def test_an_admin_replaying_events_is_recorded_even_when_nothing_was_replayed(stack: Stack) -> None:
    admin = await stack.admin_headers()
    event_id = f"evt_audit_{uuid.uuid4().hex[:12]}"
    replayed = await stack.http.post(
        "/v1/ops/events/replay", headers=admin, json={"service": "terminal", "event_id": event_id}
    )
    assert replayed.status_code == 200, replayed.text
    assert replayed.json()["replayed"] == 0

    async def recorded() -> list[dict[str, Any]]:
        entries = await _audit(stack, admin, action="inbox_events.replayed")
        return [e for e in entries if e["targets"].get("event_id") == event_id]

    [entry] = await eventually(recorded, "the replay's audit entry")
    assert (entry["source"], entry["actor_role"], entry["organization_id"]) == ("terminal", "platform_admin", None)
    assert entry["after"] == {"replayed": 0, "applied": 0, "failed": 0}
    assert entry["request_id"] == replayed.headers["x-request-id"]
