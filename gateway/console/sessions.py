"""Console sessions: an opaque cookie that stands for a member's bearer token, with a CSRF token.

The console's pages call the same public HTTP API as the app. The browser never holds the bearer
token: it holds an `HttpOnly` cookie naming a session kept here, and the page holds the session's
CSRF token (read from `GET /console/session`, which another origin cannot read). `ConsoleBridge`
turns a cookie (plus, on writes, the matching `X-CSRF-Token` header) into `Authorization: Bearer`
for `/v1/...`; the API itself stays bearer-only.

A session ends at logout, after `idle_seconds` without a request the person made (the sales
feed's background polling, marked `X-Console-Background: 1`, does not count), and when its
bearer token expires (sign in again). Sessions live in this process: behind several gateway
replicas, route a browser to one replica (sticky sessions) or sign in again.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.errors import ApiError, problem_response

COOKIE = "collect_console"
CSRF_HEADER = "x-csrf-token"
BACKGROUND_HEADER = "x-console-background"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_SESSIONS = 10_000


@dataclass
class Session:
    token: str
    csrf: str
    member: dict[str, Any]
    expires_at: float  # the bearer token's expiry
    last_seen: float


class ConsoleSessions:
    """Sessions by the SHA-256 of their cookie value (the value itself is never kept)."""

    def __init__(self, idle_seconds: float, clock: Callable[[], float] = time.time) -> None:
        self.idle_seconds = idle_seconds
        self._clock = clock
        self._sessions: dict[str, Session] = {}

    @staticmethod
    def _key(cookie: str) -> str:
        return hashlib.sha256(cookie.encode()).hexdigest()

    def open(self, token: str, expires_in: float, member: dict[str, Any]) -> tuple[str, Session]:
        """A new session; returns the cookie value and the session."""
        now = self._clock()
        if len(self._sessions) >= MAX_SESSIONS:
            self._sessions = {k: s for k, s in self._sessions.items() if self._alive(s, now)}
            while len(self._sessions) >= MAX_SESSIONS:  # still full: the oldest activity goes
                del self._sessions[min(self._sessions, key=lambda k: self._sessions[k].last_seen)]
        cookie = secrets.token_urlsafe(32)
        session = Session(token, secrets.token_urlsafe(32), member, now + expires_in, now)
        self._sessions[self._key(cookie)] = session
        return cookie, session

    def _alive(self, session: Session, now: float) -> bool:
        return now < session.expires_at and now - session.last_seen < self.idle_seconds

    def get(self, cookie: str, *, touch: bool = True) -> Session | None:
        """The live session a cookie names (its activity noted when `touch`); None otherwise."""
        key = self._key(cookie)
        session = self._sessions.get(key)
        if session is None:
            return None
        now = self._clock()
        if not self._alive(session, now):
            del self._sessions[key]
            return None
        if touch:
            session.last_seen = now
        return session

    def close(self, cookie: str) -> None:
        self._sessions.pop(self._key(cookie), None)


def cookie_value(scope: Scope) -> str:
    for key, value in scope.get("headers", []):
        if key == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # a malformed Cookie header names no session
                continue
            if COOKIE in jar:
                return jar[COOKIE].value
    return ""


def header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return ""


def csrf_matches(session: Session, sent: str) -> bool:
    return bool(sent) and hmac.compare_digest(session.csrf.encode(), sent.encode("latin-1"))


class ConsoleBridge:
    """For `/v1/...` requests without `Authorization`: the console's session cookie stands for its
    bearer token; writes must carry the session's CSRF token (403 `csrf_failed` otherwise)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/") or header(scope, b"authorization"):
            await self.app(scope, receive, send)
            return
        cookie = cookie_value(scope)
        sessions: ConsoleSessions | None = getattr(scope["app"].state, "console_sessions", None)
        if not cookie or sessions is None:
            await self.app(scope, receive, send)
            return
        session = sessions.get(cookie, touch=header(scope, BACKGROUND_HEADER.encode()) != "1")
        if session is None:
            await self.app(scope, receive, send)  # no live session: the API answers 401
            return
        if scope["method"] not in SAFE_METHODS and not csrf_matches(session, header(scope, CSRF_HEADER.encode())):
            error = ApiError(403, "csrf_failed", "the console's CSRF token is missing or wrong: reload the page")
            request_id = str(scope.get("state", {}).get("request_id", ""))
            await problem_response(error, request_id)(scope, receive, send)
            return
        headers = [*scope["headers"], (b"authorization", f"Bearer {session.token}".encode())]
        await self.app({**scope, "headers": headers}, receive, send)
