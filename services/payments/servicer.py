"""PaymentsService: proto ⇄ domain translation, roles and organisation scope."""

from __future__ import annotations

import grpc
from collect.common.v1 import common_pb2
from collect.payments.v1 import payments_pb2 as pb
from collect.payments.v1 import payments_pb2_grpc

from runtime.auth import AGENT, ORG_ADMIN, PLATFORM_ADMIN, organization_scope, require_caller
from runtime.dates import parse_day_or_instant
from runtime.errors import NotFound
from runtime.pagination import decode_cursor, next_page, page_limit
from runtime.proto import EnumNames, from_timestamp, to_timestamp
from services.payments import books, creating, disputes, lifecycle, offline, refunding, stats
from services.payments import repository as repo
from services.payments.context import Context
from services.payments.domain import METHODS, Dispute, Payment, Refund

DISPUTE_STATUSES = EnumNames(pb.DisputeStatus)


def refund_message(refund: Refund) -> pb.Refund:
    return pb.Refund(
        id=refund.id,
        payment_id=refund.payment_id,
        amount=refund.amount,
        currency=refund.currency,
        reason=refund.reason,
        status=refund.status,
        stripe_refund_id=refund.stripe_refund_id or "",
        application_fee_refunded=refund.application_fee_refunded,
        created_at=to_timestamp(refund.created_at),
        failure_reason=refund.failure_reason or "",
    )


def payment_message(payment: Payment) -> pb.Payment:
    return pb.Payment(
        id=payment.id,
        organization_id=payment.organization_id,
        member_id=payment.member_id,
        amount=payment.amount,
        currency=payment.currency,
        method=payment.method,
        capture_method=payment.capture_method,
        status=payment.status,
        application_fee_amount=payment.application_fee_amount,
        amount_captured=payment.amount_captured,
        amount_refunded=payment.amount_refunded,
        stripe_payment_intent_id=payment.stripe_payment_intent_id or "",
        description=payment.description,
        receipt_email=payment.receipt_email,
        metadata=payment.metadata,
        decline_code=payment.decline_code or "",
        failure_message=payment.failure_message or "",
        local_id=payment.local_id or "",
        refunds=[refund_message(r) for r in payment.refunds],
        created_at=to_timestamp(payment.created_at),
        updated_at=to_timestamp(payment.updated_at),
        application_fee_refunded=payment.application_fee_refunded,
        charge_model=payment.charge_model,
        local_date=payment.local_date.isoformat(),
    )


def totals_message(day: stats.DayTotals) -> common_pb2.DailyTotals:
    return common_pb2.DailyTotals(
        date=day.date,
        count=day.count,
        gross=day.gross,
        fees=day.fees,
        refunded=day.refunded,
        net=day.net,
        currency=day.currency,
        disputed_count=day.disputed_count,
        disputed=day.disputed,
        disputes_lost=day.disputes_lost,
    )


def dispute_message(dispute: Dispute) -> pb.Dispute:
    return pb.Dispute(
        id=dispute.id,
        payment_id=dispute.payment_id,
        organization_id=dispute.organization_id,
        member_id=dispute.member_id,
        amount=dispute.amount,
        currency=dispute.currency,
        reason=dispute.reason,
        status=DISPUTE_STATUSES.number(dispute.status),  # type: ignore[arg-type]
        evidence_due_by=to_timestamp(dispute.evidence_due_by),
        charge_model=dispute.charge_model,
        evidence_submissions=dispute.evidence_submissions,
        withdrawn=dispute.withdrawn,
        dispute_fee=dispute.dispute_fee,
        reinstated=dispute.reinstated,
        transfer_reversed=dispute.transfer_reversed,
        transfer_returned=dispute.transfer_returned,
        stripe_dispute_id=dispute.stripe_dispute_id,
        created_at=to_timestamp(dispute.created_at),
    )


