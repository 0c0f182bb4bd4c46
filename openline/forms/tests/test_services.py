"""The builder's services: versioning, key stability, show-if dependencies, inbox uses
across organizations, the screener template and taxonomies."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import close_old_connections, connection

from openline.core.models import AuditEvent
from openline.forms import cssrs
from openline.forms.models import Form, FormKind, FormPurpose, FormUse, FormVersion
from openline.forms.responses import response_answers_save, response_start
from openline.forms.schema import answers_clean, schema_load
from openline.forms.services import (
    form_archive,
    form_create,
    form_create_screener,
    form_field_add,
    form_field_move,
    form_field_remove,
    form_field_update,
    form_restore,
    form_schema_save,
    form_section_add,
    form_section_move,
    form_section_remove,
    form_section_rename,
    form_update,
    form_use_set,
    form_version_will_change,
    key_for,
    options_parse,
    options_text,
    taxonomy_save,
)

REASON = {
    "label": "Reason for contact",
    "kind": "choice",
    "required": True,
    "options": ["Housing", "Food", "Crisis"],
}


@pytest.fixture
def form(org: Any, alice: Any) -> Form:
    return form_create(organization_id=org.pk, actor_id=alice.pk, name="Contact form")


def _keys(form: Form) -> list[str]:
    form.refresh_from_db()
    assert form.current_version is not None
    return [f.key for f in schema_load(form.current_version.schema).fields()]


def _answer(form: Form, raw: dict[str, object]) -> None:
    form.refresh_from_db()
    response = response_start(
        form=form, purpose="contact", channel="console", conversation_id=None, contact_id=None
    )
    assert form.current_version is not None
    schema = schema_load(form.current_version.schema)
    response_answers_save(response=response, answers=answers_clean(schema, raw))


def test_form_names_are_unique_per_organization(org: Any, other_org: Any, alice: Any) -> None:
    form_create(organization_id=org.pk, actor_id=alice.pk, name="Contact form")
    with pytest.raises(ValidationError) as refused:
        form_create(organization_id=org.pk, actor_id=alice.pk, name="  contact   FORM ")
    assert refused.value.message_dict == {"name": ["There is already a form named “contact FORM”."]}
    form_create(organization_id=other_org.pk, actor_id=None, name="Contact form")
    assert AuditEvent.objects.filter(action="form.created", organization=org).count() == 1


def test_a_name_taken_at_the_same_moment_is_refused_by_the_constraint_not_a_500(
    org: Any, alice: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two admins saving the same name at once both pass the check; the unique constraint
    then refuses the second with the same sentence (a view shows it next to the field)."""
    first = form_create(organization_id=org.pk, actor_id=alice.pk, name="Contact form")
    other = form_create(organization_id=org.pk, actor_id=alice.pk, name="Intake")
    monkeypatch.setattr("openline.forms.services._name_free", lambda *args, **kwargs: None)
    with pytest.raises(ValidationError) as refused:
        form_create(organization_id=org.pk, actor_id=alice.pk, name="Contact form")
    assert refused.value.message_dict == {"name": ["There is already a form named “Contact form”."]}
    with pytest.raises(ValidationError) as renamed:
        form_update(form=other, actor_id=alice.pk, name="Contact form")
    assert renamed.value.message_dict == {"name": ["There is already a form named “Contact form”."]}
    assert list(
        Form.objects.filter(organization=org).values_list("pk", flat=True).order_by("pk")
    ) == [
        first.pk,
        other.pk,
    ]
    assert Form.objects.get(pk=other.pk).name == "Intake"
    assert AuditEvent.objects.filter(action="form.created", organization=org).count() == 2


def test_edits_before_any_answer_change_version_one_in_place(form: Form, alice: Any) -> None:
    form_field_add(form=form, actor_id=alice.pk, section_key="", field=REASON)
    form_field_add(
        form=form, actor_id=alice.pk, section_key="", field={"label": "Notes", "kind": "text"}
    )
    assert list(form.versions.values_list("number", flat=True)) == [1]
    assert _keys(form) == ["reason_for_contact", "notes"]
    assert not form_version_will_change(form)


