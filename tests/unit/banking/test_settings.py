"""Banking settings from the environment."""

from __future__ import annotations

from datetime import time

import pytest

from runtime.settings import Env, SettingsError
from services.banking.settings import BankingSettings


def test_defaults() -> None:
    settings = BankingSettings.from_env(Env({}))
    assert settings.tolerance_cents == 0 and settings.report_timezone == "Europe/Paris"
    assert settings.report_time == time(8, 0) and settings.slack_webhook_url is None
    assert settings.sync_interval_seconds == 0 and settings.match_rules.days_after == 3


def test_values_and_bank_account_entities() -> None:
    settings = BankingSettings.from_env(
        Env(
            {
                "RECONCILIATION_TOLERANCE_CENTS": "5",
                "RECONCILIATION_STRIPE_LABELS": "stripe, STRP",
                "BANK_ACCOUNT_ENTITIES": "FR76 1695 8000 0100 0000 0000 140=holding,acct-2=asso",
                "DAILY_REPORT_TIME": "06:45",
                "REPORT_TIMEZONE": "America/Montreal",
            }
        )
    )
    assert settings.match_rules.tolerance_cents == 5 and settings.stripe_labels == ("STRIPE", "STRP")
    assert settings.entity_of("FR7616958000010000000000140") == "holding"
    assert settings.entity_of(None, "acct-2") == "asso" and settings.entity_of("FR00") is None
    assert settings.report_time == time(6, 45) and settings.zone.key == "America/Montreal"


@pytest.mark.parametrize(
    "environ",
    [
        {"BANK_ACCOUNT_ENTITIES": "FR76-no-entity"},
        {"REPORT_TIMEZONE": "Mars/Olympus"},
        {"DAILY_REPORT_TIME": "8 o'clock"},
        {"RECONCILIATION_TOLERANCE_CENTS": "-1"},
        {"RECONCILIATION_DAYS_AFTER": "three"},
    ],
)
def test_bad_settings_stop_start_up(environ: dict[str, str]) -> None:
    with pytest.raises(SettingsError):
        BankingSettings.from_env(Env(environ))


@pytest.mark.parametrize("siren", ["12345678", "1234567890", "12345678A", "123 456 789"])
def test_the_platform_siren_is_nine_digits(siren: str) -> None:
    with pytest.raises(SettingsError, match="FEC_SIREN"):
        BankingSettings.from_env(Env({"FEC_SIREN": siren}))
    assert BankingSettings.from_env(Env({"FEC_SIREN": "732829320"})).fec_siren == "732829320"
