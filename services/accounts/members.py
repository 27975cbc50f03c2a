"""Use cases of members: sign-in, the caller, creating and listing members, seeding the admin."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime

import asyncpg

from runtime.audit import current_record
from runtime.auth import AGENT, ORG_ADMIN, PLATFORM_ADMIN, Caller, TokenSigner
from runtime.errors import (
    AlreadyExists,
    Conflict,
    FieldError,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unauthenticated,
)
from runtime.pagination import decode_cursor, next_page, page_limit
from services.accounts import audit_trail, repository
from services.accounts.domain import (
    LOGIN_MAX_LOCK_SECONDS,
    Member,
    audit_changes,
    ensure_valid,
    login_keys,
    login_lock_seconds,
    normalize_email,
    validate_new_member,
)
from services.accounts.feeds import access_changed
from services.accounts.passwords import hash_password, verify_password


async def authenticate(
    pool: asyncpg.Pool,
    signer: TokenSigner,
    email: str,
    password: str,
    client_address: str,
    index: Callable[[str], bytes],
) -> tuple[str, Member]:
    """A bearer token for valid credentials; one vague error for every failure.

    Throttled per account and per client address (see `domain.login_lock_seconds`): while
    locked, every attempt answers RateLimited (429, Retry-After), the password unchecked.
    """
    keys = login_keys(email, client_address, index)
    async with pool.acquire() as conn:
        wait = await repository.login_wait_seconds(conn, list(keys.values()))
        if wait > 0:
            raise RateLimited(
                "too many failed sign-ins: try again later", retry_after=math.ceil(wait), code="too_many_attempts"
            )
        found = await repository.member_credentials(conn, normalize_email(email))
    member, password_hash = found if found else (None, None)
    valid = await verify_password(password_hash, password)
    if member is None or not valid or member.disabled:
        async with pool.acquire() as conn, conn.transaction():
            for kind, key in keys.items():
                failures = await repository.count_login_failure(conn, key, LOGIN_MAX_LOCK_SECONDS)
                lock = login_lock_seconds(kind, failures)
                if lock:
                    await repository.lock_login(conn, key, lock)
        raise Unauthenticated("wrong e-mail or password", "invalid_credentials")
    async with pool.acquire() as conn:
        await repository.clear_login_failures(conn, keys["account"])
    return signer.issue(member.id, member.organization_id, member.role), member


async def get_member(pool: asyncpg.Pool, member_id: str) -> Member:
    async with pool.acquire() as conn:
        member = await repository.get_member(conn, member_id)
    if member is None or member.disabled:
        raise NotFound("member not found", "member_not_found")
    return member


async def create_member(
    pool: asyncpg.Pool,
    caller: Caller,
    organization_id: str,
    *,
    email: str,
    name: str,
    role: str,
    password: str,
) -> Member:
    """org_admins add members to their organisation; platform admins to any. Nobody creates platform admins here."""
    ensure_valid(validate_new_member(email, name, role, password))
    if role == PLATFORM_ADMIN:
        raise PermissionDenied("platform admins are created from the operations CLI", "role_not_allowed")
    if caller.role not in (ORG_ADMIN, PLATFORM_ADMIN, "service"):
        raise PermissionDenied()
    password_hash = await hash_password(password)
    async with pool.acquire() as conn, conn.transaction():
        if not await repository.organization_exists(conn, organization_id):
            raise NotFound("organization not found", "organization_not_found")
        member = await repository.insert_member(
            conn,
            organization_id=organization_id,
            email=normalize_email(email),
            name=name.strip(),
            role=role,
            password_hash=password_hash,
        )
        if member is not None:
            await audit_trail.record(
                conn,
                current_record(
                    "member.created",
                    targets={"member_id": member.id},
                    after={"role": role},
                    organization_id=organization_id,
                ),
            )
    if member is None:
        raise AlreadyExists("a member with this e-mail already exists", "email_taken")
    return member


async def find_member(pool: asyncpg.Pool, organization_id: str, member_id: str) -> Member:
    """A member of the organisation, disabled or not (for its admins)."""
    async with pool.acquire() as conn:
        member = await repository.get_member(conn, member_id)
    if member is None or member.organization_id != organization_id:
        raise NotFound("member not found", "member_not_found")
    return member


async def update_member(
    pool: asyncpg.Pool,
    caller: Caller,
    organization_id: str,
    member_id: str,
    *,
    name: str | None,
    role: str | None,
    disabled: bool | None,
) -> Member:
    """Renames, changes the role of, disables or re-enables a member of the organisation.

    Nobody disables or demotes themselves here, so an organisation keeps an admin.
    """
    errors: list[FieldError] = []
    if name is not None and (not name.strip() or len(name) > 200):
        errors.append(FieldError("name", "must be 1..200 characters"))
    if role is not None and role not in (AGENT, ORG_ADMIN):
        errors.append(FieldError("role", "must be agent or org_admin"))
    ensure_valid(errors)
    member = await find_member(pool, organization_id, member_id)
    if member.id == caller.member_id and (disabled or (role is not None and role != member.role)):
        raise Conflict("you cannot disable yourself or change your own role", "cannot_change_self")
    async with pool.acquire() as conn, conn.transaction():
        updated = await repository.update_member(
            conn, member.id, name=name.strip() if name is not None else None, role=role, disabled=disabled
        )
        if updated is not None and updated[1] is not None:
            await access_changed(conn, member.id, updated[1])  # its older tokens stop working
        if updated is not None:
            before, after = audit_changes(_audited(member), _audited(updated[0]), ("role", "disabled"))
            await audit_trail.record(
                conn,
                current_record(
                    "member.updated",
                    targets={"member_id": member.id},
                    before=before,
                    after=after,
                    organization_id=organization_id,
                ),
            )
    if updated is None:
        raise NotFound("member not found", "member_not_found")
    return updated[0]


def _audited(member: Member) -> dict[str, object]:
    return {"role": member.role, "disabled": member.disabled, "name": member.name}


async def recent_access_changes(pool: asyncpg.Pool, seconds: int) -> list[tuple[str, datetime]]:
    async with pool.acquire() as conn:
        return await repository.recent_access_changes(conn, seconds)


async def list_members(pool: asyncpg.Pool, organization_id: str, limit: int, cursor: str) -> tuple[list[Member], str]:
    size = page_limit(limit)
    async with pool.acquire() as conn:
        if not await repository.organization_exists(conn, organization_id):
            raise NotFound("organization not found", "organization_not_found")
        members = await repository.list_members(conn, organization_id, size + 1, decode_cursor(cursor))
    return next_page(members, size)


async def ensure_platform_admin(pool: asyncpg.Pool, email: str, password: str, name: str = "Platform admin") -> Member:
    """Creates the platform admin, or resets its password; safe to run on every start."""
    ensure_valid(validate_new_member(email, name, PLATFORM_ADMIN, password))
    email = normalize_email(email)
    async with pool.acquire() as conn:
        found = await repository.member_credentials(conn, email)
        if found is not None:
            member, current_hash = found
            if member.role != PLATFORM_ADMIN:
                raise AlreadyExists(f"{email} is already a member of an organisation", "email_taken")
            if not await verify_password(current_hash, password):
                async with conn.transaction():
                    await repository.set_password_hash(conn, member.id, await hash_password(password))
                    await audit_trail.record(
                        conn, current_record("platform_admin.password_reset", targets={"member_id": member.id})
                    )
            return member
        password_hash = await hash_password(password)
        async with conn.transaction():
            created = await repository.insert_member(
                conn, organization_id=None, email=email, name=name, role=PLATFORM_ADMIN, password_hash=password_hash
            )
            if created is not None:
                await audit_trail.record(
                    conn, current_record("platform_admin.created", targets={"member_id": created.id})
                )
        if created is None:  # created concurrently by another replica
            found = await repository.member_credentials(conn, email)
            assert found is not None
            return found[0]
        return created
