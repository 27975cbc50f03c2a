"""Console sessions: idle expiry, token expiry, sign-out, CSRF comparison (a clock the test moves)."""

from __future__ import annotations

from gateway.console.sessions import ConsoleSessions, csrf_matches

MEMBER = {"id": "m1", "organization_id": "o1", "role": "org_admin"}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_ends_after_idle_time_but_activity_keeps_it() -> None:
    clock = Clock()
    sessions = ConsoleSessions(idle_seconds=600, clock=clock)
    cookie, _ = sessions.open("token", 3600, MEMBER)
    clock.now += 599
    assert sessions.get(cookie) is not None  # the person's request: activity noted
    clock.now += 599
    assert sessions.get(cookie, touch=False) is not None  # background polling: not activity
    clock.now += 2
    assert sessions.get(cookie) is None  # 601 s since the person's last request
    assert sessions.get(cookie) is None  # and it stays gone


def test_a_session_ends_with_its_token_and_at_sign_out() -> None:
    clock = Clock()
    sessions = ConsoleSessions(idle_seconds=600, clock=clock)
    cookie, _ = sessions.open("token", 900, MEMBER)
    for _ in range(3):
        clock.now += 300
        found = sessions.get(cookie)
    assert found is None  # 900 s: the bearer token expired, activity or not
    other, _ = sessions.open("token-2", 900, MEMBER)
    sessions.close(other)
    assert sessions.get(other) is None


def test_the_cookie_names_one_session_and_the_csrf_token_must_match() -> None:
    sessions = ConsoleSessions(idle_seconds=600)
    first, session = sessions.open("token", 900, MEMBER)
    second, other = sessions.open("token", 900, MEMBER)
    assert first != second and session.csrf != other.csrf
    assert sessions.get("not-a-cookie") is None
    assert csrf_matches(session, session.csrf)
    assert not csrf_matches(session, other.csrf) and not csrf_matches(session, "")
