"""The console's own routes: the page shell, its static assets, and signing in and out.

Everything else the console shows comes from the public API (`/v1/...`), called by the page with
the session cookie and, on writes, the CSRF token (see `gateway.console.sessions`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from gateway.console.sessions import COOKIE, CSRF_HEADER, ConsoleSessions, cookie_value, csrf_matches
from gateway.errors import ApiError
from gateway.http import Fields, json_body, json_response
from gateway.openapi import body_schema, error_responses, json_ok

STATIC = Path(__file__).parent / "static"
# The shell loads only the project's own files; nothing inline, nothing from elsewhere.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}


def _sessions(request: Request) -> ConsoleSessions:
    sessions: ConsoleSessions = request.app.state.console_sessions
    return sessions


async def shell(request: Request) -> Response:
    """The same page for every console path: the script routes on the address."""
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)


def _same_origin(request: Request) -> None:
    """Writes to /console/session come from the console's own pages (JSON, same origin)."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise ApiError(415, "unsupported_media_type", "send application/json")
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise ApiError(403, "cross_origin", "sign in from the console's own page")


def _session_json(csrf: str, member: dict[str, Any], expires_at: float, idle_seconds: float) -> dict[str, Any]:
    return {"csrf_token": csrf, "member": member, "expires_at": int(expires_at), "idle_seconds": int(idle_seconds)}


async def sign_in(request: Request) -> Response:
    _same_origin(request)
    fields = Fields(await json_body(request))
    email = fields.text("email", max_len=254)
    password = fields.text("password", max_len=1024)
    fields.check()
    # The public API's own sign-in, called in process.
    transport = httpx.ASGITransport(app=request.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as api:
        answer = await api.post("/v1/auth/token", json={"email": email, "password": password})
    if answer.status_code != 200:
        return Response(answer.content, answer.status_code, media_type=answer.headers.get("content-type"))
    body = answer.json()
    sessions = _sessions(request)
    cookie, session = sessions.open(body["access_token"], float(body["expires_in"]), body["member"])
    response = json_response(_session_json(session.csrf, session.member, session.expires_at, sessions.idle_seconds))
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=int(body["expires_in"]),
        path="/",
        httponly=True,
        secure=request.url.scheme == "https",
        samesite="strict",
    )
    response.headers["Cache-Control"] = "no-store"
    return response


async def current_session(request: Request) -> Response:
    """The signed-in member and the CSRF token the page sends on writes; 401 when signed out."""
    sessions = _sessions(request)
    session = sessions.get(cookie_value(request.scope))
    if session is None:
        raise ApiError(401, "unauthenticated", "sign in to the console")
    response = json_response(_session_json(session.csrf, session.member, session.expires_at, sessions.idle_seconds))
    response.headers["Cache-Control"] = "no-store"
    return response


async def sign_out(request: Request) -> Response:
    sessions = _sessions(request)
    cookie = cookie_value(request.scope)
    session = sessions.get(cookie, touch=False) if cookie else None
    if session is not None:
        if not csrf_matches(session, request.headers.get(CSRF_HEADER, "")):
            raise ApiError(403, "csrf_failed", "the console's CSRF token is missing or wrong: reload the page")
        sessions.close(cookie)
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


routes: list[BaseRoute] = [
    Mount("/console/static", app=StaticFiles(directory=STATIC), name="console-static"),
    Route("/console/session", sign_in, methods=["POST"]),
    Route("/console/session", current_session, methods=["GET"]),
    Route("/console/session", sign_out, methods=["DELETE"]),
    Route("/console", shell, methods=["GET"]),
    Route("/console/{path:path}", shell, methods=["GET"]),
]

_HTML = {"200": {"description": "the console (HTML)", "content": {"text/html": {"schema": {"type": "string"}}}}}
_SESSION = json_ok("`{csrf_token, member, expires_at, idle_seconds}`")
_COOKIE_NOTE = (
    f"The `{COOKIE}` cookie (HttpOnly, SameSite=Strict, Secure over TLS) then stands for the member's bearer "
    "token on `/v1/...` requests without `Authorization`; writes must carry `X-CSRF-Token`."
)

openapi_paths: dict[str, dict[str, Any]] = {
    "/console": {
        "get": {
            "summary": "The web console for platform and organisation admins (HTML; signs in with e-mail and password)",
            "security": [],
            "responses": _HTML,
        }
    },
    "/console/{path}": {
        "get": {
            "summary": "A page of the console (the same HTML; the page's script shows the address's view)",
            "security": [],
            "parameters": [{"name": "path", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": _HTML,
        }
    },
    "/console/session": {
        "post": {
            "summary": "Sign in to the console (JSON from the console's own origin). " + _COOKIE_NOTE,
            "security": [],
            "requestBody": body_schema(
                {"email": {"type": "string"}, "password": {"type": "string"}}, ["email", "password"]
            ),
            "responses": {**_SESSION, **error_responses(400, 401, 403, 415, 429)},
        },
        "get": {
            "summary": "The console session of this browser: member and CSRF token",
            "security": [],
            "responses": {**_SESSION, **error_responses(401)},
        },
        "delete": {
            "summary": "Sign out of the console (X-CSRF-Token required)",
            "security": [],
            "responses": {"204": {"description": "signed out"}, **error_responses(403)},
        },
    },
}
