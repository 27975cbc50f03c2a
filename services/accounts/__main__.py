from __future__ import annotations

from runtime.service import run_service
from services.accounts.main import MIGRATIONS, SCHEMA, on_start, wire

run_service("accounts", SCHEMA, MIGRATIONS, wire, on_start)
