"""Encryption at rest, the payment policy RPCs, PATCH, and the operations CLI."""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import AsyncIterator

import asyncpg
import grpc
import orjson
import pytest
from collect.accounts.v1 import accounts_pb2 as pb
from collect.accounts.v1 import accounts_pb2_grpc

from runtime.settings import Env
from services.accounts import cli
from services.accounts.crypto import BlindIndex, DecryptionError, FieldCipher, Secrets, secrets_from_env
from services.accounts.domain import Address, NewOrganization
from services.accounts.repository import OrganizationRows
from tests.fixtures.organizations import onboarded_organization, organization_body
from tests.fixtures.stack import Stack


@pytest.fixture(scope="module")
async def accounts_stub(stack: Stack) -> AsyncIterator[accounts_pb2_grpc.AccountsServiceStub]:
    async with grpc.aio.insecure_channel(stack.target("accounts")) as channel:
        yield accounts_pb2_grpc.AccountsServiceStub(channel)


def _bearer(headers: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return (("authorization", headers["Authorization"]),)


async def test_name_and_email_are_encrypted_at_rest(stack: Stack) -> None:
    admin = await stack.admin_headers()
    body = organization_body(bank_account_iban="FR7630006000011234567890189")
    org = (await stack.http.post("/v1/organizations", headers=admin, json=body)).json()
    assert org["name"] == body["name"] and org["email"] == body["email"]
    conn = await asyncpg.connect(stack.database.admin_url)
    try:
        row = await conn.fetchrow("SELECT * FROM accounts.organizations WHERE id = $1", uuid.UUID(org["id"]))
    finally:
        await conn.close()
    assert row is not None
    raw = orjson.dumps({k: v if not isinstance(v, bytes) else v.hex() for k, v in dict(row).items()}, default=str)
    for plain in (body["name"], body["email"], body["email"].split("@")[0], "FR7630006000011234567890189"):
        assert plain.encode() not in raw
    assert row["name"].startswith("v1:") and row["email"].startswith("v1:") and row["encryption_key_id"]
    # The blind index finds it by e-mail, whatever the case.
    secrets = secrets_from_env(Env(stack.env))
    assert row["email_index"] == secrets.email_index(body["email"].upper())
    found = await stack.http.get("/v1/organizations", params={"email": body["email"].upper()}, headers=admin)
    assert [o["id"] for o in found.json()["data"]] == [org["id"]]
    assert found.json()["data"][0]["email"] == body["email"]


async def test_payment_policy_and_resolution(
    stack: Stack, accounts_stub: accounts_pb2_grpc.AccountsServiceStub
) -> None:
    org = await onboarded_organization(stack, charge_model="destination", fee_percent_bps=250, fee_minimum=20)
    other = await onboarded_organization(stack, onboard=False)
    answer = await accounts_stub.GetPaymentPolicy(
        pb.GetPaymentPolicyRequest(organization_id=org.id), metadata=_bearer(org.agent_headers)
    )
    policy = answer.policy
    assert (policy.stripe_account_id, policy.charge_model, policy.fee_percent_bps, policy.fee_minimum) == (
        org.stripe_account_id,
        "destination",
        250,
        20,
    )
    assert policy.charges_enabled is True and policy.country == "FR" and policy.default_currency == "eur"

    not_enabled = await accounts_stub.GetPaymentPolicy(
        pb.GetPaymentPolicyRequest(organization_id=other.id), metadata=_bearer(other.agent_headers)
    )
    assert not_enabled.policy.charges_enabled is False

    with pytest.raises(grpc.aio.AioRpcError) as foreign:
        await accounts_stub.GetPaymentPolicy(
            pb.GetPaymentPolicyRequest(organization_id=other.id), metadata=_bearer(org.agent_headers)
        )
    assert foreign.value.code() == grpc.StatusCode.NOT_FOUND

    service = (("authorization", f"Bearer {stack.signer.service_token('payments')}"),)
    resolved = await accounts_stub.ResolveStripeAccount(
        pb.ResolveStripeAccountRequest(stripe_account_id=org.stripe_account_id or ""), metadata=service
    )
    assert resolved.organization_id == org.id
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await accounts_stub.ResolveStripeAccount(
            pb.ResolveStripeAccountRequest(stripe_account_id="acct_nobody"), metadata=service
        )
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as agent:
        await accounts_stub.ResolveStripeAccount(
            pb.ResolveStripeAccountRequest(stripe_account_id=org.stripe_account_id or ""),
            metadata=_bearer(org.agent_headers),
        )
    assert agent.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_patch_changes_policy_at_once(stack: Stack, accounts_stub: accounts_pb2_grpc.AccountsServiceStub) -> None:
    org = await onboarded_organization(stack)
    service = (("authorization", f"Bearer {stack.signer.service_token('payments')}"),)
    before = await accounts_stub.GetPaymentPolicy(pb.GetPaymentPolicyRequest(organization_id=org.id), metadata=service)
    assert before.policy.fee_percent_bps == 0
    admin = await stack.admin_headers()
    patched = await stack.http.patch(
        f"/v1/organizations/{org.id}",
        headers=admin,
        json={"fee_percent_bps": 300, "fee_minimum": 50, "charge_model": "destination", "name": "Renamed"},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["name"] == "Renamed" and patched.json()["fee_percent_bps"] == 300
    after = await accounts_stub.GetPaymentPolicy(pb.GetPaymentPolicyRequest(organization_id=org.id), metadata=service)
    assert (after.policy.fee_percent_bps, after.policy.fee_minimum, after.policy.charge_model) == (
        300,
        50,
        "destination",
    )
    denied = await stack.http.patch(f"/v1/organizations/{org.id}", headers=org.admin_headers, json={"fee_minimum": 0})
    assert denied.status_code == 403
    invalid = await stack.http.patch(f"/v1/organizations/{org.id}", headers=admin, json={"timezone": "Mars/Base"})
    assert invalid.status_code == 400 and invalid.json()["errors"][0]["field"] == "timezone"


async def test_platform_admin_lists_organisations(stack: Stack) -> None:
    admin = await stack.admin_headers()
    await onboarded_organization(stack, onboard=False)
    first = await stack.http.get("/v1/organizations?limit=1", headers=admin)
    assert first.status_code == 200 and len(first.json()["data"]) == 1 and first.json()["next_cursor"]
    nxt = await stack.http.get(f"/v1/organizations?limit=1&cursor={first.json()['next_cursor']}", headers=admin)
    assert nxt.json()["data"][0]["id"] != first.json()["data"][0]["id"]


async def test_platform_callers_must_name_the_organisation(
    stack: Stack, accounts_stub: accounts_pb2_grpc.AccountsServiceStub
) -> None:
    service = (("authorization", f"Bearer {stack.signer.service_token('payments')}"),)
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await accounts_stub.GetPaymentPolicy(pb.GetPaymentPolicyRequest(), metadata=service)
    assert missing.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert ("x-error-code", "organization_required") in tuple(missing.value.trailing_metadata() or ())


async def test_cli_creates_admin_and_organisation(stack: Stack) -> None:
    env = {**stack.env, "DATABASE_URL": stack.database.urls["accounts"], "CLI_PASSWORD": "cli-admin-password-1"}
    email = f"ops-{uuid.uuid4().hex[:8]}@platform.test"
    out = io.StringIO()
    assert await cli.run(["create-admin", "--email", email, "--password-env", "CLI_PASSWORD"], env, out) == 0
    assert orjson.loads(out.getvalue())["role"] == "platform_admin"
    headers = await stack.login(email, "cli-admin-password-1")

    out = io.StringIO()
    argv = ["create-organization", "--name", "Pompiers de Lyon", "--email", f"cli-{uuid.uuid4().hex[:8]}@example.test"]
    argv += ["--country", "fr", "--business-type", "non_profit", "--line1", "1 quai", "--city", "Lyon"]
    argv += ["--postal-code", "69002", "--fee-percent-bps", "100"]
    assert await cli.run(argv, env, out) == 0
    created = orjson.loads(out.getvalue())
    shown = await stack.http.get(f"/v1/organizations/{created['id']}", headers=headers)
    assert shown.status_code == 200 and shown.json()["name"] == "Pompiers de Lyon"
    assert shown.json()["country"] == "FR" and shown.json()["fee_percent_bps"] == 100

    out = io.StringIO()
    assert await cli.run(["list-organizations"], env, out) == 0
    assert created["id"] in out.getvalue()

    out = io.StringIO()
    assert await cli.run(["rotate-keys"], env, out) == 0  # the service's key is current: nothing to reseal
    assert orjson.loads(out.getvalue()) == {"resealed": 0}


async def test_key_rotation_reseals_rows(stack: Stack) -> None:
    old_key, new_key, index_key = os.urandom(32), os.urandom(32), os.urandom(32)
    before = OrganizationRows(Secrets(FieldCipher([("old", old_key)]), BlindIndex(index_key)))
    after = OrganizationRows(Secrets(FieldCipher([("new", new_key), ("old", old_key)]), BlindIndex(index_key)))
    new = NewOrganization(
        name="Rotation test",
        email="rotation@example.test",
        country="FR",
        business_type="company",
        address=Address(line1="1 rue", city="Paris", postal_code="75001", country="FR"),
        bank_account_iban="FR7630006000011234567890189",
    )
    async with stack.deps["accounts"].pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:  # rolled back: the session's organisations stay under the service's key
            org = await before.insert(conn, new)
            assert org.id in await after.stale_key_ids(conn, 1_000_000)
            assert await after.reseal(conn, org.id)
            raw = await conn.fetchrow(
                "SELECT name, email, encryption_key_id FROM organizations WHERE id = $1", uuid.UUID(org.id)
            )
            assert raw is not None and raw["encryption_key_id"] == "new"
            assert raw["name"].startswith("v1:new:") and raw["email"].startswith("v1:new:")
            resealed = await after.get(conn, org.id)
            assert resealed is not None
            assert (resealed.name, resealed.email, resealed.bank_account_iban) == (
                new.name,
                new.email,
                new.bank_account_iban,
            )
            assert [o.id for o in await after.find_by_email(conn, new.email)] == [org.id]
            with pytest.raises(DecryptionError):
                await before.get(conn, org.id)
        finally:
            await transaction.rollback()
