"""Wiring of the Banking service."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import grpc
from collect.banking.v1 import banking_pb2, banking_pb2_grpc

from runtime.service import ServiceDeps

SCHEMA = "banking"
MIGRATIONS = Path(__file__).parent / "migrations"
SERVICE_NAME = banking_pb2.DESCRIPTOR.services_by_name["BankingService"].full_name
on_start = None


def wire(deps: ServiceDeps, server: grpc.aio.Server) -> Iterable[str]:
    banking_pb2_grpc.add_BankingServiceServicer_to_server(banking_pb2_grpc.BankingServiceServicer(), server)
    return [SERVICE_NAME]
