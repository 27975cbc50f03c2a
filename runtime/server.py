"""The grpc.aio server bootstrap every service uses.

Health (standard service), reflection, OpenTelemetry and runtime interceptors (caller
token, deadline, text PostgreSQL cannot store refused, domain error → status), and graceful
shutdown on SIGTERM / SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf.message import Message
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.grpc import aio_server_interceptor
from opentelemetry.propagate import extract

from runtime import contract, tracing
from runtime.auth import TokenSigner, set_current_caller
from runtime.clients import KEEPALIVE_TIME_MS
from runtime.deadlines import set_deadline
from runtime.errors import CODE_KEY, DomainError, FieldError, InvalidArgument, Unauthenticated, trailing_metadata
from runtime.logs import REQUEST_ID_KEY, set_request_id
from runtime.metrics import rpc_duration
from runtime.text import nul_field

log = logging.getLogger("runtime.server")
LIVENESS = "liveness"


class RuntimeInterceptor(grpc.aio.ServerInterceptor):
    """Puts the verified caller and the deadline in context and maps domain errors to status codes.

    With `trace_context`, it also continues the caller's trace (`traceparent` in the metadata):
    when no span is kept, in place of OpenTelemetry's interceptor, whose span attributes and
    context wrapper cost more than the ids the logs and the next calls need.
    """

    def __init__(self, signer: TokenSigner, *, trace_context: bool = False) -> None:
        self._signer = signer
        self._tracer = trace.get_tracer(__name__) if trace_context else None

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or (
            handler.unary_unary is None and handler.unary_stream is None and handler.stream_stream is None
        ):
            return handler
        token = _bearer(handler_call_details.invocation_metadata)
        request_id = _request_id(handler_call_details.invocation_metadata)
        signer = self._signer
        method = handler_call_details.method
        labels = _rpc_labels(method)
        deserialize = _checked(handler.request_deserializer)
        tracer = self._tracer
        parent = _trace_parent(handler_call_details.invocation_metadata) if tracer is not None else None

        def span() -> contextlib.AbstractContextManager[object]:
            if tracer is None:
                return contextlib.nullcontext()
            return tracer.start_as_current_span(method, context=parent, kind=trace.SpanKind.SERVER)

        def enter(context: grpc.aio.ServicerContext, request: Any) -> None:
            set_request_id(request_id)
            if isinstance(request, _Refused):
                raise InvalidArgument(
                    f"{request.field} must not contain NUL characters",
                    "invalid_text",
                    [FieldError(request.field, "must not contain NUL characters")],
                )
            if token is not None:
                try:
                    set_current_caller(signer.verify(token))
                except Unauthenticated as error:
                    set_current_caller(error)
            else:
                set_current_caller(None)
            set_deadline(context.time_remaining())
            if isinstance(request, Message):  # a unary request (not a client stream)
                contract.check(request)  # the rules the proto declares on its fields

        async def fail(context: grpc.aio.ServicerContext, error: Exception) -> None:
            if isinstance(error, DomainError):
                context.set_trailing_metadata(trailing_metadata(error))
                await context.abort(error.status, error.message)
            log.exception("unhandled error in %s", method, exc_info=error)
            context.set_trailing_metadata(((CODE_KEY, "internal_error"),))
            await context.abort(grpc.StatusCode.INTERNAL, "internal error")

        if handler.unary_unary is not None:
            inner = handler.unary_unary

            async def behavior(request: Any, context: grpc.aio.ServicerContext) -> Any:
                started, code = time.perf_counter(), "OK"
                try:
                    with span():
                        enter(context, request)
                        return await inner(request, context)
                except grpc.aio.AbortError:
                    code = _aborted_code(context)
                    raise
                except asyncio.CancelledError:
                    code = "CANCELLED"
                    raise
                except Exception as error:
                    code = error.status.name if isinstance(error, DomainError) else "INTERNAL"
                    await fail(context, error)
                finally:
                    rpc_duration.record(time.perf_counter() - started, labels[code])

            return grpc.unary_unary_rpc_method_handler(
                behavior,
                request_deserializer=deserialize,
                response_serializer=handler.response_serializer,
            )

        # A server stream, or a bidirectional one (whose request is then a stream too).
        inner_stream = handler.stream_stream or handler.unary_stream
        make_handler = (
            grpc.stream_stream_rpc_method_handler if handler.stream_stream else grpc.unary_stream_rpc_method_handler
        )

        async def stream_behavior(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            started, code = time.perf_counter(), "OK"
            try:
                with span():
                    enter(context, request)
                    async for answer in inner_stream(request, context):
                        yield answer
            except grpc.aio.AbortError:
                code = _aborted_code(context)
                raise
            except (asyncio.CancelledError, GeneratorExit):
                code = "CANCELLED"
                raise
            except Exception as error:
                code = error.status.name if isinstance(error, DomainError) else "INTERNAL"
                await fail(context, error)
            finally:
                rpc_duration.record(time.perf_counter() - started, labels[code])

        return make_handler(
            stream_behavior,
            request_deserializer=deserialize,
            response_serializer=handler.response_serializer,
        )


class _RpcLabels(dict[str, dict[str, str | int]]):
    """The metric attributes of one method, by status code name (built once per code)."""

    def __init__(self, service: str, method: str) -> None:
        super().__init__()
        self._service, self._method = service, method

    def __missing__(self, code: str) -> dict[str, str | int]:
        built = rpc_duration.attributes(rpc_service=self._service, rpc_method=self._method, rpc_grpc_status_code=code)
        self[code] = built
        return built


_labels_by_method: dict[str, _RpcLabels] = {}


def _rpc_labels(full_method: str) -> _RpcLabels:
    found = _labels_by_method.get(full_method)
    if found is None:
        service, _, method = full_method.lstrip("/").rpartition("/")
        found = _labels_by_method[full_method] = _RpcLabels(service, method)
    return found


def _aborted_code(context: grpc.aio.ServicerContext) -> str:
    code = context.code()
    return code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"


def _request_id(metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
    for key, value in metadata or ():
        if key == REQUEST_ID_KEY and isinstance(value, str) and 0 < len(value) <= 128:
            return value
    return None


@dataclass(frozen=True)
class _Refused:
    """A request whose text cannot be stored: refused by the handler wrapper with the field's path."""

    field: str


