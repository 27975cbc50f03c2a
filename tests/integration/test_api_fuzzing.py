"""Schemathesis, driven by the gateway's own `/openapi.json`, against a running stack as a platform
admin and as an agent: no server error, no status the document does not list, no answer outside
its schema, no invalid request accepted. Bounded and derandomised: the same cases every run, on a
stack of its own (the fuzzer changes floors, organisations and members)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
import schemathesis
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fixtures.database import PlatformDatabase
from tests.fixtures.fuzzing import draw_cases
from tests.fixtures.organizations import OrgContext, onboarded_organization
from tests.fixtures.stack import Stack, sandbox_env, start_stack

# Per operation, mode and role: over the ~60 operations, at least 10,000 requests in all.
EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "70"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
# Ids in paths name objects that do not exist, but the organisation's own (404s, fast); huge random
# ids only slow the run.
MADE_UP_ID = "00000000-0000-4000-8000-000000000000"


@pytest.fixture(scope="module")
async def fuzzed(
    database: PlatformDatabase, stripe_sandbox: Any, qonto_sandbox: Any, smtp_server: Any
) -> AsyncIterator[Stack]:
    async with start_stack(database, sandbox_env(stripe_sandbox, qonto_sandbox, smtp_server)) as running:
        running.extras.update(stripe_sandbox=stripe_sandbox, qonto_sandbox=qonto_sandbox, smtp_server=smtp_server)
        yield running


def _cases(operation: Any, mode: GenerationMode, org: OrgContext) -> list[schemathesis.Case]:
    ids = {
        parameter.name: org.id if parameter.name in ("organization_id", "org_id") else MADE_UP_ID
        for parameter in operation.path_parameters
    }
    return draw_cases(operation, mode, EXAMPLES, ids)


def _fuzz(
    document: dict[str, Any], base_url: str, roles: dict[str, dict[str, str]], org: OrgContext
) -> tuple[int, dict[str, str]]:
    schema = schemathesis.openapi.from_dict(document)
    # The bearer token is each role's; parameters the document does not name are ignored by design.
    schema.config.generation.update(with_security_parameters=False, allow_extra_parameters=False)
    failures: dict[str, str] = {}
    count = 0
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # the document is valid
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            cases = _cases(operation, mode, org)
            for role, headers in roles.items():
                for case in cases:
                    count += 1
                    response = case.call(base_url=base_url, headers=headers, timeout=30)
                    try:
                        case.validate_response(response, checks=CHECKS)
                    except (AssertionError, BaseExceptionGroup) as error:  # the first failure per operation, mode, role
                        failures.setdefault(f"{operation.label} ({mode.value}, {role})", str(error)[:800])
    return count, failures


@pytest.mark.timeout(900)
# schemathesis' e-mail strategy draws from `random` (a deprecation hypothesis warns about).
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
async def test_the_gateway_answers_as_its_document_says(fuzzed: Stack) -> None:
    org = await onboarded_organization(fuzzed)
    roles = {"platform_admin": await fuzzed.admin_headers(), "agent": org.agent_headers}
    document = (await fuzzed.http.get("/openapi.json")).json()
    # The gateway runs in this event loop: the fuzzer's blocking calls go from a thread.
    count, failures = await asyncio.to_thread(_fuzz, document, fuzzed.gateway_url, roles, org)
    print(f"{count} requests")
    assert count >= 10_000 or EXAMPLES < 70, count
    if failures:
        pytest.fail(
            f"{len(failures)} failing:\n"
            + "\n".join(f"{k}: {' | '.join(v.splitlines()[:14])}" for k, v in sorted(failures.items()))
        )
