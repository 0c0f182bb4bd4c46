"""Importing contacts in Chromium, as a supervisor does it, against the real ASGI app with
the task worker running: upload a file from the Contacts page, keep the guessed columns,
watch the check's progress bar until the page turns into the report by itself, confirm
the consent evidence and import the valid rows, then export the contacts as CSV. No
Content-Security-Policy violation and no server error on the way."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import ARTIFACTS, WATCH_CSP

pytestmark = pytest.mark.browser

WAIT = 20_000  # ms: a slow machine runs the check and the import in the worker meanwhile
FILE = (
    "Name,Mobile,Phone 2,Phone 2 type,Tags,Class,Consent evidence\n"
    'Ann Lee,(202) 555-0101,202-555-0102,landline,"swim team, Saturday",swim,paper form\n'
    "Bo Chen,202 555 0103,,,art,Art,\n"
    "Typo,202-555-01,,,,,\n"
)


def _shot(page: Any, name: str) -> None:
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, f"contact-import-{name}.png"), full_page=True)


def _slow_first_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check's first turn waits a moment, so the page shows its progress first."""
    from openline.contacts.services import imports

    check: Callable[..., None] = imports.contact_import_check

    def slow(**kwargs: Any) -> None:
        time.sleep(2)
        check(**kwargs)

    monkeypatch.setattr(imports, "contact_import_check", slow)


def test_a_supervisor_imports_and_exports_contacts_in_chromium(
    browser: Any,
    live_asgi: str,
    background_workers: None,
    org: Any,
    sue: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from playwright.sync_api import expect

    from openline.contacts.models import ConsentEvent, Contact
    from openline.contacts.services.fields import custom_field_create

    custom_field_create(
        organization_id=org.pk, name="Class", kind="choice", choices=["Swim", "Art"]
    )
    _slow_first_turn(monkeypatch)
    upload = tmp_path / "families.csv"
    upload.write_text(FILE, encoding="utf-8")
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.add_init_script(WATCH_CSP)
    page = context.new_page()
    page.goto(f"{live_asgi}/login/")
    page.fill("#id_username", "sue@example.org")
    page.fill("#id_password", "supervisor-pass-123")
    page.click("button[type=submit]")

    page.goto(f"{live_asgi}/contacts/")
    page.click("a:has-text('Import')")
    page.set_input_files("#id_file", str(upload))
    page.click("button:has-text('Upload')")
    expect(page.locator("#id_column_1")).to_have_value("phone")  # "Mobile", guessed
    expect(page.locator("#id_column_3")).to_have_value("number_type")
    expect(page.locator("#id_column_5")).to_have_value(f"field:{org.customfield_set.get().pk}")
    expect(page.locator(".import-columns")).to_contain_text("Ann Lee")  # the first rows
    _shot(page, "columns")

    page.click("button:has-text('Check the rows')")
    expect(page.locator("#import-progress [role=progressbar]")).to_be_visible(timeout=WAIT)
    _shot(page, "checking")
    # The progress fragment polls; once the check is done the whole page comes back.
    expect(page.locator("[data-count=errors]")).to_have_text("1", timeout=WAIT)
    expect(page.locator(".import-problems")).to_contain_text("'202-555-01' is not a valid")
    _shot(page, "report")
    assert not Contact.objects.exists()

    page.check("#id_consent_confirmed")
    page.click("button:has-text('Import the 2 valid rows')")
    expect(page.locator("[data-count=imported]")).to_have_text("2", timeout=WAIT)
    _shot(page, "done")
    assert Contact.objects.filter(primary__isnull=True).count() == 2
    assert ConsentEvent.objects.filter(source="import").count() == 2

    page.click("a:has-text('Go to Contacts')")
    _shot(page, "contacts")
    with page.expect_download() as download:
        page.click("button:has-text('Export CSV')")
    exported = Path(download.value.path()).read_text(encoding="utf-8-sig")
    assert exported.startswith("Name,Phone,Phone type,Phone consent,Phone 2,")
    assert "Ann Lee,'+12025550101,unknown,opted_in,'+12025550102,landline,opted_in" in exported

    assert page.evaluate("window.__csp") == []
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert not errors, errors
    context.close()
