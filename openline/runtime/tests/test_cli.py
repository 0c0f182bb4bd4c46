from __future__ import annotations

import json

import pytest

from openline.core.models import ApiToken, Membership, Organization
from openline.core.services import api_token_authenticate
from openline.providers.models import Number
from openline.runtime.cli import main

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


def test_token_create_scope_read_makes_a_read_only_token(capsys):
    run(capsys, "org", "create", "--name", "Riverside", "--slug", "riverside")
    code, token = run(capsys, "token", "create", "--org", "riverside", "--scope", "read")
    assert code == 0 and token["scope"] == "read"
    stored = api_token_authenticate(token["token"])
    assert stored.scope == "read" and stored.created_by_id is None
    code, default = run(capsys, "token", "create", "--org", "riverside", "--name", "crm")
    assert default["scope"] == "write"
    with pytest.raises(SystemExit) as exit_:
        main(["token", "create", "--org", "riverside", "--scope", "admin"])
    assert exit_.value.code == 2
    assert "invalid choice: 'admin'" in capsys.readouterr().err


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
    # One allowance to try broadcasts with, not one per run.
    from openline.billing.models import CreditEntry
    from openline.billing.services import credit_balance

    assert CreditEntry.objects.filter(organization__slug="demo").count() == 1
    org = Organization.objects.get(slug="demo")
    assert credit_balance(organization_id=org.pk).available == 1000


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


def test_user_create_staff_makes_a_staff_member_who_can_sign_in(capsys, client):
    Organization.objects.create(name="Riverside", slug="riverside")
    code, user = run(
        capsys,
        "user",
        "create",
        "--org",
        "riverside",
        "--email",
        "sam@example.org",
        "--role",
        "staff",
        "--password",
        "sam-pass-1234",
    )
    assert code == 0 and user["role"] == "staff"
    membership = Membership.objects.select_related("user").get(user__email="sam@example.org")
    assert membership.role == "staff" and membership.organization.slug == "riverside"
    assert not membership.can_manage
    signed_in = client.post("/login/", {"username": "sam@example.org", "password": "sam-pass-1234"})
    assert signed_in.status_code == 302 and signed_in["Location"] == "/"
    assert client.get("/").status_code == 200


@pytest.mark.parametrize(
    "kind, number, stored_as, rate",
    [
        (None, "+1 202 555 0177", "+12025550177", 1.0),  # long code, the default kind
        ("toll_free", "+1 800 555 0100", "+18005550100", 3.0),
        ("short_code", "12345", "12345", 100.0),
        ("landline", "+1 202 555 0178", "+12025550178", 1.0),
    ],
)
def test_number_add_kind_sets_the_carriers_default_rate(capsys, kind, number, stored_as, rate):
    Organization.objects.create(name="Riverside", slug="riverside")
    argv = ["number", "add", "--org", "riverside", "--provider", "sandbox", "--number", number]
    code, out = run(capsys, *argv, *(["--kind", kind] if kind else []))
    assert code == 0 and out["number"] == stored_as
    stored = Number.objects.get(pk=out["id"])
    assert (stored.e164, stored.kind) == (stored_as, kind or "long_code")
    assert stored.segments_per_second == rate


def test_number_add_rate_overrides_the_kinds_default(capsys):
    Organization.objects.create(name="Riverside", slug="riverside")
    argv = ["number", "add", "--org", "riverside", "--provider", "sandbox", "--number", "54321"]
    code, out = run(capsys, *argv, "--kind", "short_code", "--rate", "40")
    assert code == 0
    assert Number.objects.get(pk=out["id"]).segments_per_second == 40.0


def test_number_add_sets_calls_per_second_and_refuses_zero(capsys):
    Organization.objects.create(name="Riverside", slug="riverside")
    argv = ["number", "add", "--org", "riverside", "--provider", "sandbox"]
    code, out = run(capsys, *argv, "--number", "+12025550179", "--calls-per-second", "5")
    assert code == 0 and Number.objects.get(pk=out["id"]).calls_per_second == 5.0
    code, out = run(capsys, *argv, "--number", "+12025550180", "--calls-per-second", "0")
    assert code == 2 and out["error"] == "calls per second must be positive"
    assert Number.objects.count() == 1


@pytest.mark.parametrize("rate", ["0", "-2"])
def test_number_add_refuses_a_rate_that_is_not_positive(capsys, rate):
    Organization.objects.create(name="Riverside", slug="riverside")
    argv = ["number", "add", "--org", "riverside", "--provider", "sandbox", "--number", "54321"]
    code, out = run(capsys, *argv, "--kind", "short_code", "--rate", rate)
    assert code == 2
    assert out["error"] == "segments per second must be positive"
    assert not Number.objects.exists()


@pytest.mark.parametrize("short_code", ["12", "123456789", "12a45", "+12345", "1 234"])
def test_bad_short_code_is_refused_and_nothing_is_stored(capsys, short_code):
    Organization.objects.create(name="Riverside", slug="riverside")
    argv = ["number", "add", "--org", "riverside", "--provider", "sandbox", "--number", short_code]
    code, out = run(capsys, *argv, "--kind", "short_code")
    assert code == 2
    assert out["error"] == "a short code is 3 to 8 digits"
    assert not Number.objects.exists()


def test_web_listens_on_the_port_environment_variable_without_port(tmp_path):
    """`openline web` with PORT set and no --port serves on PORT; the public URL used in
    webhook addresses follows it when OPENLINE_PUBLIC_URL is not set."""
    import functools
    import os
    import signal
    import subprocess
    import sys

    import httpx

    from conftest import ROOT, free_port, run_cli, wait_for

    port = free_port()
    drop = ("DATABASE_URL", "REDIS_URL", "OPENLINE_PUBLIC_URL", "OPENLINE_TESTING")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(OPENLINE_VAR_DIR=str(tmp_path), PORT=str(port))

    cli = functools.partial(run_cli, env)

    cli("migrate")
    cli("org", "create", "--name", "Line", "--slug", "line")
    number = json.loads(
        cli("number", "add", "--org", "line", "--provider", "sandbox", "--number",
            "+12025550100", "--json")
    )  # fmt: skip
    assert number["inbound_url"].startswith(f"http://127.0.0.1:{port}/hooks/sandbox/")

    log_path = tmp_path / "web.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "openline.runtime.cli", "web"],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:

            def health() -> httpx.Response | None:
                assert proc.poll() is None, log_path.read_text()
                try:
                    return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                except httpx.HTTPError:
                    return None

            response = wait_for(health, 60, f"openline web to answer on port {port}")
            assert response.status_code == 200 and response.json()["status"] == "ok"
            assert f"running on http://127.0.0.1:{port} " in log_path.read_text()
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def test_a_command_before_migrate_says_to_migrate_instead_of_a_traceback(tmp_path):
    """A fresh machine where someone runs `openline demo` before `openline migrate`."""
    import os
    import subprocess
    import sys

    from conftest import ROOT

    drop = ("DATABASE_URL", "REDIS_URL", "OPENLINE_TESTING")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(OPENLINE_VAR_DIR=str(tmp_path))
    done = subprocess.run(  # noqa: S603 (our own command)
        [sys.executable, "-m", "openline.runtime.cli", "demo"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert (
        done.stderr.strip() == "error: the database has no tables yet: run `openline migrate` first"
    )
    assert "Traceback" not in done.stderr
