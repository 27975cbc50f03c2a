"""The signing secrets the webhook routes accept, changeable while the gateway runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class WebhookSecrets:
    """Stripe (platform, Connect, previous ones during rotation) and Qonto secrets.

    Initialised from the settings; tests and launchers that learn the secrets only once the
    gateway listens (endpoints registered at its URL) replace them here.
    """

    stripe: tuple[str, ...] = ()
    qonto: tuple[str, ...] = ()


def webhook_secrets(app: Any) -> WebhookSecrets:
    """`app.state.webhook_secrets`, created from `app.state.settings` on first use."""
    holder: WebhookSecrets | None = getattr(app.state, "webhook_secrets", None)
    if holder is None:
        settings = app.state.settings
        holder = WebhookSecrets(tuple(settings.stripe_webhook_secrets), tuple(settings.qonto_webhook_secrets))
        app.state.webhook_secrets = holder
    return holder
