"""Auth and members."""

from __future__ import annotations

from typing import Any

from collect.accounts.v1 import accounts_pb2 as pb
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.http import Fields, caller, json_body, json_response, timestamp_json
from gateway.openapi import body_schema, error_responses, json_ok
from gateway.routes.organizations import organization_json


def member_json(member: pb.Member) -> dict[str, Any]:
    return {
        "id": member.id,
        "organization_id": member.organization_id or None,
        "email": member.email,
        "name": member.name,
        "role": member.role,
        "disabled": member.disabled,
        "created_at": timestamp_json(member.created_at),
    }


async def issue_token(request: Request) -> Response:
    fields = Fields(await json_body(request))
    email = fields.text("email", max_len=254)
    password = fields.text("password", max_len=1024)
    fields.check()
    answer = await request.app.state.clients.accounts.Authenticate(
        pb.AuthenticateRequest(email=email, password=password)
    )
    return json_response(
        {
            "access_token": answer.access_token,
            "token_type": "bearer",
            "expires_in": answer.expires_in,
            "member": member_json(answer.member),
        }
    )


async def me(request: Request) -> Response:
    caller(request)
    answer = await request.app.state.clients.accounts.GetMe(pb.GetMeRequest())
    body = member_json(answer.member)
    body["organization"] = organization_json(answer.organization) if answer.HasField("organization") else None
    return json_response(body)


routes = [
    Route("/v1/auth/token", issue_token, methods=["POST"]),
    Route("/v1/me", me, methods=["GET"]),
]

openapi_paths: dict[str, dict[str, object]] = {
    "/v1/auth/token": {
        "post": {
            "summary": "Exchange e-mail and password for a short-lived bearer token",
            "security": [],
            "requestBody": body_schema(
                {"email": {"type": "string"}, "password": {"type": "string"}}, ["email", "password"]
            ),
            "responses": {**json_ok("access_token, token_type, expires_in, member"), **error_responses(400, 401)},
        }
    },
    "/v1/me": {
        "get": {
            "summary": "The calling member with its organisation",
            "responses": {**json_ok("member"), **error_responses(401)},
        }
    },
}
