"""Members and their rules; no I/O."""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from collect.accounts.v1 import accounts_pb2

from runtime.addresses import Address, address_errors, normalize_address
from runtime.audit import CHANGED, AuditAnchor, AuditRecord
from runtime.auth import ROLES
from runtime.contract import FORMATS, enum_names, rules
from runtime.defaults import DEFAULT_CHARGE_MODEL, DEFAULT_CURRENCY, DEFAULT_TIMEZONE
from runtime.errors import FieldError, InvalidArgument
from runtime.money import fee_leaves_nothing, is_currency
from runtime.siren import SIREN_RULE, is_siren

_EMAIL = re.compile(FORMATS["email"].pattern)  # the contract's e-mail form (runtime/contract.py)
# The contract's bound (accounts.proto, CreateMemberRequest.password).
MIN_PASSWORD_LENGTH = rules(accounts_pb2.CreateMemberRequest.DESCRIPTOR.fields_by_name["password"]).min_len


@dataclass(frozen=True)
class Member:
    id: str
    organization_id: str | None
    email: str
    name: str
    role: str
    disabled: bool
    created_at: datetime


def normalize_email(email: str) -> str:
    return email.strip().lower()


def validate_new_member(email: str, name: str, role: str, password: str) -> list[FieldError]:
    errors: list[FieldError] = []
    if not _EMAIL.fullmatch(normalize_email(email)) or len(email) > 254:
        errors.append(FieldError("email", "must be a valid e-mail address"))
    if not name.strip() or len(name) > 200:
        errors.append(FieldError("name", "must be 1..200 characters"))
    if role not in ROLES:
        errors.append(FieldError("role", f"must be one of {', '.join(ROLES)}"))
    if len(password) < MIN_PASSWORD_LENGTH or len(password) > 1024:
        errors.append(FieldError("password", f"must be {MIN_PASSWORD_LENGTH}..1024 characters"))
    return errors


def ensure_valid(errors: list[FieldError]) -> None:
    if errors:
        raise InvalidArgument("the request is invalid", "validation_error", errors)


# Sign-in throttling: failures allowed before a lock, per account and per client address (an
# address may hide many people behind one NAT); each further failure doubles the lock, from
# LOGIN_FIRST_LOCK_SECONDS up to LOGIN_MAX_LOCK_SECONDS. Failures older than the longest lock
# are forgotten; a successful sign-in clears the account's count (not the address's).
LOGIN_FREE_FAILURES = {"account": 5, "address": 20}
LOGIN_FIRST_LOCK_SECONDS = 30
LOGIN_MAX_LOCK_SECONDS = 900


def login_keys(email: str, client_address: str, index: Callable[[str], bytes]) -> dict[str, str]:
    """The throttling keys of a sign-in by kind; the account's is a keyed digest (`index`, the
    blind index), never the e-mail."""
    keys = {"account": "account:" + index("login:" + normalize_email(email)).hex()}
    if client_address and not _is_loopback(client_address):
        keys["address"] = f"address:{client_address[:64]}"
    return keys


def _is_loopback(address: str) -> bool:
    """A loopback peer is this machine (a local proxy whose hops are not configured, the tests):
    throttling it would throttle everyone behind it, so only the account counts."""
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def login_lock_seconds(kind: str, failures: int) -> int:
    """How long sign-in stays refused after `failures` consecutive failures of a key of `kind`."""
    over = failures - LOGIN_FREE_FAILURES[kind]
    if over < 0:
        return 0
    return min(LOGIN_MAX_LOCK_SECONDS, LOGIN_FIRST_LOCK_SECONDS * 2 ** min(over, 16))


# Countries where Stripe Connect accounts can be created (ISO 3166-1 alpha-2).
STRIPE_COUNTRIES = frozenset(
    [
        "AE",
        "AT",
        "AU",
        "BE",
        "BG",
        "BR",
        "CA",
        "CH",
        "CY",
        "CZ",
        "DE",
        "DK",
        "EE",
        "ES",
        "FI",
        "FR",
        "GB",
        "GI",
        "GR",
        "HK",
        "HR",
        "HU",
        "IE",
        "IT",
        "JP",
        "LI",
        "LT",
        "LU",
        "LV",
        "MT",
        "MX",
        "MY",
        "NL",
        "NO",
        "NZ",
        "PL",
        "PT",
        "RO",
        "SE",
        "SG",
        "SI",
        "SK",
        "TH",
        "US",
    ]
)
# The closed sets are the proto's enums (accounts.proto).
BUSINESS_TYPES = enum_names(accounts_pb2.BusinessType.DESCRIPTOR)
CHARGE_MODELS = enum_names(accounts_pb2.ChargeModel.DESCRIPTOR)
ACCOUNT_TYPES = enum_names(accounts_pb2.AccountType.DESCRIPTOR)
MAX_FEE_PERCENT_BPS = 10_000
_IBAN = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{10,30}$")


