"""What Banking's actions write to the audit trail (runtime.audit): ids, counts and statuses only.

A run (bank sync, payout sync, reconciliation, Pennylane push) is recorded when a member asked
for it, or when a scheduled run changed something: a scheduled run that found nothing new is a
poll, not an action, and would bury the actions under thousands of identical entries.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runtime import audit
from runtime.auth import current_caller
from runtime.db import Connection
from services.banking.pennylane_books import PLATFORM
from services.banking.repository import PennylaneSettingsRow


async def run_action(
    conn: Connection,
    action: str,
    counts: Mapping[str, Any],
    *,
    changed: bool,
    targets: Mapping[str, object] | None = None,
    organization_id: str | None = None,
) -> None:
    """Records a run's `counts` (see the module for which runs) in `conn`'s transaction."""
    if changed or current_caller() is not None:
        await audit.record(conn, action, targets=targets or {}, after=dict(counts), organization_id=organization_id)


def _settings_fields(row: PennylaneSettingsRow | None) -> dict[str, Any]:
    if row is None:
        return {}
    return {
        "enabled": row.enabled,
        "sales_as": row.sales_as,
        "start_date": row.start_date.isoformat(),
        "journal_ids": dict(sorted(row.journal_ids.items())),
        "ledger_account_ids": dict(sorted(row.ledger_account_ids.items())),
    }


async def pennylane_settings_saved(
    conn: Connection, before: PennylaneSettingsRow | None, after: PennylaneSettingsRow, token_given: bool
) -> None:
    """Records the settings saved for an entity: what changed, and of the API token only that a new
    one was given (never the token, nor its ciphertext)."""
    old, new = _settings_fields(before), _settings_fields(after)
    changed = [key for key in new if old.get(key) != new[key]]
    recorded_before = {key: old[key] for key in changed if key in old}
    recorded_after = {key: new[key] for key in changed}
    if token_given:
        recorded_after["api_token"] = audit.CHANGED
    await audit.record(
        conn,
        "pennylane_settings.saved",
        targets={"entity": after.entity},
        before=recorded_before or None,
        after=recorded_after,
        organization_id=entity_organization(after.entity),
    )


def entity_organization(entity: str) -> str | None:
    """The organisation whose chain records an action on a Pennylane entity (None: the platform's)."""
    return None if entity == PLATFORM else entity
