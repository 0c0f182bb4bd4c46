"""A person active in several organizations switches between them from the header; each
organization's data shows only while working in it, and only active memberships count."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from openline.contacts.services.contacts import contact_create
from openline.core.models import Membership
from openline.core.services import organization_create

SWITCH = "/account/organization/"


@pytest.fixture
def both(alice: Any, org: Any, other_org: Any) -> Client:
    """alice, admin here, is also a counselor at the other organization; a contact in each."""
    Membership.objects.create(organization=other_org, user=alice, role="counselor")
    contact_create(organization_id=org.pk, phone="+12025550101", name="River Person")
    contact_create(organization_id=other_org.pk, phone="+12025550102", name="Hill Person")
    client = Client()
    client.force_login(alice)
    return client


def _contacts(client: Client) -> str:
    page = client.get(reverse("console:contacts"))
    assert page.status_code == 200
    return page.content.decode()


def test_switching_shows_the_other_organizations_data_only(both: Client, other_org: Any) -> None:
    first = _contacts(both)
    assert "River Person" in first and "Hill Person" not in first
    switched = both.post(SWITCH, {"organization_id": other_org.pk})
    assert switched.status_code == 302 and switched["Location"] == "/"
    second = _contacts(both)
    assert "Hill Person" in second and "River Person" not in second
    assert both.get(reverse("account:invitations")).status_code == 403  # a counselor there


def test_the_header_offers_a_switcher_only_to_people_in_several(
    both: Client, bob: Any, org: Any, other_org: Any
) -> None:
    header = both.get("/").content.decode()
    assert 'name="organization_id"' in header
    assert f'value="{org.pk}" selected' in header and "Hilltop Clinic</option>" in header
    one = Client()
    one.force_login(bob)
    page = one.get("/").content.decode()
    assert 'name="organization_id"' not in page and "Riverside Crisis Line" in page


def test_no_switching_to_an_organization_one_is_not_active_in(
    both: Client, alice: Any, other_org: Any
) -> None:
    stranger = organization_create(name="Elsewhere", slug="elsewhere")
    contact_create(organization_id=stranger.pk, phone="+12025550103", name="Far Person")
    assert both.post(SWITCH, {"organization_id": stranger.pk}).status_code == 404
    assert both.post(SWITCH, {"organization_id": "x"}).status_code == 404
    assert "Far Person" not in _contacts(both)

    Membership.objects.filter(organization=other_org, user=alice).update(is_active=False)
    header = both.get("/").content.decode()
    assert "Hilltop Clinic" not in header and 'name="organization_id"' not in header
    assert both.post(SWITCH, {"organization_id": other_org.pk}).status_code == 404
    assert "Hill Person" not in _contacts(both)


def test_a_deactivated_membership_in_the_session_falls_back_to_an_active_one(
    both: Client, alice: Any, other_org: Any
) -> None:
    both.post(SWITCH, {"organization_id": other_org.pk})
    Membership.objects.filter(organization=other_org, user=alice).update(is_active=False)
    page = _contacts(both)
    assert "River Person" in page and "Hill Person" not in page


def test_switching_needs_a_post_and_a_sign_in(both: Client, other_org: Any) -> None:
    assert both.get(SWITCH).status_code == 405
    signed_out = Client().post(SWITCH, {"organization_id": other_org.pk})
    assert signed_out.status_code == 302 and signed_out["Location"].startswith("/login/")


def test_the_memberships_are_read_only_when_a_template_uses_them(
    both: Client, alice: Any, rf: Any, django_assert_num_queries: Any
) -> None:
    from openline.core.context_processors import member_of

    request = rf.get("/")
    request.user = alice
    with django_assert_num_queries(0):
        lazy = member_of(request)
    with django_assert_num_queries(1):
        assert len(lazy) == 2
        assert [m.organization.slug for m in lazy] == ["riverside", "hilltop"]
