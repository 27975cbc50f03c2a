"""Schemathesis, driven by Stripe's own description (`sandbox/stripe/openapi/spec3.json`), against the
sandbox over every operation it serves: no server error, no invalid request accepted, no response
outside Stripe's schema. Bounded and derandomised: the same cases every run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import negative_data_rejection, response_schema_conformance
from schemathesis.checks import not_a_server_error

from sandbox.stripe.app import create_app
from sandbox.stripe.testing import SandboxProcess
from sandbox.stripe.validation import load_spec, normalise

EXAMPLES_PER_OPERATION = 6
AUTH = {"Authorization": "Bearer sk_test_sandbox"}


def _served_spec() -> dict[str, Any]:
    spec = load_spec()
    served = set(create_app().state.operations)
    paths: dict[str, Any] = {}
    for path, operations in spec["paths"].items():
        kept = {
            # A GET or DELETE of the description carries an empty form `requestBody`: Stripe reads no body
            # there (the parameters are in the query), so none is generated.
            method: {k: v for k, v in operation.items() if k != "requestBody" or method == "post"}
            for method, operation in operations.items()
            if (method.upper(), normalise(path)) in served
        }
        if kept:
            paths[path] = kept
    return {**spec, "paths": paths}


def _flatten(value: Any, prefix: str, out: list[tuple[str, str]]) -> None:
    if isinstance(value, dict):
        if not value and prefix:
            out.append((prefix, ""))
        for key, item in value.items():
            _flatten(item, f"{prefix}[{key}]" if prefix else str(key), out)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _flatten(item, f"{prefix}[{i}]", out)
    elif isinstance(value, bool):
        out.append((prefix, "true" if value else "false"))
    elif value is None:
        out.append((prefix, ""))
    else:
        out.append((prefix, str(value)))


schema = schemathesis.openapi.from_dict(_served_spec())


@schemathesis.serializer("application/x-www-form-urlencoded")
def _stripe_form(ctx: schemathesis.SerializationContext, value: Any) -> bytes:
    """Stripe's form encoding, as its SDKs send it: `a[b][0]=x`."""
    pairs: list[tuple[str, str]] = []
    _flatten(value if isinstance(value, dict) else {}, "", pairs)
    return urlencode(pairs).encode()


@pytest.fixture(scope="module")
def sandbox_url() -> Iterator[str]:
    with SandboxProcess() as process:
        yield process.url


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_stripe_description_against_the_sandbox(case: schemathesis.Case, sandbox_url: str) -> None:
    response = case.call(base_url=sandbox_url, headers=AUTH)
    case.validate_response(
        response, checks=[not_a_server_error, response_schema_conformance, negative_data_rejection]
    )
