"""Banking's actions on the audit trail, through the real parts: the bank and payout syncs and
reconciliation runs (asked by an admin, or scheduled: the service is the actor), the daily report
sent and force-resent (its Slack message and JSON carry the chain heads), Pennylane settings (the
token only said to change) and push runs."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import grpc
import httpx
from collect.accounts.v1 import accounts_pb2 as accounts_pb
from collect.accounts.v1 import accounts_pb2_grpc
from collect.banking.v1 import banking_pb2 as pb

from runtime.audit import AuditAnchor
from runtime.stripe_api import close_stripe_client
from sandbox.pennylane.testing import RunningPennylaneSandbox
from services.banking import sync
from services.banking.main import make_banking
from tests.fixtures.organizations import onboarded_organization
from tests.fixtures.polling import eventually
from tests.fixtures.stack import Stack
from tests.integration.banking.conftest import FakeSlack, today
from tests.integration.banking.pennylane_support import as_service, banking_stub, mapping


async def _entry(
    stack: Stack, headers: dict[str, str], action: str, which: Callable[[dict[str, Any]], bool], **params: str
) -> dict[str, Any]:
    """The one audit entry of `action` that `which` picks, once the outbox has been forwarded."""

    async def found() -> list[dict[str, Any]]:
        answer = await stack.http.get("/v1/audit", headers=headers, params={"action": action, "limit": 100, **params})
        assert answer.status_code == 200, answer.text
        return [e for e in answer.json()["data"] if which(e)]

    [entry] = await eventually(found, f"the {action} audit entry")
    return entry


def _asked_by(answer: httpx.Response) -> Callable[[dict[str, Any]], bool]:
    """Picks the entry recorded in `answer`'s request."""
    request_id = answer.headers["x-request-id"]
    return lambda entry: bool(entry["request_id"] == request_id)


async def _me(stack: Stack, headers: dict[str, str]) -> str:
    answer = await stack.http.get("/v1/me", headers=headers)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["id"])


async def test_syncs_and_reconciliation_runs_asked_by_an_admin(bank_stack: Stack) -> None:
    stack = bank_stack
    admin = await stack.admin_headers()
    admin_id = await _me(stack, admin)
    for path, action, body in (
        ("/v1/banking/sync", "bank_transactions.synced", None),
        ("/v1/banking/payouts/sync", "payouts.synced", None),
        ("/v1/banking/reconciliation/run", "reconciliation.ran", {"from": "2026-01-01", "to": today()}),
    ):
        answer = await stack.http.post(path, headers=admin, json=body)
        assert answer.status_code == 200, answer.text
        entry = await _entry(stack, admin, action, _asked_by(answer))
        assert (entry["actor_id"], entry["actor_role"], entry["source"]) == (admin_id, "platform_admin", "banking")
        assert entry["organization_id"] is None  # the platform's own chain
        counted = {k: v for k, v in answer.json().items() if k in entry["after"]}
        assert counted and counted == {k: entry["after"][k] for k in counted}, (answer.json(), entry)
    assert entry["after"]["from"] == "2026-01-01" and entry["after"]["to"] == today()


async def test_a_scheduled_bank_sync_that_brought_transactions_has_the_service_as_actor(stack: Stack) -> None:
    # The shared stack: its Qonto sandbox sends no webhooks, so the pull is what brings the transaction.
    tag = uuid.uuid4().hex[:8]
    await stack.extras["qonto_sandbox"].inject(amount_cents=1234, side="credit", label=f"AUDIT {tag}", reference=tag)
    banking = make_banking(stack.deps["banking"])
    try:
        counts = await sync.sync_transactions(banking, wait=True)  # as the job does: no member asked
    finally:
        await banking.http.aclose()
        await close_stripe_client(banking.stripe)
    assert counts is not None and counts.inserted >= 1
    admin = await stack.admin_headers()
    after = {"fetched": counts.fetched, "inserted": counts.inserted, "updated": counts.updated}
    entry = await _entry(
        stack, admin, "bank_transactions.synced", lambda e: e["actor_id"] == "service:banking" and e["after"] == after
    )
    assert entry["actor_role"] == "service" and not entry["request_id"] and entry["targets"]["bank_accounts"]


