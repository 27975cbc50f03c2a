"""A connected account's capabilities, persons and external (bank) accounts, and rejecting it.

Served under `/v1/accounts/{account}/...` for the platform, and under `/v1/account/...` for the
account itself (`Stripe-Account` header).
"""

from __future__ import annotations

import time
from typing import Any

from ..context import Ctx, deleted
from ..ids import new_id
from ..store import StripeObject, paginate
from ..wire import apply_metadata, get_bool, get_dict, get_str, invalid, not_found
from .accounts import retrieve_account

_REJECT_REASONS = ("fraud", "terms_of_service", "other")


def _no_requirements() -> dict[str, Any]:
    return {
        "alternatives": [],
        "current_deadline": None,
        "currently_due": [],
        "disabled_reason": None,
        "errors": [],
        "eventually_due": [],
        "past_due": [],
        "pending_verification": [],
    }


def _account(ctx: Ctx, account_id: str | None) -> StripeObject:
    return retrieve_account(ctx, account_id or ctx.account)


# --- capabilities -------------------------------------------------------------------------------


def _capability(account: StripeObject, name: str) -> StripeObject:
    status = account["capabilities"][name]
    return {
        "id": name,
        "object": "capability",
        "account": account["id"],
        "future_requirements": _no_requirements(),
        "requested": True,
        "requested_at": account["created"],
        "requirements": _no_requirements() if status == "active" else account["requirements"],
        "status": status,
    }


def list_capabilities(ctx: Ctx, account_id: str | None = None) -> StripeObject:
    account = _account(ctx, account_id)
    data = [_capability(account, name) for name in sorted(account["capabilities"])]
    return {"object": "list", "data": data, "has_more": False, "url": f"/v1/accounts/{account['id']}/capabilities"}


def retrieve_capability(ctx: Ctx, account_id: str | None, name: str | None = None) -> StripeObject:
    if name is None:  # /v1/account/capabilities/{capability}
        account_id, name = None, account_id
    account = _account(ctx, account_id)
    assert name is not None
    if name not in account["capabilities"]:
        raise not_found("capability", name, param="capability")
    return _capability(account, name)


def update_capability(ctx: Ctx, account_id: str | None, name: str | None = None) -> StripeObject:
    if name is None:
        account_id, name = None, account_id
    account = _account(ctx, account_id)
    assert name is not None
    requested = get_bool(ctx.params, "requested", default=True)
    previous = {"capabilities": dict(account["capabilities"])}
    if requested:
        account["capabilities"].setdefault(name, "active" if account["charges_enabled"] else "inactive")
    elif name in account["capabilities"]:
        account["capabilities"][name] = "inactive"
    else:
        raise not_found("capability", name, param="capability")
    ctx.state.emit(account["id"], "account.updated", account, previous)
    return _capability(account, name)


# --- persons --------------------------------------------------------------------------------------

_PERSON_FIELDS = ("email", "first_name", "last_name", "phone", "id_number", "ssn_last_4")


def _apply_person(person: StripeObject, params: dict[str, Any]) -> None:
    for name in ("email", "first_name", "last_name", "phone"):
        if name in params:
            person[name] = params[name] or None
    for name in ("id_number", "ssn_last_4"):
        if params.get(name):  # never stored in clear: Stripe only says whether it was provided
            person[f"{name}_provided"] = True
    relationship = get_dict(params, "relationship")
    if relationship:
        for key, value in relationship.items():
            if key in person["relationship"]:
                person["relationship"][key] = (
                    value in ("true", True) if key not in ("percent_ownership", "title") else (value or None)
                )
    if "metadata" in params:
        apply_metadata(person, params)


