"""Operations from the shell: the platform admin and organisations.

    python -m services.accounts.cli create-admin --email ops@example.org   (password: prompt or --password-env)
    python -m services.accounts.cli create-organization --name ... --email ... --country FR \\
        --business-type non_profit --line1 ... --city ... --postal-code ...
    python -m services.accounts.cli list-organizations
    python -m services.accounts.cli rotate-keys          (after putting a new key first in ACCOUNTS_ENCRYPTION_KEYS)
    python -m services.accounts.cli verify-audit [--organization ID] [--anchor CHAIN:SEQ:HASH ...] [--anchors-file F]
        (exit 1 naming the first broken entry; an anchor is a chain head the daily report carried)

It connects with DATABASE_URL (the accounts role), applies pending migrations, and reads
ACCOUNTS_ENCRYPTION_KEYS / ACCOUNTS_BLIND_INDEX_KEY like the service does.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TextIO

import asyncpg
import orjson

from runtime.audit import AuditAnchor
from runtime.db import create_pool
from runtime.defaults import DEFAULT_CHARGE_MODEL, DEFAULT_TIMEZONE
from runtime.errors import DomainError, InvalidArgument
from runtime.migrations import apply_migrations
from runtime.money import payment_bounds
from runtime.service import RUNTIME_MIGRATIONS
from runtime.settings import Env, SettingsError
from services.accounts import audit_trail, members
from services.accounts.crypto import secrets_from_env
from services.accounts.domain import BUSINESS_TYPES, CHARGE_MODELS, Address, NewOrganization, Organization
from services.accounts.main import MIGRATIONS, SCHEMA
from services.accounts.organizations import Organizations, PolicyCache
from services.accounts.repository import OrganizationRows


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m services.accounts.cli", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    admin = commands.add_parser("create-admin", help="create the platform admin (or reset its password)")
    admin.add_argument("--email", required=True)
    admin.add_argument("--name", default="Platform admin")
    admin.add_argument("--password-env", help="read the password from this environment variable (else prompt)")

    org = commands.add_parser("create-organization", help="create an organisation")
    org.add_argument("--name", required=True)
    org.add_argument("--email", required=True)
    org.add_argument("--country", required=True)
    org.add_argument("--business-type", required=True, choices=BUSINESS_TYPES)
    org.add_argument("--line1", required=True)
    org.add_argument("--city", required=True)
    org.add_argument("--postal-code", required=True)
    org.add_argument("--charge-model", default=DEFAULT_CHARGE_MODEL, choices=CHARGE_MODELS)
    org.add_argument("--fee-percent-bps", type=int, default=0)
    org.add_argument("--fee-minimum", type=int, default=0, help="minor units")
    org.add_argument("--legal-entity", default="")
    org.add_argument("--timezone", default=DEFAULT_TIMEZONE)

    commands.add_parser("list-organizations", help="list organisations (JSON lines)")
    commands.add_parser("rotate-keys", help="re-encrypt organisations sealed with an older key")
    verify = commands.add_parser("verify-audit", help="check the audit trail's hash chains (exit 1 when broken)")
    verify.add_argument(
        "--organization", default="", help="only this organisation's chain ('platform': the platform's)"
    )
    verify.add_argument(
        "--anchor",
        action="append",
        default=[],
        type=_anchor,
        help="a chain head kept outside the database (the daily report's <chain>:<sequence>:<hash prefix>);"
        " the chain must still reach and match it (repeatable)",
    )
    verify.add_argument(
        "--anchors-file", type=_anchors_file, default=[], help="a file of anchors, one a line ('#' comments)"
    )
    return parser


def _anchor(text: str) -> AuditAnchor:
    try:
        return AuditAnchor.parse(text)
    except InvalidArgument as error:
        raise argparse.ArgumentTypeError(error.message) from None


def _anchors_file(path: str) -> list[AuditAnchor]:
    try:
        with open(path, encoding="utf-8") as lines:
            texts = [line.split("#", 1)[0].strip() for line in lines]
    except OSError as error:
        raise argparse.ArgumentTypeError(f"cannot read {path}: {error.strerror}") from None
    return [_anchor(text) for text in texts if text]


def _org_json(org: Organization) -> dict[str, object]:
    return {
        "id": org.id,
        "name": org.name,
        "email": org.email,
        "country": org.country,
        "charge_model": org.charge_model,
        "fee_percent_bps": org.fee_percent_bps,
        "fee_minimum": org.fee_minimum,
        "stripe_account_id": org.stripe.account_id if org.stripe else None,
        "charges_enabled": bool(org.stripe and org.stripe.charges_enabled),
    }


async def run(argv: Sequence[str], environ: Mapping[str, str] | None = None, out: TextIO = sys.stdout) -> int:
    """Runs one command; returns the exit status (tests call this directly)."""
    args = _parser().parse_args(argv)
    env = Env(environ)
    pool = await create_pool(env.text("DATABASE_URL"), SCHEMA, min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            await apply_migrations(conn, SCHEMA, RUNTIME_MIGRATIONS, table="runtime_migrations")
            await apply_migrations(conn, SCHEMA, MIGRATIONS)
        if args.command == "verify-audit":
            return await _verify_audit(pool, args.organization, [*args.anchor, *args.anchors_file], out)
        if args.command == "create-admin":
            variable = args.password_env
            password = (environ or os.environ).get(variable, "") if variable else getpass.getpass("password: ")
            member = await members.ensure_platform_admin(pool, args.email, password, args.name)
            print(orjson.dumps({"id": member.id, "email": member.email, "role": member.role}).decode(), file=out)
            return 0
        organizations = Organizations(
            pool, OrganizationRows(secrets_from_env(env)), PolicyCache(), payment_bounds(env)[0]
        )
        if args.command == "create-organization":
            org = await organizations.create(
                NewOrganization(
                    name=args.name,
                    email=args.email,
                    country=args.country.upper(),
                    business_type=args.business_type,
                    address=Address(line1=args.line1, city=args.city, postal_code=args.postal_code, country=""),
                    charge_model=args.charge_model,
                    fee_percent_bps=args.fee_percent_bps,
                    fee_minimum=args.fee_minimum,
                    legal_entity=args.legal_entity,
                    timezone=args.timezone,
                )
            )
            print(orjson.dumps(_org_json(org)).decode(), file=out)
            return 0
        if args.command == "rotate-keys":
            resealed = await organizations.reseal_all()
            print(orjson.dumps({"resealed": resealed}).decode(), file=out)
            return 0
        cursor = ""
        while True:
            page, cursor = await organizations.page(100, cursor)
            for org in page:
                print(orjson.dumps(_org_json(org)).decode(), file=out)
            if not cursor:
                return 0
    finally:
        await pool.close()


async def _verify_audit(pool: asyncpg.Pool, chain: str, anchors: Sequence[AuditAnchor], out: TextIO) -> int:
    checked, breaks = await audit_trail.verify(pool, chain or None, anchors)
    for found in breaks:
        entry = f"entry {found.entry_id} " if found.entry_id else ""
        print(f"audit chain {found.chain} broken at sequence {found.sequence}: {entry}{found.reason}", file=sys.stderr)
    print(orjson.dumps({"checked": checked, "intact": not breaks, "broken_chains": len(breaks)}).decode(), file=out)
    return 1 if breaks else 0


def main() -> None:
    try:
        status = asyncio.run(run(sys.argv[1:]))
    except SettingsError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        status = 2
    except DomainError as error:
        detail = "; ".join(f"{f.field}: {f.message}" for f in error.fields)
        print(f"error: {error.message}{' (' + detail + ')' if detail else ''}", file=sys.stderr)
        status = 1
    raise SystemExit(status)


if __name__ == "__main__":
    main()
