"""Connected accounts, account links (served onboarding) and login links."""

from __future__ import annotations

import secrets
import time
from typing import Any

from ..context import Ctx, deleted
from ..ids import new_id
from ..store import StripeObject, paginate
from ..wire import Params, apply_metadata, get_dict, get_str, invalid, not_found

_DUE = [
    "business_profile.mcc",
    "business_profile.url",
    "external_account",
    "individual.first_name",
    "individual.last_name",
    "tos_acceptance.date",
    "tos_acceptance.ip",
]
_LINK_TTL = 300


def _requirements(due: list[str]) -> dict[str, Any]:
    return {
        "alternatives": [],
        "current_deadline": None,
        "currently_due": list(due),
        "disabled_reason": "requirements.past_due" if due else None,
        "errors": [],
        "eventually_due": list(due),
        "past_due": list(due),
        "pending_verification": [],
    }


def _type_from_controller(controller: dict[str, Any]) -> str:
    """The account type implied by the newer `controller[...]` parameters (Stripe's default: standard)."""
    dashboard = (controller.get("stripe_dashboard") or {}).get("type")
    return {"express": "express", "none": "custom"}.get(str(dashboard), "standard")


def new_account(account_id: str, params: Params, platform: bool = False) -> StripeObject:
    """A fresh account; the platform itself starts fully enabled, connected ones need onboarding."""
    kind = params.get("type") or _type_from_controller(get_dict(params, "controller") or {})
    if kind not in ("express", "custom", "standard"):
        raise invalid("Invalid type: must be one of express, custom, or standard", param="type")
    enabled = platform
    requested = get_dict(params, "capabilities") or {}
    capabilities = {name: ("active" if enabled else "inactive") for name in ("card_payments", "transfers")}
    for name in requested:
        capabilities[name] = "active" if enabled else "inactive"
    profile = get_dict(params, "business_profile") or {}
    country = (params.get("country") or "FR").upper()
    currency = params.get("default_currency") or ("eur" if country != "US" else "usd")
    account: StripeObject = {
        "id": account_id,
        "object": "account",
        "business_profile": {
            "mcc": profile.get("mcc"),
            "name": profile.get("name"),
            "product_description": profile.get("product_description"),
            "support_address": None,
            "support_email": profile.get("support_email"),
            "support_phone": profile.get("support_phone"),
            "support_url": profile.get("support_url"),
            "url": profile.get("url"),
        },
        "business_type": params.get("business_type"),
        "capabilities": capabilities,
        "charges_enabled": enabled,
        "controller": {"type": "account"} if kind == "standard" else {"type": "application", "is_controller": True},
        "country": country,
        "created": int(time.time()),
        "default_currency": currency,
        "details_submitted": enabled,
        "email": params.get("email"),
        "external_accounts": {
            "object": "list",
            "data": [],
            "has_more": False,
            "url": f"/v1/accounts/{account_id}/external_accounts",
        },
        "future_requirements": _requirements([]),
        "metadata": {},
        "payouts_enabled": enabled,
        "requirements": _requirements([] if enabled else _DUE),
        "settings": {
            "branding": {"icon": None, "logo": None, "primary_color": None, "secondary_color": None},
            "card_payments": {
                "decline_on": {"avs_failure": False, "cvc_failure": False},
                "statement_descriptor_prefix": None,
            },
            "dashboard": {"display_name": profile.get("name"), "timezone": "Etc/UTC"},
            "payments": {"statement_descriptor": profile.get("name"), "statement_descriptor_kana": None},
            "payouts": {
                "debit_negative_balances": True,
                "schedule": {"delay_days": 2, "interval": "manual"},
                "statement_descriptor": None,
            },
        },
        "tos_acceptance": {"date": None, "ip": None, "user_agent": None},
        "type": kind,
    }
    apply_metadata(account, params)
    return account


def complete_onboarding(ctx_state: Any, account: StripeObject) -> None:
    """What finishing Stripe-hosted onboarding does: everything enabled, nothing due, one event."""
    previous = {
        "charges_enabled": account["charges_enabled"],
        "payouts_enabled": account["payouts_enabled"],
        "details_submitted": account["details_submitted"],
        "requirements": account["requirements"],
        "capabilities": dict(account["capabilities"]),
    }
    account["charges_enabled"] = True
    account["payouts_enabled"] = True
    account["details_submitted"] = True
    account["requirements"] = _requirements([])
    account["capabilities"] = {name: "active" for name in account["capabilities"]}
    account["tos_acceptance"] = {"date": int(time.time()), "ip": "127.0.0.1", "user_agent": "sandbox"}
    ctx_state.emit(account["id"], "account.updated", account, previous)


def _connected(ctx: Ctx, account_id: str) -> StripeObject:
    account = ctx.state.account(account_id)
    if account is None or account_id == ctx.state.platform_id or not ctx.is_platform:
        raise not_found("account", account_id, param="account")
    return account


