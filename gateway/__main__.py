"""`python -m gateway`: serves the gateway with uvicorn."""

from __future__ import annotations

import logging

import uvicorn

from gateway.app import create_app
from gateway.settings import GatewaySettings
from runtime.asgi_server import http_protocol_for
from runtime.logs import setup_logging
from runtime.service import freeze_startup_objects
from runtime.settings import SettingsError, exit_on_settings_error
from runtime.tracing import setup_tracing


def main() -> None:
    try:
        settings = GatewaySettings.from_env()
    except SettingsError as error:
        exit_on_settings_error(error)
        return
    setup_logging("gateway", settings.log_level)
    setup_tracing("gateway")
    logging.getLogger("gateway").info(f"gateway listening on http://{settings.host}:{settings.port}")
    app = create_app(settings)
    freeze_startup_objects()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http=http_protocol_for(app, "httptools"),
        log_level="warning",
        access_log=False,  # gateway.access logs one line per request, with its route and ids
        log_config=None,  # uvicorn's loggers go through the JSON handler of setup_logging
        timeout_graceful_shutdown=5,
    )


main()
