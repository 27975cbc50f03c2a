"""OpenTelemetry set-up for every process: one trace across gateway, gRPC, asyncpg and HTTP."""

from __future__ import annotations

import os
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased, Sampler

_configured = False
# Whether spans are kept anywhere (an exporter or a processor): else they only carry ids.
_recording = False
# Whether the sampler never records a child of an unrecorded span (ours, or any parentbased_*):
# then instrumentation may skip building such children altogether.
_parent_based = True


def setup_tracing(service_name: str, *, extra_processor: SpanProcessor | None = None) -> TracerProvider:
    """Installs the global tracer provider once and instruments asyncpg and httpx (the Stripe client traces itself: runtime/stripe_api.py).

    Spans go to OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set; `extra_processor` lets tests
    collect spans in memory.
    """
    global _configured, _parent_based, _recording
    provider = trace.get_tracer_provider()
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return TracerProvider()  # tracing off: the global provider stays a no-op
    if not _configured:
        exporting = bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))
        provider = TracerProvider(
            resource=Resource.create({"service.name": service_name}),
            sampler=_default_sampler(exporting or extra_processor is not None),
        )
        _recording = exporting
        if exporting:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
        _parent_based = os.environ.get("OTEL_TRACES_SAMPLER", "parentbased_").startswith("parentbased_")
        _instrument_libraries()
        _configured = True
    assert isinstance(provider, TracerProvider)
    if extra_processor is not None:
        provider.add_span_processor(extra_processor)
        _recording = True
    return provider


def recording() -> bool:
    """Whether this process keeps spans (OTLP, or a processor a test added): instrumentation that
    costs more than its ids may be left out otherwise (see gateway.middleware.TraceContextMiddleware)."""
    return _recording


def _default_sampler(recording: bool) -> Sampler | None:
    """Record spans when something receives them; else only propagate ids (traceparent, logs).

    OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG, when set, decide instead (None lets the SDK
    read them). Recording every span costs about half of a small request's CPU.
    """
    if os.environ.get("OTEL_TRACES_SAMPLER"):
        return None
    return ParentBased(ALWAYS_ON if recording else ALWAYS_OFF)


def _instrument_libraries() -> None:
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    if not _LeafAsyncPGInstrumentor().is_instrumented_by_opentelemetry:
        _LeafAsyncPGInstrumentor().instrument()
    if not HTTPXClientInstrumentor().is_instrumented_by_opentelemetry:
        HTTPXClientInstrumentor().instrument()


def unrecorded_parent() -> bool:
    """Inside a span that is not recorded, under a sampler that then records no child of it."""
    context = trace.get_current_span().get_span_context()
    return _parent_based and context.is_valid and not context.trace_flags.sampled


class _LeafAsyncPGInstrumentor(AsyncPGInstrumentor):  # type: ignore[misc]
    """asyncpg spans, skipped under an unrecorded parent: a parent-based sampler would drop them
    anyway, and building them cost a third of each query's client-side CPU."""

    _instance = None  # BaseInstrumentor is a singleton per class: not the parent's instance

    async def _do_execute(self, func: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        if unrecorded_parent():
            return await func(*args, **kwargs)
        return await super()._do_execute(func, instance, args, kwargs)

    async def _do_cursor_execute(self, func: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        if unrecorded_parent():
            return await func(*args, **kwargs)
        return await super()._do_cursor_execute(func, instance, args, kwargs)


def current_trace_id() -> str | None:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def shutdown_tracing() -> None:
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.force_flush(2000)
