"""The audit chain's rules (pure): the hash covers every field, links and the head tell edits and deletions."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.audit import AuditAnchor, AuditRecord
from runtime.errors import InvalidArgument
from services.accounts.domain import (
    CHANGED,
    GENESIS_HASH,
    AuditEntry,
    audit_anchor_break,
    audit_changes,
    audit_hash,
    audit_head_break,
    audit_link_break,
)

AT = datetime(2026, 12, 6, 9, 30, 1, 123456, tzinfo=UTC)


def chained(count: int, chain: str = "org-1") -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    previous = GENESIS_HASH
    for sequence in range(1, count + 1):
        found = AuditRecord(
            action="member.updated",
            organization_id=chain,
            actor_id="member-1",
            actor_role="org_admin",
            actor_organization_id=chain,
            targets={"member_id": "member-2"},
            before={"role": "agent"},
            after={"role": "org_admin"},
            request_id="req",
            trace_id="trace",
            occurred_at=AT,
            source_id=f"s-{sequence}",
        )
        entry = AuditEntry(
            id=f"00000000-0000-0000-0000-{sequence:012d}",
            chain=chain,
            sequence=sequence,
            record=found,
            source="accounts",
            recorded_at=AT + timedelta(seconds=sequence),
            previous_hash=previous,
        )
        entry = replace(entry, hash=audit_hash(entry))
        entries.append(entry)
        previous = entry.hash
    return entries


def walk(entries: list[AuditEntry], head: tuple[int, bytes] | None) -> str | None:
    """The reason of the first break, the way the verifier walks a chain."""
    sequence, previous = 0, GENESIS_HASH
    for entry in entries:
        broken = audit_link_break(sequence, previous, entry)
        if broken is not None:
            return f"{broken.sequence}: {broken.reason}"
        sequence, previous = entry.sequence, entry.hash
    broken = audit_head_break("org-1", sequence, previous, head)
    return None if broken is None else f"{broken.sequence}: {broken.reason}"


def test_an_intact_chain_verifies() -> None:
    entries = chained(4)
    assert walk(entries, (4, entries[-1].hash)) is None
    assert walk([], None) is None


# Every field but the hash itself changes the hash: the chain's ...
EDITS: dict[str, Any] = {
    "id": "00000000-0000-0000-0000-999999999999",
    "chain": "org-2",
    "sequence": 2,
    "source": "payments",
    "recorded_at": AT,
    "previous_hash": b"\x01" * 32,
}
# ... and the record's.
RECORD_EDITS: dict[str, Any] = {
    "action": "member.created",
    "organization_id": None,
    "actor_id": "member-9",
    "actor_role": "platform_admin",
    "actor_organization_id": None,
    "targets": {"member_id": "member-3"},
    "before": None,
    "after": {"role": "agent"},
    "request_id": "other",
    "trace_id": "other",
    "occurred_at": AT + timedelta(microseconds=1),
    "source_id": "s-9",
}


def test_the_edits_cover_every_field() -> None:
    assert set(EDITS) == {f.name for f in fields(AuditEntry)} - {"hash", "record"}
    assert set(RECORD_EDITS) == {f.name for f in fields(AuditRecord)}


@pytest.mark.parametrize("name", sorted(EDITS))
def test_every_field_is_in_the_hash(name: str) -> None:
    [entry] = chained(1)
    assert audit_hash(replace(entry, **{name: EDITS[name]})) != entry.hash


@pytest.mark.parametrize("name", sorted(RECORD_EDITS))
def test_every_field_of_the_record_is_in_the_hash(name: str) -> None:
    [entry] = chained(1)
    assert audit_hash(replace(entry, record=replace(entry.record, **{name: RECORD_EDITS[name]}))) != entry.hash


def edited(entry: AuditEntry, **changes: Any) -> AuditEntry:
    return replace(entry, record=replace(entry.record, **changes))


@pytest.mark.parametrize(
    ("tamper", "found"),
    [
        (lambda e: [e[0], edited(e[1], after={"role": "platform_admin"}), e[2], e[3]], "2: was edited"),
        (lambda e: [e[0], e[2], e[3]], "3: entries 2..2 are missing"),
        (lambda e: [e[1], e[2], e[3]], "2: entries 1..1 are missing"),
        (lambda e: [e[0], e[1], e[2]], "4: entries 4..4 are missing (the newest ones were deleted)"),
        # An edit whose hash was recomputed still breaks the next link.
        (lambda e: [e[0], rehashed(edited(e[1], actor_id="x")), e[2], e[3]], "3: does not follow"),
    ],
)
def test_edits_and_deletions_are_found(tamper: Any, found: str) -> None:
    entries = chained(4)
    assert (walk(tamper(entries), (4, entries[-1].hash)) or "").startswith(found)


def rehashed(entry: AuditEntry) -> AuditEntry:
    return replace(entry, hash=audit_hash(entry))


def test_a_head_ahead_of_its_entries_or_unknown() -> None:
    entries = chained(2)
    assert walk(entries, None) == "2: the chain's head does not match its last entry"
    assert walk(entries, (2, b"\x02" * 32)) == "2: the chain's head does not match its last entry"


@given(st.integers(min_value=1, max_value=8), st.data())
def test_removing_any_entry_is_found(count: int, data: st.DataObject) -> None:
    entries = chained(count)
    gone = data.draw(st.integers(min_value=0, max_value=count - 1))
    assert walk(entries[:gone] + entries[gone + 1 :], (count, entries[-1].hash)) is not None


@pytest.mark.parametrize(
    ("before", "after", "shown", "expected"),
    [
        ({"role": "agent"}, {"role": "org_admin"}, ("role",), ({"role": "agent"}, {"role": "org_admin"})),
        ({"role": "agent", "disabled": False}, {"role": "agent", "disabled": True}, ("role", "disabled"),
         ({"disabled": False}, {"disabled": True})),
        ({"name": "Ann"}, {"name": "Bob"}, ("role",), ({"name": CHANGED}, {"name": CHANGED})),
        ({"name": "Ann"}, {"name": "Ann"}, ("role",), ({}, {})),
        ({}, {"fee_percent_bps": 100}, ("fee_percent_bps",), ({"fee_percent_bps": None}, {"fee_percent_bps": 100})),
    ],
)  # fmt: skip
def test_audit_changes(
    before: dict[str, Any], after: dict[str, Any], shown: tuple[str, ...], expected: tuple[dict[str, Any], ...]
) -> None:
    assert audit_changes(before, after, shown) == expected


def anchor_of(entry: AuditEntry) -> AuditAnchor:
    return AuditAnchor.of_head(entry.chain, entry.sequence, entry.hash.hex())


@pytest.mark.parametrize(
    ("last", "at", "found"),
    [
        (4, 3, None),  # the chain grew past the anchor
        (3, 3, None),  # still at the anchor
        (2, None, "3: the chain ends at 2 but its anchor"),  # the newest deleted, the head rewound
        (0, None, "1: the chain ends at 0 but its anchor"),  # everything deleted
        (4, "other", "3: does not match its anchor"),  # entry 3 rewritten (and every later one rehashed)
    ],
)
def test_an_anchor_holds_while_the_chain_reaches_and_matches_it(last: int, at: Any, found: str | None) -> None:
    entries = chained(4)
    anchor = anchor_of(entries[2])
    anchored = {None: None, 3: entries[2], "other": rehashed(edited(entries[2], actor_id="x"))}[at]
    broken = audit_anchor_break(anchor, last, anchored)
    said = None if broken is None else f"{broken.sequence}: {broken.reason}"
    assert said == found if found is None else (said or "").startswith(found), said


def test_an_anchor_reads_back_what_it_writes() -> None:
    [entry] = chained(1)
    anchor = anchor_of(entry)
    assert str(anchor) == f"org-1:1:{entry.hash.hex()[:16]}"
    assert AuditAnchor.parse(f"  {str(anchor).upper().replace('ORG-1', 'org-1')}\n") == anchor


@pytest.mark.parametrize(
    "text",
    ["", "org-1", "org-1:1", ":1:0123456789abcdef", "org-1:0:0123456789abcdef", "org-1:-1:0123456789abcdef",
     "org-1:x:0123456789abcdef", "org-1:1:0123456", "org-1:1:" + "0" * 65, "org-1:1:0123456789abcdeg", "a:b:1:2"],
)  # fmt: skip
def test_a_malformed_anchor_is_refused(text: str) -> None:
    with pytest.raises(InvalidArgument):
        AuditAnchor.parse(text)
