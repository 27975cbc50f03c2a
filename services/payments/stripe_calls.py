"""The Stripe calls Payments makes, each with an idempotency key derived from the platform's ids."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from runtime.stripe_api import close_stripe_client, make_stripe_client, stripe_errors
from services.payments.domain import Payment, Refund, stripe_account_option, stripe_payment_intent_params


def _path(object_id: str | None) -> str:
    """An id as one path segment (the SDK's typed methods quote ids the same way)."""
    return quote(object_id or "", safe="")


class StripePayments:
    """PaymentIntents and refunds on the right account for the payment's charge model."""

    def __init__(self, api_key: str, api_base: str, *, timeout: float = 10.0) -> None:
        self.client = make_stripe_client(api_key, api_base, timeout=timeout)

    async def close(self) -> None:
        await close_stripe_client(self.client)

    async def _call(
        self, method: str, path: str, params: dict[str, Any], account: str | None, key: str | None = None
    ) -> dict[str, Any]:
        """One call through the SDK's requestor (encoding, retries, idempotency, typed errors),
        answering Stripe's JSON as a dict: building StripeObjects only to turn them back into
        dicts cost a third of the SDK's CPU per call."""
        options: dict[str, Any] = {}
        if account:
            options["stripe_account"] = account
        if key:
            options["idempotency_key"] = key
        with stripe_errors():
            response = await self.client.raw_request_async(method, path, **params, **options)
        data: dict[str, Any] = dict(response.data)
        return data

    async def create_intent(self, payment: Payment) -> dict[str, Any]:
        """Creates the payment's PaymentIntent; a retry with the same payment makes no second one."""
        return await self._call(
            "post",
            "/v1/payment_intents",
            stripe_payment_intent_params(payment),
            stripe_account_option(payment),
            f"payment:{payment.id}:create",
        )

    async def retrieve_intent(self, intent_id: str, account: str | None) -> dict[str, Any]:
        return await self._call("get", f"/v1/payment_intents/{_path(intent_id)}", {}, account)

    async def refunds_of_charge(self, payment: Payment, charge_id: str) -> list[dict[str, Any]]:
        """The charge's refunds as Stripe has them now (newest first, up to 100)."""
        listed = await self._call(
            "get", "/v1/refunds", {"charge": charge_id, "limit": 100}, stripe_account_option(payment)
        )
        data: list[dict[str, Any]] = list(listed.get("data") or [])
        return data

    async def refunds_of_intent(self, payment: Payment) -> list[dict[str, Any]]:
        """The payment's refunds as Stripe has them now (newest first, up to 100)."""
        listed = await self._call(
            "get",
            "/v1/refunds",
            {"payment_intent": payment.stripe_payment_intent_id, "limit": 100},
            stripe_account_option(payment),
        )
        data: list[dict[str, Any]] = list(listed.get("data") or [])
        return data

    async def capture(self, payment: Payment, amount: int, fee: int) -> dict[str, Any]:
        params: dict[str, Any] = {"amount_to_capture": amount}
        if payment.application_fee_amount or fee:
            params["application_fee_amount"] = fee
        return await self._call(
            "post",
            f"/v1/payment_intents/{_path(payment.stripe_payment_intent_id)}/capture",
            params,
            stripe_account_option(payment),
            f"payment:{payment.id}:capture:{amount}",
        )

    async def cancel(self, payment: Payment) -> dict[str, Any]:
        return await self._call(
            "post",
            f"/v1/payment_intents/{_path(payment.stripe_payment_intent_id)}/cancel",
            {},
            stripe_account_option(payment),
            f"payment:{payment.id}:cancel",
        )

    async def create_refund(self, payment: Payment, refund: Refund) -> dict[str, Any]:
        """Direct: on the connected account, fee refunded; destination: transfer reversed too."""
        params: dict[str, Any] = {
            "payment_intent": payment.stripe_payment_intent_id,
            "amount": refund.amount,
            "metadata": {"platform_refund_id": refund.id, "platform_payment_id": payment.id},
        }
        if refund.reason:
            params["reason"] = refund.reason
        if payment.application_fee_amount:
            params["refund_application_fee"] = True
        if payment.charge_model == "destination":
            params["reverse_transfer"] = True
        return await self._call(
            "post", "/v1/refunds", params, stripe_account_option(payment), f"refund:{refund.id}:create"
        )

    # --- disputes: re-read, evidence, and under destination charges the transfer's reversal ---

    async def retrieve_dispute(self, dispute_id: str, account: str | None) -> dict[str, Any]:
        """The dispute as Stripe has it now, with its balance transactions (what was withdrawn)."""
        return await self._call("get", f"/v1/disputes/{_path(dispute_id)}", {}, account)

    async def update_dispute(
        self, dispute_id: str, account: str | None, evidence: dict[str, str], submit: bool
    ) -> dict[str, Any]:
        """Stages (`submit` false) or submits evidence; answers the dispute as it is then."""
        return await self._call(
            "post", f"/v1/disputes/{_path(dispute_id)}", {"evidence": evidence, "submit": submit}, account
        )

    async def retrieve_charge(self, charge_id: str, account: str | None) -> dict[str, Any]:
        return await self._call("get", f"/v1/charges/{_path(charge_id)}", {}, account)

    async def retrieve_transfer(self, transfer_id: str) -> dict[str, Any]:
        """A transfer of the platform's, with its reversals (the first 10; a charge's has few)."""
        return await self._call("get", f"/v1/transfers/{_path(transfer_id)}", {}, None)

    async def reverse_transfer(self, transfer_id: str, amount: int, dispute_id: str, key: str) -> dict[str, Any]:
        return await self._call(
            "post",
            f"/v1/transfers/{_path(transfer_id)}/reversals",
            {"amount": amount, "metadata": {"stripe_dispute_id": dispute_id}},
            None,
            key,
        )

    async def transfers_in_group(self, group: str) -> list[dict[str, Any]]:
        listed = await self._call("get", "/v1/transfers", {"transfer_group": group, "limit": 10}, None)
        data: list[dict[str, Any]] = list(listed.get("data") or [])
        return data

    async def create_transfer(
        self, amount: int, currency: str, destination: str, group: str, dispute_id: str, key: str
    ) -> dict[str, Any]:
        return await self._call(
            "post",
            "/v1/transfers",
            {
                "amount": amount,
                "currency": currency,
                "destination": destination,
                "transfer_group": group,
                "metadata": {"stripe_dispute_id": dispute_id},
            },
            None,
            key,
        )
