"""An organisation's defaults, read once from where the contract declares them: the `default`
rules of accounts.proto's CreateOrganizationRequest (which the gateway fills and /openapi.json
documents). Services, their settings and the CLI use these names, never the values."""

from __future__ import annotations

from collect.accounts.v1 import accounts_pb2

from runtime.contract import rules

__all__ = ["DEFAULT_CHARGE_MODEL", "DEFAULT_CURRENCY", "DEFAULT_TIMEZONE"]

_CREATE = accounts_pb2.CreateOrganizationRequest.DESCRIPTOR.fields_by_name

# The IANA time zone daily figures are read in when an organisation (or the platform's report) names none.
DEFAULT_TIMEZONE: str = rules(_CREATE["timezone"]).default
assert DEFAULT_TIMEZONE, "accounts.proto declares the default time zone"

# How an organisation takes charges (collect.accounts.v1.ChargeModel, lower case) when it names none.
DEFAULT_CHARGE_MODEL: str = rules(_CREATE["charge_model"]).default
assert DEFAULT_CHARGE_MODEL, "accounts.proto declares the default charge model"

# The currency of an organisation's payments when it names none (ISO 4217, lower case).
DEFAULT_CURRENCY: str = rules(_CREATE["default_currency"]).default
assert DEFAULT_CURRENCY, "accounts.proto declares the default currency"