@dataclass(frozen=True)
class StripeAccountState:
    """What the platform knows of an organisation's connected account, and as of when."""

    account_id: str
    type: str
    charges_enabled: bool
    payouts_enabled: bool
    details_submitted: bool
    requirements_due: tuple[str, ...]
    # When Stripe's object was in this state: an event's `created`, or when it was read.
    state_at: datetime | None
    updated_at: datetime | None


@dataclass(frozen=True)
class Organization:
    id: str
    name: str
    email: str
    country: str
    business_type: str
    address: Address
    charge_model: str
    fee_percent_bps: int
    fee_minimum: int
    legal_entity: str
    bank_account_iban: str
    timezone: str
    default_currency: str
    created_at: datetime
    stripe: StripeAccountState | None
    siren: str = ""


@dataclass(frozen=True)
class NewOrganization:
    name: str
    email: str
    country: str
    business_type: str
    address: Address
    charge_model: str = DEFAULT_CHARGE_MODEL
    fee_percent_bps: int = 0
    fee_minimum: int = 0
    legal_entity: str = ""
    bank_account_iban: str = ""
    timezone: str = DEFAULT_TIMEZONE
    default_currency: str = DEFAULT_CURRENCY
    siren: str = ""


@dataclass(frozen=True)
class OrganizationChanges:
    """A PATCH: None leaves a field as it is."""

    name: str | None = None
    charge_model: str | None = None
    fee_percent_bps: int | None = None
    fee_minimum: int | None = None
    legal_entity: str | None = None
    bank_account_iban: str | None = None
    timezone: str | None = None
    siren: str | None = None


@dataclass(frozen=True)
class PaymentPolicy:
    organization_id: str
    stripe_account_id: str
    charge_model: str
    fee_percent_bps: int
    fee_minimum: int
    charges_enabled: bool
    country: str
    default_currency: str
    timezone: str


def _valid_timezone(name: str) -> bool:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _name_errors(name: str) -> list[FieldError]:
    return [] if name.strip() and len(name) <= 200 else [FieldError("name", "must be 1..200 characters")]


def _policy_errors(
    charge_model: str | None, fee_percent_bps: int | None, fee_minimum: int | None, min_payment: int
) -> list[FieldError]:
    errors: list[FieldError] = []
    if charge_model is not None and charge_model not in CHARGE_MODELS:
        errors.append(FieldError("charge_model", f"must be one of {', '.join(CHARGE_MODELS)}"))
    if fee_percent_bps is not None and not 0 <= fee_percent_bps <= MAX_FEE_PERCENT_BPS:
        errors.append(FieldError("fee_percent_bps", f"must be 0..{MAX_FEE_PERCENT_BPS}"))
    if fee_minimum is not None and not 0 <= fee_minimum <= 1_000_000:
        errors.append(FieldError("fee_minimum", "must be 0..1000000 (minor units)"))
    if not errors and fee_leaves_nothing(min_payment, fee_percent_bps or 0, fee_minimum or 0):
        field = "fee_minimum" if (fee_minimum or 0) >= min_payment else "fee_percent_bps"
        errors.append(FieldError(field, f"the fee would take the whole of a {min_payment} payment (the smallest)"))
    return errors


def _optional_errors(iban: str | None, timezone: str | None, legal_entity: str | None) -> list[FieldError]:
    errors: list[FieldError] = []
    if iban and not _IBAN.match(iban.replace(" ", "").upper()):
        errors.append(FieldError("bank_account_iban", "must be an IBAN"))
    if timezone is not None and not _valid_timezone(timezone):
        errors.append(FieldError("timezone", "must be an IANA time zone"))
    if legal_entity is not None and len(legal_entity) > 200:
        errors.append(FieldError("legal_entity", "must be at most 200 characters"))
    return errors


