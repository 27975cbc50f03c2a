"""AccountsService: proto ⇄ domain translation only."""

from __future__ import annotations

import asyncpg
import grpc
from collect.accounts.v1 import accounts_pb2 as pb
from collect.accounts.v1 import accounts_pb2_grpc

from runtime.auth import ORG_ADMIN, TokenSigner, organization_scope, require_caller
from runtime.proto import to_timestamp
from services.accounts import members
from services.accounts.domain import Member


def member_message(member: Member) -> pb.Member:
    return pb.Member(
        id=member.id,
        organization_id=member.organization_id or "",
        email=member.email,
        name=member.name,
        role=member.role,
        disabled=member.disabled,
        created_at=to_timestamp(member.created_at),
    )


class AccountsServicer(accounts_pb2_grpc.AccountsServiceServicer):
    def __init__(self, pool: asyncpg.Pool, signer: TokenSigner) -> None:
        self._pool = pool
        self._signer = signer

    async def Authenticate(
        self, request: pb.AuthenticateRequest, context: grpc.aio.ServicerContext
    ) -> pb.AuthenticateResponse:
        token, member = await members.authenticate(self._pool, self._signer, request.email, request.password)
        return pb.AuthenticateResponse(
            access_token=token, expires_in=self._signer.ttl_seconds, member=member_message(member)
        )

    async def GetMe(self, request: pb.GetMeRequest, context: grpc.aio.ServicerContext) -> pb.GetMeResponse:
        caller = require_caller()
        member = await members.get_member(self._pool, caller.member_id)
        return pb.GetMeResponse(member=member_message(member))

    async def GetMember(self, request: pb.GetMemberRequest, context: grpc.aio.ServicerContext) -> pb.GetMemberResponse:
        caller = require_caller()
        organization_id = organization_scope(caller, request.organization_id)
        member = await members.get_member(self._pool, request.member_id)
        if member.organization_id != organization_id:
            from runtime.errors import NotFound

            raise NotFound("member not found", "member_not_found")
        return pb.GetMemberResponse(member=member_message(member))

    async def CreateMember(
        self, request: pb.CreateMemberRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateMemberResponse:
        caller = require_caller(min_role=ORG_ADMIN)
        organization_id = organization_scope(caller, request.organization_id)
        member = await members.create_member(
            self._pool,
            caller,
            organization_id,
            email=request.email,
            name=request.name,
            role=request.role,
            password=request.password,
        )
        return pb.CreateMemberResponse(member=member_message(member))

    async def ListMembers(
        self, request: pb.ListMembersRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListMembersResponse:
        caller = require_caller(min_role=ORG_ADMIN)
        organization_id = organization_scope(caller, request.organization_id)
        found, next_cursor = await members.list_members(
            self._pool, organization_id, request.page.limit, request.page.cursor
        )
        return pb.ListMembersResponse(members=[member_message(m) for m in found], next_cursor=next_cursor)
