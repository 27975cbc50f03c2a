from __future__ import annotations

from runtime.service import run_service
from services.banking.main import MIGRATIONS, SCHEMA, on_start, wire

run_service("banking", SCHEMA, MIGRATIONS, wire, on_start)
