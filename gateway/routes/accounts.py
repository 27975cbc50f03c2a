"""Auth, members, organisations, Stripe Connect and the audit trail: served from the HTTP mappings of
protos/collect/accounts/v1/accounts.proto."""

from __future__ import annotations

from typing import Any

from collect.accounts.v1 import accounts_pb2

from gateway.transcoding import served

SERVICE = accounts_pb2.DESCRIPTOR.services_by_name["AccountsService"]
routes, operations = served("accounts", SERVICE)
openapi_paths: dict[str, dict[str, Any]] = {}
