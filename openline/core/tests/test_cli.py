from __future__ import annotations

import json

import pytest

from openline.cli import main
from openline.core.models import ApiToken, Membership, Organization
from openline.core.services import api_token_authenticate
from openline.providers.models import Number

pytestmark = pytest.mark.django_db


def run(capsys, *argv: str) -> tuple[int, dict]:
    code = main([*argv, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_org_user_number_token_commands_print_json(capsys, settings):
    settings.PUBLIC_URL = "https://sms.example.org"
    code, org = run(
        capsys,
        "org",
        "create",
        "--name",
        "Riverside",
        "--slug",
        "riverside",
        "--timezone",
        "America/Chicago",
    )
    assert code == 0 and org["slug"] == "riverside"

    code, user = run(
        capsys,
        "user",
        "create",
        "--org",
        "riverside",
        "--email",
        "Ana@Example.org",
        "--role",
        "counselor",
        "--password",
        "long-enough-1",
    )
    assert code == 0 and user["role"] == "counselor"
    assert Membership.objects.get(user__email="ana@example.org").organization.slug == "riverside"

    code, number = run(
        capsys,
        "number",
        "add",
        "--org",
        "riverside",
        "--provider",
        "twilio",
        "--number",
        "+1 (202) 555-0177",
        "--config",
        "account_sid=AC" + "0" * 32,
        "--config",
        "auth_token=tok",
        "--config",
        "api_base=http://127.0.0.1:9",
    )
    assert code == 0 and number["number"] == "+12025550177"
    stored = Number.objects.get(pk=number["id"])
    assert (
        number["inbound_url"]
        == f"https://sms.example.org/hooks/twilio/{stored.webhook_key}/inbound"
    )
    assert number["status_url"].endswith("/status")

    code, token = run(capsys, "token", "create", "--org", "riverside")
    assert code == 0
    assert api_token_authenticate(token["token"]).organization.slug == "riverside"
    assert token["token"] not in ApiToken.objects.values_list("token_hash", flat=True)


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["org", "create", "--name", "X", "--slug", "x", "--timezone", "Mars/Olympus"],
            "time zone",
        ),
        (
            [
                "user",
                "create",
                "--org",
                "nope",
                "--email",
                "a@b.c",
                "--role",
                "admin",
                "--password",
                "long-enough-1",
            ],
            "no organization",
        ),
        (
            ["number", "add", "--org", "riverside", "--provider", "twilio", "--number", "12"],
            "not a valid phone number",
        ),
        (
            [
                "number",
                "add",
                "--org",
                "riverside",
                "--provider",
                "carrier-pigeon",
                "--number",
                "+12025550177",
            ],
            "unknown provider",
        ),
        (
            [
                "number",
                "add",
                "--org",
                "riverside",
                "--provider",
                "twilio",
                "--number",
                "+12025550177",
            ],
            "account_sid",
        ),
    ],
)
def test_bad_arguments_exit_2_with_a_message(capsys, argv, message):
    Organization.objects.create(name="Riverside", slug="riverside")
    code, out = run(capsys, *argv)
    assert code == 2 and message in out["error"]


def test_demo_is_idempotent(capsys):
    code, first = run(capsys, "demo")
    code2, second = run(capsys, "demo")
    assert code == code2 == 0
    assert first["created"] and not second["created"]
    assert first["users"] == second["users"]
    assert {u["role"] for u in first["users"]} == {"admin", "supervisor", "counselor"}
    assert Organization.objects.filter(slug="demo").count() == 1
    assert Number.objects.get(organization__slug="demo").provider == "sandbox"
    assert first["chat_demo_url"] == second["chat_demo_url"]


def test_demo_line_is_staffed_now_and_for_weeks_without_duplicates(capsys):
    from datetime import timedelta

    from django.utils import timezone

    from openline.availability.models import InboxResponses, Shift, ShiftSignUp
    from openline.availability.selectors import inbox_online

    run(capsys, "demo")
    signups = ShiftSignUp.objects.count()
    run(capsys, "demo")
    number = Number.objects.get(organization__slug="demo")
    assert Shift.objects.filter(number=number).count() == 1
    assert ShiftSignUp.objects.count() == signups  # a re-run tops up, never doubles
    later = [timezone.now() + timedelta(days=d, hours=h) for d in (0, 3, 20, 70) for h in (0, 13)]
    assert all(inbox_online(number.pk, at=moment) for moment in later)
    assert {s.user.email.split("@")[0] for s in ShiftSignUp.objects.select_related("user")} == {
        "counselor",
        "supervisor",
    }
    assert InboxResponses.objects.get(number=number).offline_on


def test_demo_chat_widget_page_works_on_openline_itself(capsys, client, settings):
    settings.PUBLIC_URL = "http://testserver"
    _, info = run(capsys, "demo")
    path = info["chat_demo_url"].removeprefix("http://testserver")
    page = client.get(path)
    assert page.status_code == 200 and b"/widget.js" in page.content
    public_id = path.rsplit("/", 1)[1]
    # Same-origin GETs carry no Origin header; the browser's Sec-Fetch-Site vouches for them.
    ok = client.get(f"/chat/{public_id}/config", headers={"Sec-Fetch-Site": "same-origin"})
    assert ok.status_code == 200 and ok.json()["online"] is True
    forged = client.get(f"/chat/{public_id}/config", headers={"Sec-Fetch-Site": "cross-site"})
    assert forged.status_code == 403