def test_answers_under_version_one_never_change_when_the_form_is_edited(
    form: Form, alice: Any
) -> None:
    form_field_add(form=form, actor_id=alice.pk, section_key="", field=REASON)
    _answer(form, {"reason_for_contact": "crisis"})
    v1 = FormVersion.objects.get(form=form, number=1)
    v1_schema = v1.schema
    assert form_version_will_change(form)

    form_field_update(
        form=form,
        actor_id=alice.pk,
        key="reason_for_contact",
        field={**REASON, "label": "Main reason", "options": ["Housing", "Food", "Crisis", "Other"]},
    )
    form.refresh_from_db()
    v1.refresh_from_db()
    assert v1.schema == v1_schema
    assert form.current_version is not None and form.current_version.number == 2
    assert v1.responses.get().answers.get().value == "crisis"
    # New responses use version 2; the key and the option values stay.
    _answer(form, {"reason_for_contact": "other"})
    assert form.responses.order_by("pk").last().version.number == 2  # type: ignore[union-attr]
    assert _keys(form) == ["reason_for_contact"]
    values = [o.value for o in schema_load(form.current_version.schema).fields().__next__().options]
    assert values == ["housing", "food", "crisis", "other"]
    # v2 is answered now: the next edit makes v3, and the one after that stays in v3.
    for label in ("Age", "Town"):
        form_field_add(
            form=form, actor_id=alice.pk, section_key="", field={"label": label, "kind": "text"}
        )
    assert sorted(form.versions.values_list("number", flat=True)) == [1, 2, 3]


def test_field_keys_stay_when_labels_change_and_are_never_reused(form: Form, alice: Any) -> None:
    form_field_add(
        form=form, actor_id=alice.pk, section_key="", field={"label": "Age", "kind": "number"}
    )
    form_field_update(
        form=form, actor_id=alice.pk, key="age", field={"label": "Age group", "kind": "number"}
    )
    assert _keys(form) == ["age"]
    _answer(form, {"age": "30"})
    form_field_remove(form=form, actor_id=alice.pk, key="age")
    form_field_add(
        form=form, actor_id=alice.pk, section_key="", field={"label": "Age", "kind": "text"}
    )
    assert _keys(form) == ["age_2"]


def test_keys_are_made_from_labels(alice: Any) -> None:
    assert key_for("Reason for contact?", set()) == "reason_for_contact"
    assert key_for("1. Age", set()) == "q_1_age"
    assert key_for("Age", {"age", "age_2"}) == "age_3"
    assert key_for("¿¿??", set()) == "q_option"


def test_removing_a_field_a_later_show_if_depends_on_is_refused(form: Form, alice: Any) -> None:
    form_field_add(form=form, actor_id=alice.pk, section_key="", field=REASON)
    form_field_add(
        form=form,
        actor_id=alice.pk,
        section_key="",
        field={
            "label": "Safety plan made?",
            "kind": "yesno",
            "show_if": {"field": "reason_for_contact", "values": ["crisis"]},
        },
    )
    with pytest.raises(ValidationError) as refused:
        form_field_remove(form=form, actor_id=alice.pk, key="reason_for_contact")
    assert "“Safety plan made?”" in refused.value.messages[0]
    assert "“Reason for contact”" in refused.value.messages[0]
    assert _keys(form) == ["reason_for_contact", "safety_plan_made"]
    # Nor can it move above the question it depends on.
    with pytest.raises(ValidationError, match="can only depend on a question before it"):
        form_field_move(form=form, actor_id=alice.pk, key="safety_plan_made", by=-1)
    form_field_remove(form=form, actor_id=alice.pk, key="safety_plan_made")
    form_field_remove(form=form, actor_id=alice.pk, key="reason_for_contact")
    assert _keys(form) == []


