"""An organisation's defaults, read once from where the contract declares them: the `default`
rules of accounts.proto's CreateOrganizationRequest (which the gateway fills and /openapi.json
documents). Services, their settings and the CLI use these names, never the values."""

from __future__ import annotations

from collect.accounts.v1 import accounts_pb2

from runtime.contract import rules

__all__ = ["DEFAULT_TIMEZONE"]

_CREATE = accounts_pb2.CreateOrganizationRequest.DESCRIPTOR.fields_by_name

# The IANA time zone daily figures are read in when an organisation (or the platform's report) names none.
DEFAULT_TIMEZONE: str = rules(_CREATE["timezone"]).default
assert DEFAULT_TIMEZONE, "accounts.proto declares the default time zone"
