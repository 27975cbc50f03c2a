"""Members and their rules; no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from runtime.auth import ROLES
from runtime.errors import FieldError, InvalidArgument

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
MIN_PASSWORD_LENGTH = 10


@dataclass(frozen=True)
class Member:
    id: str
    organization_id: str | None
    email: str
    name: str
    role: str
    disabled: bool
    created_at: datetime


def normalize_email(email: str) -> str:
    return email.strip().lower()


def validate_new_member(email: str, name: str, role: str, password: str) -> list[FieldError]:
    errors: list[FieldError] = []
    if not _EMAIL.match(normalize_email(email)) or len(email) > 254:
        errors.append(FieldError("email", "must be a valid e-mail address"))
    if not name.strip() or len(name) > 200:
        errors.append(FieldError("name", "must be 1..200 characters"))
    if role not in ROLES:
        errors.append(FieldError("role", f"must be one of {', '.join(ROLES)}"))
    if len(password) < MIN_PASSWORD_LENGTH or len(password) > 1024:
        errors.append(FieldError("password", f"must be {MIN_PASSWORD_LENGTH}..1024 characters"))
    return errors


def ensure_valid(errors: list[FieldError]) -> None:
    if errors:
        raise InvalidArgument("the request is invalid", "validation_error", errors)
