"""Shared fixtures: PostgreSQL, the sandboxes and the whole stack, plus in-memory tracing."""

from __future__ import annotations

from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from runtime.tracing import setup_tracing

pytest_plugins = [
    "tests.fixtures.database",
    "tests.fixtures.stripe_sandbox",
    "tests.fixtures.qonto_sandbox",
    "tests.fixtures.pennylane_sandbox",
    "tests.fixtures.smtp",
    "tests.fixtures.stack",
    "tests.fixtures.organizations",
]

# Every in-process service shares one tracer provider; tests read the finished spans here.
SPANS = InMemorySpanExporter()
setup_tracing("tests", extra_processor=SimpleSpanProcessor(SPANS))
