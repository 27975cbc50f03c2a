"""Metrics and logs as operators see them: /metrics scraped over HTTP after real requests through
the gateway and the services, and the JSON lines they log."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from runtime.embedded_pg import free_port
from runtime.logs import JsonFormatter
from runtime.metrics import EXPORTED, serve_metrics
from scripts.check_observability import metric_names, unknown_names
from tests.fixtures.organizations import onboarded_organization
from tests.fixtures.stack import Stack
from tests.integration.payments.conftest import confirm, create_payment, settle, stripe_account_for

ACCOUNTS = "collect.accounts.v1.AccountsService"


@pytest.fixture(scope="module")
async def metrics_url() -> AsyncIterator[str]:
    """The test process's /metrics, served as every service and the gateway serve theirs."""
    port = free_port()
    stop = await serve_metrics("tests", port)
    assert stop is not None
    yield f"http://127.0.0.1:{port}/metrics"
    await stop()


async def scrape(stack: Stack, url: str) -> list[Sample]:
    answer = await stack.http.get(url)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    return [sample for family in text_string_to_metric_families(answer.text) for sample in family.samples]


def find(samples: list[Sample], name: str, **labels: str) -> list[Sample]:
    return [s for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]


class Lines(logging.Handler):
    """The JSON lines a logger writes (the process's formatter), parsed."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter("tests"))
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(orjson.loads(self.format(record)))


@pytest.fixture
def logged() -> Iterator[Lines]:
    handler = Lines()
    loggers = [logging.getLogger(name) for name in ("gateway.access", "events")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    yield handler
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


async def test_http_and_rpc_metrics_by_route_template_and_method(stack: Stack, metrics_url: str) -> None:
    headers = await stack.admin_headers()
    assert (await stack.http.get("/v1/me", headers=headers)).status_code == 200
    missing = str(uuid.uuid4())
    assert (await stack.http.get(f"/v1/organizations/{missing}", headers=headers)).status_code == 404
    assert (await stack.http.get(f"/no/such/{missing}")).status_code == 404

    samples = await scrape(stack, metrics_url)
    http = "http_server_request_duration_seconds_count"
    token = find(
        samples, http, http_route="/v1/auth/token", http_request_method="POST", http_response_status_code="200"
    )
    assert token and token[0].value >= 1
    assert find(samples, http, http_route="/v1/me", http_request_method="GET", http_response_status_code="200")
    assert find(samples, http, http_route="/v1/organizations/{organization_id}", http_response_status_code="404")
    assert find(samples, http, http_route="unmatched", http_response_status_code="404")
    assert not [s for s in samples if missing in s.labels.get("http_route", "")]  # templates, never raw paths
    buckets = find(samples, "http_server_request_duration_seconds_bucket", http_route="/v1/me")
    assert {"0.005", "+Inf"} <= {s.labels["le"] for s in buckets}

    rpc = "rpc_server_duration_seconds_count"
    assert find(samples, rpc, rpc_service=ACCOUNTS, rpc_grpc_status_code="OK")
    assert find(samples, rpc, rpc_service=ACCOUNTS, rpc_method="GetOrganization", rpc_grpc_status_code="NOT_FOUND")
    pool = find(samples, "db_client_connection_max", db_client_connection_pool_name="accounts")
    assert pool and pool[0].value == stack.deps["accounts"].settings.db_pool_max
    assert find(samples, "collect_inbox_backlog", service="payments", source="stripe", status="failed")
    assert find(samples, "collect_banking_unmatched_payouts")

    # What the process exports is what runtime/metrics.py declares: the dashboards are checked against it.
    undeclared = {s.name for s in samples} - EXPORTED - {f"{n[: -len('_total')]}_created" for n in EXPORTED}
    assert not undeclared, sorted({(s.name, s.labels.get("otel_scope_name")) for s in samples if s.name in undeclared})


async def test_payments_counted_and_logged_with_the_request_id(stack: Stack, metrics_url: str, logged: Lines) -> None:
    org = await onboarded_organization(stack)
    before = find(await scrape(stack, metrics_url), "collect_payments_total", status="succeeded", method="card_present")
    request_id = f"obs-{uuid.uuid4().hex}"
    payment = await create_payment(stack, {**org.agent_headers, "X-Request-Id": request_id}, receipt_email="a@b.test")
    account = stripe_account_for(org, "direct")
    await confirm(stack, payment, account)
    assert (await settle(stack, org, payment, account))["status"] == "succeeded"

    samples = await scrape(stack, metrics_url)
    after = find(samples, "collect_payments_total", status="succeeded", method="card_present")
    assert after and after[0].value == (before[0].value if before else 0) + 1
    assert find(samples, "collect_inbox_events_total", service="payments", source="stripe", status="applied")

    created = [line for line in logged.lines if line.get("event") == "payment.created"]
    mine = [line for line in created if line["payment_id"] == payment["id"]]
    assert len(mine) == 1
    assert mine[0]["request_id"] == request_id  # passed from the gateway to Payments in the gRPC metadata
    assert len(mine[0]["trace_id"]) == 32
    succeeded = [line for line in logged.lines if line.get("event") == "payment.succeeded"]
    assert [line["organization_id"] for line in succeeded if line["payment_id"] == payment["id"]] == [org.id]
    assert not [line for line in logged.lines if "a@b.test" in orjson.dumps(line).decode()]  # ids, no personal data


async def test_one_access_line_per_request(stack: Stack, logged: Lines) -> None:
    request_id = f"obs-{uuid.uuid4().hex}"
    answer = await stack.http.get("/v1/me", headers={"X-Request-Id": request_id})
    assert answer.status_code == 401
    lines = [line for line in logged.lines if line.get("logger") == "gateway.access"]
    mine = [line for line in lines if line.get("request_id") == request_id]
    assert len(mine) == 1, lines
    line = mine[0]
    assert (line["route"], line["method"], line["status"]) == ("/v1/me", "GET", 401)
    assert line["duration_ms"] >= 0 and len(line["trace_id"]) == 32
    assert answer.headers["x-request-id"] == request_id


def test_rules_and_dashboards_query_only_exported_metrics() -> None:
    assert unknown_names() == []
    # The check sees metric names, not functions, keywords, labels or numbers.
    expr = 'sum by (service, le) (rate(collect_inbox_events_total{status="failed"}[5m])) / on (job) up > 3 * 86400'
    assert metric_names(expr) == {"collect_inbox_events_total", "up"}
