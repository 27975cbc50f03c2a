"""Use cases of locations, connection tokens and readers, scoped to one organisation."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from runtime import audit
from runtime.addresses import Address, normalize_address
from runtime.db import Connection
from runtime.errors import Conflict, FieldError, InvalidArgument, NotFound
from runtime.inbox import APPLIED, IGNORED, InboundEvent
from runtime.pagination import decode_cursor, next_page, page_limit
from services.terminal import repository
from services.terminal.domain import (
    Location,
    Reader,
    ensure_valid,
    reader_update,
    request_digest,
    validate_location,
    validate_reader,
)
from services.terminal.outside import Accounts, StripeTerminal

log = logging.getLogger("terminal")
_Row = TypeVar("_Row", Location, Reader)
_Made = TypeVar("_Made")


class Terminal:
    """Locations, connection tokens and readers; objects live where the charge model says."""

    def __init__(self, pool: asyncpg.Pool, accounts: Accounts, stripe: StripeTerminal) -> None:
        self._pool = pool
        self._accounts = accounts
        self._stripe = stripe

    async def create_location(self, organization_id: str, display_name: str, address: Address) -> Location:
        policy = await self._accounts.policy(organization_id)
        address = normalize_address(address, policy.country)
        ensure_valid(validate_location(display_name, address))
        scope = policy.scope()
        name = display_name.strip()
        digest = request_digest(
            scope.stripe_account or "",
            name,
            *(address.line1, address.line2, address.city),
            *(address.postal_code, address.country, address.state),
        )
        creation_id, stripe_location_id = await self._create_once(
            organization_id, "location", digest, lambda key: self._stripe.create_location(scope, name, address, key)
        )
        async with self._pool.acquire() as conn, conn.transaction():
            location = await repository.insert_location(
                conn,
                organization_id=organization_id,
                display_name=name,
                address=address,
                stripe_location_id=stripe_location_id,
                stripe_account_id=scope.stripe_account,
            )
            await repository.forget_stripe_creation(conn, creation_id)
            await audit.record(
                conn,
                "terminal_location.created",
                targets={"location_id": location.id, "stripe_location": stripe_location_id},
                organization_id=organization_id,
            )
        return location

    async def _create_once(
        self, organization_id: str, kind: str, digest: str, create: Callable[[str], Awaitable[_Made]]
    ) -> tuple[str, _Made]:
        """Records the creation first, then asks Stripe with an idempotency key derived from the record.

        A retry of the same request (Stripe acted but its answer was lost, or storing the result
        failed) finds the record and gets Stripe's first object back: never an orphan at Stripe.
        Stripe refusing the request (the request's fault) forgets the record.
        """
        async with self._pool.acquire() as conn:
            creation_id = await repository.record_stripe_creation(conn, organization_id, kind, digest)
        try:
            return creation_id, await create(f"collect-terminal-{kind}-{creation_id}")
        except (InvalidArgument, NotFound):
            async with self._pool.acquire() as conn:
                await repository.forget_stripe_creation(conn, creation_id)
            raise

    async def list_locations(self, organization_id: str, limit: int, cursor: str) -> tuple[list[Location], str]:
        size = page_limit(limit)
        async with self._pool.acquire() as conn:
            found = await repository.list_locations(conn, organization_id, size + 1, decode_cursor(cursor))
        return _page(found, size)

    async def connection_token(self, organization_id: str, location_id: str) -> tuple[str, Location]:
        """A fresh token scoped to the location (default: the organisation's default one); never cached."""
        async with self._pool.acquire() as conn:
            if location_id:
                location = await repository.get_location(conn, organization_id, location_id)
                if location is None:
                    raise NotFound("location not found", "location_not_found")
            else:
                location = await repository.default_location(conn, organization_id)
                if location is None:
                    raise Conflict(
                        "the organisation has no terminal location yet; an org_admin must create one",
                        "location_required",
                    )
        policy = await self._accounts.policy(organization_id)
        _ensure_can_charge(policy.charges_enabled)
        secret = await self._stripe.connection_token(policy.scope(), location.stripe_location_id)
        return secret, location

    async def register_reader(
        self, organization_id: str, registration_code: str, label: str, location_id: str
    ) -> Reader:
        ensure_valid(validate_reader(registration_code, label, location_id))
        async with self._pool.acquire() as conn:
            location = await repository.get_location(conn, organization_id, location_id)
        if location is None:
            raise NotFound("location not found", "location_not_found")
        policy = await self._accounts.policy(organization_id)
        scope = policy.scope()
        code, name = registration_code.strip(), label.strip()
        digest = request_digest(scope.stripe_account or "", location.stripe_location_id, code, name)
        try:
            creation_id, registered = await self._create_once(
                organization_id,
                "reader",
                digest,
                lambda key: self._stripe.register_reader(scope, code, name, location.stripe_location_id, key),
            )
        except NotFound as error:  # the location exists, so what Stripe misses is the code
            raise InvalidArgument(
                "the registration code is invalid or has expired; generate a new one on the reader",
                "invalid_registration_code",
                [FieldError("registration_code", "invalid or expired")],
            ) from error
        async with self._pool.acquire() as conn, conn.transaction():
            reader = await repository.insert_reader(
                conn,
                organization_id=organization_id,
                location_id=location.id,
                label=registered.label,
                stripe_reader_id=registered.id,
                stripe_account_id=scope.stripe_account,
                device_type=registered.device_type,
                serial_number=registered.serial_number,
                status=registered.status if registered.status in ("online", "offline") else "unknown",
                last_seen_at=registered.last_seen_at,
            )
            await repository.forget_stripe_creation(conn, creation_id)
            await audit.record(
                conn,
                "terminal_reader.registered",
                targets={"reader_id": reader.id, "location_id": location.id, "stripe_reader": registered.id},
                organization_id=organization_id,
            )
        return reader

    async def list_readers(self, organization_id: str, limit: int, cursor: str) -> tuple[list[Reader], str]:
        size = page_limit(limit)
        async with self._pool.acquire() as conn:
            found = await repository.list_readers(conn, organization_id, size + 1, decode_cursor(cursor))
        return _page(found, size)

    async def delete_reader(self, organization_id: str, reader_id: str) -> None:
        async with self._pool.acquire() as conn:
            reader = await repository.get_reader(conn, organization_id, reader_id)
        if reader is None:
            raise NotFound("reader not found", "reader_not_found")
        policy = await self._accounts.policy(organization_id)
        await self._stripe.delete_reader(policy.scope(), reader.stripe_reader_id)
        async with self._pool.acquire() as conn, conn.transaction():
            await repository.delete_reader(conn, reader.id)
            await audit.record(
                conn,
                "terminal_reader.deleted",
                targets={"reader_id": reader.id, "stripe_reader": reader.stripe_reader_id},
                organization_id=organization_id,
            )


def _ensure_can_charge(charges_enabled: bool) -> None:
    if not charges_enabled:
        raise Conflict(
            "the organisation's Stripe account cannot take charges yet; finish onboarding first",
            "charges_not_enabled",
        )


def _page(found: list[_Row], size: int) -> tuple[list[_Row], str]:
    return next_page(found, size)


async def apply_reader_event(conn: Connection, event: InboundEvent) -> str:
    """Applies a `terminal.reader.*` event: status and last seen, unless a newer event already did."""
    if not event.type.startswith("terminal.reader."):
        return IGNORED
    update = reader_update(event.data_object)
    if update is None or event.created_at is None:
        return IGNORED
    if await repository.apply_reader_update(conn, update, event.account, event.created_at):
        return APPLIED
    log.info("reader event %s changed nothing (unknown reader or older event)", event.event_id)
    return IGNORED
