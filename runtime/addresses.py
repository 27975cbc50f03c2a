"""Postal addresses: one value type and one validation for every service (organisations, locations)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from runtime.errors import FieldError

_COUNTRY = re.compile(r"^[A-Z]{2}$")
_POSTAL_CODES = {
    "FR": r"\d{5}",
    "DE": r"\d{5}",
    "IT": r"\d{5}",
    "ES": r"\d{5}",
    "US": r"\d{5}(-\d{4})?",
    "BE": r"\d{4}",
    "NL": r"\d{4} ?[A-Za-z]{2}",
    "AT": r"\d{4}",
    "CH": r"\d{4}",
}


@dataclass(frozen=True)
class Address:
    line1: str
    city: str
    postal_code: str
    country: str
    line2: str = ""
    state: str = ""


def normalize_address(address: Address, default_country: str) -> Address:
    """Trimmed, with the country upper-cased (the default when none is given)."""
    return Address(
        line1=address.line1.strip(),
        line2=address.line2.strip(),
        city=address.city.strip(),
        postal_code=address.postal_code.strip(),
        country=(address.country.strip() or default_country).upper(),
        state=address.state.strip(),
    )


def address_errors(address: Address, prefix: str = "address.") -> list[FieldError]:
    """Every problem of a (normalised) address, with field names under `prefix`."""
    errors: list[FieldError] = []
    for name, value, limit in (
        ("line1", address.line1, 200),
        ("city", address.city, 100),
        ("postal_code", address.postal_code, 20),
    ):
        if not value.strip() or len(value) > limit:
            errors.append(FieldError(f"{prefix}{name}", f"must be 1..{limit} characters"))
    if len(address.line2) > 200:
        errors.append(FieldError(f"{prefix}line2", "must be at most 200 characters"))
    if len(address.state) > 100:
        errors.append(FieldError(f"{prefix}state", "must be at most 100 characters"))
    if not _COUNTRY.match(address.country):
        errors.append(FieldError(f"{prefix}country", "must be an ISO 3166-1 alpha-2 code, e.g. FR"))
    elif address.postal_code.strip() and not _postal_code_ok(address.country, address.postal_code.strip()):
        errors.append(FieldError(f"{prefix}postal_code", f"is not a valid postal code for {address.country}"))
    return errors


def _postal_code_ok(country: str, postal_code: str) -> bool:
    pattern = _POSTAL_CODES.get(country)
    return pattern is None or re.fullmatch(pattern, postal_code) is not None
