"""What every Payments use case works with: pool, Stripe, Accounts, settings, and test-only faults."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import asyncpg

from services.payments.domain import Settings
from services.payments.policy import PolicyClient
from services.payments.stripe_calls import StripePayments


class InjectedFault(RuntimeError):
    """Raised at a named point when a test asked for it (simulates a crash there)."""


class Faults:
    """Named crash points for tests: `inject("after_stripe_create")` makes the next pass raise."""

    def __init__(self) -> None:
        self._armed: dict[str, int] = {}

    def inject(self, point: str, times: int = 1) -> None:
        self._armed[point] = times

    def clear(self) -> None:
        self._armed.clear()

    def hit(self, point: str) -> None:
        left = self._armed.get(point, 0)
        if left > 0:
            self._armed[point] = left - 1
            raise InjectedFault(f"injected fault at {point}")


# One set per process; tests arm it around the call they break.
FAULTS = Faults()


@dataclass
class Context:
    pool: asyncpg.Pool
    stripe: StripePayments
    policies: PolicyClient
    settings: Settings
    receipts_due: asyncio.Event = field(default_factory=asyncio.Event)
    faults: Faults = field(default_factory=lambda: FAULTS)