def _siren_errors(siren: str | None) -> list[FieldError]:
    return [FieldError("siren", SIREN_RULE)] if siren and not is_siren(siren) else []


def validate_new_organization(new: NewOrganization, min_payment: int) -> list[FieldError]:
    errors = _name_errors(new.name)
    if not _EMAIL.fullmatch(normalize_email(new.email)) or len(new.email) > 254:
        errors.append(FieldError("email", "must be a valid e-mail address"))
    if new.country not in STRIPE_COUNTRIES:
        errors.append(FieldError("country", "must be an ISO 3166-1 alpha-2 code of a country Stripe supports"))
    if new.business_type not in BUSINESS_TYPES:
        errors.append(FieldError("business_type", f"must be one of {', '.join(BUSINESS_TYPES)}"))
    if new.address.country and new.address.country.upper() != new.country:
        errors.append(FieldError("address.country", "must be the organisation's country"))
    elif new.country in STRIPE_COUNTRIES:
        errors += address_errors(normalize_address(new.address, new.country))
    errors += _policy_errors(new.charge_model, new.fee_percent_bps, new.fee_minimum, min_payment)
    errors += _optional_errors(new.bank_account_iban, new.timezone, new.legal_entity)
    errors += _siren_errors(new.siren)
    if not is_currency(new.default_currency):
        errors.append(FieldError("default_currency", "must be a lower-case ISO 4217 code"))
    return errors


def validate_changes(changes: OrganizationChanges, min_payment: int) -> list[FieldError]:
    errors = _name_errors(changes.name) if changes.name is not None else []
    errors += _policy_errors(changes.charge_model, changes.fee_percent_bps, changes.fee_minimum, min_payment)
    errors += _optional_errors(changes.bank_account_iban, changes.timezone, changes.legal_entity)
    errors += _siren_errors(changes.siren)
    return errors


def normalize_iban(iban: str) -> str:
    return iban.replace(" ", "").upper()


def account_state_from_stripe(account: dict[str, object], state_at: datetime | None) -> StripeAccountState:
    """The fields the platform keeps from a Stripe account object (as a plain dict)."""
    requirements = account.get("requirements") or {}
    due = requirements.get("currently_due") if isinstance(requirements, dict) else None
    return StripeAccountState(
        account_id=str(account["id"]),
        type=str(account.get("type") or ""),
        charges_enabled=bool(account.get("charges_enabled")),
        payouts_enabled=bool(account.get("payouts_enabled")),
        details_submitted=bool(account.get("details_submitted")),
        requirements_due=tuple(str(item) for item in (due or [])),
        state_at=state_at,
        updated_at=None,
    )


def event_is_newer(event_created: datetime, state_at: datetime | None) -> bool | None:
    """Whether an event describes a newer state than the one stored: True, False, or None when unsure.

    Stripe's `created` has one-second resolution, so an event stamped in the same second as
    (or up to a second before) the stored state may be either older or newer: re-read then.
    """
    if state_at is None or event_created > state_at:
        return True
    if (state_at - event_created).total_seconds() >= 1:
        return False
    return None


# The audit trail --------------------------------------------------------------------------------
# One hash chain per organisation, and one for actions on the platform itself.
PLATFORM_CHAIN = "platform"
GENESIS_HASH = bytes(32)


@dataclass(frozen=True)
class AuditEntry:
    """One chained entry of the audit trail: a service's record and its place in a chain."""

    id: str
    chain: str
    sequence: int
    record: AuditRecord  # its occurred_at is set
    source: str
    recorded_at: datetime
    previous_hash: bytes
    hash: bytes = b""

    @property
    def created_at(self) -> datetime:
        """The time keyset pages are ordered by (runtime.pagination)."""
        return self.recorded_at


def audit_chain(organization_id: str | None) -> str:
    return organization_id or PLATFORM_CHAIN


def _instant(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment is not None else None


def audit_hash(entry: AuditEntry) -> bytes:
    """SHA-256 over the previous hash and a canonical encoding (sorted-key JSON) of every other field."""
    fields = {
        **vars(entry.record),  # its fields, as `asdict` has them, without its deep copy
        "occurred_at": _instant(entry.record.occurred_at),
        "id": entry.id,
        "chain": entry.chain,
        "sequence": entry.sequence,
        "source": entry.source,
        "recorded_at": _instant(entry.recorded_at),
    }
    return hashlib.sha256(entry.previous_hash + orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)).digest()


