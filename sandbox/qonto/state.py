"""The sandbox's bank: accounts, transactions, webhook subscriptions, and what they emit."""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sandbox.qonto.clock import format_time, parse_time, utc_now_ms
from sandbox.qonto.config import BankAccountConfig, QontoSandboxConfig
from sandbox.qonto.fields import cents, choice, number, opt_str, str_list, when
from sandbox.qonto.limits import FaultInjector, RateLimiter
from sandbox.qonto.listing import TransactionQuery, paginate
from sandbox.qonto.models import (
    OPERATION_TYPES,
    SIDES,
    STATUSES,
    SandboxError,
    Transaction,
    WebhookSubscription,
    euros,
    stable_uuid,
)
from sandbox.qonto.webhooks import WebhookDispatcher

__all__ = ["SandboxState"]

_STATE_VERSION = 1
# Fields PATCH may change; amounts, side and account are fixed once created, as at a bank.
_MUTABLE_FIELDS = (
    "status",
    "label",
    "reference",
    "note",
    "operation_type",
    "settled_at",
    "emitted_at",
    "vat_amount_cents",
    "vat_rate",
    "attachment_ids",
    "label_ids",
)
_CREATE_FIELDS = frozenset(
    {
        "amount_cents",
        "currency",
        "side",
        "operation_type",
        "local_amount_cents",
        "local_currency",
        "label",
        "reference",
        "note",
        "status",
        "settled_at",
        "emitted_at",
        "vat_amount_cents",
        "vat_rate",
        "attachment_ids",
        "label_ids",
        "bank_account_id",
        "bank_account_slug",
        "bank_account",
        "iban",
    }
)
_IDEMPOTENCY_TTL_SECONDS = 30 * 60


