"""The payout ↔ bank credit matcher (pure)."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest

from services.banking.matching import CreditItem, MatchRules, PayoutItem, match_payouts

DAY = date(2026, 11, 20)


def payout(pid: str, amount: int, day: date = DAY, *refs: str, currency: str = "eur") -> PayoutItem:
    return PayoutItem(pid, amount, currency, day, (f"po_{pid}", *refs))


def credit(
    cid: str,
    amount: int,
    day: date = DAY,
    label: str = "STRIPE PAYMENTS UK LTD",
    reference: str = "",
    currency: str = "eur",
) -> CreditItem:
    return CreditItem(cid, amount, currency, day, label, reference)


def pairs(result) -> dict[str, tuple[str, ...]]:  # type: ignore[no-untyped-def]
    return {m.credit_id: m.payout_ids for m in result.matches}


def test_one_to_one_by_amount_and_date_explains_itself() -> None:
    result = match_payouts([payout("a", 1000)], [credit("c1", 1000, DAY + timedelta(days=1))])
    [match] = result.matches
    assert (match.credit_id, match.payout_ids, match.rule, match.difference) == ("c1", ("a",), "amount_date", 0)
    assert "1 day after the arrival date" in match.explanation
    assert result.unmatched_payouts == [] and result.unmatched_credits == []


def test_reference_wins_over_a_closer_amount_match() -> None:
    payouts = [payout("a", 1000), payout("b", 1000)]
    credits = [credit("c1", 1000, reference="po_b")]
    result = match_payouts(payouts, credits)
    assert pairs(result) == {"c1": ("b",)}
    assert result.matches[0].rule == "reference"
    assert result.unmatched_payouts == ["a"]


def test_reference_by_statement_descriptor_even_without_stripe_label() -> None:
    result = match_payouts(
        [payout("a", 5000, DAY, "COLLECT 1120")], [credit("c1", 5000, label="SEPA", reference="collect 1120")]
    )
    assert pairs(result) == {"c1": ("a",)} and result.matches[0].rule == "reference"


def test_reference_with_wrong_amount_is_not_matched_by_reference() -> None:
    result = match_payouts([payout("a", 5000)], [credit("c1", 4000, reference="po_a")])
    assert result.matches == []
    assert result.unmatched_payouts == ["a"] and result.unmatched_credits == ["c1"]


@pytest.mark.parametrize(
    ("tolerance", "diff", "matched"),
    [(0, 0, True), (0, 1, False), (5, 5, True), (5, -5, True), (5, 6, False), (5, -6, False)],
)
def test_tolerance_edges(tolerance: int, diff: int, matched: bool) -> None:
    rules = MatchRules(tolerance_cents=tolerance)
    result = match_payouts([payout("a", 10_000)], [credit("c1", 10_000 + diff)], rules)
    assert bool(result.matches) is matched
    if matched:
        assert result.matches[0].difference == diff


@pytest.mark.parametrize(("offset", "matched"), [(-2, False), (-1, True), (0, True), (3, True), (4, False)])
def test_date_window_edges(offset: int, matched: bool) -> None:
    rules = MatchRules(days_before=1, days_after=3)
    result = match_payouts([payout("a", 700)], [credit("c1", 700, DAY + timedelta(days=offset))], rules)
    assert bool(result.matches) is matched


def test_currency_must_agree() -> None:
    result = match_payouts([payout("a", 700)], [credit("c1", 700, currency="usd")])
    assert result.matches == []


def test_credits_that_do_not_look_like_stripe_are_neither_matched_by_amount_nor_reported() -> None:
    result = match_payouts([payout("a", 700)], [credit("c1", 700, label="ACME SARL")])
    assert result.matches == [] and result.unmatched_credits == [] and result.unmatched_payouts == ["a"]


def test_closest_date_wins_between_equal_amounts() -> None:
    payouts = [payout("a", 500, DAY)]
    credits = [credit("far", 500, DAY + timedelta(days=3)), credit("near", 500, DAY + timedelta(days=1))]
    result = match_payouts(payouts, credits)
    assert pairs(result) == {"near": ("a",)}
    assert result.unmatched_credits == ["far"]


def test_several_payouts_to_one_credit() -> None:
    payouts = [payout("a", 1200), payout("b", 3400), payout("c", 999), payout("d", 5600, DAY - timedelta(days=30))]
    result = match_payouts(payouts, [credit("c1", 4600, DAY + timedelta(days=1))])
    [match] = result.matches
    assert match.rule == "sum_of_payouts" and match.payout_ids == ("a", "b") and match.difference == 0
    assert sorted(result.unmatched_payouts) == ["c", "d"]


def test_several_payouts_sharing_a_reference_make_up_a_credit() -> None:
    payouts = [payout("a", 100, DAY, "BATCH7"), payout("b", 200, DAY, "BATCH7"), payout("c", 400, DAY, "BATCH7")]
    result = match_payouts(payouts, [credit("c1", 300, reference="BATCH7")])
    assert pairs(result) == {"c1": ("a", "b")} and result.matches[0].rule == "reference"


def test_many_to_one_respects_tolerance_and_group_size() -> None:
    payouts = [payout(str(i), 100 + i) for i in range(5)]
    total = sum(p.amount for p in payouts)
    assert match_payouts(payouts, [credit("c1", total + 3)], MatchRules(max_group=5)).matches == []
    found = match_payouts(payouts, [credit("c1", total + 3)], MatchRules(max_group=5, tolerance_cents=3))
    assert len(found.matches[0].payout_ids) == 5 and found.matches[0].difference == 3
    assert match_payouts(payouts, [credit("c1", total)], MatchRules(max_group=4)).matches == []


def test_unmatched_items_are_listed() -> None:
    result = match_payouts([payout("a", 100), payout("b", 250)], [credit("c1", 100), credit("c2", 999)])
    assert pairs(result) == {"c1": ("a",)}
    assert result.unmatched_payouts == ["b"] and result.unmatched_credits == ["c2"]


def test_each_item_is_used_once_and_input_order_does_not_matter() -> None:
    rng = random.Random(7)
    payouts = [
        payout(f"p{i:03d}", rng.choice([500, 1000, 1500]), DAY + timedelta(days=rng.randint(0, 5))) for i in range(60)
    ]
    credits = [
        credit(f"c{i:03d}", rng.choice([500, 1000, 1500, 2000]), DAY + timedelta(days=rng.randint(0, 7)))
        for i in range(60)
    ]
    first = match_payouts(payouts, credits)
    shuffled_p, shuffled_c = payouts[:], credits[:]
    rng.shuffle(shuffled_p)
    rng.shuffle(shuffled_c)
    second = match_payouts(shuffled_p, shuffled_c)
    assert first.matches == second.matches
    used_payouts = [p for m in first.matches for p in m.payout_ids]
    used_credits = [m.credit_id for m in first.matches]
    assert len(used_payouts) == len(set(used_payouts)) and len(used_credits) == len(set(used_credits))
    amounts = {p.id: p.amount for p in payouts}
    by_credit = {c.id: c for c in credits}
    for m in first.matches:
        assert by_credit[m.credit_id].amount - sum(amounts[p] for p in m.payout_ids) == m.difference == 0


def test_rules_reject_negative_settings() -> None:
    with pytest.raises(ValueError):
        MatchRules(tolerance_cents=-1)


@pytest.mark.parametrize(("total", "group"), [(300, ("a", "b")), (1300, ("a", "c", "d")), (1500, ("a", "b", "c", "d"))])
def test_groups_of_two_three_and_four(total: int, group: tuple[str, ...]) -> None:
    payouts = [payout("a", 100), payout("b", 200), payout("c", 400), payout("d", 800)]
    [match] = match_payouts(payouts, [credit("c1", total, DAY + timedelta(days=2))]).matches
    assert match.rule == "sum_of_payouts" and match.payout_ids == group
    assert "arriving the same day, 2 days after" in match.explanation


def test_groups_are_searched_only_among_payouts_of_one_day() -> None:
    payouts = [payout("a", 100, DAY), payout("b", 200, DAY + timedelta(days=1))]
    assert match_payouts(payouts, [credit("c1", 300, DAY + timedelta(days=1))]).matches == []


def test_a_descriptor_shared_by_many_payouts_identifies_none() -> None:
    payouts = [payout(f"p{i:02d}", 1000 + i, DAY, "COLLECT") for i in range(40)]
    result = match_payouts(payouts, [credit("c1", 1005, reference="COLLECT")])
    [match] = result.matches
    assert match.payout_ids == ("p05",) and match.rule == "amount_date"
