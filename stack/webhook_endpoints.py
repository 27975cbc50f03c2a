"""Webhook endpoints of the local stack at the Stripe sandbox (the platform's and the Connect one)."""

from __future__ import annotations

import stripe

from runtime.stripe_api import make_stripe_client


def register_stripe_endpoints(api_base: str, api_key: str, webhook_url: str) -> list[str]:
    """Replaces our endpoints (matched by URL) and returns the new signing secrets."""
    client = make_stripe_client(api_key, api_base)
    for endpoint in client.v1.webhook_endpoints.list(params={"limit": 100}).data:
        if endpoint.url == webhook_url:
            client.v1.webhook_endpoints.delete(endpoint.id)
    created: list[stripe.WebhookEndpoint] = [
        client.v1.webhook_endpoints.create(params={"url": webhook_url, "enabled_events": ["*"]}),
        client.v1.webhook_endpoints.create(params={"url": webhook_url, "enabled_events": ["*"], "connect": True}),
    ]
    return [str(e.secret) for e in created]
