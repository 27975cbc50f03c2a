"""gRPC client channels to the other services: deadlines, caller token and tracing on every call."""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from opentelemetry.instrumentation.grpc import aio_client_interceptors
from opentelemetry.propagate import inject

from runtime import tracing
from runtime.auth import TokenSigner, current_caller
from runtime.deadlines import remaining
from runtime.defaults import DEFAULT_CHARGE_MODEL, DEFAULT_CURRENCY, DEFAULT_TIMEZONE
from runtime.logs import REQUEST_ID_KEY, current_request_id

log = logging.getLogger("runtime.clients")


class _CallerInterceptor(grpc.aio.UnaryUnaryClientInterceptor):
    """The caller's token (or the service's), the request id and a deadline on every call; with
    `trace_context`, the current trace's `traceparent` too (when OpenTelemetry's interceptors,
    which would add it, are left out: see `make_channel`)."""

    def __init__(
        self, default_timeout: float, service_token: Callable[[], str], *, trace_context: bool = False
    ) -> None:
        self._default_timeout = default_timeout
        self._service_token = service_token
        self._trace_context = trace_context

    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        metadata = grpc.aio.Metadata(*(client_call_details.metadata or ()))
        if "authorization" not in metadata:
            caller = current_caller()
            token = caller.token if caller is not None else self._service_token()
            metadata["authorization"] = f"Bearer {token}"
        request_id = current_request_id()
        if request_id and REQUEST_ID_KEY not in metadata:
            metadata[REQUEST_ID_KEY] = request_id
        if self._trace_context:
            carrier: dict[str, str] = {}
            inject(carrier)
            for key, value in carrier.items():
                metadata[key] = value
        timeout = client_call_details.timeout
        if timeout is None:
            timeout = remaining(self._default_timeout)
        details = grpc.aio.ClientCallDetails(
            client_call_details.method,
            timeout,
            metadata,
            client_call_details.credentials,
            client_call_details.wait_for_ready,
        )
        return await continuation(details, request)


class ServiceTokens:
    """A service's own token for calls made outside any member's request, renewed before expiry."""

    def __init__(self, signer: TokenSigner, service: str) -> None:
        self._signer = signer
        self._service = service
        self._token = ""
        self._renew_at = 0.0

    def __call__(self) -> str:
        now = time.monotonic()
        if now >= self._renew_at:
            self._token = self._signer.service_token(self._service)
            self._renew_at = now + self._signer.ttl_seconds / 2
        return self._token


# A service restarted by its supervisor (or a rolling update) is reached again within a second:
# gRPC's default reconnect backoff grows to 120 s. Calls made while no replica is reachable fail at
# once with UNAVAILABLE (the gateway answers 503 with Retry-After) instead of waiting.
# Clients ping a connection with calls in flight (watch streams included) this often; servers accept
# pings at this rate (runtime.server): with gRPC's server default of one per 5 minutes, an idle watch
# stream was cut every two minutes ("too_many_pings" GOAWAY → UNAVAILABLE), which dropped Payments'
# policy cache and failed the calls in flight on that connection.
KEEPALIVE_TIME_MS = 30_000
CHANNEL_OPTIONS = (
    ("grpc.keepalive_time_ms", KEEPALIVE_TIME_MS),
    ("grpc.enable_retries", 1),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1_000),
    # Every replica of a service listed in its address gets its share of the calls.
    ("grpc.lb_policy_name", "round_robin"),
)


def channel_target(address: str) -> str:
    """The gRPC target of a `<SERVICE>_ADDR` setting: `host:port`, any gRPC target (`dns:///name:port`),
    or a comma-separated list of `ip:port` replicas, which becomes a static `ipv4:` (or `ipv6:`) list."""
    replicas = [part.strip() for part in address.split(",") if part.strip()]
    if len(replicas) <= 1:
        return address.strip()
    scheme = "ipv6" if all(part.startswith("[") for part in replicas) else "ipv4"
    return f"{scheme}:{','.join(replicas)}"


def make_channel(
    target: str, tokens: ServiceTokens, *, default_timeout: float = 5.0, traced: bool | None = None
) -> grpc.aio.Channel:
    """An insecure channel (the services talk on a private network) with the standard interceptors;
    `target` is a `<SERVICE>_ADDR` value (see `channel_target`). `traced`: whether OpenTelemetry's
    interceptors record a span per call (default: when this process keeps spans)."""
    # Spans kept: OpenTelemetry's interceptors record a client span per call (and propagate it);
    # else the caller interceptor propagates the current trace alone, at a fraction of the cost.
    spans = tracing.recording() if traced is None else traced
    interceptors: list[grpc.aio.ClientInterceptor] = (
        [*aio_client_interceptors(), _CallerInterceptor(default_timeout, tokens)]
        if spans
        else [_CallerInterceptor(default_timeout, tokens, trace_context=True)]
    )
    return grpc.aio.insecure_channel(channel_target(target), interceptors=interceptors, options=list(CHANNEL_OPTIONS))


async def call(rpc: Any, request: Any) -> Any:
    """Calls another service; its failure surfaces as the domain error it raised (or Unavailable)."""
    from runtime.errors import from_rpc_error

    try:
        return await rpc(request)
    except grpc.aio.AioRpcError as error:
        raise from_rpc_error(error) from None


_accounts_stubs: weakref.WeakKeyDictionary[grpc.aio.Channel, Any] = weakref.WeakKeyDictionary()


def accounts_stub(channel: grpc.aio.Channel) -> Any:
    """One `AccountsServiceStub` per channel (building one prepares every method of the service)."""
    stub = _accounts_stubs.get(channel)
    if stub is None:
        from collect.accounts.v1 import accounts_pb2_grpc

        stub = _accounts_stubs[channel] = accounts_pb2_grpc.AccountsServiceStub(channel)
    return stub


async def payment_policy(channel: grpc.aio.Channel, organization_id: str) -> Any:
    """Accounts' payment policy of an organisation (`collect.accounts.v1.PaymentPolicy`), defaults filled in."""
    from collect.accounts.v1 import accounts_pb2

    stub = accounts_stub(channel)
    answer = await call(stub.GetPaymentPolicy, accounts_pb2.GetPaymentPolicyRequest(organization_id=organization_id))
    policy = answer.policy
    policy.organization_id = policy.organization_id or organization_id
    policy.charge_model = policy.charge_model or DEFAULT_CHARGE_MODEL
    policy.default_currency = (policy.default_currency or DEFAULT_CURRENCY).lower()
    policy.timezone = policy.timezone or DEFAULT_TIMEZONE
    return policy


async def follow(
    open_stream: Callable[[], AsyncIterator[Any]],
    on_message: Callable[[Any], None],
    on_lost: Callable[[], None],
    *,
    what: str,
    retry_seconds: float = 1.0,
) -> None:
    """Keeps a server stream (a watch) open until cancelled: each message to `on_message`,
    `on_lost` whenever it ends, then it is opened again after `retry_seconds`."""
    while True:
        try:
            async for message in open_stream():
                on_message(message)
        except grpc.aio.AioRpcError as error:
            log.info("%s: %s", what, error.code().name)
        finally:
            on_lost()
        await asyncio.sleep(retry_seconds)
