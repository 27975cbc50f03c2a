"""Play the outside world against `make run`: the phone, Stripe's payouts and the bank.

    python -m stack.play present <payment_id> [--card approve|decline|insufficient_funds|<number>]
    python -m stack.play payout <acct_id> [--amount CENTS]
    python -m stack.play credit --amount CENTS [--label TEXT] [--reference TEXT]

`present` is the customer tapping a card on the agent's phone: the Stripe sandbox's simulated
reader (Stripe's `present_payment_method` test helper) confirms the payment's PaymentIntent with
Stripe's test card numbers (4242 4242 4242 4242 approves, 4000 0000 0000 0002 declines), as the
Terminal SDK would after collecting the card; the payment then changes through Stripe's webhook.
`payout` pays a connected account's available balance out; the sandbox marks it paid and credits
the Qonto sandbox, whose webhook brings the credit to Banking. `credit` puts any other credit on
the bank account. Everything goes to the URLs in `.run/stack.json`; the gateway is used as the
platform admin (PLATFORM_ADMIN_EMAIL / PLATFORM_ADMIN_PASSWORD, or `make run`'s defaults).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson

from sandbox.qonto.config import QontoSandboxConfig
from sandbox.stripe.resources.payment_methods import CARD_PRESENT_NUMBERS
from stack.launcher import DEFAULT_ADMIN_EMAIL, DEFAULT_ADMIN_PASSWORD, SANDBOX_STRIPE_KEY

ROOT = Path(__file__).resolve().parents[1]
_PHONE = "stack.play phone"


class PlayError(Exception):
    pass


def _stack(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "stack.json"
    if not path.exists():
        raise PlayError(f"{path} is missing: start the stack with `make run` first")
    stack: dict[str, Any] = orjson.loads(path.read_bytes())
    return stack


def _sandbox(stack: dict[str, Any], name: str) -> str:
    url = stack.get("sandboxes", {}).get(name)
    if not url:
        raise PlayError(f"`make run` did not start the {name} sandbox (real credentials are configured)")
    return str(url)


def _ok(answer: httpx.Response) -> dict[str, Any]:
    if answer.status_code >= 300:
        raise PlayError(f"{answer.request.method} {answer.request.url.path}: {answer.status_code} {answer.text}")
    body: dict[str, Any] = answer.json()
    return body


def cards() -> dict[str, str]:
    """`approve`, `decline` and each other decline code, from the sandbox's card_present test numbers."""
    named: dict[str, str] = {}
    for number, (_, _, decline) in CARD_PRESENT_NUMBERS.items():
        named.setdefault("approve" if decline is None else decline[1].replace("generic_decline", "decline"), number)
    return named


def _gateway(stack: dict[str, Any]) -> httpx.Client:
    credentials = {
        "email": os.environ.get("PLATFORM_ADMIN_EMAIL") or DEFAULT_ADMIN_EMAIL,
        "password": os.environ.get("PLATFORM_ADMIN_PASSWORD") or DEFAULT_ADMIN_PASSWORD,
    }
    token = _ok(httpx.post(f"{stack['gateway']}/v1/auth/token", json=credentials, timeout=30))["access_token"]
    return httpx.Client(base_url=stack["gateway"], headers={"Authorization": f"Bearer {token}"}, timeout=30)


