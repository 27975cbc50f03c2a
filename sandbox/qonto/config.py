"""Settings of the Qonto sandbox."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

__all__ = ["BankAccountConfig", "QontoSandboxConfig", "default_bank_accounts"]


@dataclass(frozen=True)
class BankAccountConfig:
    """One bank account of the sandbox organisation; its balance follows its transactions."""

    slug: str
    iban: str
    bic: str = "QNTOFRP1XXX"
    name: str = "Main account"
    currency: str = "EUR"
    main: bool = False
    opening_balance_cents: int = 0


def default_bank_accounts() -> tuple[BankAccountConfig, ...]:
    """The main account and a second one (valid French IBANs: RIB key and IBAN checksum)."""
    return (
        BankAccountConfig(
            slug="collect-sandbox-bank-account-1",
            iban="FR7616958000010000000000140",
            name="Main account",
            main=True,
            opening_balance_cents=1_000_000,
        ),
        BankAccountConfig(
            slug="collect-sandbox-bank-account-2",
            iban="FR7616958000010000000000237",
            name="Savings",
            main=False,
            opening_balance_cents=0,
        ),
    )


@dataclass
class QontoSandboxConfig:
    """Everything the sandbox can be told; defaults mimic Qonto.

    ``rate_limit_per_10s`` and ``rate_limit_per_10min`` are per client IP, like Qonto's
    1,000 requests per 10 s and 10,000 per 10 min.
    Webhook deliveries are retried ``webhook_max_attempts`` times in all, waiting
    ``webhook_retry_base_seconds * 2**(attempt - 1)`` between attempts. Each event is sent
    ``webhook_duplicates`` times, and ``webhook_shuffle`` delays deliveries randomly so
    they arrive out of order: both exist to test receivers.
    """

    login: str = "collect-sandbox"
    secret_key: str = "sandbox-secret"
    bank_accounts: tuple[BankAccountConfig, ...] = field(default_factory=default_bank_accounts)
    rate_limit_per_10s: int = 1000
    webhook_retry_base_seconds: float = 1.0
    webhook_max_attempts: int = 8
    webhook_duplicates: int = 1
    webhook_shuffle: bool = False
    state_file: str | None = None
    # Beyond the documented fields: optional, with defaults.
    organization_slug: str = "collect-sandbox"
    legal_name: str = "Collect Sandbox SAS"
    webhook_url: str | None = None
    webhook_secret: str | None = None
    rate_limit_per_10min: int = 10_000
    # Real Qonto expects an answer within 1 s; a little slack keeps slow CI receivers green.
    webhook_timeout_seconds: float = 5.0

    def __post_init__(self) -> None:
        self.bank_accounts = tuple(self.bank_accounts)
        if not self.bank_accounts:
            raise ValueError("the Qonto sandbox needs at least one bank account")
        if sum(1 for account in self.bank_accounts if account.main) > 1:
            raise ValueError("at most one bank account can be main")
        if self.rate_limit_per_10s < 1 or self.rate_limit_per_10min < 1:
            raise ValueError("rate limits must be at least 1")
        if self.webhook_max_attempts < 1 or self.webhook_duplicates < 1:
            raise ValueError("webhook_max_attempts and webhook_duplicates must be at least 1")

    @property
    def main_bank_account(self) -> BankAccountConfig:
        """The account transactions go to when none is named."""
        for account in self.bank_accounts:
            if account.main:
                return account
        return self.bank_accounts[0]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> QontoSandboxConfig:
        """Read ``QONTO_SANDBOX_*`` variables; unset ones keep their defaults."""
        env = os.environ if environ is None else environ
        config = cls()
        overrides: dict[str, object] = {}
        text_settings = {
            "QONTO_SANDBOX_LOGIN": "login",
            "QONTO_SANDBOX_SECRET_KEY": "secret_key",
            "QONTO_SANDBOX_STATE_FILE": "state_file",
            "QONTO_SANDBOX_WEBHOOK_URL": "webhook_url",
            "QONTO_SANDBOX_WEBHOOK_SECRET": "webhook_secret",
        }
        for name, attribute in text_settings.items():
            if env.get(name):
                overrides[attribute] = env[name]
        if env.get("QONTO_SANDBOX_RATE_LIMIT_PER_10S"):
            overrides["rate_limit_per_10s"] = int(env["QONTO_SANDBOX_RATE_LIMIT_PER_10S"])
        if env.get("QONTO_SANDBOX_WEBHOOK_RETRY_BASE_SECONDS"):
            overrides["webhook_retry_base_seconds"] = float(env["QONTO_SANDBOX_WEBHOOK_RETRY_BASE_SECONDS"])
        return replace(config, **overrides)  # type: ignore[arg-type]
