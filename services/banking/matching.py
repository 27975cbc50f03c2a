"""Payout ↔ bank credit matching: a pure function over plain values, O(n log n).

Rules, in order (each match says which one decided it):
1. ``reference``: the credit's reference or label names a payout (Stripe payout id, trace id
   or statement descriptor) and the amounts agree within the tolerance; several payouts named
   by one shared reference may together make up the credit.
2. ``amount_date``: a credit that looks like Stripe (its label or reference contains one of
   ``stripe_labels``) of the same currency and amount (± tolerance), settled within the date
   window around the payout's arrival date; the closest date wins, then the closest amount.
3. ``sum_of_payouts``: several payouts (2..max_group) arriving the same day, within the window,
   add up to one such credit; searched only among the payouts of that day still open after
   rules 1-2, through cached tables of their sums (skipped for a day with too many open payouts).

Payouts are visited by arrival date then id and credits by settlement date then id, so the
result depends only on the input, never on its order.
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

__all__ = ["CreditItem", "Match", "MatchResult", "MatchRules", "PayoutItem", "match_payouts"]

REFERENCE, AMOUNT_DATE, SUM_OF_PAYOUTS, MANUAL = "reference", "amount_date", "sum_of_payouts", "manual"
_TOKEN = re.compile(r"[A-Z0-9_]+")


@dataclass(frozen=True, slots=True)
class PayoutItem:
    """A paid payout: ``references`` are the Stripe payout id, trace id and statement descriptor."""

    id: str
    amount: int
    currency: str
    day: date
    references: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CreditItem:
    """A completed bank credit."""

    id: str
    amount: int
    currency: str
    day: date
    label: str = ""
    reference: str = ""


@dataclass(frozen=True)
class MatchRules:
    """Tolerance in cents; a credit may settle ``days_before`` days before to ``days_after`` after arrival."""

    tolerance_cents: int = 0
    days_before: int = 1
    days_after: int = 3
    stripe_labels: tuple[str, ...] = ("STRIPE",)
    max_group: int = 4
    max_candidates: int = 16
    # Many-to-one: groups are listed per arrival day only while C(open payouts of the day, size) stays under this.
    max_combinations: int = 5_000
    search_budget: int = 20_000

    def __post_init__(self) -> None:
        if self.tolerance_cents < 0 or self.days_before < 0 or self.days_after < 0:
            raise ValueError("tolerance and date window must not be negative")
        if self.max_group < 2 or self.max_candidates < 2:
            raise ValueError("max_group and max_candidates must be at least 2")


@dataclass(frozen=True)
class Match:
    credit_id: str
    payout_ids: tuple[str, ...]
    rule: str
    explanation: str
    # Credit amount minus the payouts' total.
    difference: int


@dataclass
class MatchResult:
    matches: list[Match] = field(default_factory=list)
    unmatched_payouts: list[str] = field(default_factory=list)
    # Only credits that look like Stripe: other income is not expected to match a payout.
    unmatched_credits: list[str] = field(default_factory=list)


def looks_like_stripe(credit: CreditItem, labels: Iterable[str]) -> bool:
    text = f"{credit.label} {credit.reference}".upper()
    return any(label.upper() in text for label in labels)


def _keys(text: str) -> set[str]:
    cleaned = text.strip().upper()
    if not cleaned:
        return set()
    return {cleaned, *_TOKEN.findall(cleaned)}


def _original(payout: PayoutItem, key: str) -> str:
    return next((ref for ref in payout.references if ref.strip().upper() == key), key)


def _day_gap(credit_day: date, payout_day: date) -> str:
    gap = (credit_day - payout_day).days
    if gap == 0:
        return "on the arrival date"
    unit = "day" if abs(gap) == 1 else "days"
    return f"{abs(gap)} {unit} {'after' if gap > 0 else 'before'} the arrival date"


class _Matcher:
    def __init__(self, payouts: Sequence[PayoutItem], credits: Sequence[CreditItem], rules: MatchRules) -> None:
        self.rules = rules
        self.payouts = sorted(payouts, key=lambda p: (p.day, p.id))
        self.credits = sorted(credits, key=lambda c: (c.day, c.id))
        self.payout_used = [False] * len(self.payouts)
        self.credit_used = [False] * len(self.credits)
        self.stripe_like = [looks_like_stripe(c, rules.stripe_labels) for c in self.credits]
        self.matches: list[Match] = []

    def _in_window(self, credit: CreditItem, payout: PayoutItem) -> bool:
        gap = (credit.day - payout.day).days
        return -self.rules.days_before <= gap <= self.rules.days_after

    def _record(self, ci: int, pis: Sequence[int], rule: str, why: str) -> None:
        credit = self.credits[ci]
        total = sum(self.payouts[i].amount for i in pis)
        self.credit_used[ci] = True
        for i in pis:
            self.payout_used[i] = True
        ids = tuple(sorted(self.payouts[i].id for i in pis))
        self.matches.append(Match(credit.id, ids, rule, why, credit.amount - total))

    # Rule 1 -------------------------------------------------------------------------------
    def by_reference(self) -> None:
        shared: dict[str, list[int]] = defaultdict(list)
        for i, payout in enumerate(self.payouts):
            for ref in payout.references:
                key = ref.strip().upper()
                if key:
                    shared[key].append(i)
        # A reference shared by many payouts (a generic statement descriptor) identifies none of them.
        index = {key: found for key, found in shared.items() if len(found) <= self.rules.max_candidates}
        if not index:
            return
        tol = self.rules.tolerance_cents
        for ci, credit in enumerate(self.credits):
            keys = _keys(credit.reference) | _keys(credit.label)
            named: dict[int, str] = {}
            for key in sorted(keys):
                for pi in index.get(key, ()):
                    if not self.payout_used[pi] and self.payouts[pi].currency == credit.currency:
                        named.setdefault(pi, _original(self.payouts[pi], key))
            if not named:
                continue
            if len(named) == 1:
                ((pi, key),) = named.items()
                diff = credit.amount - self.payouts[pi].amount
                if abs(diff) <= tol:
                    self._record(
                        ci, [pi], REFERENCE, f"the credit's reference/label names payout {key!r}; {self._amounts(diff)}"
                    )
                continue
            group = sorted(
                (pi for pi in named if self._in_window(credit, self.payouts[pi])),
                key=lambda pi: (abs((credit.day - self.payouts[pi].day).days), self.payouts[pi].id),
            )
            group = group[: self.rules.max_candidates]
            chosen = _subset_sum(
                [self.payouts[pi].amount for pi in group],
                credit.amount,
                tol,
                len(group),
                self.rules.search_budget,
                min_size=1,
            )
            if chosen is not None:
                pis = [group[i] for i in chosen]
                key = named[pis[0]]
                diff = credit.amount - sum(self.payouts[i].amount for i in pis)
                self._record(
                    ci,
                    pis,
                    REFERENCE,
                    f"{len(pis)} payout(s) share the reference {key!r} named by the credit; {self._amounts(diff)}",
                )

    def _amounts(self, diff: int) -> str:
        if diff == 0:
            return "amounts equal"
        return f"amounts differ by {diff} cents (tolerance {self.rules.tolerance_cents})"

    # Rule 2 -------------------------------------------------------------------------------
    def by_amount_and_date(self) -> None:
        buckets: dict[tuple[str, int], list[tuple[int, str, int]]] = defaultdict(list)
        for ci, credit in enumerate(self.credits):
            if not self.credit_used[ci] and self.stripe_like[ci]:
                buckets[(credit.currency, credit.amount)].append((credit.day.toordinal(), credit.id, ci))
        amounts: dict[str, list[int]] = defaultdict(list)
        for currency, amount in buckets:
            amounts[currency].append(amount)
        for values in amounts.values():
            values.sort()
        tol, before, after = self.rules.tolerance_cents, self.rules.days_before, self.rules.days_after
        for pi, payout in enumerate(self.payouts):
            if self.payout_used[pi]:
                continue
            keys = amounts.get(payout.currency)
            if not keys:
                continue
            day = payout.day.toordinal()
            best: tuple[int, int, str, int] | None = None
            lo = bisect.bisect_left(keys, payout.amount - tol)
            hi = bisect.bisect_right(keys, payout.amount + tol)
            for amount in keys[lo:hi]:
                bucket = buckets[(payout.currency, amount)]
                start = bisect.bisect_left(bucket, (day - before,))
                for credit_day, credit_id, ci in bucket[start:]:
                    if credit_day > day + after:
                        break
                    if self.credit_used[ci]:
                        continue
                    rank = (abs(credit_day - day), abs(amount - payout.amount), credit_id, ci)
                    if best is None or rank < best:
                        best = rank
            if best is not None:
                ci = best[3]
                credit = self.credits[ci]
                diff = credit.amount - payout.amount
                self._record(
                    ci,
                    [pi],
                    AMOUNT_DATE,
                    f"Stripe-like credit of the same currency, {self._amounts(diff)}, "
                    f"settled {_day_gap(credit.day, payout.day)}",
                )

    # Rule 3 -------------------------------------------------------------------------------
    def _sums(self, key: tuple[str, int], size: int) -> dict[int, list[tuple[int, ...]]] | None:
        """Sums of every `size` open payouts arriving on one day (cached); None when too many to list."""
        cached = self._sum_tables.get((*key, size))
        if cached is not None or (*key, size) in self._sum_tables:
            return cached
        members = self._day_payouts.get(key, [])
        table: dict[int, list[tuple[int, ...]]] | None = None
        if len(members) >= size and math.comb(len(members), size) <= self.rules.max_combinations:
            amounts = [self.payouts[pi].amount for pi in members]
            table = defaultdict(list)
            combos = zip(itertools.combinations(members, size), itertools.combinations(amounts, size), strict=True)
            for combo, values in combos:
                table[sum(values)].append(combo)
        self._sum_tables[(*key, size)] = table
        return table

    def _triple(self, key: tuple[str, int], target: int, deltas: list[int]) -> tuple[int, ...] | None:
        """Three open payouts of one day adding up to target ± tolerance: one payout plus a listed pair."""
        pairs = self._sums(key, 2)
        if not pairs:
            return None
        ceiling = target + self.rules.tolerance_cents
        for position, pi in enumerate(self._day_payouts[key]):
            amount = self.payouts[pi].amount
            if 3 * amount > ceiling:  # the smallest of the three, amounts ascending
                return None
            if self.payout_used[pi]:
                continue
            for delta in deltas:
                for combo in pairs.get(target - delta - amount, ()):
                    if self._position[combo[0]] > position and not any(self.payout_used[p] for p in combo):
                        return (pi, *combo)
        return None

    def by_sum_of_payouts(self) -> None:
        self._day_payouts: dict[tuple[str, int], list[int]] = defaultdict(list)
        self._sum_tables: dict[tuple[str, int, int], dict[int, list[tuple[int, ...]]] | None] = {}
        for pi, payout in enumerate(self.payouts):
            if not self.payout_used[pi]:
                self._day_payouts[(payout.currency, payout.day.toordinal())].append(pi)
        self._position: dict[int, int] = {}
        for members in self._day_payouts.values():
            members.sort(key=lambda pi: (self.payouts[pi].amount, self.payouts[pi].id))
            self._position.update((pi, position) for position, pi in enumerate(members))
        tol, before, after = self.rules.tolerance_cents, self.rules.days_before, self.rules.days_after
        deltas = sorted(range(-tol, tol + 1), key=lambda d: (abs(d), d))
        for ci, credit in enumerate(self.credits):
            if self.credit_used[ci] or not self.stripe_like[ci]:
                continue
            day = credit.day.toordinal()
            # Payouts whose window contains the credit arrive in [day - after, day + before]; closest first.
            days = sorted(range(day - after, day + before + 1), key=lambda d: (abs(d - day), d))
            found = self._find_group(credit, days, deltas)
            if found is None:
                continue
            diff = credit.amount - sum(self.payouts[i].amount for i in found)
            self._record(
                ci,
                found,
                SUM_OF_PAYOUTS,
                f"{len(found)} payouts arriving the same day, {_day_gap(credit.day, self.payouts[found[0]].day)}, "
                f"add up to the Stripe-like credit; {self._amounts(diff)}",
            )

    def _find_group(self, credit: CreditItem, days: list[int], deltas: list[int]) -> tuple[int, ...] | None:
        for size in range(2, self.rules.max_group + 1):
            for day in days:
                if (credit.currency, day) not in self._day_payouts:
                    continue
                if size == 3:
                    found = self._triple((credit.currency, day), credit.amount, deltas)
                    if found is not None:
                        return found
                    continue
                table = self._sums((credit.currency, day), size)
                if not table:
                    continue
                for delta in deltas:
                    for combo in table.get(credit.amount - delta, ()):
                        if not any(self.payout_used[pi] for pi in combo):
                            return combo
        return None

    def result(self) -> MatchResult:
        return MatchResult(
            matches=self.matches,
            unmatched_payouts=[p.id for i, p in enumerate(self.payouts) if not self.payout_used[i]],
            unmatched_credits=[
                c.id for i, c in enumerate(self.credits) if not self.credit_used[i] and self.stripe_like[i]
            ],
        )


def _subset_sum(
    amounts: Sequence[int], target: int, tolerance: int, max_size: int, budget: int, *, min_size: int
) -> tuple[int, ...] | None:
    """Indexes of the smallest subset (size min_size..max_size) summing to target ± tolerance.

    Depth-first over amounts sorted ascending with bound pruning; gives up after ``budget`` steps.
    """
    order = sorted(range(len(amounts)), key=lambda i: (amounts[i], i))
    values = [amounts[i] for i in order]
    n = len(values)
    prefix = [0]
    for value in values:
        prefix.append(prefix[-1] + value)
    steps = 0

    def search(start: int, left: int, total: int, chosen: list[int]) -> list[int] | None:
        nonlocal steps
        if left == 0:
            return list(chosen) if abs(total - target) <= tolerance else None
        for i in range(start, n - left + 1):
            steps += 1
            if steps > budget:
                return None
            # Smallest completion from here: values[i : i + left]; sorted, so later i only grows.
            if total + prefix[i + left] - prefix[i] > target + tolerance:
                return None
            # Largest completion: values[i] plus the largest left - 1 values.
            if total + values[i] + prefix[n] - prefix[n - left + 1] < target - tolerance:
                continue
            chosen.append(i)
            found = search(i + 1, left - 1, total + values[i], chosen)
            chosen.pop()
            if found is not None:
                return found
        return None

    for size in range(min_size, min(max_size, n) + 1):
        found = search(0, size, 0, [])
        if found is not None:
            return tuple(order[i] for i in found)
        if steps > budget:
            return None
    return None


def match_payouts(
    payouts: Sequence[PayoutItem], credits: Sequence[CreditItem], rules: MatchRules | None = None
) -> MatchResult:
    """Matches paid payouts to bank credits; every match names its rule and explains itself."""
    matcher = _Matcher(payouts, credits, rules or MatchRules())
    matcher.by_reference()
    matcher.by_amount_and_date()
    matcher.by_sum_of_payouts()
    return matcher.result()
