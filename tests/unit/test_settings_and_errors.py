"""Settings parsing and the one mapping from domain errors to gRPC and HTTP."""

from __future__ import annotations

import json
import subprocess
import sys

import grpc
import pytest

from gateway.errors import from_domain
from runtime.errors import (
    AlreadyExists,
    Conflict,
    FieldError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unauthenticated,
    Unavailable,
    UpstreamError,
    trailing_metadata,
)
from runtime.logs import log_level
from runtime.settings import Env, SettingsError


def test_env_reads_typed_values_and_defaults() -> None:
    env = Env({"A": " x ", "N": "42", "F": "0.5", "B": "yes", "EMPTY": ""})
    assert env.text("A") == "x"
    assert env.integer("N", 1) == 42 and env.integer("MISSING", 7) == 7
    assert env.number("F", 1.0) == 0.5
    assert env.flag("B", False) is True and env.flag("MISSING", False) is False
    assert env.optional("EMPTY") is None
    assert env.text("EMPTY", "default") == "default"


@pytest.mark.parametrize(
    ("environ", "message"),
    [({}, "missing required setting X"), ({"N": "ten"}, "must be an integer"), ({"B": "maybe"}, "true or false")],
)
def test_env_errors_are_one_clear_message(environ: dict[str, str], message: str) -> None:
    env = Env(environ)
    with pytest.raises(SettingsError, match=message):
        if "N" in environ:
            env.integer("N", 1)
        elif "B" in environ:
            env.flag("B", False)
        else:
            env.text("X")


@pytest.mark.parametrize("module", ["services.accounts", "services.payments", "gateway"])
def test_a_missing_setting_stops_start_up_with_one_line_and_status_2(module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", module], env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("configuration error: missing required setting"), result.stderr


@pytest.mark.parametrize(("environ", "level"), [({}, "INFO"), ({"LOG_LEVEL": " warning "}, "WARNING")])
def test_log_level_is_read_in_any_case_with_info_by_default(environ: dict[str, str], level: str) -> None:
    assert log_level(Env(environ)) == level


@pytest.mark.parametrize("module", ["services.accounts", "gateway"])
def test_an_unknown_log_level_stops_start_up_with_one_line_and_status_2(module: str) -> None:
    environ = {
        "PATH": "/usr/bin:/bin",
        "AUTH_TOKEN_SECRET": "a-secret-long-enough-for-the-settings-0123",
        "DATABASE_URL": "postgresql://nowhere/none",
        **{f"{name}_ADDR": "127.0.0.1:9" for name in ("ACCOUNTS", "PAYMENTS", "TERMINAL", "BANKING")},
        "LOG_LEVEL": "LOUD",
    }
    result = subprocess.run([sys.executable, "-m", module], env=environ, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("configuration error: setting LOG_LEVEL must be one of"), (
        result.stderr
    )


@pytest.mark.parametrize(
    ("error", "grpc_status", "http_status"),
    [
        (InvalidArgument("bad"), grpc.StatusCode.INVALID_ARGUMENT, 400),
        (Unauthenticated(), grpc.StatusCode.UNAUTHENTICATED, 401),
        (PermissionDenied(), grpc.StatusCode.PERMISSION_DENIED, 403),
        (NotFound(), grpc.StatusCode.NOT_FOUND, 404),
        (AlreadyExists("dup"), grpc.StatusCode.ALREADY_EXISTS, 409),
        (Conflict("state"), grpc.StatusCode.FAILED_PRECONDITION, 409),
        (RateLimited("slow down", 7), grpc.StatusCode.RESOURCE_EXHAUSTED, 429),
        (UpstreamError("stripe said no"), grpc.StatusCode.UNKNOWN, 502),
        (Unavailable("stripe down"), grpc.StatusCode.UNAVAILABLE, 503),
    ],
)
def test_domain_errors_map_to_one_grpc_and_one_http_status(error, grpc_status, http_status) -> None:  # type: ignore[no-untyped-def]
    assert error.status == grpc_status
    api_error = from_domain(error)
    assert api_error.status == http_status and api_error.code == error.code
    if isinstance(error, RateLimited):
        assert api_error.retry_after == 7


def test_field_errors_quoting_the_input_travel_as_a_printable_header() -> None:
    """gRPC refuses a trailing-metadata value outside printable ASCII (the call then ended in a 500)."""
    error = InvalidArgument("invalid", "invalid_rules", [FieldError("rules[0].entity", "unknown entity ÐÀ\x01")])
    value = dict(trailing_metadata(error))["x-error-fields"]
    assert value.isascii() and value.isprintable()
    assert json.loads(value) == [{"field": "rules[0].entity", "message": "unknown entity ÐÀ\x01"}]
