"""The settings every service shares, read once from the environment."""

from __future__ import annotations

from dataclasses import dataclass

from runtime.auth import token_secret_from_env
from runtime.logs import DEFAULT_LOG_LEVEL, log_level
from runtime.settings import Env, SettingsError

SERVICES = ("accounts", "payments", "terminal", "banking")


@dataclass(frozen=True)
class ServiceSettings:
    service: str
    database_url: str
    auth_token_secret: str
    grpc_host: str = "127.0.0.1"
    grpc_port: int = 0
    token_ttl_seconds: int = 900
    # host:port of the other services, by name.
    targets: tuple[tuple[str, str], ...] = ()
    stripe_api_key: str = "sk_test_sandbox"
    stripe_api_base: str = "https://api.stripe.com"
    rpc_timeout_seconds: float = 5.0
    db_pool_max: int = 10
    log_level: str = DEFAULT_LOG_LEVEL
    # The /metrics endpoint's port (runtime/metrics.py); 0 = none.
    metrics_port: int = 0

    def target(self, service: str) -> str:
        found = dict(self.targets).get(service)
        if not found:
            raise SettingsError(f"missing required setting {service.upper()}_ADDR")
        return found

    @classmethod
    def from_env(cls, service: str, env: Env | None = None) -> ServiceSettings:
        env = env or Env()
        addresses = {name: env.optional(f"{name.upper()}_ADDR") for name in SERVICES if name != service}
        targets = tuple((name, addr) for name, addr in addresses.items() if addr)
        return cls(
            service=service,
            database_url=env.text("DATABASE_URL"),
            auth_token_secret=token_secret_from_env(env),
            grpc_host=env.text("GRPC_HOST", "127.0.0.1"),
            grpc_port=env.integer("GRPC_PORT", 0),
            token_ttl_seconds=env.integer("AUTH_TOKEN_TTL_SECONDS", 900),
            targets=targets,
            stripe_api_key=env.text("STRIPE_API_KEY", "sk_test_sandbox"),
            stripe_api_base=env.text("STRIPE_API_BASE", "https://api.stripe.com"),
            rpc_timeout_seconds=env.number("RPC_TIMEOUT_SECONDS", 5.0),
            db_pool_max=env.integer("DB_POOL_MAX", 10),
            log_level=log_level(env),
            metrics_port=env.integer("METRICS_PORT", 0),
        )