def create_person(ctx: Ctx, account_id: str | None = None) -> StripeObject:
    account = _account(ctx, account_id)
    person: StripeObject = {
        "id": new_id("person", 24),
        "object": "person",
        "account": account["id"],
        "created": int(time.time()),
        "email": None,
        "first_name": None,
        "id_number_provided": False,
        "last_name": None,
        "metadata": {},
        "phone": None,
        "relationship": {
            "director": False,
            "executive": False,
            "owner": False,
            "percent_ownership": None,
            "representative": False,
            "title": None,
        },
        "requirements": {
            "currently_due": [],
            "errors": [],
            "eventually_due": [],
            "past_due": [],
            "pending_verification": [],
        },
        "ssn_last_4_provided": False,
        "verification": {
            "additional_document": {"back": None, "details": None, "details_code": None, "front": None},
            "details": None,
            "details_code": None,
            "document": {"back": None, "details": None, "details_code": None, "front": None},
            "status": "verified",
        },
    }
    _apply_person(person, ctx.params)
    ctx.state.store.add(account["id"], person)
    ctx.state.emit(account["id"], "person.created", person)
    return person


def _person(ctx: Ctx, account_id: str | None, person_id: str) -> StripeObject:
    account = _account(ctx, account_id)
    return ctx.state.store.get(account["id"], person_id, "person")


def _split(account_id: str, person_id: str | None) -> tuple[str | None, str]:
    return (None, account_id) if person_id is None else (account_id, person_id)


def retrieve_person(ctx: Ctx, account_id: str, person_id: str | None = None) -> StripeObject:
    return _person(ctx, *_split(account_id, person_id))


def update_person(ctx: Ctx, account_id: str, person_id: str | None = None) -> StripeObject:
    person = _person(ctx, *_split(account_id, person_id))
    _apply_person(person, ctx.params)
    ctx.state.emit(person["account"], "person.updated", person)
    return person


def delete_person(ctx: Ctx, account_id: str, person_id: str | None = None) -> StripeObject:
    person = _person(ctx, *_split(account_id, person_id))
    ctx.state.store.remove(person["id"])
    ctx.state.emit(person["account"], "person.deleted", person)
    return deleted(person)


def list_persons(ctx: Ctx, account_id: str | None = None) -> StripeObject:
    account = _account(ctx, account_id)
    return paginate(
        ctx.state.store.newest_first(account["id"], "person"), ctx.params, f"/v1/accounts/{account['id']}/persons"
    )


# --- external accounts ------------------------------------------------------------------------------


def create_external_account(ctx: Ctx, account_id: str | None = None) -> StripeObject:
    account = _account(ctx, account_id)
    source = ctx.params.get("external_account")
    if isinstance(source, str) and source:
        details: dict[str, Any] = {"account_number": "000123456789", "country": account["country"]}
    elif isinstance(source, dict):
        details = source
    else:
        raise invalid("Missing required param: external_account.", param="external_account", code="parameter_missing")
    number = str(details.get("account_number") or "")
    if isinstance(source, dict) and (details.get("object") not in (None, "bank_account") or len(number) < 4):
        raise invalid(
            "Invalid external_account: a bank account with an account_number is expected.", param="external_account"
        )
    bank: StripeObject = {
        "id": new_id("ba"),
        "object": "bank_account",
        "account": account["id"],
        "account_holder_name": details.get("account_holder_name"),
        "account_holder_type": details.get("account_holder_type"),
        "available_payout_methods": ["standard"],
        "bank_name": "STRIPE TEST BANK",
        "country": str(details.get("country") or account["country"]).upper(),
        "currency": str(details.get("currency") or account["default_currency"]).lower(),
        "default_for_currency": False,
        "fingerprint": f"sbx{number[-4:]}",
        "last4": number[-4:],
        "metadata": {},
        "routing_number": details.get("routing_number"),
        "status": "new",
    }
    existing = [b for b in account["external_accounts"]["data"] if b["currency"] == bank["currency"]]
    if not existing or get_bool(ctx.params, "default_for_currency"):
        for other in existing:
            other["default_for_currency"] = False
        bank["default_for_currency"] = True
    ctx.state.store.add(account["id"], bank)
    account["external_accounts"]["data"].insert(0, bank)
    ctx.state.emit(account["id"], "account.external_account.created", bank)
    return bank


def _external(ctx: Ctx, account_id: str | None, bank_id: str) -> tuple[StripeObject, StripeObject]:
    account = _account(ctx, account_id)
    return account, ctx.state.store.get(account["id"], bank_id, "bank_account", "external account")


def retrieve_external_account(ctx: Ctx, account_id: str, bank_id: str | None = None) -> StripeObject:
    return _external(ctx, *_split(account_id, bank_id))[1]


