"""Stripe Connect: the connected account of an organisation, its onboarding links and its status."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

import asyncpg
import stripe

from runtime.audit import current_record
from runtime.db import Connection
from runtime.deadlines import remaining
from runtime.errors import Conflict, FieldError, InvalidArgument, Unavailable
from runtime.inbox import APPLIED, IGNORED, InboundEvent
from runtime.stripe_api import stripe_errors
from services.accounts import audit_trail
from services.accounts.domain import (
    ACCOUNT_TYPES,
    Organization,
    StripeAccountState,
    account_audit_fields,
    account_state_from_stripe,
    event_is_newer,
)
from services.accounts.organizations import Organizations, organization_not_found

log = logging.getLogger("services.accounts.connect")
# The longest a Stripe call may take (SDK retries included), capped by the RPC's own deadline.
STRIPE_CALL_SECONDS = 20.0
DEAUTHORIZED = "account.application.deauthorized"
# Merchant category "Charitable and Social Service Organizations".
NON_PROFIT_MCC = "8398"


@contextlib.asynccontextmanager
async def stripe_call() -> AsyncIterator[None]:
    """Maps SDK failures to domain errors and gives up when the RPC's deadline passes."""
    try:
        async with asyncio.timeout(remaining(STRIPE_CALL_SECONDS)):
            with stripe_errors():
                yield
    except TimeoutError:
        raise Unavailable("Stripe did not answer in time, try again later", "stripe_unavailable") from None


def _now() -> datetime:
    return datetime.now(UTC)


def _as_dict(account: Any) -> dict[str, Any]:
    if isinstance(account, stripe.StripeObject):
        return account.to_dict()
    return dict(account)


def account_params(org: Organization, account_type: str) -> dict[str, Any]:
    """What the platform tells Stripe about an organisation when it creates its account."""
    profile: dict[str, Any] = {"name": org.name, "support_email": org.email}
    if org.business_type == "non_profit":
        profile["mcc"] = NON_PROFIT_MCC
    return {
        "type": account_type,
        "country": org.country,
        "email": org.email,
        "business_type": org.business_type,
        "business_profile": profile,
        "default_currency": org.default_currency,
        "capabilities": {"card_payments": {"requested": True}, "transfers": {"requested": True}},
        "metadata": {"organization_id": org.id},
    }


def _check_url(name: str, value: str, errors: list[FieldError]) -> None:
    parsed = urlparse(value)
    if parsed.scheme not in ("https", "http") or not parsed.netloc or len(value) > 2000:
        errors.append(FieldError(name, "must be an absolute http(s) URL"))


