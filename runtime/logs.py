"""Structured JSON logs carrying the request id and the trace id. Never log secrets, card data or
decrypted PII: business events carry ids only (`event()`).

Every process logs one JSON object per line to stderr, uvicorn's own loggers included. The
gateway takes (or makes) each request's id and passes it to the services in the `x-request-id`
metadata; each line logged while serving that request carries it.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import time

import orjson

from runtime.settings import Env, SettingsError
from runtime.tracing import current_trace_id

_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}
REQUEST_ID_KEY = "x-request-id"
_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_events = logging.getLogger("events")

# `LOG_LEVEL`: every process (services, the gateway, migrations) reads it through `log_level`.
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DEFAULT_LOG_LEVEL = "INFO"


def set_request_id(request_id: str | None) -> None:
    """The id of the request being served (in this task and those it starts)."""
    _request_id.set(request_id)


def current_request_id() -> str | None:
    return _request_id.get()


def event(name: str, **ids: object) -> None:
    """A business event (`payment.succeeded`, `payout.matched`, ...) with the ids it concerns.

    Only ids, amounts, statuses and methods: never names, e-mails, card data or secrets.
    """
    _events.info(name, extra={"event": name, **ids})


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self._service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = _request_id.get()
        if request_id:
            entry["request_id"] = request_id
        trace_id = current_trace_id()
        if trace_id:
            entry["trace_id"] = trace_id
        entry.update({k: v for k, v in record.__dict__.items() if k not in _RESERVED})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def log_level(env: Env) -> str:
    """The `LOG_LEVEL` setting (any case; `INFO` when unset); a name logging does not know is a SettingsError."""
    level = env.text("LOG_LEVEL", DEFAULT_LOG_LEVEL).upper()
    if level not in LOG_LEVELS:
        raise SettingsError(f"setting LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
    return level


def setup_logging(service: str, level: str = DEFAULT_LOG_LEVEL) -> None:
    """JSON lines on stderr from `level` up, for every logger (uvicorn's included)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("stripe").setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        # uvicorn's loggers write through the root handler (JSON) instead of their own.
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
