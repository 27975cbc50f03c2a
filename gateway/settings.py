"""Gateway settings, read once from the environment."""

from __future__ import annotations

from dataclasses import dataclass

from runtime.auth import token_secret_from_env
from runtime.logs import DEFAULT_LOG_LEVEL, log_level
from runtime.settings import Env


@dataclass(frozen=True)
class GatewaySettings:
    auth_token_secret: str
    accounts_addr: str
    payments_addr: str
    terminal_addr: str
    banking_addr: str
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 1024 * 1024
    rpc_timeout_seconds: float = 5.0
    # Stripe webhook signing secrets: platform, Connect, and previous ones during rotation.
    stripe_webhook_secrets: tuple[str, ...] = ()
    qonto_webhook_secrets: tuple[str, ...] = ()
    # Proxies in front of the gateway that append to X-Forwarded-For (0: clients connect directly).
    trusted_proxy_hops: int = 0
    # The /metrics endpoint's port (runtime/metrics.py), apart from the API's; 0 = none.
    metrics_port: int = 0
    # Handed to the app for the Terminal SDK (GET /v1/config); public by design.
    stripe_publishable_key: str = ""
    # A console session ends after this long without the person's activity (and when its token expires).
    console_idle_seconds: float = 600.0
    log_level: str = DEFAULT_LOG_LEVEL

    @classmethod
    def from_env(cls, env: Env | None = None) -> GatewaySettings:
        env = env or Env()

        def secrets(name: str) -> tuple[str, ...]:
            return tuple(s.strip() for s in (env.optional(name) or "").split(",") if s.strip())

        port = env.integer("GATEWAY_PORT", 8000)
        return cls(
            auth_token_secret=token_secret_from_env(env),
            accounts_addr=env.text("ACCOUNTS_ADDR"),
            payments_addr=env.text("PAYMENTS_ADDR"),
            terminal_addr=env.text("TERMINAL_ADDR"),
            banking_addr=env.text("BANKING_ADDR"),
            host=env.text("GATEWAY_HOST", "127.0.0.1"),
            port=port,
            max_body_bytes=env.integer("GATEWAY_MAX_BODY_BYTES", 1024 * 1024),
            rpc_timeout_seconds=env.number("RPC_TIMEOUT_SECONDS", 5.0),
            stripe_webhook_secrets=secrets("STRIPE_WEBHOOK_SECRETS"),
            qonto_webhook_secrets=secrets("QONTO_WEBHOOK_SECRETS"),
            trusted_proxy_hops=env.integer("GATEWAY_TRUSTED_PROXY_HOPS", 0),
            metrics_port=env.integer("METRICS_PORT", 0),
            stripe_publishable_key=env.text("STRIPE_PUBLISHABLE_KEY", ""),
            console_idle_seconds=env.number("CONSOLE_IDLE_SECONDS", 600.0),
            log_level=log_level(env),
        )