@dataclass(frozen=True)
class ChainBreak:
    """Where a chain stops verifying: the first entry found edited, missing or out of place."""

    chain: str
    sequence: int
    entry_id: str
    reason: str


def audit_link_break(previous_sequence: int, previous_hash: bytes, entry: AuditEntry) -> ChainBreak | None:
    """Whether `entry` follows the entry (sequence, hash) before it in its chain (0 and the
    genesis hash for the first one) and still hashes to what was recorded."""

    def broken(reason: str) -> ChainBreak:
        return ChainBreak(entry.chain, entry.sequence, entry.id, reason)

    if entry.sequence != previous_sequence + 1:
        return broken(f"entries {previous_sequence + 1}..{entry.sequence - 1} are missing (deleted)")
    if entry.previous_hash != previous_hash:
        return broken("does not follow the previous entry's hash (an entry before it was changed or replaced)")
    if audit_hash(entry) != entry.hash:
        return broken("was edited: its content no longer matches its hash")
    return None


def audit_head_break(
    chain: str, last_sequence: int, last_hash: bytes, head: tuple[int, bytes] | None
) -> ChainBreak | None:
    """Whether the chain's last entry is the one its head recorded (the newest ones deleted otherwise)."""
    head_sequence, head_hash = head if head is not None else (0, GENESIS_HASH)
    if (last_sequence, last_hash) == (head_sequence, head_hash):
        return None
    if last_sequence < head_sequence:
        reason = f"entries {last_sequence + 1}..{head_sequence} are missing (the newest ones were deleted)"
    else:
        reason = "the chain's head does not match its last entry"
    return ChainBreak(chain, last_sequence + 1 if last_sequence < head_sequence else last_sequence, "", reason)


def audit_anchor_break(anchor: AuditAnchor, last_sequence: int, anchored: AuditEntry | None) -> ChainBreak | None:
    """Whether a chain walked up to `last_sequence` still holds the entry `anchor` (kept outside the
    database) recorded: `anchored` is the chain's entry at the anchor's sequence, if any. This is
    what catches the newest entries deleted together with the head rewound."""
    if anchored is None or last_sequence < anchor.sequence:
        reason = (
            f"the chain ends at {last_sequence} but its anchor {anchor} was taken at {anchor.sequence}"
            " (the newest entries were deleted and the head rewound)"
        )
        return ChainBreak(anchor.chain, min(last_sequence, anchor.sequence - 1) + 1, "", reason)
    if not anchored.hash.hex().startswith(anchor.hash_prefix):
        return ChainBreak(
            anchor.chain, anchor.sequence, anchored.id, f"does not match its anchor {anchor} (it was replaced)"
        )
    return None


# An organisation's settings the audit trail shows before and after a change; the others
# (its name, e-mail, IBAN: personal or secret) are only said to have changed.
AUDITED_ORGANIZATION_FIELDS = (
    "charge_model",
    "fee_percent_bps",
    "fee_minimum",
    "legal_entity",
    "timezone",
    "default_currency",
    "country",
    "business_type",
    "siren",
)


def audit_changes(
    before: dict[str, Any], after: dict[str, Any], shown: tuple[str, ...]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The values that changed, before and after; a changed field not `shown` reads CHANGED."""
    changed = [key for key in after if before.get(key) != after[key]]
    return (
        {key: before.get(key) if key in shown else CHANGED for key in changed},
        {key: after[key] if key in shown else CHANGED for key in changed},
    )


def account_audit_fields(state: StripeAccountState) -> dict[str, Any]:
    """What an audit entry holds of a connected account's status (no personal data in it)."""
    return {
        "charges_enabled": state.charges_enabled,
        "payouts_enabled": state.payouts_enabled,
        "details_submitted": state.details_submitted,
        "requirements_due": len(state.requirements_due),
    }


def organization_audit_fields(org: Organization) -> dict[str, Any]:
    """What an organisation's audit entries may hold of it (plus `name` and `bank_account_iban`,
    which `audit_changes` hides)."""
    fields: dict[str, Any] = {name: getattr(org, name) for name in AUDITED_ORGANIZATION_FIELDS}
    fields.update(name=org.name, bank_account_iban=org.bank_account_iban)
    return fields