class PaymentsServicer(payments_pb2_grpc.PaymentsServiceServicer):
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def CreatePayment(
        self, request: pb.CreatePaymentRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreatePaymentResponse:
        caller = require_caller(min_role=AGENT)
        organization_id = organization_scope(caller, request.organization_id)
        payment, replayed = await creating.create_payment(
            self._ctx,
            caller,
            organization_id,
            request.idempotency_key,
            creating.CreateRequest(
                amount=request.amount,
                currency=request.currency,
                method=request.method,
                capture_method=request.capture_method,
                description=request.description,
                receipt_email=request.receipt_email,
                metadata=dict(request.metadata),
            ),
        )
        return pb.CreatePaymentResponse(
            payment=payment_message(payment), client_secret=payment.client_secret or "", replayed=replayed
        )

    async def GetPayment(
        self, request: pb.GetPaymentRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetPaymentResponse:
        caller = require_caller(min_role=AGENT)
        organization_id = await lifecycle.payment_scope(self._ctx, caller, request.organization_id, request.payment_id)
        payment = await lifecycle.load(self._ctx, organization_id, request.payment_id)
        return pb.GetPaymentResponse(payment=payment_message(payment))

    async def ListPayments(
        self, request: pb.ListPaymentsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListPaymentsResponse:
        caller = require_caller(min_role=AGENT)
        organization_id = organization_scope(caller, request.organization_id)
        member_id = caller.member_id if caller.role == AGENT else request.member_id
        limit = page_limit(request.page.limit)
        after = decode_cursor(request.page.cursor)
        async with self._ctx.pool.acquire() as conn:
            found = await repo.list_payments(
                conn,
                organization_id,
                status=request.status,
                member_id=member_id,
                since=parse_day_or_instant(request.since, "from"),
                until=parse_day_or_instant(request.until, "to"),
                after=after,
                limit=limit + 1,
            )
            page, next_cursor = next_page(found, limit)
            refunds = await repo.refunds_of(conn, [p.id for p in page])
        for payment in page:
            payment.refunds = refunds.get(payment.id, [])
        return pb.ListPaymentsResponse(payments=[payment_message(p) for p in page], next_cursor=next_cursor)

    async def CapturePayment(
        self, request: pb.CapturePaymentRequest, context: grpc.aio.ServicerContext
    ) -> pb.CapturePaymentResponse:
        caller = require_caller(min_role=AGENT)
        organization_id = await lifecycle.payment_scope(self._ctx, caller, request.organization_id, request.payment_id)
        payment = await lifecycle.capture(self._ctx, organization_id, request.payment_id, request.amount_to_capture)
        return pb.CapturePaymentResponse(payment=payment_message(payment))

    async def CancelPayment(
        self, request: pb.CancelPaymentRequest, context: grpc.aio.ServicerContext
    ) -> pb.CancelPaymentResponse:
        caller = require_caller(min_role=AGENT)
        organization_id = await lifecycle.payment_scope(self._ctx, caller, request.organization_id, request.payment_id)
        payment = await lifecycle.cancel(self._ctx, organization_id, request.payment_id)
        return pb.CancelPaymentResponse(payment=payment_message(payment))

    async def CreateRefund(
        self, request: pb.CreateRefundRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateRefundResponse:
        caller = require_caller(min_role=ORG_ADMIN)
        organization_id = await lifecycle.payment_scope(self._ctx, caller, request.organization_id, request.payment_id)
        refund, replayed = await refunding.create_refund(
            self._ctx,
            caller,
            organization_id,
            request.payment_id,
            request.idempotency_key,
            request.amount,
            request.reason,
        )
        return pb.CreateRefundResponse(refund=refund_message(refund), replayed=replayed)

    async def SubmitOfflineBatch(
        self, request: pb.SubmitOfflineBatchRequest, context: grpc.aio.ServicerContext
    ) -> pb.SubmitOfflineBatchResponse:
        caller = require_caller(min_role=AGENT)
        organization_id = organization_scope(caller, request.organization_id)
        items = [
            offline.OfflineItem(
                local_id=item.local_id,
                amount=item.amount,
                currency=item.currency,
                method=item.method,
                created_at=from_timestamp(item.created_at) if item.HasField("created_at") else None,
                stripe_payment_intent_id=item.stripe_payment_intent_id,
            )
            for item in request.items
        ]
        results = await offline.submit_batch(self._ctx, caller, organization_id, items)
        return pb.SubmitOfflineBatchResponse(
            results=[
                pb.OfflineItemResult(local_id=r.local_id, status=r.status, payment_id=r.payment_id, error=r.error)
                for r in results
            ]
        )

    async def GetOrganizationStats(
        self, request: pb.GetOrganizationStatsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetOrganizationStatsResponse:
        caller = require_caller(min_role=AGENT)
        organization_id = organization_scope(caller, request.organization_id)
        days, totals, by_currency = await stats.daily(
            self._ctx, organization_id, "", request.from_date, request.to_date
        )
        return pb.GetOrganizationStatsResponse(
            days=[totals_message(d) for d in days],
            totals=totals_message(totals),
            totals_by_currency=[totals_message(t) for t in by_currency],
        )

    async def GetPaymentConfig(
        self, request: pb.GetPaymentConfigRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetPaymentConfigResponse:
        organization_id = organization_scope(require_caller(min_role=AGENT), request.organization_id)
        policy = await self._ctx.policies.get(organization_id)
        settings = self._ctx.settings
        return pb.GetPaymentConfigResponse(
            currencies=policy.currencies,
            min_amount=settings.min_amount,
            max_amount=settings.max_amount,
            rate_limit_per_minute=settings.rate_limit_per_minute,
            offline_max_items=offline.MAX_ITEMS,
            offline_max_age_days=settings.offline_max_age_days,
            offline_max_ahead_seconds=settings.offline_max_ahead_seconds,
            methods=METHODS,
        )

    async def GetMemberStats(
        self, request: pb.GetMemberStatsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetMemberStatsResponse:
        caller = require_caller(min_role=AGENT)
        organization_id = organization_scope(caller, request.organization_id)
        if not request.member_id:
            raise NotFound("member not found", "member_not_found")
        if request.member_id != caller.member_id:
            if caller.role == AGENT:  # an agent sees only itself: another member, here or elsewhere, is not found
                raise NotFound("member not found", "member_not_found")
            await self._ctx.policies.check_member(organization_id, request.member_id)
        days, totals, by_currency = await stats.daily(
            self._ctx, organization_id, request.member_id, request.from_date, request.to_date
        )
        return pb.GetMemberStatsResponse(
            days=[totals_message(d) for d in days],
            totals=totals_message(totals),
            totals_by_currency=[totals_message(t) for t in by_currency],
        )

    async def ListDailyTotals(
        self, request: pb.ListDailyTotalsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListDailyTotalsResponse:
        require_caller(min_role=PLATFORM_ADMIN)
        rows = await stats.by_organization(self._ctx, request.organization_id, request.from_date, request.to_date)
        return pb.ListDailyTotalsResponse(
            rows=[pb.OrganizationDailyTotals(organization_id=org, totals=totals_message(day)) for org, day in rows]
        )

    async def ListBookEntries(
        self, request: pb.ListBookEntriesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListBookEntriesResponse:
        caller = require_caller(min_role=ORG_ADMIN)
        organization_id = request.organization_id
        if organization_id or not caller.is_platform:
            organization_id = organization_scope(caller, organization_id)
        found, next_cursor = await books.entries(
            self._ctx, organization_id, request.from_date, request.to_date, request.page.limit, request.page.cursor
        )
        return pb.ListBookEntriesResponse(
            entries=[
                pb.BookEntry(
                    kind=e.kind,
                    id=e.id,
                    payment_id=e.payment_id,
                    organization_id=e.organization_id,
                    date=e.date.isoformat(),
                    method=e.method,
                    charge_model=e.charge_model,
                    currency=e.currency,
                    amount=e.amount,
                    application_fee=e.application_fee,
                    stripe_account_id=e.stripe_account_id,
                    stripe_payment_intent_id=e.stripe_payment_intent_id,
                    dispute_fee=e.dispute_fee,
                    transfer_reversed=e.transfer_reversed,
                )
                for e in found
            ],
            next_cursor=next_cursor,
        )

    async def ListDisputes(
        self, request: pb.ListDisputesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListDisputesResponse:
        caller = require_caller(min_role=ORG_ADMIN)
        organization_id = request.organization_id
        if organization_id or not caller.is_platform:  # a platform admin without one sees every organisation's
            organization_id = organization_scope(caller, organization_id)
        found, next_cursor = await disputes.list_disputes(
            self._ctx, organization_id, request.page.limit, request.page.cursor
        )
        return pb.ListDisputesResponse(disputes=[dispute_message(d) for d in found], next_cursor=next_cursor)

    async def SubmitDisputeEvidence(
        self, request: pb.SubmitDisputeEvidenceRequest, context: grpc.aio.ServicerContext
    ) -> pb.SubmitDisputeEvidenceResponse:
        caller = require_caller(min_role=ORG_ADMIN)
        submit = request.submit if request.HasField("submit") else True
        dispute = await disputes.submit_evidence(self._ctx, caller, request.dispute_id, dict(request.evidence), submit)
        return pb.SubmitDisputeEvidenceResponse(dispute=dispute_message(dispute))
