"""Security headers: a Content-Security-Policy on OpenLine's own pages (scripts and styles
from this server only, no eval, never framed) but not on what other websites embed; cookies
never readable by scripts; secure cookies and HSTS when served over HTTPS."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from django.test import Client

from conftest import ROOT


def _policy(response: Any) -> dict[str, list[str]]:
    header = response.get("Content-Security-Policy", "")
    directives = (part.split() for part in header.split(";") if part.strip())
    return {parts[0]: parts[1:] for parts in directives}


def test_console_pages_allow_scripts_only_from_this_server(client: Client, alice: Any) -> None:
    pages = ["/login/"]
    client.force_login(alice)
    pages += ["/", "/settings/", "/contacts/", "/shifts/", "/alerts/", "/preferences/"]
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, path
        policy = _policy(response)
        assert policy["script-src"] == ["'self'"], path
        assert policy["style-src"] == ["'self'"], path
        assert policy["connect-src"] == ["'self'"], path  # and its WebSocket
        assert policy["frame-ancestors"] == ["'none'"], path
        assert policy["object-src"] == ["'none'"], path


def test_what_other_websites_embed_carries_no_console_policy(
    client: Client, org: Any, alice: Any, sandbox_number: Any
) -> None:
    from openline.chat.services import widget_create

    widget = widget_create(
        organization_id=org.pk,
        actor_id=alice.pk,
        number_id=sandbox_number.pk,
        display_name="Talk to us",
        allowed_origins=["https://www.example.org"],
    )
    origin = {"HTTP_ORIGIN": "https://www.example.org"}
    for path in (
        "/widget.js",
        f"/widget-demo/{widget.public_id}",
        f"/chat/{widget.public_id}/config",
    ):
        response = client.get(path, **origin)
        assert response.status_code == 200, path
        assert "Content-Security-Policy" not in response, path


# Templates rendered under the console's policy. The widget's demo page and the phone
# simulator are served without it (see CONTENT_SECURITY_POLICY in settings).
_EXEMPT = {"chat/widget_demo.html", "sandbox/phone.html"}
_INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "an inline <script>"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "an on...= handler"),
    (re.compile(r"\shx-on[:-]", re.I), "an hx-on attribute (evaluated code)"),
    (re.compile(r"""hx-trigger\s*=\s*["'][^"']*\[""", re.I), "an hx-trigger filter (eval)"),
    (re.compile(r"""(js|javascript):""", re.I), "a js: value (eval)"),
    (re.compile(r"<style[\s>]|\sstyle\s*=", re.I), "an inline style"),
]


def test_no_template_carries_inline_code_the_policy_would_block() -> None:
    """A safety net for new pages: the browser test sees what one page does; this reads
    every template served under the policy."""
    found = []
    for path in sorted(Path(ROOT, "openline").glob("**/templates/**/*.html")):
        name = "/".join(path.parts[path.parts.index("templates") + 1 :])
        if name in _EXEMPT:
            continue
        text = path.read_text()
        found += [f"{name}: {what}" for pattern, what in _INLINE if pattern.search(text)]
    assert found == []


def test_htmx_runs_without_eval_and_without_its_inline_style(client: Client) -> None:
    page = client.get("/login/").content.decode()
    config = json.loads(re.search(r"name=\"htmx-config\" content='([^']+)'", page).group(1))
    assert config["allowEval"] is False and config["includeIndicatorStyles"] is False


def test_cookies_are_not_readable_by_scripts_nor_sent_cross_site(client: Client, bob: Any) -> None:
    client.get("/login/")
    csrf = client.cookies["csrftoken"]
    assert csrf["samesite"] == "Lax"
    signed_in = client.post("/login/", {"username": "bob@example.org", "password": "bob-pass-12"})
    session = signed_in.cookies["sessionid"]
    assert session["httponly"] is True and session["samesite"] == "Lax"
    assert session["max-age"] == 12 * 3600


_PROBE = """
import json, django
django.setup()
from django.conf import settings
from django.test import Client
response = Client().get("/login/", secure=True)
cookie = response.cookies["csrftoken"]
print(json.dumps({
    "session_secure": settings.SESSION_COOKIE_SECURE,
    "csrf_cookie_secure": bool(cookie["secure"]),
    "hsts": response.get("Strict-Transport-Security"),
    "http_hsts": Client().get("/login/").get("Strict-Transport-Security"),
}))
"""


def _probe(tmp_path: Path, public_url: str | None) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "OPENLINE_PUBLIC_URL"}
    env.update(OPENLINE_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="openline.settings")
    if public_url:
        env["OPENLINE_PUBLIC_URL"] = public_url
    done = subprocess.run(  # noqa: S603 (our own settings, the test's environment)
        [sys.executable, "-c", _PROBE],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_served_over_https_cookies_are_secure_and_browsers_are_told_to_keep_https(
    tmp_path: Path,
) -> None:
    https = _probe(tmp_path / "https", "https://sms.example.org")
    assert https["session_secure"] is True and https["csrf_cookie_secure"] is True
    assert https["hsts"] == "max-age=31536000"
    assert https["http_hsts"] is None  # never on a plain-HTTP answer


def test_served_over_http_no_secure_cookies_and_no_hsts(tmp_path: Path) -> None:
    http = _probe(tmp_path / "http", None)
    assert http["session_secure"] is False and http["csrf_cookie_secure"] is False
    assert http["hsts"] is None
