"""`openline number add` prints the webhook URLs the server builds and checks signatures
against (both from OPENLINE_PUBLIC_URL), and says so, with how to set it, when it is unset."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from pathlib import Path

from django.test import override_settings

from conftest import run_cli
from openline.messaging.services.dispatch import status_url
from openline.providers.models import Number


def _cli(tmp_path: Path, public_url: str | None) -> Callable[..., str]:
    drop = ("DATABASE_URL", "REDIS_URL", "OPENLINE_PUBLIC_URL", "OPENLINE_TESTING", "PORT")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["OPENLINE_VAR_DIR"] = str(tmp_path)
    if public_url:
        env["OPENLINE_PUBLIC_URL"] = public_url
    cli = functools.partial(run_cli, env)
    cli("migrate")
    cli("org", "create", "--name", "Line", "--slug", "line")
    return cli


def _add(cli: Callable[..., str], number: str, *extra: str) -> str:
    return cli(
        "number", "add", "--org", "line", "--provider", "twilio", "--number", number,
        "--config", f"account_sid=AC{'0' * 32}", "--config", "auth_token=secret", *extra,
    )  # fmt: skip


def test_number_add_prints_the_urls_the_server_uses(tmp_path: Path) -> None:
    printed = json.loads(_add(_cli(tmp_path, "https://sms.example.org"), "+13125550100", "--json"))
    assert printed["public_url_set"] is True and printed["warning"] is None
    key = printed["inbound_url"].split("/")[-2]
    assert printed["inbound_url"] == f"https://sms.example.org/hooks/twilio/{key}/inbound"
    # The server, with the same setting: the status callback it gives Twilio, and the URL
    # the intake checks an inbound signature against (public URL + the path Twilio calls).
    with override_settings(PUBLIC_URL="https://sms.example.org"):
        assert printed["status_url"] == status_url(Number(provider="twilio", webhook_key=key))
        from django.conf import settings

        assert printed["inbound_url"] == settings.PUBLIC_URL + f"/hooks/twilio/{key}/inbound"


def test_number_add_says_when_the_public_url_is_unset_and_how_to_set_it(tmp_path: Path) -> None:
    cli = _cli(tmp_path, None)
    text = _add(cli, "+13125550100")
    printed = json.loads(_add(cli, "+13125550101", "--json"))
    assert printed["public_url_set"] is False
    assert printed["public_url"] == "http://127.0.0.1:8000"
    assert text.startswith("Connected +13125550100 (twilio)")
    for out in (text, printed["warning"]):
        assert "OPENLINE_PUBLIC_URL is not set" in out
        assert "http://127.0.0.1:8000, which no provider can reach" in out
        assert "export OPENLINE_PUBLIC_URL=https://sms.example.org" in out
        assert "/inbound and /hooks/twilio/" in out
