"""The Stripe calls Payments makes, each with an idempotency key derived from the platform's ids."""

from __future__ import annotations

from typing import Any

from runtime.stripe_api import close_stripe_client, make_stripe_client, stripe_errors
from services.payments.domain import Payment, Refund, stripe_account_option, stripe_payment_intent_params


def _plain(obj: Any) -> dict[str, Any]:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


class StripePayments:
    """PaymentIntents and refunds on the right account for the payment's charge model."""

    def __init__(self, api_key: str, api_base: str, *, timeout: float = 10.0) -> None:
        self.client = make_stripe_client(api_key, api_base, timeout=timeout)

    async def close(self) -> None:
        await close_stripe_client(self.client)

    @staticmethod
    def _options(account: str | None, key: str | None = None) -> Any:
        options: dict[str, Any] = {}
        if account:
            options["stripe_account"] = account
        if key:
            options["idempotency_key"] = key
        return options

    async def create_intent(self, payment: Payment) -> dict[str, Any]:
        """Creates the payment's PaymentIntent; a retry with the same payment makes no second one."""
        options = self._options(stripe_account_option(payment), f"payment:{payment.id}:create")
        with stripe_errors():
            intent = await self.client.v1.payment_intents.create_async(
                params=stripe_payment_intent_params(payment),  # type: ignore[arg-type]
                options=options,
            )
        return _plain(intent)

    async def retrieve_intent(self, intent_id: str, account: str | None) -> dict[str, Any]:
        with stripe_errors():
            intent = await self.client.v1.payment_intents.retrieve_async(intent_id, options=self._options(account))
        return _plain(intent)

    async def capture(self, payment: Payment, amount: int, fee: int) -> dict[str, Any]:
        params: dict[str, Any] = {"amount_to_capture": amount}
        if payment.application_fee_amount or fee:
            params["application_fee_amount"] = fee
        options = self._options(stripe_account_option(payment), f"payment:{payment.id}:capture:{amount}")
        with stripe_errors():
            intent = await self.client.v1.payment_intents.capture_async(
                payment.stripe_payment_intent_id or "",
                params=params,  # type: ignore[arg-type]
                options=options,
            )
        return _plain(intent)

    async def cancel(self, payment: Payment) -> dict[str, Any]:
        options = self._options(stripe_account_option(payment), f"payment:{payment.id}:cancel")
        with stripe_errors():
            intent = await self.client.v1.payment_intents.cancel_async(
                payment.stripe_payment_intent_id or "", options=options
            )
        return _plain(intent)

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
        options = self._options(stripe_account_option(payment), f"refund:{refund.id}:create")
        with stripe_errors():
            created = await self.client.v1.refunds.create_async(
                params=params,  # type: ignore[arg-type]
                options=options,
            )
        return _plain(created)
