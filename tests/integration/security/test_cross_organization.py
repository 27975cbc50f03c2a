"""Asking for another organisation's object answers 404, never 403 (which would tell it exists).

A role too low in one's own organisation still answers 403.
"""

from __future__ import annotations

from tests.fixtures.organizations import onboarded_organization
from tests.fixtures.stack import Stack


async def test_another_organisations_member_stats_are_not_found_for_an_agent(stack: Stack) -> None:
    mine = await onboarded_organization(stack, onboard=False)
    theirs = await onboarded_organization(stack, onboard=False)
    foreign = await stack.http.get(f"/v1/members/{theirs.agent_id}/stats", headers=mine.agent_headers)
    assert foreign.status_code == 404, foreign.text
    assert foreign.json()["code"] == "member_not_found"
    colleague = await stack.http.get(f"/v1/members/{mine.admin_id}/stats", headers=mine.agent_headers)
    unknown = await stack.http.get("/v1/members/00000000-0000-0000-0000-000000000000/stats", headers=mine.agent_headers)
    assert colleague.status_code == unknown.status_code == 404
    assert (await stack.http.get(f"/v1/members/{mine.agent_id}/stats", headers=mine.agent_headers)).status_code == 200
    # An org_admin asking for another organisation's member: not found either.
    admin_foreign = await stack.http.get(f"/v1/members/{theirs.agent_id}/stats", headers=mine.admin_headers)
    assert admin_foreign.status_code == 404, admin_foreign.text


async def test_routes_naming_another_organisation_answer_404_before_any_role_check(stack: Stack) -> None:
    mine = await onboarded_organization(stack, onboard=False)
    theirs = await onboarded_organization(stack, onboard=False)
    member = {"email": "x@example.test", "name": "X", "role": "agent", "password": "a-long-password-1"}
    link = {"return_url": "https://a.test/r", "refresh_url": "https://a.test/f"}
    calls = [
        ("GET", "/members", None),
        ("POST", "/members", member),
        ("PATCH", f"/members/{theirs.agent_id}", {"name": "Renamed"}),
        ("PATCH", "", {"fee_percent_bps": 10}),
        ("POST", "/stripe-account", {}),
        ("POST", "/onboarding-link", link),
    ]
    for method, tail, body in calls:
        for headers in (mine.agent_headers, mine.admin_headers):
            answer = await stack.http.request(
                method, f"/v1/organizations/{theirs.id}{tail}", headers=headers, json=body
            )
            assert answer.status_code == 404, (method, tail, answer.text)
        # The same call on one's own organisation with too low a role is a 403.
        own = tail.replace(theirs.agent_id, mine.admin_id)
        answer = await stack.http.request(
            method, f"/v1/organizations/{mine.id}{own}", headers=mine.agent_headers, json=body
        )
        assert answer.status_code == 403, (method, tail, answer.text)
    renamed = await stack.http.get(
        f"/v1/organizations/{theirs.id}/members/{theirs.agent_id}", headers=theirs.admin_headers
    )
    assert renamed.json()["name"] != "Renamed"
