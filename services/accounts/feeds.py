"""What Accounts tells the services that keep copies: policy changes (Payments caches policies)
and access changes (the gateway refuses tokens issued before a member was disabled or had its
role changed).

Every write that changes a policy or a member's access NOTIFYs its channel in its own
transaction, so PostgreSQL tells every Accounts replica once the change has committed; each
replica LISTENs (`runtime.notifications.ChangeFeed`) and tells its watch streams. A stream starts
with a ready message only while the listener is up, and is ended when the listener is lost, so a
watcher never trusts what it keeps across a gap in which a change could have been missed.
"""

from __future__ import annotations

from datetime import UTC, datetime

from runtime.db import Connection
from runtime.notifications import ChangeFeed, notify
from services.accounts.organizations import POLICY_CHANNEL, PolicyCache

ACCESS_CHANNEL = "accounts_access_changed"


def policy_feed(cache: PolicyCache, dsn: str) -> ChangeFeed:
    return ChangeFeed(dsn, POLICY_CHANNEL, on_change=cache.invalidate, on_reset=cache.clear)


def access_feed(dsn: str) -> ChangeFeed:
    return ChangeFeed(dsn, ACCESS_CHANNEL)


async def access_changed(conn: Connection, member_id: str, at: datetime) -> None:
    """Tokens of `member_id` issued before `at` are refused once the transaction commits."""
    await notify(conn, ACCESS_CHANNEL, f"{member_id} {at.isoformat()}")  # to the microsecond


def parse_access_change(payload: str) -> tuple[str, datetime]:
    member_id, _, at = payload.partition(" ")
    return member_id, datetime.fromisoformat(at).astimezone(UTC)
