"""Runtime settings of the Stripe sandbox."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

# What a million stored payments may take in memory, with events, idempotency entries, the request
# log and the live dicts at their caps (`bench/bench_sandbox_memory.py` measures it).
MEMORY_BUDGET_MILLION_PAYMENTS = 3 * 2**29  # 1.5 GiB


@dataclass
class SandboxConfig:
    """Settings of one sandbox instance; most can be changed at runtime via `POST /_sandbox/config`."""

    fee_percent_bps: int = 140
    fee_fixed: int = 25
    available_immediately: bool = True
    payout_auto_pay: bool = True
    webhook_retry_base_seconds: float = 1.0
    webhook_max_attempts: int = 8
    webhook_duplicates: int = 1
    webhook_shuffle: bool = False
    state_file: str | None = None
    qonto_credit_url: str | None = None
    qonto_credit_auth: str | None = None
    public_url: str | None = None
    # Extensions (defaults keep the documented behaviour).
    payout_delay_seconds: float = 0.0
    # A refund of a card ending 5126 fails this long after it succeeded.
    refund_failure_delay_seconds: float = 0.2
    webhook_shuffle_window_seconds: float = 0.05
    webhook_concurrency: int = 32
    webhook_timeout_seconds: float = 5.0
    # Stripe's own limits are 100/s live, 25/s test per account; off unless set (tests of 429 handling).
    rate_limit_per_second: int | None = None
    # Test-mode disputes (card 4000 0000 0000 0259): opened this long after the capture, decided
    # this long after evidence is submitted; Stripe's dispute fee in minor units.
    dispute_delay_seconds: float = 0.2
    dispute_outcome_delay_seconds: float = 0.2
    dispute_fee: int = 1500
    # Bounded memory: events kept (Stripe keeps 30 days), idempotency keys (Stripe: 24 h; the SDK
    # sends one with every POST), request log entries.
    event_retention: int = 200_000
    event_retention_seconds: float = 30 * 86_400
    idempotency_retention: int = 20_000
    request_log_size: int = 5_000
    # Objects kept as dicts; the others are packed (see store.py) until asked for.
    live_objects: int = 5_000

    @classmethod
    def from_env(cls, **overrides: Any) -> SandboxConfig:
        """Defaults, then `STRIPE_SANDBOX_*` environment variables, then explicit overrides."""
        config = cls()
        url = os.environ.get("STRIPE_SANDBOX_QONTO_CREDIT_URL")
        if url:
            config.qonto_credit_url = url
        auth = os.environ.get("STRIPE_SANDBOX_QONTO_CREDIT_AUTH")
        if auth:
            config.qonto_credit_auth = auth
        config.update(overrides)
        return config

    def update(self, values: dict[str, Any]) -> None:
        """Apply a partial update; unknown names raise `KeyError`, values are coerced to the field's type."""
        fields = {f.name: f for f in dataclasses.fields(self)}
        for name, value in values.items():
            if name not in fields:
                raise KeyError(name)
            current = getattr(self, name)
            if isinstance(value, str) and isinstance(current, bool):
                value = value.strip().lower() in ("1", "true", "yes", "on")
            elif value is not None and isinstance(current, bool):
                value = bool(value)
            elif value is not None and isinstance(current, int):
                value = int(value)
            elif value is not None and isinstance(current, float):
                value = float(value)
            setattr(self, name, value)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
