"""`python -m gateway.webhooks`: list and replay the events recorded in the services' inboxes,
and register the webhook endpoints at the sandboxes.

list and replay talk to the services over gRPC (they work while the gateway is down) with a
service token signed by `AUTH_TOKEN_SECRET`, at `ACCOUNTS_ADDR`, `PAYMENTS_ADDR`,
`TERMINAL_ADDR`, `BANKING_ADDR` (`make run` writes them to `.run/stack.json`).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

import grpc
import orjson
from collect.events.v1 import events_pb2 as pb
from collect.events.v1 import events_pb2_grpc

from gateway.webhooks.ops import SERVICES, STATUSES, inbox_event_json
from gateway.webhooks.registration import register_qonto_endpoint, register_sandbox_endpoints
from runtime.auth import TokenSigner, token_secret_from_env
from runtime.clients import ServiceTokens, make_channel
from runtime.settings import Env, SettingsError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gateway.webhooks", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="events of the inboxes (failed and pending by default)")
    listing.add_argument("--status", action="append", choices=STATUSES, help="repeatable")
    listing.add_argument("--service", choices=SERVICES, action="append", help="repeatable; default: all")
    listing.add_argument("--limit", type=int, default=100)
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    replay = commands.add_parser("replay", help="apply again one event, or every failed and pending one")
    replay.add_argument("--event-id", default="")
    replay.add_argument("--source", choices=("stripe", "qonto"), default="")
    replay.add_argument("--service", choices=SERVICES, action="append", help="repeatable; default: all")
    register = commands.add_parser(
        "register", help="create (or replace) the gateway's endpoints at the Stripe sandbox and the Qonto sandbox"
    )
    register.add_argument("--gateway-url", required=True, help="the gateway's public base URL")
    register.add_argument("--stripe-api-base", help="Stripe sandbox URL (never real Stripe: use the dashboard)")
    register.add_argument("--stripe-api-key", default="sk_test_sandbox")
    register.add_argument("--qonto-url", help="Qonto sandbox URL")
    register.add_argument("--qonto-login", default="")
    register.add_argument("--qonto-secret-key", default="")
    return parser


def _stubs(env: Env, services: Sequence[str]) -> tuple[dict[str, events_pb2_grpc.EventSinkServiceStub], list[Any]]:
    tokens = ServiceTokens(TokenSigner(token_secret_from_env(env)), "gateway")
    channels = {name: make_channel(env.text(f"{name.upper()}_ADDR"), tokens) for name in services}
    return {name: events_pb2_grpc.EventSinkServiceStub(ch) for name, ch in channels.items()}, list(channels.values())


async def _list(args: argparse.Namespace, env: Env, out: TextIO) -> int:
    services = args.service or list(SERVICES)
    stubs, channels = _stubs(env, services)
    failures = 0
    try:
        query = pb.ListEventsRequest(statuses=args.status or ["failed", "pending"], limit=args.limit)
        for name in services:
            try:
                answer = await stubs[name].ListEvents(query)
            except grpc.aio.AioRpcError as error:
                failures += 1
                print(f"{name}: {error.code().name.lower()} {error.details() or ''}".rstrip(), file=sys.stderr)
                continue
            for item in answer.events:
                event = inbox_event_json(name, item)
                if args.json:
                    out.write(orjson.dumps(event).decode() + "\n")
                else:
                    out.write(
                        f"{event['received_at'] or '-':<27} {name:<9} {event['status']:<8} {event['attempts']:>3}  "
                        f"{event['source']:<6} {event['event_id']:<40} {event['type']:<36} {event['last_error'] or ''}\n"
                    )
    finally:
        for channel in channels:
            await channel.close(None)
    return 1 if failures else 0


async def _replay(args: argparse.Namespace, env: Env, out: TextIO) -> int:
    services = args.service or list(SERVICES)
    stubs, channels = _stubs(env, services)
    failures = 0
    try:
        for name in services:
            try:
                answer = await stubs[name].ReplayEvents(
                    pb.ReplayEventsRequest(event_id=args.event_id, source=args.source)
                )
            except grpc.aio.AioRpcError as error:
                failures += 1
                print(f"{name}: {error.code().name.lower()} {error.details() or ''}".rstrip(), file=sys.stderr)
                continue
            out.write(f"{name}: replayed {answer.replayed}, applied {answer.applied}, failed {answer.failed}\n")
            failures += answer.failed
    finally:
        for channel in channels:
            await channel.close(None)
    return 1 if failures else 0


async def _register(args: argparse.Namespace, out: TextIO) -> int:
    if args.stripe_api_base:
        from runtime.stripe_api import close_stripe_client, make_stripe_client

        client = make_stripe_client(args.stripe_api_key, args.stripe_api_base)
        try:
            secrets = await register_sandbox_endpoints(client, args.gateway_url)
        finally:
            await close_stripe_client(client)
        out.write(f"STRIPE_WEBHOOK_SECRETS={','.join(secrets)}\n")
    if args.qonto_url:
        secret = await register_qonto_endpoint(
            args.qonto_url, args.qonto_login, args.qonto_secret_key, args.gateway_url
        )
        out.write(f"QONTO_WEBHOOK_SECRETS={secret}\n")
    if not args.stripe_api_base and not args.qonto_url:
        out.write(
            "nothing to register: give --stripe-api-base and/or --qonto-url. With real Stripe, create two endpoints\n"
            "in the dashboard (your account, connected accounts) at <gateway>/webhooks/stripe and set\n"
            "STRIPE_WEBHOOK_SECRETS=<platform secret>,<connect secret> for the gateway.\n"
        )
        return 2
    return 0


async def run(argv: Sequence[str], environ: Mapping[str, str] | None = None, out: TextIO | None = None) -> int:
    """The command line, callable from tests: returns the exit status."""
    args = _parser().parse_args(list(argv))
    env, out = Env(environ), out or sys.stdout
    try:
        if args.command == "list":
            return await _list(args, env, out)
        if args.command == "replay":
            return await _replay(args, env, out)
        return await _register(args, out)
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 2


def main() -> None:
    sys.exit(asyncio.run(run(sys.argv[1:])))
