"""Every metric the platform exports, declared once, and the /metrics endpoint of each process.

Instruments are OpenTelemetry instruments on the global meter: they cost next to nothing until
`setup_metrics()` installs a MeterProvider whose reader is the Prometheus exporter. Each process
then serves `GET /metrics` (Prometheus text format) on its own port: METRICS_PORT for the
services and the gateway, set by `make run`; unset or 0 means no endpoint.

Gauges that describe stored state (inbox backlog, unmatched payouts) are sampled when scraped:
the owning service registers an async sampler (its SQL lives with its other SQL) which writes
into a `SampledGauge` before the exporter reads it.

`EXPORTED` is the one list of the Prometheus series names these instruments produce: the
dashboards' and alert rules' queries are checked against it (scripts/check_observability.py)
and a test scrapes a real process to check that what it exports is declared here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

log = logging.getLogger("runtime.metrics")
_meter = metrics.get_meter("collect")

SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LAG_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 86400.0)


@dataclass(frozen=True)
class Declared:
    """One instrument: OpenTelemetry name, kind (counter, histogram, gauge), unit, label keys."""

    name: str
    kind: str
    unit: str
    description: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()

    @property
    def family(self) -> str:
        """The Prometheus family name the exporter derives (name, unit suffix, `_total` for counters)."""
        from opentelemetry.exporter.prometheus._mapping import map_unit, sanitize_full_name

        name = sanitize_full_name(self.name)
        unit = map_unit(self.unit)
        if unit and not name.endswith(f"_{unit}"):
            name = f"{name}_{unit}"
        return name

    @property
    def series(self) -> tuple[str, ...]:
        """The names of the series a query may use."""
        if self.kind == "counter":
            return (f"{self.family}_total",)
        if self.kind == "histogram":
            return tuple(f"{self.family}_{suffix}" for suffix in ("bucket", "count", "sum"))
        return (self.family,)


HTTP_DURATION = Declared(
    "http.server.request.duration",
    "histogram",
    "s",
    "Gateway HTTP requests by route template, method and status",
    ("http_route", "http_request_method", "http_response_status_code"),
    SECONDS_BUCKETS,
)
RPC_DURATION = Declared(
    "rpc.server.duration",
    "histogram",
    "s",
    "gRPC calls served, by service, method and status code",
    ("rpc_service", "rpc_method", "rpc_grpc_status_code"),
    SECONDS_BUCKETS,
)
DB_CONNECTIONS = Declared(
    "db.client.connection.count",
    "gauge",
    "{connection}",
    "Connections of a service's pool by state (used, idle)",
    ("db_client_connection_pool_name", "db_client_connection_state"),
)
DB_CONNECTIONS_MAX = Declared(
    "db.client.connection.max",
    "gauge",
    "{connection}",
    "Most connections a pool opens",
    ("db_client_connection_pool_name",),
)
INBOX_EVENTS = Declared(
    "collect.inbox.events",
    "counter",
    "{event}",
    "Outside events recorded or applied by a service's inbox, by outcome (applied, ignored, pending, failed)",
    ("service", "source", "status"),
)
INBOX_INGEST_LAG = Declared(
    "collect.inbox.ingest.lag",
    "histogram",
    "s",
    "From an outside event's creation to its recording in the inbox",
    ("service", "source"),
    LAG_BUCKETS,
)
INBOX_BACKLOG = Declared(
    "collect.inbox.backlog",
    "gauge",
    "{event}",
    "Events waiting in a service's inbox (pending, or failed and retried)",
    ("service", "source", "status"),
)
INBOX_OLDEST = Declared(
    "collect.inbox.backlog.age",
    "gauge",
    "s",
    "Age of the oldest event waiting in a service's inbox",
    ("service", "source"),
)
AUDIT_OUTBOX_AGE = Declared(
    "collect.audit.outbox.age",
    "gauge",
    "s",
    "Age of the oldest audit record a service has not yet had Accounts chain (0 when none waits)",
    ("service",),
)
PAYMENTS = Declared(
    "collect.payments", "counter", "{payment}", "Payments reaching a status, by method", ("status", "method")
)
REFUNDS = Declared("collect.refunds", "counter", "{refund}", "Refunds reaching a status", ("status",))
UNMATCHED_PAYOUTS = Declared(
    "collect.banking.unmatched.payouts", "gauge", "{payout}", "Paid payouts not matched to a bank credit"
)
UNMATCHED_PAYOUT_AGE = Declared(
    "collect.banking.unmatched.payout.age",
    "gauge",
    "s",
    "Age (since arrival) of the oldest paid payout not matched to a bank credit",
)
PENNYLANE_ENTRIES = Declared(
    "collect.banking.pennylane.entries",
    "counter",
    "{entry}",
    "Book entries pushed to Pennylane by outcome (pushed, found already there after a lost answer, failed,"
    " diverged: its books changed after its push)",
    ("outcome",),
)
PENNYLANE_UNPUSHED = Declared(
    "collect.banking.pennylane.unpushed",
    "gauge",
    "{entry}",
    "Book entries tried and not pushed to Pennylane yet (failed, or left sending by a stopped run), or pushed"
    " and not right any more (books changed since, credit note not linked)",
)
JOB_RUNS = Declared(
    "collect.jobs.runs",
    "counter",
    "{run}",
    "Background job runs by job and outcome (ok, failed, skipped when another replica holds the lock)",
    ("job", "outcome"),
)
JOB_DURATION = Declared("collect.jobs.duration", "histogram", "s", "Background job run time", ("job",), LAG_BUCKETS)

DECLARED = (
    HTTP_DURATION,
    RPC_DURATION,
    DB_CONNECTIONS,
    DB_CONNECTIONS_MAX,
    INBOX_EVENTS,
    INBOX_INGEST_LAG,
    INBOX_BACKLOG,
    INBOX_OLDEST,
    AUDIT_OUTBOX_AGE,
    PAYMENTS,
    REFUNDS,
    UNMATCHED_PAYOUTS,
    UNMATCHED_PAYOUT_AGE,
    PENNYLANE_ENTRIES,
    PENNYLANE_UNPUSHED,
    JOB_RUNS,
    JOB_DURATION,
)
# Exported besides: the resource (target_info), calls to outside HTTP APIs (Stripe, Qonto, Slack:
# OpenTelemetry's httpx instrumentation) and prometheus_client's process and Python collectors.
STANDARD = (
    "target_info",
    "http_client_duration_milliseconds_bucket",
    "http_client_duration_milliseconds_count",
    "http_client_duration_milliseconds_sum",
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_cpu_seconds_total",
    "process_open_fds",
    "process_max_fds",
    "process_start_time_seconds",
    "python_gc_objects_collected_total",
    "python_gc_objects_uncollectable_total",
    "python_gc_collections_total",
    "python_info",
)
EXPORTED = frozenset(name for declared in DECLARED for name in declared.series) | frozenset(STANDARD)


def _attributes(declared: Declared, values: Mapping[str, str | int]) -> dict[str, str | int]:
    """OpenTelemetry attribute keys are the label keys with dots (`http_route` → `http.route`)."""
    return {_KEYS[declared.name][label]: value for label, value in values.items()}


_KEYS: dict[str, dict[str, str]] = {}


def _otel_key(label: str) -> str:
    return label if label in ("service", "source", "status", "method", "job", "outcome") else label.replace("_", ".")


for _declared in DECLARED:
    _KEYS[_declared.name] = {label: _otel_key(label) for label in _declared.labels}


class SampledGauge:
    """An observable gauge whose values samplers set (by label values) before each scrape."""

    def __init__(self, declared: Declared) -> None:
        self.declared = declared
        self._values: dict[tuple[tuple[str, str | int], ...], float] = {}
        _meter.create_observable_gauge(
            declared.name, [self._observe], unit=declared.unit, description=declared.description
        )

    def set(self, value: float, **labels: str | int) -> None:
        self._values[tuple(sorted(_attributes(self.declared, labels).items()))] = value

    def clear(self, **labels: str | int) -> None:
        """Forgets the values whose labels include these (e.g. one service's, before sampling it again)."""
        wanted = set(_attributes(self.declared, labels).items())
        for key in [k for k in self._values if wanted <= set(k)]:
            del self._values[key]

    def _observe(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(value, dict(key)) for key, value in list(self._values.items())]


class _Histogram:
    def __init__(self, declared: Declared) -> None:
        self.declared = declared
        self._instrument = _meter.create_histogram(declared.name, unit=declared.unit, description=declared.description)

    def record(self, value: float, attributes: Mapping[str, str | int]) -> None:
        """`attributes` as built by `attributes()` (built once per route or method, not per call)."""
        self._instrument.record(value, attributes)

    def attributes(self, **labels: str | int) -> dict[str, str | int]:
        return _attributes(self.declared, labels)


class _Counter:
    def __init__(self, declared: Declared) -> None:
        self.declared = declared
        self._instrument = _meter.create_counter(declared.name, unit=declared.unit, description=declared.description)

    def add(self, amount: int = 1, **labels: str | int) -> None:
        self._instrument.add(amount, _attributes(self.declared, labels))


http_duration = _Histogram(HTTP_DURATION)
rpc_duration = _Histogram(RPC_DURATION)
inbox_events = _Counter(INBOX_EVENTS)
inbox_ingest_lag = _Histogram(INBOX_INGEST_LAG)
inbox_backlog = SampledGauge(INBOX_BACKLOG)
inbox_oldest = SampledGauge(INBOX_OLDEST)
audit_outbox_age = SampledGauge(AUDIT_OUTBOX_AGE)
payments = _Counter(PAYMENTS)
refunds = _Counter(REFUNDS)
unmatched_payouts = SampledGauge(UNMATCHED_PAYOUTS)
unmatched_payout_age = SampledGauge(UNMATCHED_PAYOUT_AGE)
pennylane_entries = _Counter(PENNYLANE_ENTRIES)
pennylane_unpushed = SampledGauge(PENNYLANE_UNPUSHED)
job_runs = _Counter(JOB_RUNS)
job_duration = _Histogram(JOB_DURATION)
db_connections = SampledGauge(DB_CONNECTIONS)
db_connections_max = SampledGauge(DB_CONNECTIONS_MAX)


class JobRun:
    """One run of a background job; `skip()` when another replica holds its lock."""

    def __init__(self) -> None:
        self.outcome = "ok"

    def skip(self) -> None:
        self.outcome = "skipped"


@contextlib.contextmanager
def job_run(job: str) -> Iterator[JobRun]:
    """Counts the run by outcome (ok, skipped, failed when it raises) and times it."""
    run, started = JobRun(), time.perf_counter()
    try:
        yield run
    except Exception:
        run.outcome = "failed"
        raise
    finally:
        job_runs.add(job=job, outcome=run.outcome)
        job_duration.record(time.perf_counter() - started, job_duration.attributes(job=job))


# ---- samplers: stored state read when scraped --------------------------------------------

Sampler = Callable[[], Awaitable[None]]
_samplers: list[Sampler] = []
SAMPLE_TIMEOUT_SECONDS = 2.0


def add_sampler(sampler: Sampler) -> Callable[[], None]:
    """Runs `sampler` before each scrape; returns what removes it (a service's clean-up)."""
    _samplers.append(sampler)

    def remove() -> None:
        if sampler in _samplers:
            _samplers.remove(sampler)

    return remove


async def sample() -> None:
    """Runs every sampler (concurrently, each bounded); one failing leaves the others' values."""

    async def one(sampler: Sampler) -> None:
        try:
            async with asyncio.timeout(SAMPLE_TIMEOUT_SECONDS):
                await sampler()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # a scrape must answer even while the database is away
            log.warning("metrics sampler failed: %r", error)

    await asyncio.gather(*(one(s) for s in list(_samplers)))


def watch_pool(pool: object, name: str) -> Callable[[], None]:
    """Pool use (used, idle, max) of an asyncpg pool, read at each scrape."""

    async def read() -> None:
        size, idle = pool.get_size(), pool.get_idle_size()  # type: ignore[attr-defined]
        db_connections.set(size - idle, db_client_connection_pool_name=name, db_client_connection_state="used")
        db_connections.set(idle, db_client_connection_pool_name=name, db_client_connection_state="idle")
        db_connections_max.set(pool.get_max_size(), db_client_connection_pool_name=name)  # type: ignore[attr-defined]

    return add_sampler(read)


# ---- the provider and the endpoint ------------------------------------------------------

_configured = False


def setup_metrics(service: str) -> None:
    """Installs the MeterProvider with the Prometheus reader (once per process)."""
    global _configured
    if _configured:
        return
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
    from opentelemetry.sdk.resources import Resource

    views = [
        View(instrument_name=d.name, meter_name="collect", aggregation=ExplicitBucketHistogramAggregation(d.buckets))
        for d in DECLARED
        if d.kind == "histogram"
    ]
    provider = MeterProvider(
        resource=Resource.create({"service.name": service}),
        metric_readers=[PrometheusMetricReader()],
        views=views,
    )
    metrics.set_meter_provider(provider)
    _configured = True


def render() -> bytes:
    from prometheus_client import REGISTRY, generate_latest

    return bytes(generate_latest(REGISTRY))


def metrics_app() -> Callable[..., Awaitable[None]]:
    """An ASGI app answering GET /metrics (samplers first, then the exporter's text)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def endpoint(request: Request) -> Response:
        await sample()
        return Response(render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    return Starlette(routes=[Route("/metrics", endpoint)])


async def serve_metrics(service: str, port: int, host: str = "127.0.0.1") -> Callable[[], Awaitable[None]] | None:
    """Starts the /metrics endpoint when `port` is set (0 = off); returns what stops it."""
    if not port:
        return None
    from runtime.asgi_server import EmbeddedServer

    setup_metrics(service)
    server = EmbeddedServer(metrics_app(), host=host, port=port)
    await server.start()
    log.info("metrics on http://%s:%d/metrics", host, server.port, extra={"metrics_port": server.port})
    return server.stop