async def test_the_daily_report_sent_and_forced_carries_the_chain_heads(bank_stack: Stack) -> None:
    stack = bank_stack
    admin = await stack.admin_headers()
    slack: FakeSlack = stack.extras["slack"]
    day = "2026-02-11"
    async with grpc.aio.insecure_channel(stack.target("accounts")) as channel:
        heads = await accounts_pb2_grpc.AccountsServiceStub(channel).ListAuditHeads(
            accounts_pb.ListAuditHeadsRequest(), metadata=as_service(stack)
        )
        # Heads are for the platform and services only.
        org = await onboarded_organization(stack, onboard=False)
        refused = None
        try:
            await accounts_pb2_grpc.AccountsServiceStub(channel).ListAuditHeads(
                accounts_pb.ListAuditHeadsRequest(), metadata=(("authorization", org.admin_headers["Authorization"]),)
            )
        except grpc.aio.AioRpcError as error:
            refused = error.code()
        assert refused == grpc.StatusCode.PERMISSION_DENIED
    assert heads.heads and all(len(h.hash) == 64 and h.sequence >= 1 for h in heads.heads)

    sent = await stack.http.post("/v1/reports/daily/send", headers=admin, json={"date": day})
    assert sent.status_code == 200 and sent.json()["sent"] is True, sent.text
    first = await _entry(stack, admin, "daily_report.sent", _asked_by(sent))
    assert first["targets"] == {"report_date": day} and first["after"]["forced"] is False
    assert first["actor_role"] == "platform_admin"
    forced = await stack.http.post("/v1/reports/daily/send", headers=admin, json={"date": day, "force": True})
    assert forced.status_code == 200 and forced.json()["sent"] is True, forced.text
    again = await _entry(stack, admin, "daily_report.sent", _asked_by(forced))
    assert again["targets"] == {"report_date": day} and again["after"]["forced"] is True

    # The message carries each chain's head as of the report: an anchor for verify-audit.
    [message] = [m for m in slack.received if day in str(m["text"])][-1:]
    text = str(message["blocks"])
    platform = next(h for h in heads.heads if h.chain == "platform")
    anchors = [AuditAnchor.parse(word.strip("`',")) for word in text.split() if word.startswith("`platform:")]
    assert anchors and anchors[0].sequence >= platform.sequence
    # The JSON too (the report's message), every chain as Accounts lists them.
    report = await banking_stub(stack).GetDailyReport(pb.GetDailyReportRequest(date=day), metadata=as_service(stack))
    listed = [AuditAnchor.parse(a) for a in report.report.audit_anchors]
    assert {h.chain for h in heads.heads} <= {a.chain for a in listed}
    for anchor in listed:
        assert len(anchor.hash_prefix) == 16
    # And over HTTP, where an operator copies them from.
    over_http = await stack.http.get("/v1/reports/daily", headers=admin, params={"date": day})
    assert over_http.status_code == 200, over_http.text
    assert {AuditAnchor.parse(a).chain for a in over_http.json()["audit_anchors"]} >= {h.chain for h in heads.heads}


async def test_pennylane_settings_and_a_push_run(bank_stack: Stack) -> None:
    stack = bank_stack
    pl: RunningPennylaneSandbox = stack.extras["pennylane"]
    org = await onboarded_organization(stack)
    company = pl.add_company(f"audit-{uuid.uuid4().hex[:6]}")
    path = f"/v1/organizations/{org.id}/pennylane"
    body = {"api_token": company.token, "start_date": today(), **mapping(pl, company)}
    saved = await stack.http.put(path, headers=org.admin_headers, json=body)
    assert saved.status_code == 200, saved.text
    first = await _entry(stack, org.admin_headers, "pennylane_settings.saved", _asked_by(saved))
    assert (first["actor_id"], first["organization_id"], first["targets"]) == (org.admin_id, org.id, {"entity": org.id})
    assert first["after"]["api_token"] == "[changed]" and first["after"]["enabled"] is True
    assert company.token not in str(first)
    # Saved again without a token, only the start date changed: that is all the entry says.
    again = await stack.http.put(
        path, headers=org.admin_headers, json={**body, "api_token": "", "start_date": "2026-01-01"}
    )
    assert again.status_code == 200, again.text
    second = await _entry(stack, org.admin_headers, "pennylane_settings.saved", _asked_by(again))
    assert second["before"] == {"start_date": today()} and second["after"] == {"start_date": "2026-01-01"}

    admin = await stack.admin_headers()
    pushed = await stack.http.post(
        "/v1/banking/pennylane/push", headers=admin, json={"entities": [org.id], "to_date": today()}
    )
    assert pushed.status_code == 200, pushed.text
    (result,) = pushed.json()["results"]
    run = await _entry(stack, org.admin_headers, "pennylane.pushed", _asked_by(pushed))
    assert run["actor_role"] == "platform_admin" and run["targets"] == {"entity": org.id}
    assert run["after"]["pushed"] == result["pushed"] and run["after"]["failed"] == len(result["failures"])
    assert run["after"]["to"] == today()