def _stripe(stack: dict[str, Any], account: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {SANDBOX_STRIPE_KEY}"}
    if account:
        headers["Stripe-Account"] = account
    return httpx.Client(base_url=_sandbox(stack, "stripe"), headers=headers, timeout=30)


def _phone(stripe: httpx.Client) -> str:
    """The simulated reader standing for the phone on this account (registered on first use)."""
    readers = _ok(stripe.get("/v1/terminal/readers", params={"limit": 100}))["data"]
    mine = next((r for r in readers if r.get("label") == _PHONE), None)
    if mine is not None:
        return str(mine["id"])
    location = _ok(
        stripe.post(
            "/v1/terminal/locations",
            data={
                "display_name": _PHONE,
                "address[line1]": "1 rue de la Caserne",
                "address[city]": "Lyon",
                "address[postal_code]": "69001",
                "address[country]": "FR",
            },
        )
    )
    reader = _ok(
        stripe.post(
            "/v1/terminal/readers",
            data={"registration_code": "simulated-wpe", "label": _PHONE, "location": location["id"]},
        )
    )
    return str(reader["id"])


def _find_payment(gateway: httpx.Client, payment_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The payment and its organisation (a platform admin reads a payment by its id alone)."""
    answer = gateway.get(f"/v1/payments/{payment_id}")
    if answer.status_code == 404:
        raise PlayError(f"no organisation has a payment {payment_id}")
    payment = _ok(answer)
    return payment, _ok(gateway.get(f"/v1/organizations/{payment['organization_id']}"))


def present(stack: dict[str, Any], payment_id: str, card: str) -> int:
    number = cards().get(card, card)
    with _gateway(stack) as gateway:
        payment, organization = _find_payment(gateway, payment_id)
        account = organization["stripe_account_id"]
        # Direct charges live on the connected account, destination charges on the platform.
        with _stripe(stack, account if organization["charge_model"] == "direct" else None) as stripe:
            reader = _phone(stripe)
            _ok(
                stripe.post(
                    f"/v1/terminal/readers/{reader}/process_payment_intent",
                    data={"payment_intent": payment["stripe_payment_intent_id"]},
                )
            )
            tapped = _ok(
                stripe.post(
                    f"/v1/test_helpers/terminal/readers/{reader}/present_payment_method",
                    data={"type": "card_present", "card_present[number]": number},
                )
            )
        action = tapped["action"]
        outcome = action["status"] + (
            f" ({action['failure_code']}: {action['failure_message']})" if action.get("failure_code") else ""
        )
        print(f"card {number[:4]} … {number[-4:]} presented: {outcome}")
        before = (payment["status"], payment["decline_code"])
        deadline = time.monotonic() + 15  # Stripe's webhook reaches Payments through the gateway
        while (payment["status"], payment["decline_code"]) == before and time.monotonic() < deadline:
            time.sleep(0.2)
            payment = _ok(gateway.get(f"/v1/payments/{payment_id}", params={"organization_id": organization["id"]}))
        declined = (
            f" (declined: {payment['decline_code']}; another card may be presented)" if payment["decline_code"] else ""
        )
        print(f"payment {payment_id}: {payment['status']}{declined}")
    return 0 if action["status"] == "succeeded" else 1


def payout(stack: dict[str, Any], account: str, amount: int | None) -> int:
    with _stripe(stack, account) as stripe:
        available = sum(b["amount"] for b in _ok(stripe.get("/v1/balance"))["available"] if b["currency"] == "eur")
        amount = amount or available
        if amount <= 0:
            raise PlayError(f"{account} has nothing available to pay out (sell something first)")
        made = _ok(stripe.post("/v1/payouts", data={"amount": str(amount), "currency": "eur"}))
        print(f"payout {made['id']} of {amount / 100:.2f} EUR from {account}: {made['status']}")
        deadline = time.monotonic() + 15
        while made["status"] == "in_transit" and time.monotonic() < deadline:
            time.sleep(0.2)
            made = _ok(stripe.get(f"/v1/payouts/{made['id']}"))
        print(
            f"payout {made['id']}: {made['status']} (arrival {time.strftime('%Y-%m-%d', time.gmtime(made['arrival_date']))})"
        )
    return 0 if made["status"] == "paid" else 1


def credit(stack: dict[str, Any], amount: int, label: str, reference: str | None) -> int:
    config = QontoSandboxConfig()  # `make run` starts the Qonto sandbox with its default credentials
    body = {"amount_cents": amount, "side": "credit", "label": label, "reference": reference or uuid.uuid4().hex[:12]}
    with httpx.Client(
        base_url=_sandbox(stack, "qonto"), headers={"Authorization": f"{config.login}:{config.secret_key}"}, timeout=30
    ) as qonto:
        made = _ok(qonto.post("/_sandbox/transactions", json=body))["transaction"]
    print(
        f"bank credit {made['transaction_id']} of {amount / 100:.2f} EUR, label {label!r}, reference {made['reference']!r}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m stack.play", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run-dir", type=Path, default=Path(os.environ.get("STACK_RUN_DIR") or ROOT / ".run"))
    commands = parser.add_subparsers(dest="command", required=True)
    tap = commands.add_parser("present", help="tap a card on the phone for a card_present payment")
    tap.add_argument("payment_id")
    tap.add_argument("--card", default="approve", help=f"{', '.join(cards())} or a test card number")
    out = commands.add_parser("payout", help="pay a connected account's available balance out")
    out.add_argument("account", help="acct_... (GET /v1/organizations/{id}/stripe-account)")
    out.add_argument("--amount", type=int, help="cents (default: everything available)")
    bank = commands.add_parser("credit", help="credit the bank account at the Qonto sandbox")
    bank.add_argument("--amount", type=int, required=True, help="cents")
    bank.add_argument("--label", default="VIREMENT ADHERENT")
    bank.add_argument("--reference")
    args = parser.parse_args(argv)
    try:
        stack = _stack(args.run_dir)
        if args.command == "present":
            return present(stack, args.payment_id, args.card)
        if args.command == "payout":
            return payout(stack, args.account, args.amount)
        return credit(stack, args.amount, args.label, args.reference)
    except (PlayError, httpx.HTTPError) as error:
        print(f"stack.play: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