def create_account(ctx: Ctx) -> StripeObject:
    account = new_account(new_id("acct", 16), ctx.params)
    ctx.state.store.add(ctx.state.platform_id, account)
    return account


def retrieve_account(ctx: Ctx, account_id: str) -> StripeObject:
    if account_id == ctx.account:
        account = ctx.state.account(account_id)
        assert account is not None
        return account
    return _connected(ctx, account_id)


def current_account(ctx: Ctx) -> StripeObject:
    return retrieve_account(ctx, ctx.account)


def update_account(ctx: Ctx, account_id: str) -> StripeObject:
    account = retrieve_account(ctx, account_id)
    params = ctx.params
    previous: dict[str, Any] = {}
    for name in ("email", "business_type", "default_currency"):
        if name in params:
            previous[name] = account.get(name)
            account[name] = params[name] or None
    profile = get_dict(params, "business_profile")
    if profile:
        previous["business_profile"] = dict(account["business_profile"])
        account["business_profile"].update(profile)
    if "metadata" in params:
        previous["metadata"] = account["metadata"]
        apply_metadata(account, params)
    schedule = get_dict(get_dict(get_dict(params, "settings") or {}, "payouts") or {}, "schedule")
    if schedule:
        previous["settings"] = {"payouts": {"schedule": dict(account["settings"]["payouts"]["schedule"])}}
        account["settings"]["payouts"]["schedule"] = _payout_schedule(schedule)
    ctx.state.emit(account["id"], "account.updated", account, previous)
    return account


_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _payout_schedule(params: Params) -> dict[str, Any]:
    """Stripe's rules: interval daily, weekly (with a weekly_anchor) or manual (monthly is not used here)."""
    interval = get_str(params, "interval")
    if interval not in ("daily", "weekly", "manual", "monthly"):
        raise invalid(f"Invalid interval: {interval}", param="settings[payouts][schedule][interval]")
    anchor = get_str(params, "weekly_anchor")
    if interval == "weekly" and anchor not in _WEEKDAYS:
        raise invalid(
            "You must provide a weekly_anchor with a weekly schedule.",
            param="settings[payouts][schedule][weekly_anchor]",
        )
    schedule: dict[str, Any] = {"delay_days": 2, "interval": interval}
    if interval == "weekly":
        schedule["weekly_anchor"] = anchor
    return schedule


def delete_account(ctx: Ctx, account_id: str) -> StripeObject:
    account = _connected(ctx, account_id)
    ctx.state.store.remove(account_id)
    return deleted(account)


def list_accounts(ctx: Ctx) -> StripeObject:
    items = ctx.state.store.newest_first(ctx.state.platform_id, "account") if ctx.is_platform else iter(())
    return paginate(
        (a for a in items if a["id"] != ctx.state.platform_id),
        ctx.params,
        "/v1/accounts",
    )


def create_account_link(ctx: Ctx) -> StripeObject:
    account_id = get_str(ctx.params, "account", required=True)
    assert account_id is not None
    _connected(ctx, account_id)
    refresh_url = get_str(ctx.params, "refresh_url", required=True)
    return_url = get_str(ctx.params, "return_url", required=True)
    link_type = get_str(ctx.params, "type", required=True)
    if link_type not in ("account_onboarding", "account_update"):
        raise invalid("Invalid type: must be account_onboarding or account_update", param="type")
    now = int(time.time())
    token = secrets.token_urlsafe(24)
    ctx.state.onboarding_links[token] = {
        "account": account_id,
        "refresh_url": refresh_url,
        "return_url": return_url,
        "expires_at": now + _LINK_TTL,
        "used": False,
    }
    base = ctx.state.config.public_url or ctx.base_url
    return {
        "object": "account_link",
        "created": now,
        "expires_at": now + _LINK_TTL,
        "url": f"{base.rstrip('/')}/_sandbox/onboarding/{token}",
    }


def create_login_link(ctx: Ctx, account_id: str) -> StripeObject:
    account = _connected(ctx, account_id)
    if account["type"] != "express":
        raise invalid("Login links can only be created for Express accounts.", param="account")
    base = ctx.state.config.public_url or ctx.base_url
    return {
        "object": "login_link",
        "created": int(time.time()),
        "url": f"{base.rstrip('/')}/_sandbox/express/{account_id}",
    }


ROUTES = [
    ("POST", "/v1/accounts", create_account),
    ("GET", "/v1/accounts", list_accounts),
    ("GET", "/v1/account", current_account),
    ("GET", "/v1/accounts/{}", retrieve_account),
    ("POST", "/v1/accounts/{}", update_account),
    ("DELETE", "/v1/accounts/{}", delete_account),
    ("POST", "/v1/account_links", create_account_link),
    ("POST", "/v1/accounts/{}/login_links", create_login_link),
]
