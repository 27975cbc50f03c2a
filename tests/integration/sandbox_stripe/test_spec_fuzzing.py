"""Schemathesis, driven by Stripe's own description (`sandbox/stripe/openapi/spec3.json`), against the
sandbox over every operation it serves: no server error, no invalid request accepted, no response
outside Stripe's schema. Bounded and derandomised: the same cases every run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
import schemathesis
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import negative_data_rejection, response_schema_conformance

from sandbox.stripe.app import create_app
from sandbox.stripe.testing import SandboxProcess
from sandbox.stripe.validation import load_spec, normalise
from tests.fixtures.fuzzing import draw_cases

EXAMPLES_PER_OPERATION = 1  # per mode: about 290 cases over the 145 operations served
AUTH = {"Authorization": "Bearer sk_test_sandbox"}
CHECKS = [not_a_server_error, response_schema_conformance, negative_data_rejection]


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


@schemathesis.serializer("application/x-www-form-urlencoded")
def _stripe_form(ctx: schemathesis.SerializationContext, value: Any) -> bytes:
    """Stripe's form encoding, as its SDKs send it: `a[b][0]=x`."""
    pairs: list[tuple[str, str]] = []
    _flatten(value if isinstance(value, dict) else {}, "", pairs)
    return urlencode(pairs).encode()


def _cases(operation: Any, mode: GenerationMode) -> list[schemathesis.Case]:
    # Ids in the path name objects that do not exist (a 404 either way); generating them only slows
    # the run, and huge random ones cannot even be sent.
    ids = {parameter.name: "made_up_id_1" for parameter in operation.path_parameters}
    return draw_cases(operation, mode, EXAMPLES_PER_OPERATION, ids)


@pytest.fixture(scope="module")
def sandbox_url() -> Iterator[str]:
    with SandboxProcess() as process:
        yield process.url


def test_stripe_description_against_the_sandbox(sandbox_url: str) -> None:
    schema = schemathesis.openapi.from_dict(_served_spec())
    failures: dict[str, str] = {}
    count = 0
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # every served operation is in the description
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for case in _cases(operation, mode):
                count += 1
                response = case.call(base_url=sandbox_url, headers=AUTH)
                try:
                    case.validate_response(response, checks=CHECKS)
                except (AssertionError, BaseExceptionGroup) as error:  # the first failure per operation and mode
                    failures.setdefault(f"{operation.label} ({mode.value})", str(error)[:600])
    assert count >= 250
    if failures:
        pytest.fail("\n".join(f"{k}: {' | '.join(v.splitlines()[2:12])}" for k, v in sorted(failures.items())))
