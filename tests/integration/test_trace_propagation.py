"""One trace across a gRPC hop when no span is kept: the runtime's interceptors carry it alone."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from runtime.auth import TokenSigner
from runtime.clients import ServiceTokens, make_channel
from runtime.server import RunningServer, start_grpc_server
from runtime.tracing import current_trace_id

SERVICE = "collect.test.v1.TraceService"
SIGNER = TokenSigner("trace-propagation-test-secret-0123456789")


async def _seen(_request: bytes, _context: grpc.aio.ServicerContext) -> bytes:
    return (current_trace_id() or "").encode()


def _register(server: grpc.aio.Server) -> list[str]:
    handler = grpc.unary_unary_rpc_method_handler(_seen)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Seen": handler}),))
    return [SERVICE]


@pytest.fixture
async def untraced_server() -> AsyncIterator[RunningServer]:
    running = await start_grpc_server(register=_register, signer=SIGNER, traced=False)
    yield running
    await running.stop(0)


async def test_the_callers_trace_reaches_the_server(untraced_server: RunningServer) -> None:
    channel = make_channel(untraced_server.target, ServiceTokens(SIGNER, "test"), traced=False)
    seen = channel.unary_unary(f"/{SERVICE}/Seen")
    caller = SpanContext(0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7, False, TraceFlags(0))
    try:
        with trace.use_span(NonRecordingSpan(caller)):
            inside = await seen(b"")
        outside = await seen(b"")
    finally:
        await channel.close()
    assert inside == b"4bf92f3577b34da6a3ce929d0e0e4736"
    assert len(outside) == 32 and outside != inside  # no caller's trace: the server starts one
