"""GET /v1/config: what the app needs, from the services that own it, for the member's organisation only."""

from __future__ import annotations

from tests.fixtures.organizations import onboarded_organization
from tests.fixtures.stack import Stack

ADDRESS = {"line1": "12 avenue Jean Jaurès", "city": "Lyon", "postal_code": "69007", "country": "FR"}


async def test_an_agent_gets_what_the_terminal_sdk_and_the_app_need(stack: Stack) -> None:
    org = await onboarded_organization(stack, charge_model="destination")
    location = await stack.http.post(
        "/v1/terminal/locations", json={"display_name": "Caserne", "address": ADDRESS}, headers=org.admin_headers
    )
    assert location.status_code == 201, location.text
    floors = (await stack.http.get("/v1/devices/tap-to-pay/os-floors", headers=org.agent_headers)).json()["data"]

    answer = await stack.http.get("/v1/config", headers=org.agent_headers)
    assert answer.status_code == 200, answer.text
    config = answer.json()
    assert config["stripe_publishable_key"] == stack.env["STRIPE_PUBLISHABLE_KEY"]
    assert config["stripe_publishable_key"].startswith("pk_test_")
    assert (config["organization_id"], config["stripe_account_id"]) == (org.id, org.stripe_account_id)
    assert config["charge_model"] == "destination"
    assert (config["currency"], config["currencies"]) == ("eur", ["eur"])
    assert [x["stripe_location_id"] for x in config["locations"]] == [location.json()["stripe_location_id"]]
    limits = config["limits"]
    assert 0 < limits["min_amount"] < limits["max_amount"] and limits["payments_per_minute"] > 0
    assert "card_present" in limits["methods"] and limits["offline"]["max_items"] > 0
    # The floors that apply in France: iOS has one per country where it is offered, Android its global one.
    by_key = {(f["platform"], f["country"]): f["min_os_version"] for f in floors}
    expected = {"ios": by_key[("ios", "FR")], "android": by_key.get(("android", "FR"), by_key[("android", "*")])}
    assert config["tap_to_pay"]["min_os_versions"] == expected


async def test_the_bounds_are_those_payments_enforces(stack: Stack) -> None:
    org = await onboarded_organization(stack)
    limits = (await stack.http.get("/v1/config", headers=org.agent_headers)).json()["limits"]
    for amount, status in (
        (limits["min_amount"] - 1, 400),
        (limits["max_amount"] + 1, 400),
        (limits["min_amount"], 201),
    ):
        answer = await stack.http.post(
            "/v1/payments",
            headers={**org.agent_headers, "Idempotency-Key": f"config-{org.id}-{amount}"},
            json={"amount": amount},
        )
        assert answer.status_code == status, (amount, answer.text)


async def test_a_platform_admin_names_the_organisation_and_nobody_reads_another(stack: Stack) -> None:
    org, other = await onboarded_organization(stack), await onboarded_organization(stack)
    admin = await stack.admin_headers()
    unnamed = await stack.http.get("/v1/config", headers=admin)
    assert unnamed.status_code == 400 and unnamed.json()["code"] == "organization_required", unnamed.text
    named = await stack.http.get(f"/v1/config?organization_id={org.id}", headers=admin)
    assert named.status_code == 200 and named.json()["stripe_account_id"] == org.stripe_account_id
    another = await stack.http.get(f"/v1/config?organization_id={other.id}", headers=org.agent_headers)
    assert another.status_code == 404, another.text
    assert (await stack.http.get("/v1/config")).status_code == 401
