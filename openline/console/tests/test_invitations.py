"""Invitations: admins invite by e-mail with a role, send again or withdraw; the link works
once, until it expires; a new person sets a name and password, someone with an account
signs in and accepts. The inviting admin cannot tell whether an address has an account
elsewhere; a link that does not work looks the same whatever the reason."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.urls import resolve, reverse
from django.utils import timezone

from openline.core.invitations import invitation_create
from openline.core.models import AuditEvent, Invitation, Membership, User
from openline.core.selectors import ORGANIZATION_SESSION_KEY

INVITATIONS = "/team/invitations/"
PASSWORD = "kestrel harbour morning 7"
GONE = "This invitation link is no longer valid — ask the person who invited you to send a new one."
SECRET_IN_LINK = re.compile(r"https://line\.example\.org(/invitations/([^/\s]+)/)")


@pytest.fixture(autouse=True)
def _setup(settings: Any) -> None:
    settings.PUBLIC_URL = "https://line.example.org"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


@pytest.fixture
def commit(django_capture_on_commit_callbacks: Callable[..., Any]) -> Callable[..., Any]:
    """Run a request as if it committed: the invitation e-mail goes out on commit."""

    def run(fn: Callable[[], Any]) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return fn()

    return run


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _invite(client: Client, commit: Any, email: str, role: str = "counselor") -> Any:
    return commit(lambda: client.post(INVITATIONS, {"email": email, "role": role}))


def _last_link() -> str:
    found = SECRET_IN_LINK.search(str(mail.outbox[-1].body))
    assert found, mail.outbox[-1].body
    return found.group(1)


def _join(path: str, name: str = "Erin Example", password: str = PASSWORD) -> tuple[Client, Any]:
    browser = Client()
    answer = browser.post(
        path, {"display_name": name, "password": password, "password_again": password}
    )
    return browser, answer


# --- inviting ---------------------------------------------------------------------------------


def test_an_admin_invites_and_the_new_person_joins(
    alice: Any, org: Any, commit: Any, settings: Any
) -> None:
    sent = _invite(_client(alice), commit, "Erin@Example.org")
    assert sent.status_code == 302 and sent["Location"] == reverse("account:invitations")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["erin@example.org"]
    assert "Riverside Crisis Line" in message.subject and "alice@example.org" in message.subject
    path = _last_link()
    assert resolve(path).view_name == "account:invitation_accept"

    invitation = Invitation.objects.get(organization=org)
    secret = path.split("/")[2]
    assert invitation.token_hash != secret and secret not in invitation.token_hash
    assert invitation.expires_at - invitation.sent_at == timedelta(
        days=settings.OPENLINE_INVITATION_DAYS
    )

    page = Client().get(path)
    assert page.status_code == 200 and "Your name" in page.content.decode()
    browser, joined = _join(path)
    assert joined.status_code == 302 and joined["Location"] == "/"
    erin = User.objects.get(email="erin@example.org")
    assert erin.display_name == "Erin Example" and erin.check_password(PASSWORD)
    membership = Membership.objects.get(user=erin)
    assert (membership.organization_id, membership.role) == (org.pk, "counselor")
    assert browser.get("/").status_code == 200  # signed in, in the console
    actions = AuditEvent.objects.filter(organization=org, action__startswith="member.")
    assert list(actions.order_by("id").values_list("action", flat=True)) == [
        "member.invited",
        "member.joined",
    ]

    again = Client().get(path)
    assert again.status_code == 404 and GONE in again.content.decode()


def test_a_new_persons_form_refuses_bad_input_next_to_the_field(alice: Any, commit: Any) -> None:
    _invite(_client(alice), commit, "erin@example.org")
    path = _last_link()
    _, weak = _join(path, password="erin12")
    assert weak.status_code == 422 and "too short" in weak.content.decode()
    _, similar = _join(path, password="erin@example.org")
    assert similar.status_code == 422 and "too similar" in similar.content.decode()
    _, nameless = _join(path, name="   ")
    assert nameless.status_code == 422
    differ = Client().post(
        path, {"display_name": "Erin", "password": PASSWORD, "password_again": PASSWORD + "!"}
    )
    assert differ.status_code == 422 and "The two passwords differ" in differ.content.decode()
    assert not User.objects.filter(email="erin@example.org").exists()
    assert _join(path)[1].status_code == 302


def test_an_address_with_an_account_elsewhere_gets_the_same_answer(
    alice: Any, charlie: Any, org: Any, commit: Any
) -> None:
    admin = _client(alice)
    pages = {}
    for email in ("nobody@example.org", "charlie@example.org"):
        answer = _invite(admin, commit, email)
        assert (answer.status_code, answer["Location"]) == (302, INVITATIONS)
        page = admin.get(INVITATIONS).content.decode()
        assert f"Invitation sent to {email}." in page
        pages[email] = answer
    assert len(mail.outbox) == 2
    bodies = [SECRET_IN_LINK.sub("LINK", str(m.body)).replace(m.to[0], "X") for m in mail.outbox]
    assert bodies[0] == bodies[1]
    assert mail.outbox[0].subject == mail.outbox[1].subject


def test_someone_with_an_account_signs_in_and_accepts(
    alice: Any, charlie: Any, org: Any, other_org: Any, commit: Any
) -> None:
    _invite(_client(alice), commit, "charlie@example.org", role="supervisor")
    path = _last_link()
    anonymous = Client().get(path)
    assert anonymous.status_code == 200
    assert "sign in to accept" in anonymous.content.decode()
    assert "Your name" not in anonymous.content.decode()

    browser = _client(charlie)
    page = browser.get(path)
    assert "Accept and join" in page.content.decode()
    accepted = browser.post(path)
    assert accepted.status_code == 302 and accepted["Location"] == "/"
    assert Membership.objects.get(organization=org, user=charlie).role == "supervisor"
    assert browser.session[ORGANIZATION_SESSION_KEY] == org.pk
    assert Membership.objects.get(organization=other_org, user=charlie).is_active
    assert AuditEvent.objects.filter(
        organization=org, action="member.joined", actor=charlie
    ).exists()
    assert browser.get(path).status_code == 404


def test_an_account_with_a_second_factor_passes_it_before_accepting(
    alice: Any, charlie: Any, org: Any, commit: Any
) -> None:
    from openline.core.second_factor import totp_begin, totp_confirm
    from openline.core.tests.second_factor_support import app_code

    pending, _ = totp_begin(user=charlie)
    totp_confirm(user=charlie, device_id=pending.pk, code=app_code(pending))
    _invite(_client(alice), commit, "charlie@example.org", role="supervisor")
    path = _last_link()
    password_only = Client()
    password_only.post("/login/", {"username": "charlie@example.org", "password": "charlie-pass"})
    for answer in (password_only.get(path), password_only.post(path)):
        assert answer.status_code == 302
        assert answer["Location"] == f"{reverse('security:verify')}?next={path}"
    assert not Membership.objects.filter(organization=org, user=charlie).exists()


def test_signed_in_as_someone_else_the_page_says_so_and_offers_sign_out(
    alice: Any, bob: Any, commit: Any
) -> None:
    _invite(_client(alice), commit, "erin@example.org")
    path = _last_link()
    page = _client(bob).get(path)
    body = page.content.decode()
    assert "You are signed in as bob@example.org" in body
    assert reverse("logout") in body
    refused = _client(bob).post(
        path, {"display_name": "Erin", "password": PASSWORD, "password_again": PASSWORD}
    )
    assert refused.status_code == 200
    assert not User.objects.filter(email="erin@example.org").exists()
    assert not Membership.objects.filter(user=bob).exclude(organization__slug="riverside")


def test_members_and_deactivated_members_and_bad_input_get_field_errors(
    alice: Any, bob: Any, dora: Any, commit: Any
) -> None:
    admin = _client(alice)
    Membership.objects.filter(user=dora).update(is_active=False)
    cases = {
        "bob@example.org": "already a member",
        "DORA@example.org": "reactivate them from the team page",
        "not an address": "Enter a valid email address",
    }
    for email, error in cases.items():
        refused = _invite(admin, commit, email)
        assert refused.status_code == 422, email
        assert error in refused.content.decode(), email
    bad_role = _invite(admin, commit, "erin@example.org", role="owner")
    assert bad_role.status_code == 422 and "Select a valid choice" in bad_role.content.decode()
    assert not Invitation.objects.exists() and not mail.outbox


def test_inviting_again_replaces_the_pending_invitation(alice: Any, org: Any, commit: Any) -> None:
    admin = _client(alice)
    _invite(admin, commit, "erin@example.org")
    first = _last_link()
    _invite(admin, commit, "erin@example.org", role="staff")
    second = _last_link()
    assert first != second
    invitation = Invitation.objects.get(organization=org)
    assert invitation.role == "staff"
    assert Client().get(first).status_code == 404
    assert _join(second)[1].status_code == 302
    assert Membership.objects.get(user__email="erin@example.org").role == "staff"
    actions = AuditEvent.objects.filter(organization=org, action__startswith="member.")
    actions = actions.order_by("id")
    assert list(actions.values_list("action", flat=True)) == [
        "member.invited",
        "member.invitation_resent",
        "member.joined",
    ]


def _without_csrf(response: Any) -> str:
    return re.sub(r"[A-Za-z0-9]{64}", "TOKEN", response.content.decode())


# --- resend, withdraw, expiry ------------------------------------------------------------------


def test_resending_makes_a_new_link_and_a_new_expiry(alice: Any, org: Any, commit: Any) -> None:
    admin = _client(alice)
    _invite(admin, commit, "erin@example.org")
    old = _last_link()
    invitation = Invitation.objects.get(organization=org)
    Invitation.objects.filter(pk=invitation.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    assert Client().get(old).status_code == 404  # expired
    page = admin.get(INVITATIONS).content.decode()
    assert "Expired" in page
    resent = commit(lambda: admin.post(reverse("account:invitation_resend", args=[invitation.pk])))
    assert resent.status_code == 302
    new = _last_link()
    assert new != old and len(mail.outbox) == 2
    invitation.refresh_from_db()
    assert invitation.expires_at > timezone.now() + timedelta(days=6)
    assert Client().get(old).status_code == 404
    assert Client().get(new).status_code == 200
    assert AuditEvent.objects.filter(action="member.invitation_resent").count() == 1


def test_a_withdrawn_link_shows_the_same_page_as_an_unknown_one(
    alice: Any, org: Any, commit: Any
) -> None:
    admin = _client(alice)
    _invite(admin, commit, "erin@example.org")
    path = _last_link()
    invitation = Invitation.objects.get(organization=org)
    withdrawn = admin.post(reverse("account:invitation_withdraw", args=[invitation.pk]))
    assert withdrawn.status_code == 302
    gone = Client().get(path)
    unknown = Client().get("/invitations/not-a-secret/")
    assert gone.status_code == unknown.status_code == 404
    assert _without_csrf(gone) == _without_csrf(unknown) and GONE in gone.content.decode()
    assert _join(path)[1].status_code == 404
    assert not User.objects.filter(email="erin@example.org").exists()
    assert "No invitation is waiting for an answer" in admin.get(INVITATIONS).content.decode()
    assert AuditEvent.objects.filter(action="member.invitation_withdrawn").count() == 1
    # Withdrawn: it cannot be sent again.
    again = admin.post(reverse("account:invitation_resend", args=[invitation.pk]))
    assert again.status_code == 404


# --- who may do what ---------------------------------------------------------------------------


def test_supervisors_see_the_list_read_only(alice: Any, sue: Any, org: Any, commit: Any) -> None:
    invitation, _ = commit(
        lambda: invitation_create(
            organization=org, email="erin@example.org", role="counselor", invited_by_id=alice.pk
        )
    )
    supervisor = _client(sue)
    page = supervisor.get(INVITATIONS)
    assert page.status_code == 200
    body = page.content.decode()
    assert "erin@example.org" in body and "Send invitation" not in body
    assert reverse("account:invitation_withdraw", args=[invitation.pk]) not in body
    assert _invite(supervisor, commit, "frank@example.org").status_code == 403
    for name in ("account:invitation_resend", "account:invitation_withdraw"):
        assert supervisor.post(reverse(name, args=[invitation.pk])).status_code == 403
    invitation.refresh_from_db()
    assert invitation.withdrawn_at is None
    assert Invitation.objects.count() == 1 and len(mail.outbox) == 1


def test_counselors_cannot_see_invitations(bob: Any) -> None:
    assert _client(bob).get(INVITATIONS).status_code == 403


def test_another_organizations_admin_cannot_touch_our_invitations(
    alice: Any, charlie: Any, org: Any, commit: Any
) -> None:
    invitation, _ = commit(
        lambda: invitation_create(
            organization=org, email="erin@example.org", role="counselor", invited_by_id=alice.pk
        )
    )
    outsider = _client(charlie)
    assert "erin@example.org" not in outsider.get(INVITATIONS).content.decode()
    for name in ("account:invitation_resend", "account:invitation_withdraw"):
        assert outsider.post(reverse(name, args=[invitation.pk])).status_code == 404
    invitation.refresh_from_db()
    assert invitation.withdrawn_at is None and len(mail.outbox) == 1
    assert not AuditEvent.objects.filter(action__startswith="member.invitation").exists()


def test_signed_out_people_are_sent_to_sign_in(db: None) -> None:
    page = Client().get(INVITATIONS)
    assert page.status_code == 302 and page["Location"].startswith("/login/")


def test_the_list_costs_the_same_queries_however_many_invitations(
    alice: Any, org: Any, commit: Any
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    admin = _client(alice)

    def cost() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert admin.get(INVITATIONS).status_code == 200
        return len(queries.captured_queries)

    invitation_create(organization=org, email="a@example.org", role="staff", invited_by_id=alice.pk)
    one = cost()
    for n in range(5):
        invitation_create(
            organization=org, email=f"p{n}@example.org", role="staff", invited_by_id=alice.pk
        )
    assert cost() == one


def test_sign_in_to_accept_comes_back_to_the_invitation(
    alice: Any, charlie: Any, org: Any, commit: Any
) -> None:
    _invite(_client(alice), commit, "charlie@example.org")
    path = _last_link()
    browser = Client()
    page = browser.get(path).content.decode()
    found = re.search(r'href="(/login/\?next=[^"]+)"', page)
    assert found
    signed_in = browser.post(
        found.group(1).replace("&amp;", "&"),
        {"username": "charlie@example.org", "password": "charlie-pass", "next": path},
    )
    assert signed_in.status_code == 302 and signed_in["Location"] == path
    assert "Accept and join" in browser.get(path).content.decode()
    assert browser.post(path).status_code == 302
    assert Membership.objects.filter(organization=org, user=charlie, is_active=True).exists()
