"""Bearer tokens, the calling member, and the organisation scope every RPC applies.

Tokens are short-lived HS256 JWTs issued by Accounts; every service verifies them again
(the gateway checks first), so scoping holds in the gateway and in the service.
"""

from __future__ import annotations

import contextvars
import time
import uuid
from dataclasses import dataclass

import jwt
from collect.accounts.v1 import accounts_pb2

from runtime.contract import enum_names
from runtime.errors import FieldError, InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from runtime.settings import Env, SettingsError

# A member's roles are accounts.proto's Role enum (declared once), in rising order of rights.
ROLES: tuple[str, ...] = enum_names(accounts_pb2.Role.DESCRIPTOR)
AGENT, ORG_ADMIN, PLATFORM_ADMIN = ROLES
# Another service calling on its own behalf: above every member, never a member's role.
SERVICE = "service"
_RANK = {**{role: rank for rank, role in enumerate(ROLES, 1)}, SERVICE: len(ROLES) + 1}
_ALGORITHM = "HS256"
_CACHE_SIZE = 10_000
MIN_SECRET_LENGTH = 32


def token_secret_from_env(env: Env) -> str:
    """`AUTH_TOKEN_SECRET`, required (no public default) and long enough; SettingsError otherwise."""
    secret = env.text("AUTH_TOKEN_SECRET")
    if len(secret) < MIN_SECRET_LENGTH:
        raise SettingsError(f"AUTH_TOKEN_SECRET must be at least {MIN_SECRET_LENGTH} characters")
    return secret


