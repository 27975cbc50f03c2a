from __future__ import annotations

from runtime.service import run_service
from services.terminal.main import MIGRATIONS, SCHEMA, on_start, wire

run_service("terminal", SCHEMA, MIGRATIONS, wire, on_start)