class Connect:
    """The connected-account use cases; Stripe is called through the official SDK."""

    def __init__(self, organizations: Organizations, stripe_client: stripe.StripeClient) -> None:
        self._orgs = organizations
        self._stripe = stripe_client

    @property
    def stripe(self) -> stripe.StripeClient:
        return self._stripe

    @property
    def pool(self) -> asyncpg.Pool:
        return self._orgs.pool

    async def create_account(self, organization_id: str, account_type: str = "") -> StripeAccountState:
        """Creates the organisation's connected account once; later and concurrent calls return it.

        The organisation row stays locked while Stripe is asked, so concurrent calls wait and
        then find the account; Stripe's idempotency key (from the organisation id) makes a
        retried call after a lost answer return the same account. If Stripe fails, the
        transaction rolls back and nothing is written.
        """
        account_type = account_type or "express"
        if account_type not in ACCOUNT_TYPES:
            raise InvalidArgument(
                "type must be express or custom",
                "validation_error",
                [FieldError("type", f"must be one of {', '.join(ACCOUNT_TYPES)}")],
            )
        pool, rows = self._orgs.pool, self._orgs.rows
        async with pool.acquire() as conn, conn.transaction():
            org = await rows.get(conn, organization_id, for_update=True)
            if org is None:
                raise organization_not_found()
            if org.stripe is not None:
                return org.stripe
            asked_at = _now()
            async with stripe_call():
                account = await self._stripe.v1.accounts.create_async(
                    params=account_params(org, account_type),  # type: ignore[arg-type]
                    options={"idempotency_key": f"collect-organization-{org.id}-account"},
                )
            state = account_state_from_stripe(_as_dict(account), asked_at)
            await rows.set_stripe_state(conn, org.id, state, only_if_newer=False)
            await self._orgs.policy_changed(conn, organization_id)
            await audit_trail.record(
                conn,
                current_record(
                    "stripe_account.created",
                    targets={"stripe_account": state.account_id},
                    after={"type": state.type},
                    organization_id=organization_id,
                ),
            )
        log.info("connected account created", extra={"organization_id": organization_id, "account": state.account_id})
        return replace(state, updated_at=_now())

    async def account_of(self, organization_id: str) -> StripeAccountState:
        org = await self._orgs.get(organization_id)
        if org.stripe is None:
            raise Conflict("the organisation has no Stripe account yet", "stripe_account_missing")
        return org.stripe

    async def onboarding_link(self, organization_id: str, return_url: str, refresh_url: str) -> tuple[str, datetime]:
        errors: list[FieldError] = []
        _check_url("return_url", return_url, errors)
        _check_url("refresh_url", refresh_url, errors)
        if errors:
            raise InvalidArgument("the request is invalid", "validation_error", errors)
        account = await self.account_of(organization_id)
        async with stripe_call():
            link = await self._stripe.v1.account_links.create_async(
                params={
                    "account": account.account_id,
                    "return_url": return_url,
                    "refresh_url": refresh_url,
                    "type": "account_onboarding",
                }
            )
        expires_at = datetime.fromtimestamp(int(link.expires_at), UTC)
        async with self._orgs.pool.acquire() as conn, conn.transaction():
            await audit_trail.record(
                conn,
                current_record(
                    "stripe_account.onboarding_link_created",
                    targets={"stripe_account": account.account_id},
                    after={"expires_at": expires_at.isoformat()},  # never the URL: it signs the person in
                    organization_id=organization_id,
                ),
            )
        return str(link.url), expires_at

    async def status(self, organization_id: str, *, refresh: bool = False) -> StripeAccountState:
        """The stored status; with `refresh`, read again from Stripe first (and stored unless newer is known)."""
        stored = await self.account_of(organization_id)
        if not refresh:
            return stored
        asked_at = _now()
        async with stripe_call():
            account = await self._stripe.v1.accounts.retrieve_async(stored.account_id)
        fresh = account_state_from_stripe(_as_dict(account), asked_at)
        async with self._orgs.pool.acquire() as conn, conn.transaction():  # the NOTIFY goes with the write
            written = await self._orgs.rows.set_stripe_state(conn, organization_id, fresh)
            if written:
                await self._orgs.policy_changed(conn, organization_id)
            await audit_trail.record(
                conn,
                current_record(
                    "stripe_account.refreshed",
                    targets={"stripe_account": stored.account_id},
                    before=account_audit_fields(stored),
                    after={**account_audit_fields(fresh), "stored": written},
                    organization_id=organization_id,
                ),
            )
        return await self.account_of(organization_id)

    async def apply_event(self, conn: Connection, event: InboundEvent) -> str:
        """Applies an `account.updated` event (inside the inbox's transaction).

        An event older than the stored state is ignored; when Stripe's one-second `created`
        cannot tell, the account is read again from Stripe instead of trusting either.
        """
        if event.type == DEAUTHORIZED:
            return await self._apply_deauthorization(conn, event)
        if event.type != "account.updated":
            return IGNORED
        obj = event.data_object
        account_id = event.account or str(obj.get("id") or "")
        if not account_id:
            return IGNORED
        org = await self._orgs.rows.organization_of_account(conn, account_id, for_update=True)
        if org is None:
            org = await self._creating_organization(conn, account_id, obj)
        if org is None or org.stripe is None or org.stripe.account_id != account_id:
            log.info("account event for an unknown account", extra={"event_id": event.event_id})
            return IGNORED
        created = event.created_at
        newer = event_is_newer(created, org.stripe.state_at) if created is not None else None
        if newer is False:
            return IGNORED
        if newer is None or created is None or obj.get("id") != account_id:
            asked_at = _now()
            async with stripe_call():
                account = await self._stripe.v1.accounts.retrieve_async(account_id)
            state = account_state_from_stripe(_as_dict(account), asked_at)
        else:
            state = account_state_from_stripe(obj, created)
        written = await self._orgs.rows.set_stripe_state(conn, org.id, state)
        if written:
            await self._orgs.policy_changed(conn, org.id)
        return APPLIED if written else IGNORED

    async def _creating_organization(
        self, conn: Connection, account_id: str, obj: dict[str, Any]
    ) -> Organization | None:
        """The organisation an event's account was created for, once that creation has committed.

        Stripe may send an account's first events while `create_account` still holds the
        organisation's row: locking the row waits for it, instead of dropping the event.
        """
        metadata = obj.get("metadata")
        organization_id = metadata.get("organization_id") if isinstance(metadata, dict) else None
        if obj.get("id") != account_id or not isinstance(organization_id, str):
            return None
        return await self._orgs.rows.get(conn, organization_id, for_update=True)

    async def _apply_deauthorization(self, conn: Connection, event: InboundEvent) -> str:
        """The account disconnected the platform: no more charges or payouts through it (final)."""
        if not event.account:
            return IGNORED
        org = await self._orgs.rows.organization_of_account(conn, event.account, for_update=True)
        if org is None or org.stripe is None:
            return IGNORED
        created = event.created_at or _now()
        if event_is_newer(created, org.stripe.state_at) is False:
            return IGNORED
        state = replace(org.stripe, charges_enabled=False, payouts_enabled=False, state_at=created)
        await self._orgs.rows.set_stripe_state(conn, org.id, state, only_if_newer=False)
        await self._orgs.policy_changed(conn, org.id)
        log.warning("connected account deauthorized the platform", extra={"organization_id": org.id})
        return APPLIED