def update_external_account(ctx: Ctx, account_id: str, bank_id: str | None = None) -> StripeObject:
    account, bank = _external(ctx, *_split(account_id, bank_id))
    for name in ("account_holder_name", "account_holder_type"):
        if name in ctx.params:
            bank[name] = ctx.params[name] or None
    if get_bool(ctx.params, "default_for_currency"):
        for other in account["external_accounts"]["data"]:
            if other["currency"] == bank["currency"]:
                other["default_for_currency"] = other is bank
    apply_metadata(bank, ctx.params)
    ctx.state.emit(account["id"], "account.external_account.updated", bank)
    return bank


def delete_external_account(ctx: Ctx, account_id: str, bank_id: str | None = None) -> StripeObject:
    account, bank = _external(ctx, *_split(account_id, bank_id))
    if bank["default_for_currency"] and len(account["external_accounts"]["data"]) > 1:
        raise invalid(
            "You cannot delete the default bank account for your default currency. Please make another bank "
            "account the default using the `default_for_currency` param, and then delete this one."
        )
    ctx.state.store.remove(bank["id"])
    account["external_accounts"]["data"] = [b for b in account["external_accounts"]["data"] if b is not bank]
    ctx.state.emit(account["id"], "account.external_account.deleted", bank)
    return deleted(bank)


def list_external_accounts(ctx: Ctx, account_id: str | None = None) -> StripeObject:
    account = _account(ctx, account_id)
    kind = get_str(ctx.params, "object")
    items = (b for b in account["external_accounts"]["data"] if not kind or b["object"] == kind)
    return paginate(items, ctx.params, f"/v1/accounts/{account['id']}/external_accounts")


# --- reject ---------------------------------------------------------------------------------------


def reject_account(ctx: Ctx, account_id: str) -> StripeObject:
    account = retrieve_account(ctx, account_id)
    if account_id == ctx.state.platform_id:
        raise not_found("account", account_id, param="account")
    reason = get_str(ctx.params, "reason", required=True)
    previous = {
        "charges_enabled": account["charges_enabled"],
        "payouts_enabled": account["payouts_enabled"],
        "requirements": dict(account["requirements"]),
    }
    account["charges_enabled"] = False
    account["payouts_enabled"] = False
    account["requirements"] = {**account["requirements"], "disabled_reason": f"rejected.{reason}"}
    account["capabilities"] = {name: "inactive" for name in account["capabilities"]}
    ctx.state.emit(account["id"], "account.updated", account, previous)
    return account


_PERSONS = [
    ("POST", "{base}/persons", create_person),
    ("GET", "{base}/persons", list_persons),
    ("GET", "{base}/persons/{}", retrieve_person),
    ("POST", "{base}/persons/{}", update_person),
    ("DELETE", "{base}/persons/{}", delete_person),
    ("POST", "{base}/people", create_person),
    ("GET", "{base}/people", list_persons),
    ("GET", "{base}/people/{}", retrieve_person),
    ("POST", "{base}/people/{}", update_person),
    ("DELETE", "{base}/people/{}", delete_person),
    ("GET", "{base}/capabilities", list_capabilities),
    ("GET", "{base}/capabilities/{}", retrieve_capability),
    ("POST", "{base}/capabilities/{}", update_capability),
    ("POST", "{base}/external_accounts", create_external_account),
    ("GET", "{base}/external_accounts", list_external_accounts),
    ("GET", "{base}/external_accounts/{}", retrieve_external_account),
    ("POST", "{base}/external_accounts/{}", update_external_account),
    ("DELETE", "{base}/external_accounts/{}", delete_external_account),
    ("POST", "{base}/bank_accounts", create_external_account),
    ("GET", "{base}/bank_accounts/{}", retrieve_external_account),
    ("POST", "{base}/bank_accounts/{}", update_external_account),
    ("DELETE", "{base}/bank_accounts/{}", delete_external_account),
]

ROUTES = [
    *((method, path.replace("{base}", "/v1/accounts/{}"), handler) for method, path, handler in _PERSONS),
    *((method, path.replace("{base}", "/v1/account"), handler) for method, path, handler in _PERSONS),
    ("POST", "/v1/accounts/{}/reject", reject_account),
]
