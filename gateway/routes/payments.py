"""Payments: create (idempotent), read, list, capture, cancel, refunds, offline batches, stats and disputes.

Every route is the HTTP mapping its RPC declares in protos/collect/payments/v1/payments.proto
(paths, bodies, closed sets, bounds and JSON names live there, once)."""

from __future__ import annotations

from typing import Any

from collect.payments.v1 import payments_pb2

from gateway.transcoding import served

routes, operations = served("payments", payments_pb2.DESCRIPTOR.services_by_name["PaymentsService"])
openapi_paths: dict[str, dict[str, Any]] = {}
