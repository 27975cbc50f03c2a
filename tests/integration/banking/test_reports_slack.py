"""Daily report to Slack: retried while Slack is unavailable, never lost, sent once per date (also across replicas)."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime
from zoneinfo import ZoneInfo

from runtime.settings import Env
from runtime.stripe_api import close_stripe_client
from services.banking.main import make_banking
from services.banking.reports import run_jobs_once
from tests.fixtures.stack import Stack
from tests.integration.banking.conftest import FakeSlack, eventually


def _messages(slack: FakeSlack, day: str) -> list[dict[str, object]]:
    return [m for m in slack.received if day in str(m["text"])]


async def test_slack_unavailable_is_retried_and_the_report_is_not_lost(bank_stack: Stack) -> None:
    stack = bank_stack
    admin = await stack.admin_headers()
    slack: FakeSlack = stack.extras["slack"]
    day = "2026-01-10"
    slack.fail_next = 3
    refused_before = slack.refused

    answer = await stack.http.post("/v1/reports/daily/send", headers=admin, json={"date": day})
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["pending"] is True and body["sent"] is False and body["last_error"] == "Slack answered 503"
    row = await stack.deps["banking"].pool.fetchrow(
        "SELECT status FROM report_outbox WHERE report_date = $1::date", datetime.fromisoformat(day).date()
    )
    assert row is not None and row["status"] == "pending"  # recorded before delivery

    async def delivered() -> bool:
        # Slack receives the message before the outbox row is marked sent: wait for both.
        status = await stack.deps["banking"].pool.fetchval(
            "SELECT status FROM report_outbox WHERE report_date = $1::date", datetime.fromisoformat(day).date()
        )
        return bool(_messages(slack, day)) and status == "sent"

    await eventually(delivered, "the background retry delivering the report")
    assert slack.refused - refused_before == 3
    sent = await stack.deps["banking"].pool.fetchrow(
        "SELECT status, attempts, last_error FROM report_outbox WHERE report_date = $1::date",
        datetime.fromisoformat(day).date(),
    )
    assert sent is not None and sent["status"] == "sent" and sent["attempts"] == 4 and sent["last_error"] is None

    again = await stack.http.post("/v1/reports/daily/send", headers=admin, json={"date": day})
    assert again.status_code == 200 and again.json()["already_sent"] is True
    assert len(_messages(slack, day)) == 1
    forced = await stack.http.post("/v1/reports/daily/send", headers=admin, json={"date": day, "force": True})
    assert forced.status_code == 200 and forced.json()["sent"] is True
    assert len(_messages(slack, day)) == 2


async def test_the_scheduled_job_sends_yesterday_once_across_replicas(bank_stack: Stack) -> None:
    stack = bank_stack
    slack: FakeSlack = stack.extras["slack"]
    env = Env({**stack.env, "DAILY_REPORT_ENABLED": "true", "DAILY_REPORT_TIME": "07:30"})
    replicas = [make_banking(dataclasses.replace(stack.deps["banking"], env=env)) for _ in range(3)]
    try:
        paris = ZoneInfo("Europe/Paris")
        early = datetime(2026, 3, 2, 7, 0, tzinfo=paris)
        await asyncio.gather(*(run_jobs_once(b, early) for b in replicas))
        assert _messages(slack, "2026-03-01") == []  # not time yet
        later = datetime(2026, 3, 2, 9, 0, tzinfo=paris)
        for _ in range(2):
            await asyncio.gather(*(run_jobs_once(b, later) for b in replicas))
        assert len(_messages(slack, "2026-03-01")) == 1
    finally:
        for banking in replicas:
            await banking.http.aclose()
            await close_stripe_client(banking.stripe)


async def test_report_needs_a_platform_admin_and_a_valid_date(bank_stack: Stack) -> None:
    stack = bank_stack
    admin = await stack.admin_headers()
    bad = await stack.http.get("/v1/reports/daily", params={"date": "21/11/2026"}, headers=admin)
    assert bad.status_code == 400 and bad.json()["code"] == "validation_error"
    bad_format = await stack.http.get("/v1/reports/daily", params={"format": "xml"}, headers=admin)
    assert bad_format.status_code == 400
    no_token = await stack.http.get("/v1/reports/daily")
    assert no_token.status_code == 401
    fec = await stack.http.get("/v1/banking/exports/fec", params={"from": "2026-01-01"}, headers=admin)
    assert fec.status_code == 400
