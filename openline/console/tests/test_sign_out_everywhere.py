"""Sign out everywhere: every other browser signed in as the person is signed out at its
next request; this one stays signed in unless they ask otherwise; audited in each of their
organizations."""

from __future__ import annotations

from typing import Any

from django.test import Client

from openline.core.models import AuditEvent, Membership

SIGN_OUT = "/account/sign-out-everywhere/"


def _signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    assert client.get("/").status_code == 200
    return client


def _sent_to_login(client: Client) -> bool:
    page = client.get("/")
    return page.status_code == 302 and page["Location"].startswith("/login/")


def test_other_browsers_are_signed_out_and_this_one_stays(
    alice: Any, bob: Any, org: Any, other_org: Any
) -> None:
    Membership.objects.create(organization=other_org, user=alice, role="staff")
    here, there, bobs = _signed_in(alice), _signed_in(alice), _signed_in(bob)
    answer = here.post(SIGN_OUT)
    assert answer.status_code == 302
    assert answer["Location"] in ("/", "/security/")
    assert here.get("/").status_code == 200
    assert _sent_to_login(there)
    assert bobs.get("/").status_code == 200  # only alice's sessions
    events = AuditEvent.objects.filter(action="auth.sign_out_everywhere", actor=alice)
    assert sorted(events.values_list("organization_id", flat=True)) == sorted(
        [org.pk, other_org.pk]
    )


def test_this_one_too(alice: Any) -> None:
    here, there = _signed_in(alice), _signed_in(alice)
    answer = here.post(SIGN_OUT, {"which": "all"})
    assert answer.status_code == 302 and answer["Location"] == "/login/"
    assert _sent_to_login(here) and _sent_to_login(there)


def test_it_needs_a_post_and_a_sign_in(alice: Any) -> None:
    here = _signed_in(alice)
    assert here.get(SIGN_OUT).status_code == 405
    signed_out = Client().post(SIGN_OUT)
    assert signed_out.status_code == 302 and signed_out["Location"].startswith("/login/")
    assert not AuditEvent.objects.filter(action="auth.sign_out_everywhere").exists()
