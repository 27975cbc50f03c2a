"""Wiring of the Payments service."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import grpc
from collect.payments.v1 import payments_pb2, payments_pb2_grpc

from runtime.service import ServiceDeps

SCHEMA = "payments"
MIGRATIONS = Path(__file__).parent / "migrations"
SERVICE_NAME = payments_pb2.DESCRIPTOR.services_by_name["PaymentsService"].full_name
on_start = None


def wire(deps: ServiceDeps, server: grpc.aio.Server) -> Iterable[str]:
    payments_pb2_grpc.add_PaymentsServiceServicer_to_server(payments_pb2_grpc.PaymentsServiceServicer(), server)
    return [SERVICE_NAME]
