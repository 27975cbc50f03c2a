"""What Terminal asks outside its schema: the organisation's payment policy (Accounts) and Stripe Terminal."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import grpc
import stripe

from runtime.clients import payment_policy
from runtime.errors import Conflict, NotFound
from runtime.stripe_api import stripe_errors
from services.terminal.domain import Address, StripeScope, stripe_scope


@dataclass(frozen=True)
class Policy:
    organization_id: str
    stripe_account_id: str
    charge_model: str
    charges_enabled: bool
    country: str

    def scope(self) -> StripeScope:
        """Where the organisation's Terminal objects live at Stripe; 409 without a connected account."""
        if not self.stripe_account_id:
            raise Conflict(
                "the organisation has no Stripe account yet; create it and finish onboarding first",
                "stripe_account_missing",
            )
        return stripe_scope(self.charge_model, self.stripe_account_id, self.organization_id)


class Accounts:
    """The Accounts service, asked over gRPC with the caller's token."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._channel = channel

    async def policy(self, organization_id: str) -> Policy:
        found = await payment_policy(self._channel, organization_id)
        return Policy(
            organization_id=found.organization_id,
            stripe_account_id=found.stripe_account_id,
            charge_model=found.charge_model,
            charges_enabled=found.charges_enabled,
            country=found.country,
        )


@dataclass(frozen=True)
class StripeReader:
    id: str
    device_type: str
    serial_number: str
    status: str
    label: str
    last_seen_at: datetime | None


class StripeTerminal:
    """Stripe Terminal calls, every one mapped by `stripe_errors()`."""

    def __init__(self, client: stripe.StripeClient) -> None:
        self._client = client

    def _options(self, scope: StripeScope, idempotency_key: str = "") -> dict[str, Any]:
        options: dict[str, Any] = {"stripe_account": scope.stripe_account} if scope.stripe_account else {}
        if idempotency_key:
            options["idempotency_key"] = idempotency_key
        return options

    async def create_location(
        self, scope: StripeScope, display_name: str, address: Address, idempotency_key: str
    ) -> str:
        stripe_address: dict[str, str] = {
            "line1": address.line1,
            "city": address.city,
            "postal_code": address.postal_code,
            "country": address.country,
        }
        if address.line2:
            stripe_address["line2"] = address.line2
        if address.state:
            stripe_address["state"] = address.state
        params: dict[str, Any] = {"display_name": display_name, "address": stripe_address, "metadata": scope.metadata}
        with stripe_errors("Stripe Terminal"):
            location = await self._client.v1.terminal.locations.create_async(
                params,  # type: ignore[arg-type]
                self._options(scope, idempotency_key),  # type: ignore[arg-type]
            )
        return str(location.id)

    async def connection_token(self, scope: StripeScope, stripe_location_id: str) -> str:
        with stripe_errors("Stripe Terminal"):
            token = await self._client.v1.terminal.connection_tokens.create_async(
                {"location": stripe_location_id},
                self._options(scope),  # type: ignore[arg-type]
            )
        return str(token.secret)

    async def register_reader(
        self, scope: StripeScope, registration_code: str, label: str, stripe_location_id: str, idempotency_key: str
    ) -> StripeReader:
        params: dict[str, Any] = {
            "registration_code": registration_code,
            "label": label,
            "location": stripe_location_id,
            "metadata": scope.metadata,
        }
        with stripe_errors("Stripe Terminal"):
            reader = await self._client.v1.terminal.readers.create_async(
                params,  # type: ignore[arg-type]
                self._options(scope, idempotency_key),  # type: ignore[arg-type]
            )
        return StripeReader(
            id=str(reader.id),
            device_type=str(reader.device_type or ""),
            serial_number=str(reader.serial_number or ""),
            status=str(reader.status or "unknown"),
            label=str(reader.label or label),
            last_seen_at=datetime.fromtimestamp(reader.last_seen_at / 1000, UTC) if reader.last_seen_at else None,
        )

    async def delete_reader(self, scope: StripeScope, stripe_reader_id: str) -> None:
        """Deletes the reader at Stripe; one already gone there is fine."""
        try:
            with stripe_errors("Stripe Terminal"):
                await self._client.v1.terminal.readers.delete_async(stripe_reader_id, None, self._options(scope))  # type: ignore[arg-type]
        except NotFound as error:
            if error.code != "stripe_resource_missing":
                raise