class SandboxState:
    """Everything the sandbox knows; ``app.state.sandbox`` holds one."""

    def __init__(self, config: QontoSandboxConfig) -> None:
        self.config = config
        self.organization_id = stable_uuid("organization", config.organization_slug)
        self.membership_id = stable_uuid("membership", config.organization_slug, config.login)
        self.transactions: dict[str, Transaction] = {}
        self.subscriptions: dict[str, WebhookSubscription] = {}
        self.rate_limiter = RateLimiter(
            config.rate_limit_per_10s, extra_windows=((config.rate_limit_per_10min, 600.0),)
        )
        self.faults = FaultInjector()
        self.dispatcher = WebhookDispatcher(
            retry_base_seconds=config.webhook_retry_base_seconds,
            max_attempts=config.webhook_max_attempts,
            duplicates=config.webhook_duplicates,
            shuffle=config.webhook_shuffle,
            timeout_seconds=config.webhook_timeout_seconds,
        )
        self._public_ids: dict[str, str] = {}
        self._seq = 0
        self._account_seq: dict[str, int] = {}
        self._last_updated_at = datetime.fromtimestamp(0, UTC)
        self._idempotency: dict[str, tuple[float, str, Any]] = {}
        self._started_at = utc_now_ms()
        if config.state_file and Path(config.state_file).exists():
            self._load(Path(config.state_file))
        if config.webhook_url:
            self.add_subscription(config.webhook_url, config.webhook_secret, persist=False)
        self._save()

    # ---- bank accounts -------------------------------------------------------------

    def account_id(self, account: BankAccountConfig) -> str:
        """The account's ``id`` (a UUID, like Qonto's)."""
        return stable_uuid("bank_account", self.config.organization_slug, account.slug)

    def resolve_account(self, bank_account_id: str | None = None, iban: str | None = None) -> BankAccountConfig:
        """The account named by id or slug (taking precedence, as at Qonto) or IBAN; 404 if none."""
        for account in self.config.bank_accounts:
            if bank_account_id:
                if bank_account_id in (account.slug, self.account_id(account)):
                    return account
            elif iban and iban.replace(" ", "").upper() == account.iban:
                return account
        if not bank_account_id and not iban:
            return self.config.main_bank_account
        raise SandboxError(404, "not_found", "bank account not found")

    def balances(self, account: BankAccountConfig) -> tuple[int, int]:
        """``(balance_cents, authorized_balance_cents)``: completed movements, then pending debits."""
        balance = account.opening_balance_cents
        pending_debits = 0
        for txn in self.transactions.values():
            if txn.bank_account_slug != account.slug:
                continue
            signed = txn.amount_cents if txn.side == "credit" else -txn.amount_cents
            if txn.status == "completed":
                balance += signed
            elif txn.status == "pending" and txn.side == "debit":
                pending_debits += txn.amount_cents
        return balance, balance - pending_debits

    def organization(self) -> dict[str, Any]:
        """The body of ``GET /v2/organization``."""
        accounts = []
        for account in self.config.bank_accounts:
            balance, authorized = self.balances(account)
            last = max(
                (t.updated_at for t in self.transactions.values() if t.bank_account_slug == account.slug),
                default=self._started_at,
            )
            accounts.append(
                {
                    "id": self.account_id(account),
                    "slug": account.slug,
                    "iban": account.iban,
                    "bic": account.bic,
                    "currency": account.currency,
                    "balance": euros(balance),
                    "balance_cents": balance,
                    "authorized_balance": euros(authorized),
                    "authorized_balance_cents": authorized,
                    "name": account.name,
                    "updated_at": format_time(last),
                    "status": "active",
                    "main": account.main or account is self.config.main_bank_account,
                    "is_external_account": False,
                }
            )
        return {
            "organization": {
                "id": self.organization_id,
                "slug": self.config.organization_slug,
                "legal_name": self.config.legal_name,
                "name": self.config.legal_name,
                "bank_accounts": accounts,
            }
        }

    # ---- transactions --------------------------------------------------------------

    def get_transaction(self, ref: str) -> Transaction:
        """By ``id`` or ``transaction_id``; 404 otherwise."""
        txn = self.transactions.get(ref) or self.transactions.get(self._public_ids.get(ref, ""))
        if txn is None:
            raise SandboxError(404, "not_found", "transaction not found")
        return txn

    def list_transactions(self, query: TransactionQuery) -> dict[str, Any]:
        """The body of ``GET /v2/transactions``."""
        account = self.resolve_account(query.bank_account_id, query.iban)
        page, meta = paginate((t for t in self.transactions.values() if t.bank_account_slug == account.slug), query)
        return {"transactions": [txn.to_api() for txn in page], "meta": meta}

    def create_transaction(self, fields: Mapping[str, Any]) -> Transaction:
        """Book a transaction from sandbox JSON, store it and emit ``transaction.created``."""
        unknown = sorted(set(fields) - _CREATE_FIELDS)
        if unknown:
            raise SandboxError(422, "invalid_parameter", f"unknown field {unknown[0]}", unknown[0])
        account = self.resolve_account(
            opt_str(fields, "bank_account_id")
            or opt_str(fields, "bank_account_slug")
            or opt_str(fields, "bank_account"),
            opt_str(fields, "iban"),
        )
        amount_cents = cents(fields, "amount_cents", required=True)
        assert amount_cents is not None
        if amount_cents <= 0:
            raise SandboxError(422, "invalid_parameter", "amount_cents must be positive", "amount_cents")
        currency = (opt_str(fields, "currency") or account.currency).upper()
        status = choice(fields, "status", STATUSES, "completed")
        # Everything is validated before any counter moves, so a refused request leaves no gap.
        values: dict[str, Any] = {
            "amount_cents": amount_cents,
            "currency": currency,
            "side": choice(fields, "side", SIDES, "credit"),
            "operation_type": choice(fields, "operation_type", OPERATION_TYPES, "transfer"),
            "local_amount_cents": cents(fields, "local_amount_cents") or amount_cents,
            "local_currency": (opt_str(fields, "local_currency") or currency).upper(),
            "label": opt_str(fields, "label") or "SANDBOX TRANSFER",
            "reference": opt_str(fields, "reference"),
            "note": opt_str(fields, "note"),
            "status": status,
            "vat_amount_cents": cents(fields, "vat_amount_cents"),
            "vat_rate": number(fields, "vat_rate"),
            "attachment_ids": str_list(fields, "attachment_ids"),
            "label_ids": str_list(fields, "label_ids"),
        }
        settled_at = when(fields, "settled_at")
        emitted_at = when(fields, "emitted_at")
        now = self._next_updated_at()
        if settled_at is None and status == "completed":
            settled_at = now
        self._seq += 1
        account_seq = self._account_seq.get(account.slug, 0) + 1
        self._account_seq[account.slug] = account_seq
        account_number = self.config.bank_accounts.index(account) + 1
        txn = Transaction(
            id=str(uuid.uuid4()),
            transaction_id=f"{self.config.organization_slug}-{account_number}-transaction-{account_seq}",
            seq=self._seq,
            bank_account_slug=account.slug,
            bank_account_id=self.account_id(account),
            settled_at=settled_at,
            emitted_at=emitted_at or min(settled_at or now, now),
            created_at=now,
            updated_at=now,
            **values,
        )
        self.transactions[txn.id] = txn
        self._public_ids[txn.transaction_id] = txn.id
        if status == "completed":
            txn.settled_balance_cents = self.balances(account)[0]
        self._save()
        self._emit("created", txn)
        return txn

    def update_transaction(self, ref: str, fields: Mapping[str, Any]) -> Transaction:
        """Change a transaction (status, label, ...), bump ``updated_at``, emit ``transaction.updated``."""
        txn = self.get_transaction(ref)
        unknown = sorted(set(fields) - set(_MUTABLE_FIELDS))
        if unknown:
            raise SandboxError(422, "invalid_parameter", f"cannot change {', '.join(unknown)}", unknown[0])
        changes: dict[str, Any] = {}
        if "status" in fields:
            changes["status"] = choice(fields, "status", STATUSES, txn.status)
        for name in ("label", "reference", "note"):
            if name in fields:
                changes[name] = opt_str(fields, name)
        if "operation_type" in fields:
            changes["operation_type"] = choice(fields, "operation_type", OPERATION_TYPES, txn.operation_type)
        for name in ("settled_at", "emitted_at"):
            if name in fields:
                changes[name] = when(fields, name)
        if "vat_amount_cents" in fields:
            changes["vat_amount_cents"] = cents(fields, "vat_amount_cents")
        if "vat_rate" in fields:
            changes["vat_rate"] = number(fields, "vat_rate")
        for name in ("attachment_ids", "label_ids"):
            if name in fields:
                changes[name] = str_list(fields, name)
        if changes.get("label", txn.label) is None:
            raise SandboxError(422, "invalid_parameter", "label cannot be empty", "label")
        if changes.get("emitted_at", txn.emitted_at) is None:
            raise SandboxError(422, "invalid_parameter", "emitted_at cannot be empty", "emitted_at")
        becomes_completed = changes.get("status") == "completed" and txn.status != "completed"
        for name, value in changes.items():
            setattr(txn, name, value)
        now = self._next_updated_at()
        txn.updated_at = now
        if becomes_completed:
            if txn.settled_at is None:
                txn.settled_at = now
            account = self.resolve_account(txn.bank_account_slug)
            txn.settled_balance_cents = self.balances(account)[0]
        self._save()
        self._emit("updated", txn)
        return txn

    # ---- webhooks ------------------------------------------------------------------

    def add_subscription(self, url: str, secret: str | None = None, *, persist: bool = True) -> WebhookSubscription:
        """Register (or re-register, keyed by URL) a receiver; returns it with its secret."""
        for existing in self.subscriptions.values():
            if existing.url == url:
                if secret:
                    existing.secret = secret
                if persist:
                    self._save()
                return existing
        subscription = WebhookSubscription(
            id=str(uuid.uuid4()), url=url, secret=secret or "qwhsec_" + secrets.token_hex(24)
        )
        self.subscriptions[subscription.id] = subscription
        if persist:
            self._save()
        return subscription

    def remove_subscription(self, subscription_id: str) -> None:
        """Stop sending to a receiver; 404 if unknown."""
        if self.subscriptions.pop(subscription_id, None) is None:
            raise SandboxError(404, "not_found", "webhook subscription not found")
        self._save()

    async def deliveries_idle(self) -> None:
        """Wait until every webhook delivery, retries included, has finished."""
        await self.dispatcher.idle()

    # ---- sandbox housekeeping ------------------------------------------------------

    def idempotent(self, key: str, fingerprint: str) -> Any | None:
        """The stored result for ``key``, or ``None``; 422 if the key came with other parameters."""
        now = time.monotonic()
        self._idempotency = {k: v for k, v in self._idempotency.items() if v[0] > now}
        found = self._idempotency.get(key)
        if found is None:
            return None
        if found[1] != fingerprint:
            raise SandboxError(422, "idempotency_key_reused", "idempotency key already used with other parameters")
        return found[2]

    def remember(self, key: str, fingerprint: str, result: Any) -> None:
        """Keep ``result`` for ``key`` for 30 minutes, like ``X-Qonto-Idempotency-Key``."""
        self._idempotency[key] = (time.monotonic() + _IDEMPOTENCY_TTL_SECONDS, fingerprint, result)

    def reset(self) -> None:
        """Forget transactions, subscriptions (except the configured one), faults and limits.

        Counters keep increasing so that ids are never reused, even across resets.
        """
        self.transactions.clear()
        self._public_ids.clear()
        self.subscriptions.clear()
        self.faults.clear()
        self.rate_limiter.reset()
        self._idempotency.clear()
        self.dispatcher.attempts.clear()
        if self.config.webhook_url:
            self.add_subscription(self.config.webhook_url, self.config.webhook_secret, persist=False)
        self._save()

    async def aclose(self) -> None:
        """Stop pending deliveries and release the HTTP client."""
        await self.dispatcher.aclose()

    # ---- internals -----------------------------------------------------------------

    def _next_updated_at(self) -> datetime:
        # Strictly increasing, so that an updated_at cursor never misses a change made in
        # the same millisecond as the previous one.
        now = utc_now_ms()
        if now <= self._last_updated_at:
            now = self._last_updated_at + timedelta(milliseconds=1)
        self._last_updated_at = now
        return now

    def _emit(self, kind: str, txn: Transaction) -> None:
        if not self.subscriptions:
            return
        event_id = str(uuid.uuid4())
        transaction = txn.to_api()
        # Qonto's own v1/transactions shape (id, type, data.event + the transaction's
        # fields) plus the project's (event_id, event_type, data.transaction), so that
        # receivers written against either work.
        envelope = {
            "id": event_id,
            "event_id": event_id,
            "type": "v1/transactions",
            "event_type": f"transaction.{kind}",
            "organization_id": self.organization_id,
            "membership_id": self.membership_id,
            "created_at": format_time(utc_now_ms()),
            "data": {"event": kind, **transaction, "transaction": transaction},
        }
        self.dispatcher.dispatch(list(self.subscriptions.values()), envelope)

    def _save(self) -> None:
        if not self.config.state_file:
            return
        path = Path(self.config.state_file)
        document = {
            "version": _STATE_VERSION,
            "seq": self._seq,
            "account_seq": self._account_seq,
            "last_updated_at": format_time(self._last_updated_at),
            "transactions": [txn.to_record() for txn in self.transactions.values()],
            "subscriptions": [sub.__dict__ for sub in self.subscriptions.values()],
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a crash never leaves half a file behind.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(document, handle, indent=1)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _load(self, path: Path) -> None:
        document = json.loads(path.read_text(encoding="utf-8"))
        if document.get("version") != _STATE_VERSION:
            raise ValueError(f"{path}: unsupported Qonto sandbox state version")
        self._seq = int(document["seq"])
        self._account_seq = {str(k): int(v) for k, v in document["account_seq"].items()}
        self._last_updated_at = parse_time(document["last_updated_at"])
        for record in document["transactions"]:
            txn = Transaction.from_record(record)
            self.transactions[txn.id] = txn
            self._public_ids[txn.transaction_id] = txn.id
        for record in document["subscriptions"]:
            subscription = WebhookSubscription(**record)
            self.subscriptions[subscription.id] = subscription
