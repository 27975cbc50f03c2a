"""Money rules more than one service applies: ISO 4217 currencies, payment bounds, the platform fee."""

from __future__ import annotations

from runtime.settings import Env

# Active ISO 4217 codes, lower case as Stripe writes them: the one list of valid currencies.
_ISO_4217_CODES = """
aed afn all amd ang aoa ars aud awg azn bam bbd bdt bgn bhd bif bmd bnd bob bov brl bsd btn bwp byn bzd
cad cdf che chf chw clf clp cny cop cou crc cup cve czk djf dkk dop dzd egp ern etb eur fjd fkp gbp gel
ghs gip gmd gnf gtq gyd hkd hnl htg huf idr ils inr iqd irr isk jmd jod jpy kes kgs khr kmf kpw krw kwd
kyd kzt lak lbp lkr lrd lsl lyd mad mdl mga mkd mmk mnt mop mru mur mvr mwk mxn mxv myr mzn nad ngn nio
nok npr nzd omr pab pen pgk php pkr pln pyg qar ron rsd rub rwf sar sbd scr sdg sek sgd shp sle sll sos
srd ssp stn svc syp szl thb tjs tmt tnd top try ttd twd tzs uah ugx usd usn uyi uyu uyw uzs ved ves vnd
vuv wst xaf xcd xcg xof xpf yer zar zmw zwg zwl
"""
ISO_4217 = frozenset(_ISO_4217_CODES.split())


def is_currency(code: str) -> bool:
    """Whether `code` is an ISO 4217 currency code in lower case."""
    return code in ISO_4217


def payment_bounds(env: Env) -> tuple[int, int]:
    """The smallest and largest payment in minor units: Payments enforces them; Accounts refuses a
    fee policy that would take the whole of the smallest one."""
    return env.integer("PAYMENT_MIN_AMOUNT", 100), env.integer("PAYMENT_MAX_AMOUNT", 50_000)


def platform_fee(amount: int, percent_bps: int, minimum: int) -> int:
    """max(minimum, round(amount * percent)) (half up, in integers), before any cap."""
    return max(minimum, (amount * percent_bps + 5_000) // 10_000)


def fee_leaves_nothing(amount: int, percent_bps: int, minimum: int) -> bool:
    """Whether the platform fee would take the whole amount (the organisation would sell at a loss,
    Stripe's own fee coming on top). For a policy, the smallest amount is the worst case."""
    return platform_fee(amount, percent_bps, minimum) >= amount
