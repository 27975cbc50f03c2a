"""Revenue allocation across legal entities: validation, splitting and estimated tax. No I/O."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runtime.errors import FieldError, InvalidArgument

FULL_SHARE = 10_000
DEFAULT_RULES = ""  # organization_id of the rules that apply to organisations without their own


@dataclass(frozen=True, slots=True)
class LegalEntity:
    entity: str
    tax_rate_bps: int


@dataclass(frozen=True, slots=True)
class AllocationRule:
    organization_id: str
    entity: str
    share_bps: int


@dataclass(frozen=True, slots=True)
class EntityAllocation:
    entity: str
    revenue: int
    tax_rate_bps: int
    estimated_tax: int


@dataclass(frozen=True)
class AllocationSummary:
    entities: tuple[EntityAllocation, ...]
    estimated_tax_total: int
    baseline_entity: str
    baseline_estimated_tax: int

    @property
    def tax_difference(self) -> int:
        """Estimated tax with the allocation minus the tax if the baseline entity got everything."""
        return self.estimated_tax_total - self.baseline_estimated_tax


def validate_allocation(rules: Sequence[AllocationRule], entities: Sequence[LegalEntity]) -> None:
    """InvalidArgument (400 `invalid_allocation_rules`) listing every problem."""
    errors: list[FieldError] = []
    names: set[str] = set()
    if not entities:
        errors.append(FieldError("entities", "at least one legal entity is required"))
    for i, entity in enumerate(entities):
        if not entity.entity.strip() or len(entity.entity) > 100:
            errors.append(FieldError(f"entities[{i}].entity", "must be 1..100 characters"))
        elif entity.entity in names:
            errors.append(FieldError(f"entities[{i}].entity", "is listed twice"))
        names.add(entity.entity)
        if not 0 <= entity.tax_rate_bps <= FULL_SHARE:
            errors.append(FieldError(f"entities[{i}].tax_rate_bps", "must be 0..10000"))
    totals: dict[str, int] = defaultdict(int)
    seen: set[tuple[str, str]] = set()
    for i, rule in enumerate(rules):
        if rule.entity not in names:
            errors.append(FieldError(f"rules[{i}].entity", "is not a listed legal entity"))
        if not 1 <= rule.share_bps <= FULL_SHARE:
            errors.append(FieldError(f"rules[{i}].share_bps", "must be 1..10000"))
        if (rule.organization_id, rule.entity) in seen:
            errors.append(FieldError(f"rules[{i}]", "repeats an entity for the same organisation"))
        seen.add((rule.organization_id, rule.entity))
        totals[rule.organization_id] += rule.share_bps
    for organization_id, total in sorted(totals.items()):
        if total != FULL_SHARE:
            who = f"organisation {organization_id}" if organization_id else "the default rules"
            errors.append(FieldError("rules", f"shares of {who} sum to {total}, not 10000"))
    if errors:
        raise InvalidArgument("the allocation rules are invalid", "invalid_allocation_rules", errors)


def split(amount: int, shares: Sequence[tuple[str, int]]) -> dict[str, int]:
    """Splits cents by basis points; largest remainders get the leftover cents, so parts sum to amount."""
    sign = -1 if amount < 0 else 1
    whole = abs(amount)
    parts: dict[str, int] = {}
    remainders: list[tuple[int, int, str]] = []
    for position, (entity, bps) in enumerate(shares):
        quotient, remainder = divmod(whole * bps, FULL_SHARE)
        parts[entity] = parts.get(entity, 0) + quotient
        remainders.append((-remainder, position, entity))
    leftover = whole - sum(parts.values())
    for _, _, entity in sorted(remainders)[:leftover]:
        parts[entity] += 1
    return {entity: sign * value for entity, value in parts.items()}


def estimated_tax(revenue: int, rate_bps: int) -> int:
    """revenue * rate, rounded half away from zero, in cents."""
    sign = -1 if revenue < 0 else 1
    return sign * ((abs(revenue) * rate_bps + FULL_SHARE // 2) // FULL_SHARE)


def allocate(
    net_by_organization: Mapping[str, int],
    rules: Sequence[AllocationRule],
    entities: Sequence[LegalEntity],
    baseline_entity: str | None = None,
) -> AllocationSummary:
    """Net revenue per entity with estimated tax, against a single-entity baseline.

    An organisation uses its own rules, else the default ones; without either its revenue goes
    to the baseline entity (the one named, else the first listed).
    """
    rates = {e.entity: e.tax_rate_bps for e in entities}
    baseline = baseline_entity if baseline_entity in rates else (entities[0].entity if entities else "")
    by_org: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for rule in rules:
        by_org[rule.organization_id].append((rule.entity, rule.share_bps))
    revenue: dict[str, int] = {e.entity: 0 for e in entities}
    for organization_id, net in sorted(net_by_organization.items()):
        shares = by_org.get(organization_id) or by_org.get(DEFAULT_RULES) or [(baseline, FULL_SHARE)]
        for entity, part in split(net, shares).items():
            revenue[entity] = revenue.get(entity, 0) + part
    lines = tuple(
        EntityAllocation(entity, amount, rates.get(entity, 0), estimated_tax(amount, rates.get(entity, 0)))
        for entity, amount in revenue.items()
    )
    total_revenue = sum(net_by_organization.values())
    return AllocationSummary(
        entities=lines,
        estimated_tax_total=sum(line.estimated_tax for line in lines),
        baseline_entity=baseline,
        baseline_estimated_tax=estimated_tax(total_revenue, rates.get(baseline, 0)),
    )


def allocation_json(rules: Sequence[AllocationRule], entities: Sequence[LegalEntity]) -> dict[str, Any]:
    """The allocation as the audit trail shows it before and after a change."""
    return {
        "rules": [{"organization_id": r.organization_id, "entity": r.entity, "share_bps": r.share_bps} for r in rules],
        "entities": [{"entity": e.entity, "tax_rate_bps": e.tax_rate_bps} for e in entities],
    }
