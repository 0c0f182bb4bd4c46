"""The builder's pages: admins only, another organization's ids 404, refused input 422
with the message next to its field, each change audited."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from openline.core.models import AuditEvent
from openline.forms.models import Form, FormUse, FormVersion, Taxonomy
from openline.forms.schema import schema_load
from openline.forms.services import (
    form_create,
    form_create_screener,
    form_field_add,
    taxonomy_save,
)

REASON = {"label": "Reason", "kind": "choice", "options": ["Housing", "Food", "Crisis"]}


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def admin(alice: Any) -> Client:
    return _client(alice)


@pytest.fixture
def form(org: Any, alice: Any) -> Form:
    made = form_create(organization_id=org.pk, actor_id=alice.pk, name="Contact form")
    form_field_add(form=made, actor_id=alice.pk, section_key="", field=REASON)
    made.refresh_from_db()
    return made


def _schema(form: Form) -> Any:
    form.refresh_from_db()
    assert form.current_version is not None
    return schema_load(form.current_version.schema)


def _urls(form: Form, taxonomy: Taxonomy) -> list[str]:
    return [
        reverse("forms:list"),
        reverse("forms:uses"),
        reverse("forms:taxonomies"),
        reverse("forms:taxonomy", args=[taxonomy.pk]),
        reverse("forms:detail", args=[form.pk]),
        reverse("forms:field_add", args=[form.pk]),
        reverse("forms:field_edit", args=[form.pk, "reason"]),
    ]


def test_only_admins_open_the_builder(form: Form, org: Any, alice: Any, bob: Any, sue: Any) -> None:
    taxonomy = taxonomy_save(organization_id=org.pk, actor_id=None, name="T", terms_text="A\nB")
    for url in _urls(form, taxonomy):
        assert _client(alice).get(url).status_code == 200, url
        assert _client(sue).get(url).status_code == 403, url  # supervisors: no builder
        assert _client(bob).get(url).status_code == 403, url
    for name, args in [
        ("forms:section_add", [form.pk]),
        ("forms:field_action", [form.pk, "reason"]),
        ("forms:archive", [form.pk]),
        ("forms:screener_add", []),
    ]:
        assert _client(bob).post(reverse(name, args=args), {"action": "remove"}).status_code == 403
    assert _schema(form).field("reason") is not None
    assert not Form.objects.filter(kind="risk_screener").exists()
    assert Client().get(reverse("forms:list")).status_code == 302


def test_another_organizations_ids_are_404(
    form: Form, org: Any, other_org: Any, charlie: Any, other_number: Any, sandbox_number: Any
) -> None:
    taxonomy = taxonomy_save(organization_id=org.pk, actor_id=None, name="T", terms_text="A\nB")
    outsider = _client(charlie)
    for url in _urls(form, taxonomy)[3:]:
        assert outsider.get(url).status_code == 404, url
    for name, args in [
        ("forms:section", [form.pk, "questions"]),
        ("forms:field_action", [form.pk, "reason"]),
        ("forms:archive", [form.pk]),
    ]:
        assert outsider.post(reverse(name, args=args), {"action": "remove"}).status_code == 404
    assert outsider.get(reverse("forms:uses"), {"inbox": sandbox_number.pk}).status_code == 404
    # Charlie's own inbox cannot use alice's form: it is not among the choices.
    response = outsider.post(
        reverse("forms:uses"), {"inbox": other_number.pk, "contact": form.pk, "hold_minutes": 10}
    )
    assert response.status_code == 422
    assert "Select a valid choice" in response.content.decode()
    assert not FormUse.objects.exists()
    assert f'data-form="{form.pk}"' not in outsider.get(reverse("forms:list")).content.decode()
    form.refresh_from_db()
    assert form.archived_at is None


def test_an_admin_creates_a_form_and_a_duplicate_name_is_422(admin: Client, org: Any) -> None:
    response = admin.post(reverse("forms:list"), {"new-name": "Contact form"})
    created = Form.objects.get(organization=org)
    assert response.status_code == 302
    assert response["Location"] == reverse("forms:detail", args=[created.pk])
    response = admin.post(reverse("forms:list"), {"new-name": "contact form"})
    assert response.status_code == 422
    body = response.content.decode()
    assert 'data-error-for="name"' in body and "There is already a form named" in body
    response = admin.post(reverse("forms:list"), {"new-name": ""})
    assert response.status_code == 422
    assert Form.objects.count() == 1
    assert AuditEvent.objects.filter(action="form.created", object_id=str(created.pk)).exists()


def test_adding_a_question_with_show_if_and_bad_input_next_to_its_field(
    admin: Client, form: Form
) -> None:
    url = reverse("forms:field_add", args=[form.pk])
    page = admin.get(url).content.decode()
    assert 'value="reason:crisis"' in page  # the earlier question's answers offered
    bad = admin.post(url, {"label": "Urgent?", "kind": "choice", "options": "Only one | extreme"})
    assert bad.status_code == 422
    assert 'data-error-for="options"' in bad.content.decode()
    bad = admin.post(url, {"label": "Plan?", "kind": "yesno", "show_if_field": "reason"})
    assert bad.status_code == 422
    assert 'data-error-for="show_if_values"' in bad.content.decode()
    bad = admin.post(url, {"label": "", "kind": "text"})
    assert bad.status_code == 422 and 'data-error-for="label"' in bad.content.decode()
    bad = admin.post(url, {"label": "Age", "kind": "number", "min": "9", "max": "3"})
    assert bad.status_code == 422 and 'data-error-for="max"' in bad.content.decode()
    assert [f.key for f in _schema(form).fields()] == ["reason"]

    done = admin.post(
        url,
        {
            "label": "Safety plan made?",
            "kind": "yesno",
            "required": "on",
            "options": "Yes\nNo | high",
            "show_if_field": "reason",
            "show_if_values": ["reason:crisis", "reason:food"],
        },
    )
    assert done.status_code == 302
    field = _schema(form).field("safety_plan_made")
    assert field is not None and field.required
    assert field.show_if is not None and field.show_if.values == ("crisis", "food")
    assert field.option("no").severity == 2  # type: ignore[union-attr]
    event = AuditEvent.objects.filter(action="form.changed").last()
    assert event is not None and "Safety plan made?" in event.detail


def test_editing_keeps_the_key_and_a_new_version_is_announced(
    admin: Client, form: Form, alice: Any
) -> None:
    from openline.forms.responses import response_start

    response_start(
        form=form, purpose="contact", channel="console", conversation_id=None, contact_id=None
    )
    url = reverse("forms:field_edit", args=[form.pk, "reason"])
    page = admin.get(url).content.decode()
    assert "saving makes version 2" in page
    assert "Housing\nFood\nCrisis" in page
    response = admin.post(
        url,
        {
            "label": "Why they reached out",
            "kind": "choice",
            "options": "Housing\nFood\nCrisis | urgent",
        },
    )
    assert response.status_code == 302
    assert [(f.key, f.label) for f in _schema(form).fields()] == [
        ("reason", "Why they reached out")
    ]
    assert form.current_version.number == 2  # type: ignore[union-attr]
    assert (
        FormVersion.objects.get(form=form, number=1).schema["sections"][0]["fields"][0]["label"]
        == "Reason"
    )
    assert (
        "Version 2 · 0 responses"
        in admin.get(reverse("forms:detail", args=[form.pk])).content.decode()
    )


def test_removing_a_question_another_depends_on_is_422_naming_both(
    admin: Client, form: Form, alice: Any
) -> None:
    form_field_add(
        form=form,
        actor_id=alice.pk,
        section_key="",
        field={
            "label": "Plan?",
            "kind": "yesno",
            "show_if": {"field": "reason", "values": ["crisis"]},
        },
    )
    response = admin.post(
        reverse("forms:field_action", args=[form.pk, "reason"]), {"action": "remove"}
    )
    assert response.status_code == 422
    body = response.content.decode()
    assert "data-refusal" in body and "“Plan?”" in body and "“Reason”" in body
    response = admin.post(
        reverse("forms:field_action", args=[form.pk, "plan"]), {"action": "remove"}
    )
    assert response.status_code == 302
    assert [f.key for f in _schema(form).fields()] == ["reason"]


def test_sections_are_added_renamed_and_refused_without_a_title(admin: Client, form: Form) -> None:
    response = admin.post(reverse("forms:section_add", args=[form.pk]), {"title": ""})
    assert response.status_code == 422 and 'data-error-for="title"' in response.content.decode()
    assert (
        admin.post(reverse("forms:section_add", args=[form.pk]), {"title": "Outcome"}).status_code
        == 302
    )
    response = admin.post(
        reverse("forms:section", args=[form.pk, "outcome"]),
        {"action": "rename", "title": "What was done"},
    )
    assert response.status_code == 302
    assert [s.title for s in _schema(form).sections] == ["", "What was done"]
    response = admin.post(
        reverse("forms:section", args=[form.pk, "questions"]), {"action": "remove"}
    )
    assert response.status_code == 422 and "still has questions" in response.content.decode()


def test_the_screener_is_added_once_and_its_questions_are_locked(
    admin: Client, org: Any, alice: Any
) -> None:
    response = admin.post(reverse("forms:screener_add"))
    screener = Form.objects.get(kind="risk_screener")
    assert response["Location"] == reverse("forms:detail", args=[screener.pk])
    page = admin.get(response["Location"]).content.decode()
    assert "validated instrument" in page and "Have you actually had any thoughts" in page
    assert reverse("forms:field_edit", args=[screener.pk, "intent"]) not in page
    locked = admin.post(
        reverse("forms:field_action", args=[screener.pk, "intent"]), {"action": "remove"}
    )
    assert locked.status_code == 422
    assert admin.get(reverse("forms:field_edit", args=[screener.pk, "intent"])).status_code == 422
    admin.post(reverse("forms:screener_add"))
    assert Form.objects.filter(kind="risk_screener").count() == 1


def test_inbox_uses_are_saved_and_audited(
    admin: Client, form: Form, org: Any, alice: Any, sandbox_number: Any
) -> None:
    screener = form_create_screener(organization_id=org.pk, actor_id=alice.pk)
    url = reverse("forms:uses")
    page = admin.get(url).content.decode()
    assert (
        "Contact form" in page and "Risk screener" in page and reverse("console:settings") in page
    )
    bad = admin.post(url, {"inbox": sandbox_number.pk, "pre_survey": form.pk, "hold_minutes": 0})
    assert bad.status_code == 422 and 'data-error-for="hold_minutes"' in bad.content.decode()
    bad = admin.post(url, {"inbox": sandbox_number.pk, "risk": form.pk, "hold_minutes": 10})
    assert bad.status_code == 422 and 'data-error-for="risk"' in bad.content.decode()
    assert not FormUse.objects.exists()
    done = admin.post(
        url,
        {
            "inbox": sandbox_number.pk,
            "contact": form.pk,
            "required": "on",
            "pre_survey": form.pk,
            "hold_minutes": 15,
            "risk": screener.pk,
        },
    )
    assert done.status_code == 302
    uses = {u.purpose: u for u in FormUse.objects.all()}
    assert set(uses) == {"contact", "pre_survey", "risk"}
    assert uses["contact"].required and uses["pre_survey"].hold_minutes == 15
    assert AuditEvent.objects.filter(action="form.use_set").count() == 3
    # Saving the same choices again changes and audits nothing.
    admin.post(
        url,
        {
            "inbox": sandbox_number.pk,
            "contact": form.pk,
            "required": "on",
            "pre_survey": form.pk,
            "hold_minutes": 15,
            "risk": screener.pk,
        },
    )
    assert AuditEvent.objects.filter(action="form.use_set").count() == 3
    admin.post(
        url,
        {"inbox": sandbox_number.pk, "contact": form.pk, "hold_minutes": 15, "risk": screener.pk},
    )
    assert set(FormUse.objects.values_list("purpose", flat=True)) == {"contact", "risk"}
    assert FormUse.objects.get(purpose="contact").required is False


def test_taxonomies_are_edited_and_bad_terms_are_422(admin: Client, org: Any) -> None:
    url = reverse("forms:taxonomies")
    bad = admin.post(url, {"name": "Needs", "terms": "Food\nfood"})
    assert bad.status_code == 422 and 'data-error-for="terms"' in bad.content.decode()
    done = admin.post(url, {"name": "Needs", "terms": "BD-1800 | Food\nShelter"})
    taxonomy = Taxonomy.objects.get(organization=org)
    assert done["Location"] == reverse("forms:taxonomy", args=[taxonomy.pk])
    page = admin.get(done["Location"]).content.decode()
    assert "BD-1800 | Food\nshelter | Shelter" in page
    admin.post(done["Location"], {"name": "Needs 2", "terms": "Food"})
    taxonomy.refresh_from_db()
    assert taxonomy.name == "Needs 2" and taxonomy.terms == [{"code": "food", "label": "Food"}]
    assert AuditEvent.objects.filter(action="taxonomy.saved").count() == 2


def test_archiving_and_restoring(admin: Client, form: Form) -> None:
    admin.post(reverse("forms:archive", args=[form.pk]), {"action": "archive"})
    row = f'data-form="{form.pk}"'
    assert row not in admin.get(reverse("forms:list")).content.decode()
    assert row in admin.get(reverse("forms:list"), {"archived": "1"}).content.decode()
    admin.post(reverse("forms:archive", args=[form.pk]), {"action": "restore"})
    form.refresh_from_db()
    assert form.archived_at is None
    assert list(
        AuditEvent.objects.filter(action__in=["form.archived", "form.restored"]).values_list(
            "action", flat=True
        )
    ) == ["form.archived", "form.restored"]


def test_the_forms_list_costs_a_fixed_number_of_queries(
    admin: Client, org: Any, alice: Any, django_assert_max_num_queries: Any
) -> None:
    for n in range(5):
        made = form_create(organization_id=org.pk, actor_id=alice.pk, name=f"Form {n}")
        form_field_add(form=made, actor_id=alice.pk, section_key="", field=REASON)
    with django_assert_max_num_queries(12):
        assert admin.get(reverse("forms:list")).status_code == 200


def test_a_taxonomy_question_copies_the_organizations_terms(
    admin: Client, form: Form, org: Any, other_org: Any
) -> None:
    ours = taxonomy_save(
        organization_id=org.pk, actor_id=None, name="Needs", terms_text="F1 | Food\nShelter"
    )
    theirs = taxonomy_save(organization_id=other_org.pk, actor_id=None, name="X", terms_text="A\nB")
    url = reverse("forms:field_add", args=[form.pk])
    page = admin.get(url).content.decode()
    assert f'value="{ours.pk}"' in page and f'value="{theirs.pk}"' not in page
    refused = admin.post(url, {"label": "Need", "kind": "taxonomy", "taxonomy": theirs.pk})
    assert refused.status_code == 422 and 'data-error-for="taxonomy"' in refused.content.decode()
    refused = admin.post(url, {"label": "Need", "kind": "taxonomy"})
    assert refused.status_code == 422 and 'data-error-for="taxonomy"' in refused.content.decode()
    assert (
        admin.post(url, {"label": "Need", "kind": "taxonomy", "taxonomy": ours.pk}).status_code
        == 302
    )
    field = _schema(form).field("need")
    assert field is not None and field.taxonomy == ours.pk
    assert [(o.value, o.label) for o in field.options] == [("F1", "Food"), ("shelter", "Shelter")]


def test_a_forms_page_costs_a_fixed_number_of_queries(
    admin: Client, form: Form, alice: Any, django_assert_max_num_queries: Any
) -> None:
    for n in range(10):
        form_field_add(
            form=form, actor_id=alice.pk, section_key="", field={"label": f"Q{n}", "kind": "text"}
        )
    with django_assert_max_num_queries(12):
        page = admin.get(reverse("forms:detail", args=[form.pk]))
    assert page.content.decode().count("data-question=") == 11