def test_sections_and_moves(form: Form, alice: Any) -> None:
    form_section_add(form=form, actor_id=alice.pk, title="About the caller")
    form_section_add(form=form, actor_id=alice.pk, title="What was done")
    for label in ("Age", "Town"):
        form_field_add(
            form=form,
            actor_id=alice.pk,
            section_key="about_the_caller",
            field={"label": label, "kind": "text"},
        )
    form_field_move(form=form, actor_id=alice.pk, key="town", by=-1)
    assert _keys(form) == ["town", "age"]
    form_field_move(form=form, actor_id=alice.pk, key="age", by=1)  # into the next section
    form.refresh_from_db()
    sections = form.current_version.schema["sections"]  # type: ignore[union-attr]
    assert [[f["key"] for f in s["fields"]] for s in sections] == [["town"], ["age"]]
    with pytest.raises(ValidationError, match="still has questions"):
        form_section_remove(form=form, actor_id=alice.pk, section_key="what_was_done")
    form_section_rename(form=form, actor_id=alice.pk, section_key="what_was_done", title="Outcome")
    form_section_move(form=form, actor_id=alice.pk, section_key="what_was_done", by=-1)
    form.refresh_from_db()
    sections = form.current_version.schema["sections"]  # type: ignore[union-attr]
    assert [(s["key"], s["title"]) for s in sections] == [
        ("what_was_done", "Outcome"),
        ("about_the_caller", "About the caller"),
    ]


def test_a_bad_schema_is_refused_with_its_message(form: Form, alice: Any) -> None:
    with pytest.raises(ValidationError, match="needs at least two options"):
        form_schema_save(
            form=form,
            actor_id=alice.pk,
            schema={
                "sections": [
                    {"fields": [{"key": "a", "label": "A", "kind": "choice", "options": ["x"]}]}
                ]
            },
        )
    with pytest.raises(ValidationError) as refused:
        form_field_add(
            form=form,
            actor_id=alice.pk,
            section_key="",
            field={"label": "A", "kind": "choice", "options": ["x"]},
        )
    assert "options" in refused.value.message_dict
    assert not FormVersion.objects.filter(form=form).exists()


def test_options_parse_severity_suffixes() -> None:
    assert options_parse("Housing\n\nCrisis | urgent\nTired | 1") == [
        {"label": "Housing", "severity": 0},
        {"label": "Crisis", "severity": 3},
        {"label": "Tired", "severity": 1},
    ]
    assert options_text(options_parse("Crisis | high")) == "Crisis | high"
    with pytest.raises(ValidationError) as refused:
        options_parse("Crisis | extreme")
    assert "options" in refused.value.message_dict


def test_the_screener_template_is_version_one_and_its_questions_are_locked(
    org: Any, alice: Any
) -> None:
    screener = form_create_screener(organization_id=org.pk, actor_id=alice.pk)
    assert screener.kind == FormKind.RISK_SCREENER
    assert screener.current_version is not None
    assert screener.current_version.number == 1
    assert schema_load(screener.current_version.schema) == cssrs.screener_schema()
    with pytest.raises(ValidationError, match="validated instrument"):
        form_field_remove(form=screener, actor_id=alice.pk, key="intent")
    with pytest.raises(ValidationError, match="validated instrument"):
        form_schema_save(form=screener, actor_id=alice.pk, schema={"sections": []})
    form_update(form=screener, actor_id=alice.pk, name="Risk screener")
    form_archive(form=screener, actor_id=alice.pk)
    screener.refresh_from_db()
    assert screener.name == "Risk screener" and screener.archived_at is not None
    form_restore(form=screener, actor_id=alice.pk)
    screener.refresh_from_db()
    assert screener.archived_at is None
    actions = list(AuditEvent.objects.filter(object_type="form").values_list("action", flat=True))
    assert actions == ["form.created", "form.updated", "form.archived", "form.restored"]


