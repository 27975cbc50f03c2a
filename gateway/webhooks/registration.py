"""Registers the gateway's webhook endpoints with Stripe (or its sandbox) and the Qonto sandbox.

Stripe shows an endpoint's `whsec_` secret only in the response that creates it, so our
endpoints (matched by URL) are replaced, and the new secrets are handed to the gateway through
`STRIPE_WEBHOOK_SECRETS` / `QONTO_WEBHOOK_SECRETS` (or `gateway.webhooks.secrets`).

With real Stripe, create the two endpoints in the dashboard (Developers → Webhooks): one for
"Your account" and one for "Connected accounts", both at `https://<gateway>/webhooks/stripe`
with the events you need (or all), and put both signing secrets, comma-separated, in
`STRIPE_WEBHOOK_SECRETS`; during a rotation list the old secret too until it expires. With
real Qonto, subscribe `https://<gateway>/webhooks/qonto` to `v1/transactions` and put its
secret in `QONTO_WEBHOOK_SECRETS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
import stripe

STRIPE_PATH = "/webhooks/stripe"
QONTO_PATH = "/webhooks/qonto"


def webhook_url(gateway_url: str, path: str) -> str:
    """`gateway_url` + `path`, unless `gateway_url` already is the endpoint's URL."""
    base = gateway_url.rstrip("/")
    return base if base.endswith(path) else base + path


async def register_sandbox_endpoints(
    stripe_client: stripe.StripeClient, gateway_public_url: str, enabled_events: Sequence[str] = ("*",)
) -> list[str]:
    """Replaces our Stripe endpoints (platform, then Connect) and returns their signing secrets."""
    events: Any = list(enabled_events)  # the SDK types them as literals
    url = webhook_url(gateway_public_url, STRIPE_PATH)
    existing = await stripe_client.v1.webhook_endpoints.list_async(params={"limit": 100})
    for endpoint in existing.data:
        if endpoint.url == url:
            await stripe_client.v1.webhook_endpoints.delete_async(endpoint.id)
    platform = await stripe_client.v1.webhook_endpoints.create_async(
        params={"url": url, "enabled_events": events, "description": "collect platform"}
    )
    connect = await stripe_client.v1.webhook_endpoints.create_async(
        params={
            "url": url,
            "enabled_events": events,
            "connect": True,
            "description": "collect connected accounts",
        }
    )
    return [str(platform.secret), str(connect.secret)]


async def register_qonto_endpoint(
    qonto_url: str, login: str, secret: str, gateway_url: str, *, webhook_secret: str | None = None
) -> str:
    """Subscribes the gateway at the Qonto sandbox (re-posting a URL updates it); returns the secret."""
    body: dict[str, str] = {"url": webhook_url(gateway_url, QONTO_PATH)}
    if webhook_secret:
        body["secret"] = webhook_secret
    async with httpx.AsyncClient(base_url=qonto_url.rstrip("/"), timeout=10) as http:
        response = await http.post("/_sandbox/webhooks", json=body, headers={"Authorization": f"{login}:{secret}"})
        response.raise_for_status()
        return str(response.json()["secret"])
