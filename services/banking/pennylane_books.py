"""The books (FEC entries) as Pennylane ledger entries. No I/O.

The entries are the very `fec.Entry` values the FEC exports render, so an entity's FEC and its
Pennylane ledger never disagree. Each entry gets a deterministic external reference, sent as the
ledger entry's `piece_number`: `<journal>-<piece>` (`VE-<payment id>`, `BQ-<payout id>`, ...),
with `-2`, `-3`, ... when several entries of one journal share a piece.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from collect.banking.v1 import banking_pb2 as pb

from runtime.errors import FieldError
from runtime.proto import EnumNames
from services.banking import fec

PLATFORM = "platform"  # the entity of the platform's own books

# The proto's closed sets as stored and answered over HTTP.
SALES_AS = EnumNames(pb.PennylaneSalesAs)
DOCUMENTS = EnumNames(pb.PennylaneDocument)
LEDGER_ENTRIES = SALES_AS.name(pb.PENNYLANE_SALES_AS_LEDGER_ENTRIES)  # the default
CUSTOMER_INVOICES = SALES_AS.name(pb.PENNYLANE_SALES_AS_CUSTOMER_INVOICES)
LEDGER_ENTRY = DOCUMENTS.name(pb.PENNYLANE_DOCUMENT_LEDGER_ENTRY)
CUSTOMER_INVOICE = DOCUMENTS.name(pb.PENNYLANE_DOCUMENT_CUSTOMER_INVOICE)


class Unmapped(ValueError):
    """The entity's settings name no Pennylane journal or ledger account for what an entry uses."""


def references(entries: Sequence[fec.Entry]) -> list[tuple[str, fec.Entry]]:
    """(reference, entry) pairs, by day then reference; the same entries always get the same references."""
    groups: dict[str, list[fec.Entry]] = {}
    for entry in entries:
        groups.setdefault(f"{entry.journal}-{entry.piece}", []).append(entry)
    found: list[tuple[str, fec.Entry]] = []
    for base, group in groups.items():
        ordered = sorted(group, key=lambda e: (e.day, e.label, e.currency, e.legs))
        found += [(base if i == 0 else f"{base}-{i + 1}", entry) for i, entry in enumerate(ordered)]
    return sorted(found, key=lambda pair: (pair[1].day, pair[0]))


def amount_text(cents: int) -> str:
    """Pennylane's decimal string of a non-negative amount in minor units: 1250 → "12.50"."""
    if cents < 0:
        raise ValueError("ledger amounts are never negative")
    return f"{cents // 100}.{cents % 100:02d}"


def cents_of(text: str) -> int:
    """Minor units of a decimal string as Pennylane answers it ("12.5", "12.50", "12"): the inverse of `amount_text`."""
    units, _, rest = text.strip().lstrip("-").partition(".")
    cents = int(units or "0") * 100 + int((rest + "00")[:2])
    return -cents if text.strip().startswith("-") else cents


def _account_id(line: Mapping[str, Any]) -> int:
    return int(line.get("ledger_account_id") or (line.get("ledger_account") or {}).get("id") or 0)


def as_sent(lines: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Lines as Pennylane answers them (`ledger_account: {"id"}`, amounts as "12.5") in the form they are sent."""
    return [
        {
            "debit": amount_text(cents_of(str(line["debit"]))),
            "credit": amount_text(cents_of(str(line["credit"]))),
            "ledger_account_id": _account_id(line),
            "label": str(line.get("label") or ""),
        }
        for line in lines
    ]


def held_lines(lines: Sequence[Mapping[str, Any]]) -> list[tuple[int, int, int]]:
    """(ledger account id, debit, credit) of each line, sorted: what two versions of an entry are compared on."""
    return sorted((_account_id(line), cents_of(str(line["debit"])), cents_of(str(line["credit"]))) for line in lines)


def ledger_entry(
    entry: fec.Entry, reference: str, journal_ids: Mapping[str, int], account_ids: Mapping[str, int]
) -> dict[str, Any]:
    """The body of `POST /ledger_entries` for one balanced entry; Unmapped when a journal or account has no id."""
    if not entry.balanced():
        raise ValueError(f"unbalanced entry {reference}")
    journal_id = journal_ids.get(entry.journal)
    if not journal_id:
        raise Unmapped(f"no Pennylane journal for {entry.journal}")
    lines = []
    for leg in entry.legs:
        account_id = account_ids.get(leg.account)
        if not account_id:
            raise Unmapped(f"no Pennylane ledger account for {leg.account}")
        lines.append(
            {
                "debit": amount_text(leg.debit),
                "credit": amount_text(leg.credit),
                "ledger_account_id": account_id,
                "label": f"{entry.label} {leg.aux}".strip(),
            }
        )
    return {
        "date": entry.day.isoformat(),
        "label": entry.label,
        "journal_id": journal_id,
        "currency": entry.currency.upper(),
        "piece_number": reference,
        "ledger_entry_lines": lines,
    }


def digest(entry: fec.Entry) -> str:
    """sha256 of what the entry books (journal, day, currency, label, legs): kept with its push, a later
    rendering of the books that differs is a divergence to correct. Not the Pennylane ids: a change of
    the mapping is not a change of the books."""
    legs = [[leg.account, leg.debit, leg.credit, leg.aux] for leg in entry.legs]
    booked = [entry.journal, entry.day.isoformat(), entry.currency.upper(), entry.label, legs]
    return hashlib.sha256(json.dumps(booked, separators=(",", ":")).encode()).hexdigest()


def revision_reference(reference: str, revision: int) -> str:
    """The reference (piece number) of an entry's `revision`: the first is the entry's own, later ones
    (after its books changed) `<reference>.v<n>`."""
    return reference if revision == 1 else f"{reference}.v{revision}"


def reversal_reference(reference: str, revision: int) -> str:
    """The reference of the entry reversing `revision` of an entry: `<reference>.x<n>`."""
    return f"{reference}.x{revision}"


REVERSAL_LABEL = "Annulation"


def reversal(sent: Mapping[str, Any], reference: str) -> dict[str, Any]:
    """The body of the ledger entry that reverses one already sent (`sent`, its body): the same journal,
    day and accounts with debits and credits swapped (a contre-passation), under `reference`."""
    lines = [{**line, "debit": line["credit"], "credit": line["debit"]} for line in sent["ledger_entry_lines"]]
    return {
        **sent,
        "label": f"{REVERSAL_LABEL} {sent['label']}".strip(),
        "piece_number": reference,
        "ledger_entry_lines": lines,
    }


def mapping_errors(journal_ids: Mapping[str, int], account_ids: Mapping[str, int]) -> list[FieldError]:
    """What is wrong with an entity's mapping: only the FEC's journals and accounts (positive ids are
    the proto's rule, PennylaneSettingsChange)."""
    errors = [
        FieldError(f"journal_ids.{code}", f"not one of {', '.join(fec.JOURNALS)}")
        for code in journal_ids
        if code not in fec.JOURNALS
    ]
    errors += [
        FieldError(f"ledger_account_ids.{n}", "not an account of the books")
        for n in account_ids
        if n not in fec.ACCOUNTS
    ]
    return errors
