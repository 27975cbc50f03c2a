"""Banking's own settings, read once from `deps.env` with defaults."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from runtime.defaults import DEFAULT_CURRENCY, DEFAULT_TIMEZONE
from runtime.settings import Env, SettingsError
from runtime.siren import SIREN_RULE, is_siren
from services.banking.matching import MatchRules


@dataclass(frozen=True)
class BankingSettings:
    qonto_api_base: str = "https://thirdparty.qonto.com"
    qonto_login: str = ""
    qonto_secret_key: str = ""
    # IBAN (or Qonto bank account id / slug) → legal entity, from "IBAN=entity,IBAN=entity".
    bank_account_entities: tuple[tuple[str, str], ...] = ()
    # A pull restarts this far before its cursor, so a transaction shifted across pages is not missed.
    sync_overlap_seconds: int = 300
    # 0: no periodic pull (webhooks and POST /v1/banking/sync only).
    sync_interval_seconds: int = 0
    tolerance_cents: int = 0
    days_before: int = 1
    days_after: int = 3
    stripe_labels: tuple[str, ...] = ("STRIPE",)
    report_timezone: str = DEFAULT_TIMEZONE
    report_currency: str = DEFAULT_CURRENCY
    # Local time (report time zone) after which the previous day's report is sent.
    report_time: time = time(8, 0)
    report_enabled: bool = True
    slack_webhook_url: str | None = None
    slack_timeout_seconds: float = 5.0
    report_retry_base_seconds: float = 30.0
    job_interval_seconds: float = 30.0
    baseline_entity: str | None = None
    # The platform's SIREN: names its FEC file (each organisation's is a setting of the organisation).
    fec_siren: str = "000000000"
    # Pennylane push (API v2); each entity's token and mapping are settings in the database.
    pennylane_api_base: str = "https://app.pennylane.com"
    pennylane_push_interval_seconds: int = 3600  # 0: only PushToPennylane
    pennylane_lookback_days: int = 31
    pennylane_delay_days: int = 1  # the last day pushed is this many days ago
    pennylane_timeout_seconds: float = 10.0
    pennylane_attempts: int = 6
    pennylane_retry_base_seconds: float = 1.0
    pennylane_max_wait_seconds: float = 60.0

    @property
    def match_rules(self) -> MatchRules:
        return MatchRules(
            tolerance_cents=self.tolerance_cents,
            days_before=self.days_before,
            days_after=self.days_after,
            stripe_labels=self.stripe_labels,
        )

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.report_timezone)

    @classmethod
    def from_env(cls, env: Env) -> BankingSettings:
        entities = []
        for pair in (env.optional("BANK_ACCOUNT_ENTITIES") or "").split(","):
            if pair.strip():
                key, sep, entity = pair.partition("=")
                if not sep or not key.strip() or not entity.strip():
                    raise SettingsError("setting BANK_ACCOUNT_ENTITIES must be IBAN=entity,IBAN=entity")
                entities.append((key.strip().replace(" ", "").upper(), entity.strip()))
        zone = env.text("REPORT_TIMEZONE", DEFAULT_TIMEZONE)
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise SettingsError(f"setting REPORT_TIMEZONE is not a known time zone: {zone!r}") from None
        raw_time = env.text("DAILY_REPORT_TIME", "08:00")
        try:
            report_time = time.fromisoformat(raw_time)
        except ValueError:
            raise SettingsError(f"setting DAILY_REPORT_TIME must be HH:MM, got {raw_time!r}") from None
        settings = cls(
            qonto_api_base=env.text("QONTO_API_BASE", "https://thirdparty.qonto.com"),
            qonto_login=env.text("QONTO_LOGIN", ""),
            qonto_secret_key=env.text("QONTO_SECRET_KEY", ""),
            bank_account_entities=tuple(entities),
            sync_overlap_seconds=env.integer("BANK_SYNC_OVERLAP_SECONDS", 300),
            sync_interval_seconds=env.integer("BANK_SYNC_INTERVAL_SECONDS", 0),
            tolerance_cents=env.integer("RECONCILIATION_TOLERANCE_CENTS", 0),
            days_before=env.integer("RECONCILIATION_DAYS_BEFORE", 1),
            days_after=env.integer("RECONCILIATION_DAYS_AFTER", 3),
            stripe_labels=tuple(
                s.strip().upper() for s in env.text("RECONCILIATION_STRIPE_LABELS", "STRIPE").split(",") if s.strip()
            ),
            report_timezone=zone,
            report_currency=env.text("REPORT_CURRENCY", DEFAULT_CURRENCY).lower(),
            report_time=report_time,
            report_enabled=env.flag("DAILY_REPORT_ENABLED", True),
            slack_webhook_url=env.optional("SLACK_WEBHOOK_URL"),
            slack_timeout_seconds=env.number("SLACK_TIMEOUT_SECONDS", 5.0),
            report_retry_base_seconds=env.number("DAILY_REPORT_RETRY_SECONDS", 30.0),
            job_interval_seconds=env.number("BANKING_JOB_INTERVAL_SECONDS", 30.0),
            baseline_entity=env.optional("ALLOCATION_BASELINE_ENTITY"),
            fec_siren=env.text("FEC_SIREN", "000000000"),
            pennylane_api_base=env.text("PENNYLANE_API_BASE", "https://app.pennylane.com"),
            pennylane_push_interval_seconds=env.integer("PENNYLANE_PUSH_INTERVAL_SECONDS", 3600),
            pennylane_lookback_days=env.integer("PENNYLANE_LOOKBACK_DAYS", 31),
            pennylane_delay_days=env.integer("PENNYLANE_PUSH_DELAY_DAYS", 1),
            pennylane_timeout_seconds=env.number("PENNYLANE_TIMEOUT_SECONDS", 10.0),
            pennylane_attempts=env.integer("PENNYLANE_ATTEMPTS", 6),
            pennylane_retry_base_seconds=env.number("PENNYLANE_RETRY_SECONDS", 1.0),
            pennylane_max_wait_seconds=env.number("PENNYLANE_MAX_WAIT_SECONDS", 60.0),
        )
        if not is_siren(settings.fec_siren):
            raise SettingsError(f"setting FEC_SIREN {SIREN_RULE}")
        if not 0 <= settings.pennylane_lookback_days <= 366 or settings.pennylane_delay_days < 0:
            raise SettingsError("PENNYLANE_LOOKBACK_DAYS must be 0 to 366 and PENNYLANE_PUSH_DELAY_DAYS not negative")
        if settings.pennylane_attempts < 1:
            raise SettingsError("PENNYLANE_ATTEMPTS must be at least 1")
        if settings.tolerance_cents < 0 or settings.days_before < 0 or settings.days_after < 0:
            raise SettingsError("reconciliation tolerance and date window must not be negative")
        return settings

    def entity_of(self, *keys: str | None) -> str | None:
        mapping = dict(self.bank_account_entities)
        for key in keys:
            if key and key.replace(" ", "").upper() in mapping:
                return mapping[key.replace(" ", "").upper()]
        return None
