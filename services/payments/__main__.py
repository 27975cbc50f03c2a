from __future__ import annotations

from runtime.service import run_service
from services.payments.main import MIGRATIONS, SCHEMA, on_start, wire

run_service("payments", SCHEMA, MIGRATIONS, wire, on_start)
