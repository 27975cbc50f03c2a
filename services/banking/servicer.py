"""BankingService: proto ⇄ use cases; platform admins (and services), and an organisation's own FEC for its admins."""

from __future__ import annotations

from datetime import date, datetime

import asyncpg
import grpc
from collect.banking.v1 import banking_pb2 as pb
from collect.banking.v1 import banking_pb2_grpc

from runtime import audit
from runtime.auth import ORG_ADMIN, PLATFORM_ADMIN, organization_scope, require_caller
from runtime.dates import parse_day
from runtime.errors import FieldError, InvalidArgument
from runtime.pagination import decode_cursor, next_page, page_limit
from runtime.proto import to_timestamp
from services.banking import payouts, pennylane, reconciliation, reports, repository, sync
from services.banking.allocation import (
    AllocationRule,
    AllocationSummary,
    LegalEntity,
    allocation_json,
    validate_allocation,
)
from services.banking.context import Banking
from services.banking.daily_report import DailyReport, report_csv
from services.banking.pennylane_books import DOCUMENTS, PLATFORM, SALES_AS
from services.banking.repository import PennylaneSettingsRow


def transaction_message(row: asyncpg.Record) -> pb.BankTransaction:
    return pb.BankTransaction(
        id=row["id"],
        transaction_id=row["transaction_id"],
        bank_account_id=row["bank_account_id"] or "",
        iban=row["iban"] or "",
        amount_cents=row["amount_cents"],
        currency=row["currency"],
        side=row["side"],
        operation_type=row["operation_type"] or "",
        label=row["label"] or "",
        reference=row["reference"] or "",
        status=row["status"],
        settled_at=to_timestamp(row["settled_at"]),
        updated_at=to_timestamp(row["updated_at"]),
        reconciled=row["reconciled"],
        legal_entity=row["legal_entity"] or "",
    )


def payout_message(row: asyncpg.Record) -> pb.Payout:
    return pb.Payout(
        id=str(row["id"]),
        stripe_payout_id=row["stripe_payout_id"],
        stripe_account_id=row["stripe_account_id"],
        organization_id=row["organization_id"] or "",
        amount=row["amount"],
        currency=row["currency"],
        status=row["status"],
        arrival_date=to_timestamp(row["arrival_date"]),
        statement_descriptor=row["statement_descriptor"] or "",
        reconciled=row["match_id"] is not None,
        created_at=to_timestamp(row["created_at"]),
        failure_code=row["failure_code"] or "",
        failure_message=row["failure_message"] or "",
    )


def match_message(row: asyncpg.Record) -> pb.ReconciliationMatch:
    return pb.ReconciliationMatch(
        id=str(row["id"]),
        payout_ids=list(row["payout_ids"]),
        bank_transaction_id=row["bank_transaction_id"],
        rule=row["rule"],
        explanation=row["explanation"],
        difference=row["difference"],
        created_at=to_timestamp(row["created_at"]),
        manual=row["manual"],
        payouts_amount=row["payouts_amount"],
        bank_amount=row["bank_amount"],
        currency=row["currency"],
    )


def _entity_messages(allocation: AllocationSummary) -> list[pb.EntityAllocation]:
    return [
        pb.EntityAllocation(
            entity=e.entity, revenue=e.revenue, tax_rate_bps=e.tax_rate_bps, estimated_tax=e.estimated_tax
        )
        for e in allocation.entities
    ]


def _tax_message(allocation: AllocationSummary) -> pb.TaxEstimate:
    return pb.TaxEstimate(
        estimated_total=allocation.estimated_tax_total,
        baseline_entity=allocation.baseline_entity,
        baseline_estimated=allocation.baseline_estimated_tax,
        difference=allocation.tax_difference,
    )