def _checked(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """The request deserializer, answering `_Refused` for a request with a NUL in a string field.

    Most requests hold no zero byte at all: one scan of the bytes spares them the walk."""
    if deserializer is None:
        return None

    def deserialize(raw: bytes) -> Any:
        request = deserializer(raw)
        if b"\x00" in raw and (path := nul_field(request)) is not None:
            return _Refused(path)
        return request

    return deserialize


def _trace_parent(metadata: Iterable[tuple[str, str | bytes]] | None) -> Context | None:
    carrier = {key: value for key, value in metadata or () if key in _TRACE_KEYS and isinstance(value, str)}
    return extract(carrier) if carrier else None


_TRACE_KEYS = frozenset({"traceparent", "tracestate"})


def _bearer(metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, credentials = value.partition(" ")
            return credentials.strip() if scheme.lower() == "bearer" else value
    return None


@dataclass
class RunningServer:
    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    service_names: list[str] = field(default_factory=list)
    before_stop: list[Callable[[], object]] = field(default_factory=list)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def set_serving(self, serving: bool) -> None:
        """Readiness: "" and every service name ("liveness" stays SERVING while the process answers)."""
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in ["", *self.service_names]:
            await self.health.set(name, status)

    async def stop(self, grace: float = 5.0) -> None:
        await self.set_serving(False)
        for hook in self.before_stop:
            hook()
        await self.server.stop(grace)


async def start_grpc_server(
    *,
    register: Callable[[grpc.aio.Server], Iterable[str]],
    signer: TokenSigner,
    port: int = 0,
    host: str = "127.0.0.1",
    traced: bool | None = None,
) -> RunningServer:
    """Starts a server; `register` adds the servicers and returns their full service names.
    `traced`: whether OpenTelemetry's interceptor records a span per call (default: when this
    process keeps spans, `runtime.tracing.recording()`)."""
    # Spans kept: OpenTelemetry's interceptor records them; else the runtime's carries the ids.
    spans = tracing.recording() if traced is None else traced
    server = grpc.aio.server(
        interceptors=[aio_server_interceptor(), RuntimeInterceptor(signer)]
        if spans
        else [RuntimeInterceptor(signer, trace_context=True)],
        options=[
            ("grpc.so_reuseport", 0),
            ("grpc.max_receive_message_length", 8 * 1024 * 1024),
            # The clients' keepalive pings are welcome (runtime.clients); the default allows one per 5 min.
            ("grpc.http2.min_ping_interval_without_data_ms", KEEPALIVE_TIME_MS // 2),
        ],
    )
    names = list(register(server))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise RuntimeError(f"cannot bind gRPC port {host}:{port}")
    await server.start()
    running = RunningServer(server, bound, health_servicer, names)
    await running.set_serving(True)
    # Kubernetes' liveness probe asks for this one: a database outage makes the service unready
    # (NOT_SERVING on ""), never restarted.
    await health_servicer.set(LIVENESS, health_pb2.HealthCheckResponse.SERVING)
    return running


async def serve_until_signalled(
    running: RunningServer, *, cleanups: Iterable[Callable[[], Awaitable[object]]] = (), grace: float = 5.0
) -> None:
    """Serves until SIGTERM or SIGINT, then drains in-flight RPCs and runs the clean-ups."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping: draining in-flight RPCs")
    await running.stop(grace)
    for cleanup in cleanups:
        await cleanup()
