"""Use cases of organisations: create, read, change, list, and the payment policy other services ask for."""

from __future__ import annotations

import time
from dataclasses import replace

import asyncpg

from runtime.db import Connection
from runtime.errors import NotFound
from runtime.notifications import notify
from runtime.pagination import decode_cursor, next_page, page_limit
from services.accounts import repository
from services.accounts.domain import (
    NewOrganization,
    Organization,
    OrganizationChanges,
    PaymentPolicy,
    ensure_valid,
    normalize_email,
    normalize_iban,
    validate_changes,
    validate_new_organization,
)
from services.accounts.repository import OrganizationRows

POLICY_CHANNEL = "accounts_policy_changed"


def organization_not_found() -> NotFound:
    return NotFound("organization not found", "organization_not_found")


class PolicyCache:
    """A few seconds of payment policies, dropped on every write this process makes to an organisation.

    Other replicas' writes show after at most `ttl` seconds.
    """

    def __init__(self, ttl: float = 3.0, max_entries: int = 10_000) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._entries: dict[str, tuple[PaymentPolicy, float]] = {}

    def get(self, organization_id: str) -> PaymentPolicy | None:
        found = self._entries.get(organization_id)
        if found is None or found[1] < time.monotonic():
            return None
        return found[0]

    def put(self, policy: PaymentPolicy) -> None:
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[policy.organization_id] = (policy, time.monotonic() + self._ttl)

    def invalidate(self, organization_id: str) -> None:
        self._entries.pop(organization_id, None)

    def clear(self) -> None:
        self._entries.clear()


class Organizations:
    """The organisation use cases over the pool, the sealed rows and the policy cache."""

    def __init__(self, pool: asyncpg.Pool, rows: OrganizationRows, cache: PolicyCache) -> None:
        self.pool = pool
        self.rows = rows
        self.cache = cache

    async def create(self, new: NewOrganization) -> Organization:
        new = NewOrganization(
            name=new.name.strip(),
            email=normalize_email(new.email),
            country=new.country.strip().upper(),
            business_type=new.business_type,
            address=new.address,
            charge_model=new.charge_model or "direct",
            fee_percent_bps=new.fee_percent_bps,
            fee_minimum=new.fee_minimum,
            legal_entity=new.legal_entity.strip(),
            bank_account_iban=normalize_iban(new.bank_account_iban),
            timezone=new.timezone or "Europe/Paris",
            default_currency=(new.default_currency or "eur").lower(),
            siren=new.siren.strip(),
        )
        ensure_valid(validate_new_organization(new))
        async with self.pool.acquire() as conn:
            return await self.rows.insert(conn, new)

    async def get(self, organization_id: str) -> Organization:
        async with self.pool.acquire() as conn:
            found = await self.rows.get(conn, organization_id)
        if found is None:
            raise organization_not_found()
        return found

    async def update(self, organization_id: str, changes: OrganizationChanges) -> Organization:
        if changes.name is not None:
            changes = replace(changes, name=changes.name.strip())
        if changes.siren is not None:
            changes = replace(changes, siren=changes.siren.strip())
        if changes.bank_account_iban is not None:
            changes = replace(changes, bank_account_iban=normalize_iban(changes.bank_account_iban))
        ensure_valid(validate_changes(changes))
        async with self.pool.acquire() as conn, conn.transaction():  # the NOTIFY goes with the write
            updated = await self.rows.update(conn, organization_id, changes)
            if updated is not None:
                await self.policy_changed(conn, organization_id)
        if updated is None:
            raise organization_not_found()
        return updated

    async def policy_changed(self, conn: Connection, organization_id: str) -> None:
        """Drops this replica's cached policy now; every replica and policy watcher hears of it
        when `conn`'s transaction commits (`services/accounts/feeds.py`)."""
        self.cache.invalidate(organization_id)
        await notify(conn, POLICY_CHANNEL, organization_id)

    async def page(self, limit: int, cursor: str) -> tuple[list[Organization], str]:
        size = page_limit(limit)
        async with self.pool.acquire() as conn:
            found = await self.rows.page(conn, size + 1, decode_cursor(cursor))
        return next_page(found, size)

    async def find_by_email(self, email: str) -> list[Organization]:
        async with self.pool.acquire() as conn:
            return await self.rows.find_by_email(conn, normalize_email(email))

    async def reseal_all(self, batch: int = 100) -> int:
        """Re-encrypts every organisation sealed with an older key; returns how many (key rotation)."""
        done = 0
        while True:
            async with self.pool.acquire() as conn:
                stale = await self.rows.stale_key_ids(conn, batch)
                for organization_id in stale:
                    async with conn.transaction():
                        done += await self.rows.reseal(conn, organization_id)
            if len(stale) < batch:
                return done

    async def payment_policy(self, organization_id: str) -> PaymentPolicy:
        """On every payment's path: the cache, else one primary-key read."""
        cached = self.cache.get(organization_id)
        if cached is not None:
            return cached
        async with self.pool.acquire() as conn:
            policy = await repository.payment_policy(conn, organization_id)
        if policy is None:
            raise organization_not_found()
        if policy.charges_enabled:
            # Only enabled policies are cached: an organisation that just finished onboarding
            # can take its first payment at once, whatever a replica cached a moment before.
            self.cache.put(policy)
        return policy

    async def organization_of_account(self, stripe_account_id: str) -> str:
        async with self.pool.acquire() as conn:
            found = await repository.organization_id_of_account(conn, stripe_account_id)
        if found is None:
            raise NotFound("no organisation has this Stripe account", "stripe_account_unknown")
        return found