def test_form_uses_are_checked(
    form: Form, alice: Any, org: Any, sandbox_number: Any, other_number: Any, charlie: Any
) -> None:
    form_field_add(form=form, actor_id=alice.pk, section_key="", field=REASON)
    form.refresh_from_db()
    with pytest.raises(ValidationError) as refused:
        form_use_set(number=other_number, purpose="contact", form=form, actor_id=charlie.pk)
    assert refused.value.message_dict == {"contact": ["Choose one of this organization's forms."]}
    with pytest.raises(ValidationError, match="risk screener form"):
        form_use_set(number=sandbox_number, purpose="risk", form=form, actor_id=alice.pk)
    with pytest.raises(ValidationError) as refused:
        form_use_set(
            number=sandbox_number,
            purpose="pre_survey",
            form=form,
            hold_minutes=61,
            actor_id=alice.pk,
        )
    assert "hold_minutes" in refused.value.message_dict
    empty = form_create(organization_id=org.pk, actor_id=alice.pk, name="Empty")
    with pytest.raises(ValidationError, match="no questions yet"):
        form_use_set(number=sandbox_number, purpose="contact", form=empty, actor_id=alice.pk)
    assert not FormUse.objects.exists()

    use = form_use_set(
        number=sandbox_number, purpose="contact", form=form, required=True, actor_id=alice.pk
    )
    assert use is not None and use.required and use.organization_id == org.pk
    screener = form_create_screener(organization_id=org.pk, actor_id=alice.pk)
    form_use_set(number=sandbox_number, purpose="risk", form=screener, actor_id=alice.pk)
    assert set(FormUse.objects.values_list("purpose", flat=True)) == {"contact", "risk"}
    form_use_set(number=sandbox_number, purpose=FormPurpose.CONTACT, form=None, actor_id=alice.pk)
    assert list(FormUse.objects.values_list("purpose", flat=True)) == ["risk"]
    assert AuditEvent.objects.filter(action="form.use_set").count() == 3


def test_taxonomies_parse_terms_and_fields_copy_them(
    form: Form, org: Any, other_org: Any, alice: Any
) -> None:
    taxonomy = taxonomy_save(
        organization_id=org.pk,
        actor_id=alice.pk,
        name="AIRS",
        terms_text="BH-1800 | Crisis intervention\nFood pantries\n\n",
    )
    assert taxonomy.terms == [
        {"code": "BH-1800", "label": "Crisis intervention"},
        {"code": "food_pantries", "label": "Food pantries"},
    ]
    with pytest.raises(ValidationError) as refused:
        taxonomy_save(organization_id=org.pk, actor_id=alice.pk, name="X", terms_text="A\na")
    assert refused.value.message_dict == {"terms": ["Line 2: “a” is listed twice."]}
    with pytest.raises(ValidationError, match="at most 500"):
        taxonomy_save(
            organization_id=org.pk,
            actor_id=alice.pk,
            name="X",
            terms_text="\n".join(f"Term {n}" for n in range(501)),
        )
    with pytest.raises(ValidationError) as refused:
        taxonomy_save(organization_id=org.pk, actor_id=alice.pk, name="airs", terms_text="A")
    assert "name" in refused.value.message_dict

    form_field_add(
        form=form,
        actor_id=alice.pk,
        section_key="",
        field={"label": "Need", "kind": "taxonomy", "taxonomy": taxonomy.pk},
    )
    form.refresh_from_db()
    field = schema_load(form.current_version.schema).field("need")  # type: ignore[union-attr]
    assert field is not None and field.taxonomy == taxonomy.pk
    assert [(o.value, o.label) for o in field.options] == [
        ("BH-1800", "Crisis intervention"),
        ("food_pantries", "Food pantries"),
    ]
    foreign = taxonomy_save(
        organization_id=other_org.pk, actor_id=None, name="T", terms_text="A\nB"
    )
    with pytest.raises(ValidationError) as refused:
        form_field_add(
            form=form,
            actor_id=alice.pk,
            section_key="",
            field={"label": "Other", "kind": "taxonomy", "taxonomy": foreign.pk},
        )
    assert "taxonomy" in refused.value.message_dict


@pytest.mark.django_db(transaction=True)
def test_two_admins_saving_at_once_make_one_new_version_each_in_turn(org: Any, alice: Any) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises every write: the row lock is PostgreSQL's to test")
    form = form_create(organization_id=org.pk, actor_id=alice.pk, name="Raced")
    form_field_add(form=form, actor_id=alice.pk, section_key="", field=REASON)
    _answer(form, {"reason_for_contact": "food"})
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def save(label: str) -> None:
        try:
            barrier.wait()
            form_field_add(
                form=Form.objects.get(pk=form.pk),
                actor_id=alice.pk,
                section_key="",
                field={"label": label, "kind": "text"},
            )
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=save, args=(label,)) for label in ("One", "Two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert sorted(form.versions.values_list("number", flat=True)) == [1, 2]
    assert _keys(form) in (
        ["reason_for_contact", "one", "two"],
        ["reason_for_contact", "two", "one"],
    )
