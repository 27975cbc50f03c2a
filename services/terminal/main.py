"""Wiring of the Terminal service."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import grpc
from collect.terminal.v1 import terminal_pb2, terminal_pb2_grpc

from runtime.service import ServiceDeps

SCHEMA = "terminal"
MIGRATIONS = Path(__file__).parent / "migrations"
SERVICE_NAME = terminal_pb2.DESCRIPTOR.services_by_name["TerminalService"].full_name
on_start = None


def wire(deps: ServiceDeps, server: grpc.aio.Server) -> Iterable[str]:
    terminal_pb2_grpc.add_TerminalServiceServicer_to_server(terminal_pb2_grpc.TerminalServiceServicer(), server)
    return [SERVICE_NAME]
