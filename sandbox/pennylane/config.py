"""Settings of the Pennylane sandbox."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

__all__ = ["DEFAULT_ACCOUNTS", "DEFAULT_JOURNALS", "CompanyConfig", "PennylaneSandboxConfig"]

# Journals and a chart of accounts (plan comptable général) every company starts with.
DEFAULT_JOURNALS = (
    ("VE", "Ventes", "sale"),
    ("CA", "Caisse", "cash"),
    ("ST", "Stripe", "bank"),
    ("BQ", "Banque", "bank"),
    ("OD", "Opérations diverses", "misc"),
)
DEFAULT_ACCOUNTS = (
    ("411000", "Clients"),
    ("445710", "TVA collectée"),
    ("467000", "Stripe - compte de passage"),
    ("467100", "Organisations - fonds encaissés pour leur compte"),
    ("471000", "Compte d'attente"),
    ("512000", "Banque"),
    ("530000", "Caisse"),
    ("580000", "Virements internes"),
    ("622000", "Commissions et courtages"),
    ("627000", "Services bancaires"),
    ("658000", "Charges diverses de gestion courante"),
    ("706000", "Prestations de services"),
    ("706100", "Commissions"),
    ("709000", "Rabais, remises et ristournes accordés"),
    ("709100", "Commissions remboursées"),
)


@dataclass(frozen=True)
class CompanyConfig:
    """A company and the API token that acts on it (a Pennylane company token)."""

    name: str
    token: str


def default_companies() -> tuple[CompanyConfig, ...]:
    return (CompanyConfig("Collect Platform SAS", "pennylane-sandbox-token"),)


@dataclass
class PennylaneSandboxConfig:
    """Everything the sandbox can be told; defaults mimic Pennylane (25 requests per 5 s per token)."""

    companies: tuple[CompanyConfig, ...] = field(default_factory=default_companies)
    rate_limit: int = 25
    rate_window_seconds: float = 5.0
    state_file: str | None = None

    def __post_init__(self) -> None:
        self.companies = tuple(self.companies)
        if len({c.token for c in self.companies}) != len(self.companies):
            raise ValueError("each company needs its own token")
        if self.rate_limit < 1 or self.rate_window_seconds <= 0:
            raise ValueError("the rate limit must be at least 1 request per window")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PennylaneSandboxConfig:
        """Read ``PENNYLANE_SANDBOX_*`` variables; unset ones keep their defaults."""
        env = os.environ if environ is None else environ
        overrides: dict[str, object] = {}
        if env.get("PENNYLANE_SANDBOX_STATE_FILE"):
            overrides["state_file"] = env["PENNYLANE_SANDBOX_STATE_FILE"]
        if env.get("PENNYLANE_SANDBOX_TOKEN"):
            overrides["companies"] = (CompanyConfig("Collect Platform SAS", env["PENNYLANE_SANDBOX_TOKEN"]),)
        if env.get("PENNYLANE_SANDBOX_RATE_LIMIT"):
            overrides["rate_limit"] = int(env["PENNYLANE_SANDBOX_RATE_LIMIT"])
        return replace(cls(), **overrides)  # type: ignore[arg-type]
