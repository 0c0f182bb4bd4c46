"""The team page: admins change roles and limits and deactivate or reactivate members;
supervisors look; others and other organizations are refused."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.test import Client
from django.urls import reverse
from django.utils import timezone

from openline.availability.services import shift_create, shift_sign_up
from openline.core.models import AuditEvent, Membership
from openline.core.services import user_create
from openline.messaging.models import Conversation
from openline.messaging.services.assignment import conversation_assume

TEAM = "/team/"


def _m(user: Any) -> Membership:
    return Membership.objects.select_related("user").get(user=user)


def _row(html: str, membership: Membership) -> str:
    match = re.search(rf'<tr id="member-{membership.pk}"[^>]*>(.*?)</tr>', html, re.S)
    assert match, f"no row for {membership.user}"
    return match.group(1)


def test_admin_sees_every_column_and_the_links(
    alice_client: Client, alice: Any, bob: Any, bob_client: Client
) -> None:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    assert reverse("console:team") == TEAM
    TOTPDevice.objects.create(user=bob, name="phone", confirmed=True)
    html = alice_client.get(TEAM).content.decode()
    row = _row(html, _m(bob))
    assert "bob@example.org" in row and 'name="role_' in row and 'name="limit_' in row
    assert ">On<" in row  # his authenticator app
    assert "<time" in row  # bob_client signed in: his last sign-in
    assert ">Off<" in _row(html, _m(alice))
    assert 'href="/team/invitations/"' in html or "Invite people" in html
    assert reverse("security:member_sign_ins", kwargs={"membership_id": _m(bob).pk}) in row
    assert reverse("console:team_member_deactivate", args=[_m(bob).pk]) in row


def test_admin_changes_roles_and_limits(alice_client: Client, alice: Any, bob: Any) -> None:
    response = alice_client.post(
        TEAM,
        {
            "default_limit": "4",
            f"role_{_m(bob).pk}": "supervisor",
            f"limit_{_m(bob).pk}": "7",
            f"role_{_m(alice).pk}": "admin",
            f"limit_{_m(alice).pk}": "",
        },
    )
    assert response.status_code == 302
    assert (_m(bob).role, _m(bob).conversation_limit, _m(alice).conversation_limit) == (
        "supervisor",
        7,
        4,
    )
    details = AuditEvent.objects.filter(action__startswith="member.").order_by("pk")
    assert list(details.values_list("action", "detail")) == [
        ("member.limit_changed", "default → 7"),
        ("member.role_changed", "counselor → supervisor"),
    ]


def test_bad_input_is_refused_next_to_its_field(alice_client: Client, alice: Any, bob: Any) -> None:
    bob_limit = f"limit_{_m(bob).pk}"
    for value, message in (("abc", "Enter a whole number."), ("0", "between 1 and 50")):
        response = alice_client.post(TEAM, {"default_limit": "5", bob_limit: value})
        assert response.status_code == 422
        error = re.search(
            rf'<p class="form-error" id="{bob_limit}-error">([^<]*)</p>', response.content.decode()
        )
        assert error and message in error.group(1)
    response = alice_client.post(TEAM, {"default_limit": "5", f"role_{_m(bob).pk}": "owner"})
    assert (
        response.status_code == 422 and f'id="role_{_m(bob).pk}-error"' in response.content.decode()
    )
    assert _m(bob).role == "counselor" and _m(bob).max_conversations is None


def test_the_last_admin_cannot_step_down_from_the_page(
    alice_client: Client, alice: Any, bob: Any
) -> None:
    response = alice_client.post(
        TEAM,
        {"default_limit": "3", f"role_{_m(alice).pk}": "counselor", f"limit_{_m(bob).pk}": "9"},
    )
    assert response.status_code == 422
    html = response.content.decode()
    error = re.search(rf'id="role_{_m(alice).pk}-error">([^<]*)<', html)
    assert error and "last active admin" in error.group(1)
    assert _m(alice).role == "admin" and _m(bob).max_conversations is None  # nothing saved
    deactivate = reverse("console:team_member_deactivate", args=[_m(alice).pk])
    refused = alice_client.post(deactivate)
    assert refused.status_code == 422 and "last active admin" in refused.content.decode()
    assert _m(alice).is_active


def test_supervisors_see_the_team_read_only_and_counselors_not_at_all(
    sue_client: Client, bob_client: Client, sue: Any, bob: Any, alice: Any, org: Any
) -> None:
    response = sue_client.get(TEAM)
    assert response.status_code == 200
    html = response.content.decode()
    assert "bob@example.org" in html and "<form" not in html.split("<main", 1)[-1]
    assert "Deactivate" not in html and 'name="role_' not in html
    for url in (
        TEAM,
        reverse("console:team_member_deactivate", args=[_m(bob).pk]),
        reverse("console:team_member_reactivate", args=[_m(bob).pk]),
    ):
        assert sue_client.post(url, {"default_limit": "1"}).status_code == 403
    staff = user_create(organization=org, email="st@example.org", role="staff", password="x" * 12)
    staff_client = Client()
    staff_client.force_login(staff.user)
    for client in (bob_client, staff_client):
        assert client.get(TEAM).status_code == 403
        assert (
            client.get(reverse("console:team_member_deactivate", args=[_m(bob).pk])).status_code
            == 403
        )
    assert _m(bob).is_active
    org.refresh_from_db()
    assert org.max_conversations_per_counselor == 5


def test_another_organizations_admin_cannot_touch_a_member(
    charlie_client: Client, bob: Any, charlie: Any, alice_client: Client
) -> None:
    bob_id = _m(bob).pk
    deactivate = reverse("console:team_member_deactivate", args=[bob_id])
    assert charlie_client.get(deactivate).status_code == 404
    assert charlie_client.post(deactivate).status_code == 404
    assert (
        charlie_client.post(reverse("console:team_member_reactivate", args=[bob_id])).status_code
        == 404
    )
    response = charlie_client.post(
        TEAM, {"default_limit": "5", f"role_{bob_id}": "admin", f"limit_{bob_id}": "1"}
    )
    assert response.status_code == 302  # his own team saved; bob is not in it
    assert (_m(bob).role, _m(bob).max_conversations, _m(bob).is_active) == ("counselor", None, True)
    assert "bob@example.org" not in charlie_client.get(TEAM).content.decode()
    for missing in (999999, 10**30):
        url = f"/team/{missing}/deactivate"
        assert alice_client.get(url).status_code == 404


def test_deactivating_from_the_page_shows_what_it_did(
    alice_client: Client,
    bob_client: Client,
    alice: Any,
    bob: Any,
    org: Any,
    sandbox_number: Any,
    text_in: Any,
) -> None:
    start = (timezone.now() + timedelta(days=2)).astimezone(ZoneInfo(org.timezone))
    start = start.replace(hour=9, minute=0, second=0, microsecond=0)
    shift = shift_create(
        organization_id=org.pk,
        actor_id=alice.pk,
        number_id=sandbox_number.pk,
        kind="normal",
        start_date=start.date(),
        start_time=start.time(),
        duration_minutes=120,
        title="Late shift",
    )
    shift_sign_up(
        organization_id=org.pk,
        actor_id=alice.pk,
        shift_id=shift.pk,
        occurrence_start=shift.first_start,
        user_id=bob.pk,
    )
    conversation = text_in("hello?")
    conversation_assume(membership=_m(bob), conversation=conversation)
    url = reverse("console:team_member_deactivate", args=[_m(bob).pk])

    confirm = alice_client.get(url).content.decode()
    effects = re.search(r'<ul id="deactivation-effects">(.*?)</ul>', confirm, re.S)
    assert effects
    assert "<strong>1</strong> conversation they hold goes back" in effects.group(1)
    assert "<strong>1</strong> shift sign-up that is not over" in effects.group(1)

    done = alice_client.post(url)
    assert done.status_code == 200
    uncovered = re.search(r'<ul id="uncovered-shifts">(.*?)</ul>', done.content.decode(), re.S)
    assert uncovered and "Late shift (Main line)" in uncovered.group(1)
    assert start.strftime("%A, %b %-d, 9:00 AM") in uncovered.group(1)  # Chicago time
    assert Conversation.objects.get(pk=conversation.pk).status == "waiting"
    assert bob_client.get(TEAM).status_code == 302  # signed out: to the sign-in page

    row = _row(alice_client.get(TEAM).content.decode(), _m(bob))
    assert "Deactivated since" in row and 'name="role_' not in row and "Reactivate" in row
    again = alice_client.get(url)
    assert "already deactivated" in again.content.decode()

    reactivate = alice_client.post(reverse("console:team_member_reactivate", args=[_m(bob).pk]))
    assert reactivate.status_code == 302 and _m(bob).is_active
    twice = alice_client.post(
        reverse("console:team_member_reactivate", args=[_m(bob).pk]), follow=True
    )
    assert "already active" in twice.content.decode()


def test_team_page_queries_are_bounded(
    alice_client: Client, org: Any, django_assert_max_num_queries: Any
) -> None:
    for i in range(15):
        user_create(
            organization=org, email=f"p{i}@example.org", role="counselor", password="x" * 12
        )
    with django_assert_max_num_queries(20):
        response = alice_client.get(TEAM)
    assert response.content.decode().count('<tr id="member-') == 16
