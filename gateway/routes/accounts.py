"""Auth and members."""

from __future__ import annotations

from typing import Any

from collect.accounts.v1 import accounts_pb2 as pb
from collect.common.v1 import common_pb2
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.http import (
    Fields,
    caller,
    client_address,
    json_body,
    json_response,
    page_params,
    require_role,
    timestamp_json,
)
from gateway.openapi import body_schema, error_responses, json_ok
from gateway.routes.organizations import organization_json
from runtime.auth import ORG_ADMIN, PLATFORM_ADMIN, ROLES


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
        pb.AuthenticateRequest(email=email, password=password, client_address=client_address(request))
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


async def create_member(request: Request) -> Response:
    require_role(caller(request), ORG_ADMIN, PLATFORM_ADMIN, organization_id=request.path_params["org_id"])
    fields = Fields(await json_body(request))
    email = fields.text("email", max_len=254)
    name = fields.text("name", max_len=200)
    role = fields.text("role", choices=[r for r in ROLES if r != PLATFORM_ADMIN])
    password = fields.text("password", max_len=1024)
    fields.check()
    answer = await request.app.state.clients.accounts.CreateMember(
        pb.CreateMemberRequest(
            organization_id=request.path_params["org_id"], email=email, name=name, role=role, password=password
        )
    )
    return json_response(member_json(answer.member), 201)


async def list_members(request: Request) -> Response:
    require_role(caller(request), ORG_ADMIN, PLATFORM_ADMIN, organization_id=request.path_params["org_id"])
    limit, cursor = page_params(request)
    answer = await request.app.state.clients.accounts.ListMembers(
        pb.ListMembersRequest(
            organization_id=request.path_params["org_id"], page=common_pb2.PageRequest(limit=limit, cursor=cursor)
        )
    )
    return json_response({"data": [member_json(m) for m in answer.members], "next_cursor": answer.next_cursor or None})


async def get_member(request: Request) -> Response:
    caller(request)
    answer = await request.app.state.clients.accounts.GetMember(
        pb.GetMemberRequest(organization_id=request.path_params["org_id"], member_id=request.path_params["member_id"])
    )
    return json_response(member_json(answer.member))


async def update_member(request: Request) -> Response:
    require_role(caller(request), ORG_ADMIN, PLATFORM_ADMIN, organization_id=request.path_params["org_id"])
    body = await json_body(request)
    fields = Fields(body)
    message = pb.UpdateMemberRequest(
        organization_id=request.path_params["org_id"], member_id=request.path_params["member_id"]
    )
    if "name" in body:
        message.name = fields.text("name", max_len=200)
    if "role" in body:
        message.role = fields.text("role", choices=[r for r in ROLES if r != PLATFORM_ADMIN])
    if "disabled" in body:
        message.disabled = fields.boolean("disabled", required=True)
    fields.check()
    answer = await request.app.state.clients.accounts.UpdateMember(message)
    return json_response(member_json(answer.member))


routes = [
    Route("/v1/auth/token", issue_token, methods=["POST"]),
    Route("/v1/me", me, methods=["GET"]),
    Route("/v1/organizations/{org_id}/members", create_member, methods=["POST"]),
    Route("/v1/organizations/{org_id}/members", list_members, methods=["GET"]),
    Route("/v1/organizations/{org_id}/members/{member_id}", get_member, methods=["GET"]),
    Route("/v1/organizations/{org_id}/members/{member_id}", update_member, methods=["PATCH"]),
]

_ORG_ID = {"name": "org_id", "in": "path", "required": True, "schema": {"type": "string"}}
_MEMBER_ID = {"name": "member_id", "in": "path", "required": True, "schema": {"type": "string"}}

openapi_paths: dict[str, dict[str, Any]] = {
    "/v1/auth/token": {
        "post": {
            "summary": "Exchange e-mail and password for a short-lived bearer token",
            "security": [],
            "requestBody": body_schema(
                {"email": {"type": "string"}, "password": {"type": "string"}}, ["email", "password"]
            ),
            "responses": {
                **json_ok("access_token, token_type, expires_in, member"),
                **error_responses(400, 401, 429),
            },
        }
    },
    "/v1/me": {
        "get": {
            "summary": "The calling member with its organisation",
            "responses": {**json_ok("member"), **error_responses(401)},
        }
    },
    "/v1/organizations/{org_id}/members": {
        "post": {
            "summary": "Add a member to an organisation (org_admin of it, platform_admin)",
            "parameters": [_ORG_ID],
            "requestBody": body_schema(
                {
                    "email": {"type": "string"},
                    "name": {"type": "string"},
                    "role": {"type": "string", "enum": ["agent", "org_admin"]},
                    "password": {"type": "string", "minLength": 10},
                },
                ["email", "name", "role", "password"],
            ),
            "responses": {**json_ok("member", 201), **error_responses(400, 401, 403, 404, 409)},
        },
        "get": {
            "summary": "The organisation's members (org_admin of it, platform_admin)",
            "parameters": [
                _ORG_ID,
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
                {"name": "cursor", "in": "query", "schema": {"type": "string"}},
            ],
            "responses": {**json_ok("{data, next_cursor}"), **error_responses(400, 401, 403, 404)},
        },
    },
    "/v1/organizations/{org_id}/members/{member_id}": {
        "get": {
            "summary": "One member (agents: themselves; org_admin of its organisation; platform_admin)",
            "parameters": [_ORG_ID, _MEMBER_ID],
            "responses": {**json_ok("member"), **error_responses(401, 404)},
        },
        "patch": {
            "summary": "Rename, change the role of, disable or re-enable a member (org_admin, platform_admin)",
            "parameters": [_ORG_ID, _MEMBER_ID],
            "requestBody": body_schema(
                {
                    "name": {"type": "string"},
                    "role": {"type": "string", "enum": ["agent", "org_admin"]},
                    "disabled": {"type": "boolean"},
                }
            ),
            "responses": {**json_ok("member"), **error_responses(400, 401, 403, 404, 409)},
        },
    },
}
