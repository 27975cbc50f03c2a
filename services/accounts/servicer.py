"""AccountsService: proto ⇄ domain translation and the role / organisation checks of each RPC."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import grpc
from collect.accounts.v1 import accounts_pb2 as pb
from collect.accounts.v1 import accounts_pb2_grpc
from collect.common.v1 import common_pb2

from runtime.audit import record_from_message
from runtime.auth import (
    AGENT,
    ORG_ADMIN,
    PLATFORM_ADMIN,
    SERVICE,
    TokenSigner,
    organization_scope,
    require_caller,
    scoped_caller,
)
from runtime.defaults import DEFAULT_CHARGE_MODEL, DEFAULT_CURRENCY, DEFAULT_TIMEZONE
from runtime.errors import FieldError, InvalidArgument, NotFound
from runtime.notifications import ChangeFeed
from runtime.proto import from_timestamp, to_timestamp
from services.accounts import audit_trail, members, payout_schedule
from services.accounts.connect import Connect
from services.accounts.domain import (
    Address,
    AuditEntry,
    Member,
    NewOrganization,
    Organization,
    OrganizationChanges,
    StripeAccountState,
)
from services.accounts.feeds import parse_access_change
from services.accounts.organizations import Organizations, policy_change


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


def organization_message(org: Organization) -> pb.Organization:
    stripe = org.stripe
    return pb.Organization(
        id=org.id,
        name=org.name,
        email=org.email,
        country=org.country,
        business_type=org.business_type,
        address=common_pb2.Address(
            line1=org.address.line1,
            line2=org.address.line2,
            city=org.address.city,
            postal_code=org.address.postal_code,
            country=org.address.country or org.country,
            state=org.address.state,
        ),
        charge_model=org.charge_model,
        fee_percent_bps=org.fee_percent_bps,
        fee_minimum=org.fee_minimum,
        stripe_account_id=stripe.account_id if stripe else "",
        charges_enabled=stripe.charges_enabled if stripe else False,
        payouts_enabled=stripe.payouts_enabled if stripe else False,
        details_submitted=stripe.details_submitted if stripe else False,
        requirements_due=list(stripe.requirements_due) if stripe else [],
        legal_entity=org.legal_entity,
        bank_account_iban=org.bank_account_iban,
        timezone=org.timezone,
        default_currency=org.default_currency,
        created_at=to_timestamp(org.created_at),
        siren=org.siren,
    )


def account_message(organization_id: str, state: StripeAccountState) -> pb.StripeAccountStatus:
    return pb.StripeAccountStatus(
        organization_id=organization_id,
        stripe_account_id=state.account_id,
        type=state.type,
        charges_enabled=state.charges_enabled,
        payouts_enabled=state.payouts_enabled,
        details_submitted=state.details_submitted,
        requirements_due=list(state.requirements_due),
        updated_at=to_timestamp(state.updated_at),
        requirements=pb.StripeRequirements(currently_due=list(state.requirements_due)),
    )


def audit_entry_message(entry: AuditEntry) -> pb.AuditEntry:
    message = entry.record.message()
    message.MergeFrom(
        pb.AuditEntry(
            id=entry.id,
            recorded_at=to_timestamp(entry.recorded_at),
            source=entry.source,
            sequence=entry.sequence,
            hash=entry.hash.hex(),
        )
    )
    return message


def _new_organization(request: pb.CreateOrganizationRequest) -> NewOrganization:
    address = request.address
    return NewOrganization(
        name=request.name,
        email=request.email,
        country=request.country,
        business_type=request.business_type,
        address=Address(
            line1=address.line1,
            line2=address.line2,
            city=address.city,
            postal_code=address.postal_code,
            country=address.country.upper(),
            state=address.state,
        ),
        charge_model=request.charge_model or DEFAULT_CHARGE_MODEL,
        fee_percent_bps=request.fee_percent_bps,
        fee_minimum=request.fee_minimum,
        legal_entity=request.legal_entity,
        bank_account_iban=request.bank_account_iban,
        timezone=request.timezone or DEFAULT_TIMEZONE,
        default_currency=request.default_currency or DEFAULT_CURRENCY,
        siren=request.siren,
    )


def _changes(request: pb.UpdateOrganizationRequest) -> OrganizationChanges:
    def optional(name: str) -> object:
        return getattr(request, name) if request.HasField(name) else None  # type: ignore[arg-type]

    return OrganizationChanges(
        **{
            name: optional(name)
            for name in (
                "name",
                "charge_model",
                "fee_percent_bps",
                "fee_minimum",
                "legal_entity",
                "bank_account_iban",
                "timezone",
                "siren",
            )
        }  # type: ignore[arg-type]
    )


class AccountsServicer(accounts_pb2_grpc.AccountsServiceServicer):
    def __init__(
        self,
        pool: asyncpg.Pool,
        signer: TokenSigner,
        organizations: Organizations,
        connect: Connect,
        policy_feed: ChangeFeed,
        access_feed: ChangeFeed,
    ) -> None:
        self._pool = pool
        self._signer = signer
        self._orgs = organizations
        self._connect = connect
        self._policy_feed = policy_feed
        self._access_feed = access_feed

    # Sign-in and members ---------------------------------------------------------------------

    async def Authenticate(
        self, request: pb.AuthenticateRequest, context: grpc.aio.ServicerContext
    ) -> pb.AuthenticateResponse:
        token, member = await members.authenticate(
            self._pool, self._signer, request.email, request.password, request.client_address, self._orgs.rows.index
        )
        return pb.AuthenticateResponse(
            access_token=token, token_type="bearer", expires_in=self._signer.ttl_seconds, member=member_message(member)
        )

    async def GetMe(self, request: pb.GetMeRequest, context: grpc.aio.ServicerContext) -> pb.GetMeResponse:
        caller = require_caller()
        member = await members.get_member(self._pool, caller.member_id)
        if member.organization_id is None:
            return pb.GetMeResponse(member=member_message(member))
        org = await self._orgs.get(member.organization_id)
        return pb.GetMeResponse(member=member_message(member), organization=organization_message(org))

    async def GetMember(self, request: pb.GetMemberRequest, context: grpc.aio.ServicerContext) -> pb.GetMemberResponse:
        caller = require_caller()
        organization_id = organization_scope(caller, request.organization_id)
        if caller.role == AGENT and request.member_id != caller.member_id:
            raise NotFound("member not found", "member_not_found")
        member = await members.find_member(self._pool, organization_id, request.member_id)
        return pb.GetMemberResponse(member=member_message(member))

    async def UpdateMember(
        self, request: pb.UpdateMemberRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpdateMemberResponse:
        caller, organization_id = scoped_caller(request.organization_id, min_role=ORG_ADMIN)
        member = await members.update_member(
            self._pool,
            caller,
            organization_id,
            request.member_id,
            name=request.name if request.HasField("name") else None,
            role=request.role if request.HasField("role") else None,
            disabled=request.disabled if request.HasField("disabled") else None,
        )
        return pb.UpdateMemberResponse(member=member_message(member))

    async def CreateMember(
        self, request: pb.CreateMemberRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateMemberResponse:
        caller, organization_id = scoped_caller(request.organization_id, min_role=ORG_ADMIN)
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
        _, organization_id = scoped_caller(request.organization_id, min_role=ORG_ADMIN)
        found, next_cursor = await members.list_members(
            self._pool, organization_id, request.page.limit, request.page.cursor
        )
        return pb.ListMembersResponse(members=[member_message(m) for m in found], next_cursor=next_cursor)

    # Organisations ---------------------------------------------------------------------------

    async def CreateOrganization(
        self, request: pb.CreateOrganizationRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateOrganizationResponse:
        require_caller(min_role=PLATFORM_ADMIN)
        org = await self._orgs.create(_new_organization(request))
        return pb.CreateOrganizationResponse(organization=organization_message(org))

    async def GetOrganization(
        self, request: pb.GetOrganizationRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetOrganizationResponse:
        organization_id = organization_scope(require_caller(), request.organization_id)
        return pb.GetOrganizationResponse(organization=organization_message(await self._orgs.get(organization_id)))

    async def UpdateOrganization(
        self, request: pb.UpdateOrganizationRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpdateOrganizationResponse:
        _, organization_id = scoped_caller(request.organization_id, min_role=PLATFORM_ADMIN)
        org = await self._orgs.update(organization_id, _changes(request))
        return pb.UpdateOrganizationResponse(organization=organization_message(org))

    async def ListOrganizations(
        self, request: pb.ListOrganizationsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListOrganizationsResponse:
        require_caller(min_role=PLATFORM_ADMIN)
        if request.email:
            return pb.ListOrganizationsResponse(
                organizations=[organization_message(o) for o in await self._orgs.find_by_email(request.email)]
            )
        found, next_cursor = await self._orgs.page(request.page.limit, request.page.cursor)
        return pb.ListOrganizationsResponse(
            organizations=[organization_message(o) for o in found], next_cursor=next_cursor
        )

    # Stripe Connect --------------------------------------------------------------------------

    async def CreateStripeAccount(
        self, request: pb.CreateStripeAccountRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateStripeAccountResponse:
        _, organization_id = scoped_caller(request.organization_id, min_role=ORG_ADMIN)
        state = await self._connect.create_account(organization_id, request.type)
        return pb.CreateStripeAccountResponse(account=account_message(organization_id, state))

    async def CreateOnboardingLink(
        self, request: pb.CreateOnboardingLinkRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateOnboardingLinkResponse:
        _, organization_id = scoped_caller(request.organization_id, min_role=ORG_ADMIN)
        url, expires_at = await self._connect.onboarding_link(organization_id, request.return_url, request.refresh_url)
        return pb.CreateOnboardingLinkResponse(url=url, expires_at=to_timestamp(expires_at))

    async def GetStripeAccount(
        self, request: pb.GetStripeAccountRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetStripeAccountResponse:
        organization_id = organization_scope(require_caller(), request.organization_id)
        state = await self._connect.status(organization_id, refresh=request.refresh)
        return pb.GetStripeAccountResponse(account=account_message(organization_id, state))

    async def UpdatePayoutSchedule(
        self, request: pb.UpdatePayoutScheduleRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpdatePayoutScheduleResponse:
        organization_id = organization_scope(require_caller(min_role=ORG_ADMIN), request.organization_id)
        schedule = await payout_schedule.update_payout_schedule(self._connect, organization_id, request.schedule)
        return pb.UpdatePayoutScheduleResponse(schedule=schedule.message())

    async def GetPayoutSchedule(
        self, request: pb.GetPayoutScheduleRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetPayoutScheduleResponse:
        organization_id = organization_scope(require_caller(min_role=ORG_ADMIN), request.organization_id)
        schedule = await payout_schedule.payout_schedule(self._connect, organization_id)
        return pb.GetPayoutScheduleResponse(schedule=schedule.message())

    # For the other services --------------------------------------------------------------------

    async def GetPaymentPolicy(
        self, request: pb.GetPaymentPolicyRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetPaymentPolicyResponse:
        organization_id = organization_scope(require_caller(), request.organization_id)
        policy = await self._orgs.payment_policy(organization_id)
        return pb.GetPaymentPolicyResponse(
            policy=pb.PaymentPolicy(
                organization_id=policy.organization_id,
                stripe_account_id=policy.stripe_account_id,
                charge_model=policy.charge_model,
                fee_percent_bps=policy.fee_percent_bps,
                fee_minimum=policy.fee_minimum,
                charges_enabled=policy.charges_enabled,
                country=policy.country,
                default_currency=policy.default_currency,
                timezone=policy.timezone,
            )
        )

    async def WatchPaymentPolicies(
        self, request: pb.WatchPaymentPoliciesRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.WatchPaymentPoliciesResponse]:
        require_caller(min_role=SERVICE)
        async for payload in self._policy_feed.changes():
            if payload:
                organization_id, _ = policy_change(payload)
                yield pb.WatchPaymentPoliciesResponse(organization_id=organization_id)
            else:
                yield pb.WatchPaymentPoliciesResponse(ready=True)

    async def FollowPaymentPolicies(
        self, request_iterator: AsyncIterator[pb.FollowPaymentPoliciesRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.FollowPaymentPoliciesResponse]:
        require_caller(min_role=SERVICE)
        followers = self._orgs.followers
        follower = ""

        async def acknowledgements() -> None:
            async for ack in request_iterator:
                followers.acknowledge(follower, ack.change_id)

        reader: asyncio.Task[None] | None = None
        try:
            async for payload in self._policy_feed.changes():
                if payload:
                    organization_id, change_id = policy_change(payload)
                    yield pb.FollowPaymentPoliciesResponse(organization_id=organization_id, change_id=change_id)
                else:
                    follower = followers.join()
                    reader = asyncio.get_running_loop().create_task(acknowledgements())
                    yield pb.FollowPaymentPoliciesResponse(ready=True)
        finally:
            if reader is not None:
                reader.cancel()
            if follower:
                followers.leave(follower)

    async def WatchRevocations(
        self, request: pb.WatchRevocationsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.WatchRevocationsResponse]:
        require_caller(min_role=SERVICE)
        async for payload in self._access_feed.changes():
            if payload:
                member_id, at = parse_access_change(payload)
                yield pb.WatchRevocationsResponse(member_id=member_id, revoked_before=to_timestamp(at))
                continue
            # Following from here on: first what changed within a token's lifetime.
            for member_id, at in await members.recent_access_changes(self._pool, self._signer.ttl_seconds):
                yield pb.WatchRevocationsResponse(member_id=member_id, revoked_before=to_timestamp(at))
            yield pb.WatchRevocationsResponse(ready=True)

    async def ResolveStripeAccount(
        self, request: pb.ResolveStripeAccountRequest, context: grpc.aio.ServicerContext
    ) -> pb.ResolveStripeAccountResponse:
        require_caller(min_role=PLATFORM_ADMIN)
        if not request.stripe_account_id:
            raise InvalidArgument(
                "stripe_account_id is required",
                "validation_error",
                [FieldError("stripe_account_id", "is required")],
            )
        organization_id = await self._orgs.organization_of_account(request.stripe_account_id)
        return pb.ResolveStripeAccountResponse(organization_id=organization_id)

    # The audit trail ------------------------------------------------------------------------------

    async def AppendAuditEntries(
        self, request: pb.AppendAuditEntriesRequest, context: grpc.aio.ServicerContext
    ) -> pb.AppendAuditEntriesResponse:
        caller = require_caller(min_role=SERVICE)
        records = [record_from_message(message) for message in request.entries]
        source = caller.member_id.removeprefix("service:")
        async with self._pool.acquire() as conn, conn.transaction():
            appended = await audit_trail.append(conn, source, records)
        return pb.AppendAuditEntriesResponse(appended=appended)

    async def ListAuditEntries(
        self, request: pb.ListAuditEntriesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListAuditEntriesResponse:
        caller = require_caller()
        organization_id: str | None = request.organization_id or None
        if not caller.is_platform:  # platform admins see every chain unless they name one
            _, organization_id = scoped_caller(request.organization_id, min_role=ORG_ADMIN)
        found, next_cursor = await audit_trail.list_entries(
            self._pool,
            organization_id,
            actor_id=request.actor_id,
            action=request.action,
            from_time=from_timestamp(request.from_time) if request.HasField("from_time") else None,
            to_time=from_timestamp(request.to_time) if request.HasField("to_time") else None,
            limit=request.page.limit,
            cursor=request.page.cursor,
        )
        return pb.ListAuditEntriesResponse(entries=[audit_entry_message(e) for e in found], next_cursor=next_cursor)

    async def ListAuditHeads(
        self, request: pb.ListAuditHeadsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListAuditHeadsResponse:
        require_caller(min_role=PLATFORM_ADMIN)  # services pass too (the daily report anchors them)
        found = await audit_trail.heads(self._pool)
        return pb.ListAuditHeadsResponse(
            heads=[pb.AuditHead(chain=chain, sequence=sequence, hash=hash_.hex()) for chain, sequence, hash_ in found]
        )
