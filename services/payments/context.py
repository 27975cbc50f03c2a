"""What every Payments use case works with: pool, Stripe, Accounts, settings.

It is also the seam tests break things through (a `stripe` that fails after answering, say),
so that no test-only code sits in the production path."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg

from services.payments.domain import Settings
from services.payments.policy import PolicyClient
from services.payments.stripe_calls import StripePayments


@dataclass
class Context:
    pool: asyncpg.Pool
    stripe: StripePayments
    policies: PolicyClient
    settings: Settings
    receipts_due: asyncio.Event = field(default_factory=asyncio.Event)
    # The books' clock: a move is booked on the local day it reads (tests move it to another day).
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