def report_message(report: DailyReport) -> pb.DailyReport:
    allocation = report.allocation
    totals = report.totals()
    return pb.DailyReport(
        date=report.date,
        currency=report.currency,
        timezone=report.timezone,
        organizations=[
            pb.OrganizationReportLine(
                organization_id=line.organization_id,
                organization_name=line.organization_name,
                currency=line.currency,
                count=line.count,
                gross=line.gross,
                fees=line.fees,
                refunds=line.refunds,
                net=line.net,
                payouts=line.payouts,
                bank_credits=line.bank_credits,
                reconciled=line.reconciled,
                difference=line.difference,
                disputed_count=line.disputed_count,
                disputed=line.disputed,
                disputes_lost=line.disputes_lost,
            )
            for line in report.organizations
        ],
        bank_credits=totals.bank_credits,
        bank=pb.BankTotals(credits=totals.bank_credits, debits=totals.bank_debits),
        reconciled=report.reconciled,
        reconciliation=pb.ReconciliationSummary(
            reconciled=report.reconciled,
            unmatched_payouts=report.unmatched_payouts,
            unmatched_credits=report.unmatched_credits,
        ),
        allocation=_entity_messages(allocation),
        tax=_tax_message(allocation),
        audit_anchors=report.audit_anchors,
        totals=pb.ReportTotals(
            gross=totals.gross, fees=totals.fees, refunds=totals.refunds, net=totals.net, payouts=totals.payouts
        ),
        totals_by_currency=[
            pb.CurrencyTotals(
                currency=t.currency,
                count=t.count,
                gross=t.gross,
                fees=t.fees,
                refunds=t.refunds,
                net=t.net,
                payouts=t.payouts,
                bank_credits=t.bank_credits,
                bank_debits=t.bank_debits,
                disputed_count=t.disputed_count,
                disputed=t.disputed,
                disputes_lost=t.disputes_lost,
            )
            for t in report.by_currency
        ],
    )


def _allocation_messages(
    rules: list[AllocationRule], entities: list[LegalEntity]
) -> tuple[list[pb.AllocationRule], list[pb.LegalEntity]]:
    return (
        [pb.AllocationRule(organization_id=r.organization_id, entity=r.entity, share_bps=r.share_bps) for r in rules],
        [pb.LegalEntity(entity=e.entity, tax_rate_bps=e.tax_rate_bps) for e in entities],
    )


def _required_range(from_date: str, to_date: str) -> tuple[date, date]:
    from_day = parse_day(from_date, "from")
    to_day = parse_day(to_date, "to")
    if from_day is None or to_day is None:
        raise InvalidArgument(
            "from and to are required",
            "validation_error",
            [FieldError(name, "is required") for name, v in (("from", from_day), ("to", to_day)) if v is None],
        )
    return from_day, to_day


# At most this many matches and unmatched items of each kind in GetReconciliation.
LISTED = 1000


def _created_and_id(row: asyncpg.Record) -> tuple[datetime, str]:
    return row["created_at"], str(row["id"])


def _pennylane_organization(organization_id: str) -> str:
    """The organisation the caller may act on (its org_admins, platform admins)."""
    return organization_scope(require_caller(min_role=ORG_ADMIN), organization_id)


def _platform_books() -> str:
    """The platform's own books (platform admins)."""
    require_caller(min_role=PLATFORM_ADMIN)
    return PLATFORM


def _pennylane_settings(entity: str, row: PennylaneSettingsRow | None) -> pb.PennylaneSettings:
    platform = entity == PLATFORM
    if row is None:
        return pb.PennylaneSettings(organization_id="" if platform else entity, platform=platform)
    return pb.PennylaneSettings(
        organization_id="" if platform else entity,
        platform=platform,
        journal_ids=row.journal_ids,
        ledger_account_ids=row.ledger_account_ids,
        start_date=row.start_date.isoformat(),
        enabled=row.enabled,
        api_token_set=bool(row.api_token_ciphertext),
        sales_as=SALES_AS.number(row.sales_as),  # type: ignore[arg-type]
    )


def _pennylane_failure(row: asyncpg.Record) -> pb.PennylaneFailure:
    return pb.PennylaneFailure(
        reference=row["reference"],
        journal=row["journal"],
        date=row["day"].isoformat(),
        status=row["status"],
        attempts=row["attempts"],
        error=row["last_error"] or "",
        document=DOCUMENTS.number(row["document"]),  # type: ignore[arg-type]
    )


