"""`python -m gateway.webhooks`: list and replay over gRPC, register at the sandboxes."""

from __future__ import annotations

import io
import time
import uuid

import orjson

from gateway.webhooks.cli import run
from tests.fixtures.stack import TEST_AUTH_SECRET
from tests.integration.webhooks.conftest import WebhookPlatform


async def test_list_and_replay_a_failed_event(platform: WebhookPlatform) -> None:
    event_id = f"evt_cli_{uuid.uuid4().hex}"
    await platform.pool("terminal").execute(
        """INSERT INTO inbox_events (source, event_id, type, payload, status, attempts, last_error)
           VALUES ('stripe', $1, 'cli_test.unknown', $2::jsonb, 'failed', 3, 'RuntimeError: cli')""",
        event_id,
        orjson.dumps({"id": event_id, "type": "cli_test.unknown", "created": int(time.time())}).decode(),
    )
    env = {"AUTH_TOKEN_SECRET": TEST_AUTH_SECRET, "TERMINAL_ADDR": platform.stack.target("terminal")}
    out = io.StringIO()
    assert (
        await run(["list", "--service", "terminal", "--status", "failed", "--json", "--limit", "1000"], env, out) == 0
    )
    [line] = [orjson.loads(x) for x in out.getvalue().splitlines() if event_id in x]
    assert (line["service"], line["status"], line["attempts"], line["last_error"]) == (
        "terminal",
        "failed",
        3,
        "RuntimeError: cli",
    )
    table = io.StringIO()
    assert await run(["list", "--service", "terminal", "--status", "failed", "--limit", "1000"], env, table) == 0
    assert event_id in table.getvalue()

    out = io.StringIO()
    assert await run(["replay", "--service", "terminal", "--event-id", event_id], env, out) == 0
    assert out.getvalue().strip() == "terminal: replayed 1, applied 1, failed 0"
    status = await platform.pool("terminal").fetchval("SELECT status FROM inbox_events WHERE event_id = $1", event_id)
    assert status in ("applied", "ignored")


async def test_missing_settings_exit_2(platform: WebhookPlatform) -> None:
    assert await run(["list"], {}, io.StringIO()) == 2


async def test_register_prints_the_secrets_for_the_gateway(platform: WebhookPlatform) -> None:
    url = f"http://127.0.0.1:9/cli-{uuid.uuid4().hex[:8]}"
    out = io.StringIO()
    args = ["register", "--gateway-url", url, "--stripe-api-base", platform.stripe.url]
    args += ["--qonto-url", platform.qonto.url, "--qonto-login", platform.qonto.login]
    args += ["--qonto-secret-key", platform.qonto.secret_key]
    try:
        assert await run(args, {}, out) == 0
        lines = dict(line.split("=", 1) for line in out.getvalue().splitlines())
        stripe_secrets = lines["STRIPE_WEBHOOK_SECRETS"].split(",")
        assert len(stripe_secrets) == 2 and all(s.startswith("whsec_") for s in stripe_secrets)
        assert lines["QONTO_WEBHOOK_SECRETS"]
        # Registering again replaces ours (matched by URL) instead of adding more.
        assert await run(args, {}, io.StringIO()) == 0
        client = platform.stripe.client()
        endpoints = [e for e in (await client.v1.webhook_endpoints.list_async()).data if e.url.startswith(url)]
        assert len(endpoints) == 2
    finally:
        client = platform.stripe.client()
        for endpoint in (await client.v1.webhook_endpoints.list_async()).data:
            if endpoint.url.startswith(url):
                await client.v1.webhook_endpoints.delete_async(endpoint.id)
        for subscription in list(platform.qonto.state.subscriptions.values()):
            if subscription.url.startswith(url):
                platform.qonto.state.remove_subscription(subscription.id)