def microseconds(seconds: float) -> int:
    """Seconds since the epoch as whole microseconds (the precision of token and change times)."""
    return round(seconds * 1_000_000)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: a member (with role and organisation) or an internal service."""

    member_id: str
    organization_id: str | None
    role: str
    token: str
    issued_at: int = 0  # when the token was issued, in microseconds since the epoch (see `TokenSigner.issue`)

    @property
    def is_platform(self) -> bool:
        return self.role in (PLATFORM_ADMIN, SERVICE)


class Revocations:
    """Members whose tokens issued before a moment are refused (disabled, or role changed).

    Fed by whoever follows Accounts (the gateway watches `WatchRevocations`). Times are whole
    microseconds (the change's `access_changed_at`, the token's issue time): a token issued in
    the same second as the change but before it is refused, one issued after it (signing in
    again right away) is accepted. Entries are dropped once every token they could refuse has
    expired.
    """

    def __init__(self, ttl_seconds: int) -> None:
        self._ttl = ttl_seconds
        self._before: dict[str, int] = {}

    def revoke(self, member_id: str, before_us: int) -> None:
        if before_us > self._before.get(member_id, 0):
            self._before[member_id] = before_us
        if len(self._before) > 1_000:
            horizon = microseconds(time.time() - self._ttl - 60)
            self._before = {m: at for m, at in self._before.items() if at > horizon}

    def revoked(self, caller: Caller) -> bool:
        before = self._before.get(caller.member_id)
        return before is not None and caller.issued_at < before


class TokenSigner:
    """Issues and verifies bearer tokens with one secret (and older ones during rotation)."""

    def __init__(self, secret: str, ttl_seconds: int = 900, previous_secrets: tuple[str, ...] = ()) -> None:
        if len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(f"AUTH_TOKEN_SECRET must be at least {MIN_SECRET_LENGTH} characters")
        self._secret = secret
        self._verify_secrets = (secret, *previous_secrets)
        self.ttl_seconds = ttl_seconds
        self._verified: dict[str, tuple[Caller, float]] = {}
        # Members whose tokens issued before a moment are refused (see `Revocations`).
        self.revocations = Revocations(ttl_seconds)

    def issue(self, member_id: str, organization_id: str | None, role: str, now: float | None = None) -> str:
        """A signed token; `iat` stays whole seconds (RFC 7519) and `iat_us` says the microsecond."""
        issued_us = microseconds(now if now is not None else time.time())
        issued = issued_us // 1_000_000
        claims = {
            "sub": member_id,
            "org": organization_id or "",
            "role": role,
            "iat": issued,
            "iat_us": issued_us,
            "exp": issued + self.ttl_seconds,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._secret, algorithm=_ALGORITHM)

    def service_token(self, service: str) -> str:
        return self.issue(f"service:{service}", None, SERVICE)

    def verify(self, token: str) -> Caller:
        """The caller a token names; Unauthenticated when expired, tampered or foreign.

        Verified tokens are remembered until they expire: every hop of a request checks the
        same token, and signature checks dominate a small request's cost.
        """
        cached = self._verified.get(token)
        if cached is not None:
            caller, expires = cached
            if time.time() >= expires:
                del self._verified[token]
                raise Unauthenticated("the token has expired", "token_expired")
        else:
            caller, expires = self._verify_signature(token)
            if len(self._verified) >= _CACHE_SIZE:
                self._verified.clear()
            self._verified[token] = (caller, expires)
        if self.revocations.revoked(caller):
            raise Unauthenticated("the token was revoked: sign in again", "token_revoked")
        return caller

    def _verify_signature(self, token: str) -> tuple[Caller, float]:
        last: Exception | None = None
        for secret in self._verify_secrets:
            try:
                claims = jwt.decode(
                    token, secret, algorithms=[_ALGORITHM], options={"require": ["sub", "role", "exp", "iat"]}
                )
            except jwt.ExpiredSignatureError:
                raise Unauthenticated("the token has expired", "token_expired") from None
            except jwt.InvalidTokenError as error:
                last = error
                continue
            role = claims["role"]
            if role not in _RANK:
                raise Unauthenticated("the token is invalid", "invalid_token")
            # A token without `iat_us` counts from the end of its second: one issued in the
            # second of a change is refused rather than kept.
            issued_us = claims.get("iat_us")
            if not isinstance(issued_us, int) or issued_us // 1_000_000 != int(claims["iat"]):
                issued_us = int(claims["iat"]) * 1_000_000 + 999_999
            caller = Caller(str(claims["sub"]), claims.get("org") or None, role, token, issued_us)
            return caller, float(claims["exp"])
        raise Unauthenticated("the token is invalid", "invalid_token") from last


_current_caller: contextvars.ContextVar[Caller | Unauthenticated | None] = contextvars.ContextVar(
    "current_caller", default=None
)


def set_current_caller(
    value: Caller | Unauthenticated | None,
) -> contextvars.Token[Caller | Unauthenticated | None]:
    return _current_caller.set(value)


def current_caller() -> Caller | None:
    value = _current_caller.get()
    return value if isinstance(value, Caller) else None


def require_caller(*, min_role: str = AGENT) -> Caller:
    """The verified caller, or Unauthenticated / PermissionDenied."""
    value = _current_caller.get()
    if value is None:
        raise Unauthenticated()
    if isinstance(value, Unauthenticated):
        raise value
    if _RANK[value.role] < _RANK[min_role]:
        raise PermissionDenied()
    return value


def scoped_caller(requested: str | None, *, min_role: str = AGENT) -> tuple[Caller, str]:
    """The verified caller and the organisation it acts on, the scope checked before the role.

    A member naming another organisation gets NotFound whatever its role (never PermissionDenied,
    which would tell that the organisation exists); a role too low in its own one, PermissionDenied.
    """
    caller = require_caller()
    organization_id = organization_scope(caller, requested)
    if _RANK[caller.role] < _RANK[min_role]:
        raise PermissionDenied()
    return caller, organization_id


def organization_scope(caller: Caller, requested: str | None) -> str:
    """The organisation a call acts on.

    Members act on their own organisation; naming another one answers NotFound so that ids
    leak nothing. Platform admins and services must name one.
    """
    if caller.is_platform:
        if not requested:
            raise InvalidArgument(
                "organization_id is required for platform admins",
                "organization_required",
                [FieldError("organization_id", "required")],
            )
        return requested
    if requested and requested != caller.organization_id:
        raise NotFound("organization not found")
    if caller.organization_id is None:
        raise NotFound("organization not found")
    return caller.organization_id