class BankingServicer(banking_pb2_grpc.BankingServiceServicer):
    def __init__(self, banking: Banking) -> None:
        self._banking = banking
        self._pool = banking.pool

    async def SyncTransactions(
        self, request: pb.SyncTransactionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.SyncTransactionsResponse:
        require_caller(min_role=PLATFORM_ADMIN)
        counts = await sync.sync_transactions(self._banking, wait=True)
        assert counts is not None
        return pb.SyncTransactionsResponse(fetched=counts.fetched, inserted=counts.inserted, updated=counts.updated)

    async def ListBankTransactions(
        self, request: pb.ListBankTransactionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListBankTransactionsResponse:
        require_caller(min_role=PLATFORM_ADMIN)
        size = page_limit(request.page.limit)
        if request.reconciled not in ("", "true", "false"):
            raise InvalidArgument(
                "reconciled must be true or false",
                "validation_error",
                [FieldError("reconciled", "must be true or false")],
            )
        reconciled = None if not request.reconciled else request.reconciled == "true"
        async with self._pool.acquire() as conn:
            rows = await repository.list_bank_transactions(
                conn, size + 1, decode_cursor(request.page.cursor, uuid_id=False), reconciled
            )
        page, next_cursor = next_page(rows, size, _created_and_id)
        return pb.ListBankTransactionsResponse(
            transactions=[transaction_message(r) for r in page], next_cursor=next_cursor
        )

    async def SyncPayouts(
        self, request: pb.SyncPayoutsRequest, context: grpc.aio.ServicerContext
    ) -> pb.SyncPayoutsResponse:
        require_caller(min_role=PLATFORM_ADMIN)
        counts = await payouts.sync_payouts(self._banking)
        return pb.SyncPayoutsResponse(
            fetched=counts.fetched,
            inserted=counts.inserted,
            updated=counts.updated,
            inaccessible_accounts=counts.inaccessible_accounts,
        )

    async def ListPayouts(
        self, request: pb.ListPayoutsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListPayoutsResponse:
        caller = require_caller(min_role=ORG_ADMIN)
        # Platform admins may list every account's payouts; anyone else only their organisation's.
        organization_id = (
            request.organization_id
            if caller.is_platform and not request.organization_id
            else organization_scope(caller, request.organization_id)
        )
        size = page_limit(request.page.limit)
        after = decode_cursor(request.page.cursor)
        async with self._pool.acquire() as conn:
            rows = await repository.list_payouts(conn, size + 1, after, organization_id)
        page, next_cursor = next_page(rows, size, _created_and_id)
        return pb.ListPayoutsResponse(payouts=[payout_message(r) for r in page], next_cursor=next_cursor)

    async def CreatePayout(
        self, request: pb.CreatePayoutRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreatePayoutResponse:
        organization_id = organization_scope(require_caller(min_role=ORG_ADMIN), request.organization_id)
        row_id = await payouts.create_payout(self._banking, organization_id, request.idempotency_key, request.amount)
        async with self._pool.acquire() as conn:
            row = await repository.payout(conn, row_id)
        assert row is not None
        return pb.CreatePayoutResponse(payout=payout_message(row))

    async def RunReconciliation(
        self, request: pb.RunReconciliationRequest, context: grpc.aio.ServicerContext
    ) -> pb.RunReconciliationResponse:
        require_caller(min_role=PLATFORM_ADMIN)
        outcome = await reconciliation.run_reconciliation(
            self._pool,
            self._banking.settings.match_rules,
            parse_day(request.from_date, "from"),
            parse_day(request.to_date, "to"),
        )
        return pb.RunReconciliationResponse(
            matched=outcome.matched,
            unmatched_payouts=outcome.unmatched_payouts,
            unmatched_credits=outcome.unmatched_credits,
            created=outcome.created,
            removed=outcome.removed,
        )

    async def GetReconciliation(
        self, request: pb.GetReconciliationRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetReconciliationResponse:
        require_caller(min_role=PLATFORM_ADMIN)
        rules = self._banking.settings.match_rules
        async with self._pool.acquire() as conn:
            matches = await repository.list_matches(conn, LISTED)
            open_payouts = await repository.open_payouts(conn, None, None, rules_only=False)
            open_credits = await repository.open_credits(conn, None, None, rules_only=False)
            payout_rows = await repository.payouts_by_ids(conn, [str(r["id"]) for r in open_payouts[:LISTED]])
            credit_ids = [
                r["id"]
                for r in open_credits
                if reports.looks_like_stripe_row(r["label"], r["reference"], rules.stripe_labels)
            ]
            credit_rows = await repository.bank_transactions_by_ids(conn, credit_ids[:LISTED])
        return pb.GetReconciliationResponse(
            matches=[match_message(m) for m in matches],
            unmatched_payouts=[payout_message(r) for r in payout_rows],
            unmatched_credits=[transaction_message(r) for r in credit_rows],
        )

    async def MatchManually(
        self, request: pb.MatchManuallyRequest, context: grpc.aio.ServicerContext
    ) -> pb.MatchManuallyResponse:
        require_caller(min_role=PLATFORM_ADMIN)
        match_id = await reconciliation.match_manually(
            self._pool, list(request.payout_ids), request.bank_transaction_id, request.note
        )
        async with self._pool.acquire() as conn:
            row = await repository.get_match(conn, match_id)
        assert row is not None
        return pb.MatchManuallyResponse(match=match_message(row))

    async def Unmatch(self, request: pb.UnmatchRequest, context: grpc.aio.ServicerContext) -> pb.UnmatchResponse:
        require_caller(min_role=PLATFORM_ADMIN)
        await reconciliation.unmatch(self._pool, request.match_id)
        return pb.UnmatchResponse()

    async def PutAllocationRules(
        self, request: pb.PutAllocationRulesRequest, context: grpc.aio.ServicerContext
    ) -> pb.PutAllocationRulesResponse:
        require_caller(min_role=PLATFORM_ADMIN)
        rules = [AllocationRule(r.organization_id, r.entity, r.share_bps) for r in request.rules]
        entities = [LegalEntity(e.entity, e.tax_rate_bps) for e in request.entities]
        validate_allocation(rules, entities)
        async with self._pool.acquire() as conn, conn.transaction():
            before = await repository.allocation(conn)
            await repository.replace_allocation(conn, rules, entities)
            await audit.record(
                conn,
                "allocation_rules.replaced",
                targets={},
                before=allocation_json(*before),
                after=allocation_json(rules, entities),
            )
        rule_messages, entity_messages = _allocation_messages(rules, entities)
        return pb.PutAllocationRulesResponse(rules=rule_messages, entities=entity_messages)

    async def GetAllocationRules(
        self, request: pb.GetAllocationRulesRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetAllocationRulesResponse:
        require_caller(min_role=PLATFORM_ADMIN)
        async with self._pool.acquire() as conn:
            rules, entities = await repository.allocation(conn)
        rule_messages, entity_messages = _allocation_messages(rules, entities)
        return pb.GetAllocationRulesResponse(rules=rule_messages, entities=entity_messages)

    async def GetAllocationReport(
        self, request: pb.GetAllocationReportRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetAllocationReportResponse:
        require_caller(min_role=PLATFORM_ADMIN)
        from_day, to_day = _required_range(request.from_date, request.to_date)
        net, summary = await reports.allocation_report(self._banking, from_day, to_day)
        return pb.GetAllocationReportResponse(
            from_date=from_day.isoformat(),
            to_date=to_day.isoformat(),
            currency=self._banking.settings.report_currency,
            net=net,
            allocation=_entity_messages(summary),
            tax=_tax_message(summary),
        )

    async def GetDailyReport(
        self, request: pb.GetDailyReportRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetDailyReportResponse:
        require_caller(min_role=PLATFORM_ADMIN)
        report = await reports.daily_report(self._banking, reports.report_day(request.date, self._banking))
        # The CSV is built only when asked for (the gateway's text/csv variant of the route).
        csv = report_csv(report) if request.format == "csv" else ""
        return pb.GetDailyReportResponse(report=report_message(report), csv=csv)

    async def SendDailyReport(
        self, request: pb.SendDailyReportRequest, context: grpc.aio.ServicerContext
    ) -> pb.SendDailyReportResponse:
        require_caller(min_role=PLATFORM_ADMIN)
        day = reports.report_day(request.date, self._banking)
        outcome = await reports.send_daily_report(self._banking, day, force=request.force)
        return pb.SendDailyReportResponse(
            sent=outcome.sent, already_sent=outcome.already_sent, pending=outcome.pending, last_error=outcome.last_error
        )

    async def ExportFec(self, request: pb.ExportFecRequest, context: grpc.aio.ServicerContext) -> pb.ExportFecResponse:
        require_caller(min_role=PLATFORM_ADMIN)
        from_day, to_day = _required_range(request.from_date, request.to_date)
        content, filename, entries = await reports.export_fec(self._banking, from_day, to_day)
        return pb.ExportFecResponse(content=content, filename=filename, entries=entries)

    async def ExportOrganizationFec(
        self, request: pb.ExportOrganizationFecRequest, context: grpc.aio.ServicerContext
    ) -> pb.ExportOrganizationFecResponse:
        caller = require_caller(min_role=ORG_ADMIN)
        organization_id = organization_scope(caller, request.organization_id)
        from_day, to_day = _required_range(request.from_date, request.to_date)
        content, filename, entries = await reports.export_organization_fec(
            self._banking, organization_id, from_day, to_day
        )
        return pb.ExportOrganizationFecResponse(content=content, filename=filename, entries=entries)

    async def PutPennylaneSettings(
        self, request: pb.PutPennylaneSettingsRequest, context: grpc.aio.ServicerContext
    ) -> pb.PutPennylaneSettingsResponse:
        entity = _pennylane_organization(request.organization_id)
        return pb.PutPennylaneSettingsResponse(settings=await self._put_pennylane(entity, request.settings))

    async def PutPlatformPennylaneSettings(
        self, request: pb.PutPlatformPennylaneSettingsRequest, context: grpc.aio.ServicerContext
    ) -> pb.PutPlatformPennylaneSettingsResponse:
        settings = await self._put_pennylane(_platform_books(), request.settings)
        return pb.PutPlatformPennylaneSettingsResponse(settings=settings)

    async def _put_pennylane(self, entity: str, change: pb.PennylaneSettingsChange) -> pb.PennylaneSettings:
        row = await pennylane.put_settings(
            self._banking,
            entity,
            api_token=change.api_token,
            journal_ids=dict(change.journal_ids),
            ledger_account_ids=dict(change.ledger_account_ids),
            start_date=change.start_date,
            enabled=change.enabled,
            # An unknown number stays visible to the validation; unspecified is the default.
            sales_as=SALES_AS.name(change.sales_as) or (str(change.sales_as) if change.sales_as else ""),
        )
        return _pennylane_settings(entity, row)

    async def GetPennylaneSettings(
        self, request: pb.GetPennylaneSettingsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetPennylaneSettingsResponse:
        return await self._get_pennylane(_pennylane_organization(request.organization_id))

    async def GetPlatformPennylaneSettings(
        self, request: pb.GetPlatformPennylaneSettingsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetPlatformPennylaneSettingsResponse:
        return pb.GetPlatformPennylaneSettingsResponse(books=await self._get_pennylane(_platform_books()))

    async def _get_pennylane(self, entity: str) -> pb.GetPennylaneSettingsResponse:
        row, failures = await pennylane.get_settings(self._banking, entity)
        return pb.GetPennylaneSettingsResponse(
            settings=_pennylane_settings(entity, row), failures=[_pennylane_failure(f) for f in failures]
        )

    async def PushToPennylane(
        self, request: pb.PushToPennylaneRequest, context: grpc.aio.ServicerContext
    ) -> pb.PushToPennylaneResponse:
        require_caller(min_role=PLATFORM_ADMIN)
        to_day = parse_day(request.to_date, "to_date") if request.to_date else None
        results = await pennylane.push(self._banking, entities=list(request.entities) or None, to_day=to_day)
        if results is None:
            return pb.PushToPennylaneResponse(ran=False)
        return pb.PushToPennylaneResponse(
            ran=True,
            results=[
                pb.PennylanePushResult(
                    entity=r.entity,
                    pushed=r.pushed,
                    found=r.found,
                    unchanged=r.unchanged,
                    rate_limited=r.rate_limited,
                    invoiced=r.invoiced,
                    failures=[
                        pb.PennylaneFailure(reference=ref, error=error, status="failed") for ref, error in r.failures
                    ],
                )
                for r in results
            ],
        )
