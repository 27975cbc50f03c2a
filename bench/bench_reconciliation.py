"""Reconciliation matcher at scale: `python -m bench.bench_reconciliation [--payouts N] [--credits N]`.

Generates payouts over two years and bank credits: most one-to-one (some by reference, some
only by amount and date, some a few cents off within the tolerance), some groups of 2-4
payouts paid as one credit, and noise on both sides; prints the time and the outcome.
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter
from datetime import date, timedelta

from services.banking.matching import CreditItem, MatchRules, PayoutItem, match_payouts


def generate(n_payouts: int, n_credits: int, seed: int = 1) -> tuple[list[PayoutItem], list[CreditItem]]:
    rng = random.Random(seed)
    start = date(2025, 1, 1)
    payouts: list[PayoutItem] = []
    credits: list[CreditItem] = []
    i = 0
    while i < n_payouts and len(credits) < n_credits:
        day = start + timedelta(days=rng.randrange(730))
        kind = rng.random()
        if kind < 0.05 and i + 4 <= n_payouts:  # several payouts, one credit
            size = rng.randint(2, 4)
            group = [
                PayoutItem(f"p{i + k}", rng.randint(500, 500_000), "eur", day, (f"po_{i + k}",)) for k in range(size)
            ]
            payouts += group
            i += size
            credits.append(
                CreditItem(
                    f"c{len(credits)}", sum(p.amount for p in group), "eur", day + timedelta(days=1), "STRIPE", ""
                )
            )
            continue
        amount = rng.randint(500, 5_000_000)
        payout = PayoutItem(f"p{i}", amount, "eur", day, (f"po_{i}",))
        payouts.append(payout)
        i += 1
        if kind < 0.35:
            credits.append(CreditItem(f"c{len(credits)}", amount, "eur", day, "STRIPE PAYMENTS UK LTD", f"po_{i - 1}"))
        elif kind < 0.95:
            off = rng.randint(-2, 2) if kind > 0.9 else 0
            credits.append(
                CreditItem(
                    f"c{len(credits)}", amount + off, "eur", day + timedelta(days=rng.randint(0, 3)), "STRIPE", ""
                )
            )
        # else: the payout's credit never arrived
    while len(payouts) < n_payouts:
        payouts.append(PayoutItem(f"p{len(payouts)}", rng.randint(500, 5_000_000), "eur", start, ()))
    while len(credits) < n_credits:
        label = "STRIPE" if rng.random() < 0.3 else "CUSTOMER TRANSFER"
        day = start + timedelta(days=rng.randrange(730))
        credits.append(CreditItem(f"c{len(credits)}", rng.randint(100, 9_000_000), "eur", day, label, ""))
    return payouts, credits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--payouts", type=int, default=100_000)
    parser.add_argument("--credits", type=int, default=100_000)
    parser.add_argument("--tolerance", type=int, default=2)
    args = parser.parse_args()
    payouts, credits = generate(args.payouts, args.credits)
    rules = MatchRules(tolerance_cents=args.tolerance)
    started, cpu = time.perf_counter(), time.process_time()
    result = match_payouts(payouts, credits, rules)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    by_rule = Counter(m.rule for m in result.matches)
    matched_payouts = sum(len(m.payout_ids) for m in result.matches)
    print(f"payouts={len(payouts):,} credits={len(credits):,} tolerance={args.tolerance} cents")
    print(f"matched {len(result.matches):,} credits ({matched_payouts:,} payouts) in {elapsed:.2f} s (CPU {cpu:.2f} s)")
    print("by rule: " + ", ".join(f"{rule}={count:,}" for rule, count in sorted(by_rule.items())))
    print(
        f"unmatched payouts={len(result.unmatched_payouts):,} unmatched Stripe-like credits={len(result.unmatched_credits):,}"
    )


if __name__ == "__main__":
    main()
