"""The sandbox's companies: journals, ledger accounts and ledger entries, kept per company.

Amounts travel as decimal strings ("12.50") like at Pennylane and are kept as integer cents.
Like the real API, creating a ledger entry has no idempotency key and never refuses a second
entry with the same `piece_number`: a client that retries must look its entry up first.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sandbox.pennylane.config import DEFAULT_ACCOUNTS, DEFAULT_JOURNALS, CompanyConfig, PennylaneSandboxConfig
from sandbox.qonto.limits import FaultInjector, RateLimiter

__all__ = ["ApiError", "Company", "CreateGate", "SandboxState", "amount_text", "invalid", "now"]

_AMOUNT = re.compile(r"^\d{1,13}(\.\d{1,2})?$")
MAX_LINES = 1000


class ApiError(Exception):
    """An error answer in Pennylane's shape: `{"error", "message", "details"?}`."""

    def __init__(self, status: int, error: str, message: str, field_name: str | None = None, issue: str = "") -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message
        self.details = {"field": field_name, "issue": issue or message} if field_name else None

    def body(self) -> dict[str, Any]:
        found: dict[str, Any] = {"error": self.error, "message": self.message}
        if self.details:
            found["details"] = self.details
        return found


def invalid(field_name: str, issue: str) -> ApiError:
    return ApiError(422, "unprocessable_entity", f"{field_name} {issue}", field_name, issue)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def amount_text(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _cents(value: Any, field_name: str) -> int:
    text = value if isinstance(value, str) else str(value) if isinstance(value, int | float) else ""
    if not _AMOUNT.match(text):
        raise invalid(field_name, "must be a positive decimal amount with at most 2 decimals")
    units, _, rest = text.partition(".")
    return int(units) * 100 + int((rest + "00")[:2])


@dataclass
class Company:
    id: int
    name: str
    token: str
    journals: dict[int, dict[str, Any]] = field(default_factory=dict)
    accounts: dict[int, dict[str, Any]] = field(default_factory=dict)
    entries: dict[int, dict[str, Any]] = field(default_factory=dict)
    customers: dict[int, dict[str, Any]] = field(default_factory=dict)
    invoices: dict[int, dict[str, Any]] = field(default_factory=dict)

    def journal_id(self, code: str) -> int:
        return next(j["id"] for j in self.journals.values() if j["code"] == code)

    def account_id(self, number: str) -> int:
        return next(a["id"] for a in self.accounts.values() if a["number"] == number)


@dataclass
class CreateGate:
    """Holds the answer of creations (of `path` only, when named) once they are committed (tests of a
    crash mid-push)."""

    committed: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    path: str | None = None


class SandboxState:
    """Everything the sandbox knows; ``app.state.sandbox`` holds one."""

    def __init__(self, config: PennylaneSandboxConfig) -> None:
        self.config = config
        self.companies: dict[str, Company] = {}
        self.rate_limiter = RateLimiter(config.rate_limit, config.rate_window_seconds)
        self.faults = FaultInjector()
        # Creations that are committed and then answered with this status (a lost answer).
        self.lost_answers: list[int] = []
        self.gate: CreateGate | None = None
        self.requests = 0
        self.refused = 0
        self._seq = 1000
        if config.state_file and Path(config.state_file).exists():
            self._load(Path(config.state_file))
        for company in config.companies:
            if company.token not in self.companies:
                self.add_company(company)

    # ---- companies ---------------------------------------------------------------------

    def next_id(self) -> int:
        self._seq += 1
        return self._seq

    def add_company(self, config: CompanyConfig) -> Company:
        """A company with the default journals and chart of accounts."""
        if config.token in self.companies:
            raise ApiError(422, "unprocessable_entity", "a company already has this token", "token", "is taken")
        company = Company(self.next_id(), config.name, config.token)
        self.companies[config.token] = company
        for code, label, kind in DEFAULT_JOURNALS:
            self.create_journal(company, {"code": code, "label": label, "type": kind}, persist=False)
        for number, label in DEFAULT_ACCOUNTS:
            self.create_account(company, {"number": number, "label": label}, persist=False)
        self.save()
        return company

    def company(self, token: str) -> Company:
        found = self.companies.get(token)
        if found is None:
            raise ApiError(401, "unauthorized", "Invalid or missing bearer token")
        return found

    # ---- journals and ledger accounts -----------------------------------------------------

    def create_journal(self, company: Company, fields: dict[str, Any], *, persist: bool = True) -> dict[str, Any]:
        code, label = fields.get("code"), fields.get("label")
        if not isinstance(code, str) or not re.fullmatch(r"[A-Z0-9]{2,5}", code):
            raise invalid("code", "must be 2 to 5 capital letters or digits")
        if not isinstance(label, str) or not label.strip():
            raise invalid("label", "is required")
        if any(j["code"] == code for j in company.journals.values()):
            raise invalid("code", "has already been taken")
        journal_id = self.next_id()
        journal: dict[str, Any] = {"id": journal_id, "code": code, "label": label, "type": fields.get("type") or "misc"}
        company.journals[journal_id] = journal
        if persist:
            self.save()
        return journal

    def create_account(self, company: Company, fields: dict[str, Any], *, persist: bool = True) -> dict[str, Any]:
        number, label = fields.get("number"), fields.get("label")
        if not isinstance(number, str) or not re.fullmatch(r"\d{1,12}", number):
            raise invalid("number", "must be digits")
        if not isinstance(label, str) or not label.strip():
            raise invalid("label", "is required")
        if any(a["number"] == number for a in company.accounts.values()):
            raise invalid("number", "has already been taken")
        account_id = self.next_id()
        account: dict[str, Any] = {
            "id": account_id,
            "number": number,
            "label": label,
            "vat_rate": fields.get("vat_rate") or "exempt",
            "country_alpha2": fields.get("country_alpha2") or "FR",
            "enabled": True,
            "created_at": now(),
            "updated_at": now(),
        }
        company.accounts[account_id] = account
        if persist:
            self.save()
        return account

    # ---- ledger entries ----------------------------------------------------------------

    def create_entry(self, company: Company, fields: dict[str, Any]) -> dict[str, Any]:
        """Validates like Pennylane (journal and accounts of this company, balanced lines) and stores it."""
        label = fields.get("label")
        if not isinstance(label, str) or not label.strip():
            raise invalid("label", "is required")
        raw_date = fields.get("date")
        try:
            day = date.fromisoformat(raw_date) if isinstance(raw_date, str) else None
        except ValueError:
            day = None
        if day is None:
            raise invalid("date", "must be a date (YYYY-MM-DD)")
        journal_id = fields.get("journal_id")
        if not isinstance(journal_id, int) or journal_id not in company.journals:
            raise ApiError(404, "not_found", "Journal not found", "journal_id", "not found")
        currency = fields.get("currency", "EUR")
        if not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency):
            raise invalid("currency", "must be an ISO 4217 code")
        piece_number = fields.get("piece_number")
        if piece_number is not None and (not isinstance(piece_number, str) or len(piece_number) > 255):
            raise invalid("piece_number", "must be a string of at most 255 characters")
        lines = fields.get("ledger_entry_lines")
        if not isinstance(lines, list) or not lines:
            raise invalid("ledger_entry_lines", "is required")
        if len(lines) > MAX_LINES:
            raise invalid("ledger_entry_lines", f"at most {MAX_LINES} lines")
        stored_lines = []
        debits = credits = 0
        for i, line in enumerate(lines):
            if not isinstance(line, dict):
                raise invalid(f"ledger_entry_lines[{i}]", "must be an object")
            debit = _cents(line.get("debit", "0"), f"ledger_entry_lines[{i}].debit")
            credit = _cents(line.get("credit", "0"), f"ledger_entry_lines[{i}].credit")
            if (debit == 0) == (credit == 0):
                raise invalid(f"ledger_entry_lines[{i}]", "needs either a debit or a credit")
            account_id = line.get("ledger_account_id")
            if not isinstance(account_id, int) or account_id not in company.accounts:
                raise ApiError(
                    404,
                    "not_found",
                    "Ledger account not found",
                    f"ledger_entry_lines[{i}].ledger_account_id",
                    "not found",
                )
            debits += debit
            credits += credit
            account = company.accounts[account_id]
            stored_lines.append(
                {
                    "id": self.next_id(),
                    "debit": amount_text(debit),
                    "credit": amount_text(credit),
                    "ledger_account_id": account_id,
                    "ledger_account": {"id": account_id, "number": account["number"]},
                    "label": line.get("label") if isinstance(line.get("label"), str) else label,
                }
            )
        if debits != credits:
            raise invalid("ledger_entry_lines", "must be balanced (debits equal credits)")
        entry_id = self.next_id()
        entry = {
            "id": entry_id,
            "label": label,
            "date": day.isoformat(),
            "journal_id": journal_id,
            "journal": {"id": journal_id, "code": company.journals[journal_id]["code"]},
            "currency": currency,
            "piece_number": piece_number or f"PL{entry_id}",
            "ledger_attachment_id": None,
            "ledger_attachment_filename": None,
            "ledger_entry_lines": stored_lines,
            "created_at": now(),
            "updated_at": now(),
        }
        company.entries[entry_id] = entry
        self.save()
        return entry

    def entry(self, company: Company, entry_id: int) -> dict[str, Any]:
        found = company.entries.get(entry_id)
        if found is None:
            raise ApiError(404, "not_found", "Ledger entry not found")
        return found

    # ---- persistence -------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every company but the configured ones (recreated empty), faults and counters."""
        self.companies.clear()
        self.faults.clear()
        self.lost_answers.clear()
        self.rate_limiter.reset()
        self.gate = None
        for company in self.config.companies:
            self.add_company(company)

    def save(self) -> None:
        if not self.config.state_file:
            return
        path = Path(self.config.state_file)
        document = {"seq": self._seq, "companies": [asdict(c) for c in self.companies.values()]}
        handle, name = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(handle, "w") as out:
            json.dump(document, out)
        os.replace(name, path)

    def _load(self, path: Path) -> None:
        document = json.loads(path.read_text())
        self._seq = int(document["seq"])
        for raw in document["companies"]:
            company = Company(
                raw["id"],
                raw["name"],
                raw["token"],
                {int(k): v for k, v in raw["journals"].items()},
                {int(k): v for k, v in raw["accounts"].items()},
                {int(k): v for k, v in raw["entries"].items()},
                {int(k): v for k, v in raw.get("customers", {}).items()},
                {int(k): v for k, v in raw.get("invoices", {}).items()},
            )
            self.companies[company.token] = company
