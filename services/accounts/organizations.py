"""Use cases of organisations: create, read, change, list, and the payment policy other services ask for."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import replace

import asyncpg

from runtime.audit import current_record
from runtime.db import Connection
from runtime.defaults import DEFAULT_CHARGE_MODEL, DEFAULT_CURRENCY, DEFAULT_TIMEZONE
from runtime.errors import NotFound
from runtime.notifications import notify
from runtime.pagination import decode_cursor, next_page, page_limit
from services.accounts import audit_trail, repository
from services.accounts.domain import (
    AUDITED_ORGANIZATION_FIELDS,
    NewOrganization,
    Organization,
    OrganizationChanges,
    PaymentPolicy,
    audit_changes,
    ensure_valid,
    normalize_email,
    normalize_iban,
    organization_audit_fields,
    validate_changes,
    validate_new_organization,
)
from services.accounts.repository import OrganizationRows

POLICY_CHANNEL = "accounts_policy_changed"
log = logging.getLogger("accounts.organizations")


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


def policy_change(payload: str) -> tuple[str, str]:
    """(organisation id, change id) of a policy NOTIFY payload; the change id is empty when no writer waits."""
    organization_id, _, change_id = payload.partition(" ")
    return organization_id, change_id


class PolicyFollowers:
    """This replica's FollowPaymentPolicies streams and the changes they have acknowledged.

    A writer `expect`s its change before committing it (so no acknowledgement can come too early),
    then `wait`s until every follower live at that moment acknowledged it or went away, at most
    `timeout` seconds (a stuck follower delays writes, it never blocks them).
    """

    def __init__(self, timeout: float = 2.0) -> None:
        self._timeout = timeout
        self._followers: set[str] = set()
        self._expected: dict[str, dict[str, asyncio.Event]] = {}

    def join(self) -> str:
        follower = uuid.uuid4().hex
        self._followers.add(follower)
        return follower

    def leave(self, follower: str) -> None:
        self._followers.discard(follower)
        for waiting in self._expected.values():
            if follower in waiting:
                waiting[follower].set()

    def acknowledge(self, follower: str, change_id: str) -> None:
        found = self._expected.get(change_id, {}).get(follower)
        if found is not None:
            found.set()

    def expect(self) -> str:
        change_id = uuid.uuid4().hex
        self._expected[change_id] = {follower: asyncio.Event() for follower in self._followers}
        return change_id

    async def wait(self, change_id: str) -> None:
        waiting = self._expected.get(change_id, {})
        if not waiting:
            return
        try:
            async with asyncio.timeout(self._timeout):
                await asyncio.gather(*(event.wait() for event in waiting.values()))
        except TimeoutError:
            log.warning("policy change %s not acknowledged by every follower within %ss", change_id, self._timeout)

    def forget(self, change_id: str) -> None:
        self._expected.pop(change_id, None)


class Organizations:
    """The organisation use cases over the pool, the sealed rows and the policy cache."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        rows: OrganizationRows,
        cache: PolicyCache,
        min_payment: int,
        followers: PolicyFollowers | None = None,
    ) -> None:
        self.pool = pool
        self.rows = rows
        self.cache = cache
        self.followers = followers or PolicyFollowers()
        self.min_payment = min_payment  # a fee policy must leave the organisation part of the smallest payment

    async def create(self, new: NewOrganization) -> Organization:
        new = NewOrganization(
            name=new.name.strip(),
            email=normalize_email(new.email),
            country=new.country.strip().upper(),
            business_type=new.business_type,
            address=new.address,
            charge_model=new.charge_model or DEFAULT_CHARGE_MODEL,
            fee_percent_bps=new.fee_percent_bps,
            fee_minimum=new.fee_minimum,
            legal_entity=new.legal_entity.strip(),
            bank_account_iban=normalize_iban(new.bank_account_iban),
            timezone=new.timezone or DEFAULT_TIMEZONE,
            default_currency=(new.default_currency or DEFAULT_CURRENCY).lower(),
            siren=new.siren.strip(),
        )
        ensure_valid(validate_new_organization(new, self.min_payment))
        async with self.pool.acquire() as conn, conn.transaction():
            org = await self.rows.insert(conn, new)
            after = {name: getattr(org, name) for name in AUDITED_ORGANIZATION_FIELDS}
            await audit_trail.record(
                conn,
                current_record(
                    "organization.created", targets={"organization_id": org.id}, after=after, organization_id=org.id
                ),
            )
            return org

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
        ensure_valid(validate_changes(changes, self.min_payment))
        change_id = self.followers.expect()
        try:
            async with self.pool.acquire() as conn, conn.transaction():  # the NOTIFY goes with the write
                current = await self.rows.get(conn, organization_id, for_update=True)
                updated = await self.rows.update(conn, organization_id, changes)
                if updated is not None and current is not None:
                    await self.policy_changed(conn, organization_id, change_id)
                    before, after = audit_changes(
                        organization_audit_fields(current),
                        organization_audit_fields(updated),
                        AUDITED_ORGANIZATION_FIELDS,
                    )
                    await audit_trail.record(
                        conn,
                        current_record(
                            "organization.updated",
                            targets={"organization_id": organization_id},
                            before=before,
                            after=after,
                            organization_id=organization_id,
                        ),
                    )
            if updated is None:
                raise organization_not_found()
            await self.followers.wait(change_id)  # read-your-writes: the next payment sees the change
        finally:
            self.followers.forget(change_id)
        return updated

    async def policy_changed(self, conn: Connection, organization_id: str, change_id: str = "") -> None:
        """Drops this replica's cached policy now; every replica and policy watcher hears of it
        when `conn`'s transaction commits (`services/accounts/feeds.py`)."""
        self.cache.invalidate(organization_id)
        await notify(conn, POLICY_CHANNEL, f"{organization_id} {change_id}".strip())

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
