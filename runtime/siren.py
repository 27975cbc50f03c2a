"""The SIREN: the 9-digit French company number that names an entity's FEC file (one rule for every service)."""

from __future__ import annotations

import re

_SIREN = re.compile(r"[0-9]{9}")
SIREN_RULE = "must be 9 digits (SIREN)"


def is_siren(value: str) -> bool:
    return bool(_SIREN.fullmatch(value))
