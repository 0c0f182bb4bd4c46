"""The survey skip word on the organization's Settings page: admins change it (audited),
a word that already means something is refused next to the field, and texters see it."""

from __future__ import annotations

from typing import Any

import pytest

from openline.core.models import AuditEvent

DATA = {"name": "Riverside Crisis Line", "contact_info": "", "welcome_text": "", "opt_out_text": "",
        "help_text": ""}  # fmt: skip


@pytest.fixture
def admin_client(client: Any, alice: Any) -> Any:
    client.force_login(alice)
    return client


def test_an_admin_changes_the_skip_word_and_the_change_is_audited(
    admin_client: Any, org: Any
) -> None:
    page = admin_client.get("/settings/").content.decode()
    assert 'name="survey_skip_word"' in page and 'value="SKIP"' in page
    response = admin_client.post("/settings/", {**DATA, "survey_skip_word": " pass "})
    assert response.status_code == 302
    org.refresh_from_db()
    assert org.survey_skip_word == "PASS"
    assert AuditEvent.objects.filter(action="organization.survey_skip_word").count() == 1
    # Left out of a post: unchanged; empty: back to the default.
    assert admin_client.post("/settings/", DATA).status_code == 302
    org.refresh_from_db()
    assert org.survey_skip_word == "PASS"
    assert admin_client.post("/settings/", {**DATA, "survey_skip_word": ""}).status_code == 302
    org.refresh_from_db()
    assert org.survey_skip_word == "SKIP"
    assert AuditEvent.objects.filter(action="organization.survey_skip_word").count() == 2


@pytest.mark.parametrize(
    ("word", "error"),
    [
        ("STOP", "already means something"),
        ("help", "already means something"),
        ("yes", "already means something"),
        ("Nope", "answers yes/no questions"),
        ("skip it", "one word"),
        ("1", "one word"),
    ],
)
def test_a_skip_word_that_would_be_misread_is_refused_next_to_the_field(
    admin_client: Any, org: Any, word: str, error: str
) -> None:
    response = admin_client.post("/settings/", {**DATA, "survey_skip_word": word})
    assert response.status_code == 422
    page = response.content.decode()
    field_at = page.index('name="survey_skip_word"')
    assert error in page[field_at:]
    org.refresh_from_db()
    assert org.survey_skip_word == "SKIP"
    assert not AuditEvent.objects.filter(action="organization.survey_skip_word").exists()


def test_a_counselor_cannot_change_it(client: Any, bob: Any, org: Any) -> None:
    client.force_login(bob)
    response = client.post("/settings/", {**DATA, "survey_skip_word": "PASS"})
    assert response.status_code == 403
    org.refresh_from_db()
    assert org.survey_skip_word == "SKIP"
