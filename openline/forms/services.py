"""Writes about forms: creating and editing form definitions (the builder posts one change
at a time), which form each inbox uses, and taxonomies. Every write is audited.

Versioning: a form's questions change in place until someone answers them; after that,
saving makes the next version and points the form at it, so answers always read with the
questions they answered. Field keys are made once from the label and never change, so a
field is counted across versions by its key."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from copy import deepcopy
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from openline.core.services import audit_record
from openline.forms import cssrs
from openline.forms.models import Form, FormKind, FormPurpose, FormUse, FormVersion, Taxonomy
from openline.forms.schema import (
    KEY,
    PICKED,
    FieldKind,
    SchemaError,
    option_value,
    schema_dump,
    schema_load,
)
from openline.providers.models import Number

SchemaDict = dict[str, Any]
MAX_TERMS = 500
HOLD_MINUTES = range(1, 61)
# An option line's severity suffix ("Crisis | urgent", "Crisis | 3").
SEVERITY_WORDS = {"1": 1, "2": 2, "3": 3, "elevated": 1, "high": 2, "urgent": 3}
SCREENER_LOCKED = (
    "The risk screener's questions are the validated instrument: they cannot be edited "
    "(rename or archive the form instead)."
)


# --- forms ----------------------------------------------------------------------------------


@transaction.atomic
def form_create(
    *, organization_id: int, actor_id: int | None, name: str, description: str = ""
) -> Form:
    name = _name(name)
    _name_free(organization_id, name)
    with _name_unique(name):
        form = Form.objects.create(
            organization_id=organization_id,
            name=name,
            description=description.strip()[:500],
            created_by_id=actor_id,
        )
    _audit(form, actor_id, "form.created", name)
    return form


@transaction.atomic
def form_update(*, form: Form, actor_id: int | None, name: str, description: str = "") -> Form:
    """Rename a form or change its description (a screener too)."""
    name = _name(name)
    _name_free(form.organization_id, name, but=form.pk)
    form.name, form.description = name, description.strip()[:500]
    with _name_unique(name):
        form.save(update_fields=["name", "description"])
    _audit(form, actor_id, "form.updated", name)
    return form


def _name(name: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise ValidationError({"name": "Give the form a name."})
    if len(name) > 120:
        raise ValidationError({"name": "A form's name has at most 120 characters."})
    return name


def _name_free(organization_id: int, name: str, but: int | None = None) -> None:
    taken = Form.objects.filter(organization_id=organization_id, name__iexact=name)
    if but is not None:
        taken = taken.exclude(pk=but)
    if taken.exists():
        raise ValidationError({"name": _taken(name)})


def _taken(name: str) -> str:
    return f"There is already a form named “{name}”."


@contextmanager
def _name_unique(name: str) -> Iterator[None]:
    """The check above can miss another admin's form saved at the same moment; the unique
    constraint then answers, with the same sentence instead of a server error."""
    try:
        with transaction.atomic():
            yield
    except IntegrityError as exc:
        if "uniq_form_name" not in str(exc) and "forms_form.organization_id" not in str(exc):
            raise
        raise ValidationError({"name": _taken(name)}) from None


@transaction.atomic
def form_create_screener(*, organization_id: int, actor_id: int | None) -> Form:
    """The Columbia screener template as a risk screener form, version 1."""
    name = cssrs.NAME
    if Form.objects.filter(organization_id=organization_id, name__iexact=name).exists():
        raise ValidationError(_taken(name))
    with _name_unique(name):
        form = Form.objects.create(
            organization_id=organization_id,
            name=name,
            kind=FormKind.RISK_SCREENER,
            description="Columbia Suicide Severity Rating Scale, screen version (past month).",
            created_by_id=actor_id,
        )
    _version_write(form, actor_id, schema_dump(cssrs.screener_schema()))
    _audit(form, actor_id, "form.created", name)
    return form


@transaction.atomic
def form_archive(*, form: Form, actor_id: int | None) -> Form:
    """Archived forms leave the builder's list and stop being used by inboxes (their
    answers stay)."""
    if form.archived_at is None:
        form.archived_at = timezone.now()
        form.save(update_fields=["archived_at"])
        _audit(form, actor_id, "form.archived", form.name)
    return form


@transaction.atomic
def form_restore(*, form: Form, actor_id: int | None) -> Form:
    if form.archived_at is not None:
        form.archived_at = None
        form.save(update_fields=["archived_at"])
        _audit(form, actor_id, "form.restored", form.name)
    return form


def _audit(form: Form, actor_id: int | None, action: str, detail: str) -> None:
    audit_record(
        organization_id=form.organization_id,
        actor_id=actor_id,
        action=action,
        object_type="form",
        object_id=form.pk,
        detail=detail,
    )


# --- questions and versions -----------------------------------------------------------------


def form_schema_save(*, form: Form, actor_id: int | None, schema: Mapping[str, Any]) -> FormVersion:
    """Save a whole definition (checked with schema.schema_load): in place while nobody has
    answered the current version, else as the next version."""
    return _change(form, actor_id, lambda _: dict(schema), "saved the questions")


def form_version_will_change(form: Form) -> bool:
    """Whether the next save makes a new version (the current one has been answered)."""
    return form.current_version_id is not None and (
        FormVersion.objects.filter(pk=form.current_version_id, responses__isnull=False).exists()
    )


@transaction.atomic
def _change(
    form: Form,
    actor_id: int | None,
    change: Callable[[SchemaDict], SchemaDict],
    what: str,
    *,
    instrument: bool = False,
) -> FormVersion:
    """Apply ``change`` to the current definition under the form's row lock, so two admins
    saving at once make one version each in turn, never two version 2s."""
    locked = Form.objects.select_for_update().get(pk=form.pk)
    if locked.kind == FormKind.RISK_SCREENER and not instrument:
        raise ValidationError(SCREENER_LOCKED)
    current = locked.current_version
    before: SchemaDict = deepcopy(current.schema) if current else {"sections": []}
    try:
        schema = schema_dump(schema_load(change(before)))
    except SchemaError as exc:
        raise ValidationError(str(exc)) from None
    if current is not None and schema == current.schema:
        return current
    version = _version_write(locked, actor_id, schema)
    form.current_version, form.current_version_id = version, version.pk
    _audit(locked, actor_id, "form.changed", f"v{version.number}: {what}")
    return version


def _version_write(form: Form, actor_id: int | None, schema: SchemaDict) -> FormVersion:
    """Call under the form's row lock (or on a form nobody else can see yet)."""
    current = form.current_version
    if current is not None and not current.responses.exists():
        current.schema = schema
        current.save(update_fields=["schema"])
        return current
    last = form.versions.aggregate(last=Max("number"))["last"] or 0
    version = FormVersion.objects.create(
        organization_id=form.organization_id,
        form=form,
        number=last + 1,
        schema=schema,
        created_by_id=actor_id,
    )
    form.current_version = version
    form.save(update_fields=["current_version"])
    return version


def _keys_ever(form: Form) -> set[str]:
    """Every field key any version of the form has used: a removed field's key is never
    given to a new question, so reports never mix two questions under one key."""
    keys: set[str] = set()
    for schema in FormVersion.objects.filter(form=form).values_list("schema", flat=True):
        for section in schema.get("sections", []):
            keys.update(f.get("key", "") for f in section.get("fields", []))
    return keys


def key_for(label: str, taken: set[str]) -> str:
    """A key from a label ("Reason for contact" -> "reason_for_contact"), made unique."""
    base = option_value(label)[:50]
    if not base[:1].isalpha() or base == "option":
        base = f"q_{base}"[:50]
    key, n = base, 2
    while key in taken or not KEY.match(key):
        key, n = f"{base}_{n}", n + 1
    return key


def form_section_add(*, form: Form, actor_id: int | None, title: str) -> FormVersion:
    title = _title(title)

    def add(schema: SchemaDict) -> SchemaDict:
        taken = {s["key"] for s in schema["sections"]}
        schema["sections"].append({"key": key_for(title, taken), "title": title, "fields": []})
        return schema

    return _change(form, actor_id, add, f"added the section “{title}”")


def form_section_rename(
    *, form: Form, actor_id: int | None, section_key: str, title: str
) -> FormVersion:
    title = _title(title)

    def rename(schema: SchemaDict) -> SchemaDict:
        _section(schema, section_key)["title"] = title
        return schema

    return _change(form, actor_id, rename, f"renamed a section “{title}”")


def form_section_remove(*, form: Form, actor_id: int | None, section_key: str) -> FormVersion:
    def remove(schema: SchemaDict) -> SchemaDict:
        section = _section(schema, section_key)
        if section["fields"]:
            raise ValidationError(
                f"“{section['title'] or 'This section'}” still has questions: move or remove "
                "them first."
            )
        schema["sections"].remove(section)
        return schema

    return _change(form, actor_id, remove, "removed a section")


def form_section_move(
    *, form: Form, actor_id: int | None, section_key: str, by: int
) -> FormVersion:
    """Move a section up (``by`` -1) or down (+1)."""

    def move(schema: SchemaDict) -> SchemaDict:
        sections = schema["sections"]
        section = _section(schema, section_key)
        at = sections.index(section)
        to = max(0, min(len(sections) - 1, at + by))
        sections.insert(to, sections.pop(at))
        return schema

    return _change(form, actor_id, move, "moved a section")


def _title(title: str) -> str:
    title = " ".join(title.split())
    if not title:
        raise ValidationError({"title": "Give the section a title."})
    if len(title) > 300:
        raise ValidationError({"title": "A title has at most 300 characters."})
    return title


def _section(schema: SchemaDict, section_key: str) -> dict[str, Any]:
    for section in schema["sections"]:
        if section["key"] == section_key:
            return section  # type: ignore[no-any-return]
    raise ValidationError("That section is no longer on the form: reload the page.")


def _located(schema: SchemaDict, key: str) -> tuple[list[dict[str, Any]], int]:
    for section in schema["sections"]:
        for at, field_ in enumerate(section["fields"]):
            if field_["key"] == key:
                return section["fields"], at
    raise ValidationError("That question is no longer on the form: reload the page.")


def form_field_add(
    *, form: Form, actor_id: int | None, section_key: str, field: Mapping[str, Any]
) -> FormVersion:
    """Add a question at the end of a section (the form's first section is made when it
    has none). ``field`` is a question as forms.schema stores it, without a key; options
    given as labels get values from their labels."""
    data = _field_data(form, field)
    taken = _keys_ever(form)

    def add(schema: SchemaDict) -> SchemaDict:
        if not schema["sections"]:
            schema["sections"].append({"key": "questions", "title": "", "fields": []})
        section = _section(schema, section_key) if section_key else schema["sections"][-1]
        data["key"] = key_for(data["label"], taken | _keys(schema))
        data["options"] = _option_values(data.get("options", []), [])
        section["fields"].append(data)
        return schema

    return _change(form, actor_id, add, f"added “{data['label']}”")


def form_field_update(
    *, form: Form, actor_id: int | None, key: str, field: Mapping[str, Any]
) -> FormVersion:
    """Change a question; its key stays, and options keep their values when their label
    is unchanged (reports count them across versions)."""
    data = _field_data(form, field)

    def update(schema: SchemaDict) -> SchemaDict:
        fields_, at = _located(schema, key)
        data["key"] = key
        data["options"] = _option_values(data.get("options", []), fields_[at].get("options", []))
        fields_[at] = data
        return schema

    return _change(form, actor_id, update, f"changed “{data['label']}”")


def form_field_remove(*, form: Form, actor_id: int | None, key: str) -> FormVersion:
    """Remove a question, unless a later one's show-if depends on it."""

    def remove(schema: SchemaDict) -> SchemaDict:
        fields_, at = _located(schema, key)
        removed = fields_[at]
        for section in schema["sections"]:
            for other in section["fields"]:
                if (other.get("show_if") or {}).get("field") == key:
                    raise ValidationError(
                        f"“{other['label']}” is shown depending on “{removed['label']}”: "
                        f"change or remove “{other['label']}” first."
                    )
        fields_.pop(at)
        return schema

    return _change(form, actor_id, remove, f"removed the question “{key}”")


def form_field_move(*, form: Form, actor_id: int | None, key: str, by: int) -> FormVersion:
    """Move a question up (``by`` -1) or down (+1); past the start or end of its section
    it moves into the section before or after."""

    def move(schema: SchemaDict) -> SchemaDict:
        sections = schema["sections"]
        fields_, at = _located(schema, key)
        here = next(i for i, s in enumerate(sections) if s["fields"] is fields_)
        moved = fields_.pop(at)
        to = at + by
        if to < 0 and here > 0:
            sections[here - 1]["fields"].append(moved)
        elif to > len(fields_) and here < len(sections) - 1:
            sections[here + 1]["fields"].insert(0, moved)
        else:
            fields_.insert(max(0, min(len(fields_), to)), moved)
        return schema

    return _change(form, actor_id, move, f"moved “{key}”")


def _keys(schema: SchemaDict) -> set[str]:
    return {f["key"] for s in schema["sections"] for f in s["fields"]}


def _field_data(form: Form, field: Mapping[str, Any]) -> dict[str, Any]:
    data = {k: v for k, v in dict(field).items() if k != "key"}
    label = " ".join(str(data.get("label") or "").split())
    if not label:
        raise ValidationError({"label": "Every question needs a label."})
    data["label"] = label
    if data.get("kind") == FieldKind.TAXONOMY:
        taxonomy = Taxonomy.objects.filter(
            organization_id=form.organization_id, pk=data.get("taxonomy") or 0
        ).first()
        if taxonomy is None:
            raise ValidationError({"taxonomy": "Choose the taxonomy its answers come from."})
        data["taxonomy"] = taxonomy.pk
        data["options"] = [{"value": t["code"], "label": t["label"]} for t in taxonomy.terms]
    else:
        data.pop("taxonomy", None)
    kind = data.get("kind")
    if kind not in PICKED | {FieldKind.YESNO}:
        data["options"] = []
    elif kind == FieldKind.YESNO:
        labels = {
            str(o["label"] if isinstance(o, Mapping) else o).casefold()
            for o in data.get("options") or []
        }
        if not labels <= {"yes", "no"}:
            raise ValidationError(
                {
                    "options": "A yes/no question's options are Yes and No "
                    "(“Yes | high” gives one a severity)."
                }
            )
    elif len(data.get("options") or []) < (1 if kind == FieldKind.CHECKLIST else 2):
        few = "at least one item" if kind == FieldKind.CHECKLIST else "at least two options"
        raise ValidationError({"options": f"“{label}” needs {few}, one per line."})
    return data


def _option_values(options: list[Any], before: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Options with values: given ones kept, else the value the same label had before,
    else one made from the label (unique in the field)."""
    known = {str(o.get("label", "")).casefold(): o.get("value") for o in before}
    result: list[dict[str, Any]] = []
    taken: set[str] = set()
    for raw in options:
        option = {"label": raw} if isinstance(raw, str) else dict(raw)
        label = " ".join(str(option.get("label") or "").split())
        value = option.get("value") or known.get(label.casefold()) or option_value(label)
        base, n = value, 2
        while value in taken:
            value, n = f"{base}_{n}", n + 1
        taken.add(value)
        result.append({**option, "label": label, "value": value})
    return result


def options_parse(text: str) -> list[dict[str, Any]]:
    """The builder's options textarea: one option a line, each optionally ending in
    "| elevated", "| high", "| urgent" (or "| 1", "| 2", "| 3") for its severity."""
    options = []
    for line in text.splitlines():
        label, bar, suffix = line.rpartition("|") if "|" in line else (line, "", "")
        label = " ".join(label.split())
        severity = 0
        if bar:
            word = suffix.strip().casefold()
            if word not in SEVERITY_WORDS:
                raise ValidationError(
                    {
                        "options": f"“{line.strip()}”: after | write elevated, high or urgent "
                        "(or 1, 2 or 3)."
                    }
                )
            severity = SEVERITY_WORDS[word]
        if label:
            options.append({"label": label, "severity": severity})
    return options


def options_text(options: list[dict[str, Any]]) -> str:
    """Options back as the textarea shows them."""
    names = {1: "elevated", 2: "high", 3: "urgent"}
    return "\n".join(
        o["label"] + (f" | {names[o['severity']]}" if o.get("severity") else "") for o in options
    )


# --- inbox uses -----------------------------------------------------------------------------


@transaction.atomic
def form_use_set(
    *,
    number: Number,
    purpose: str,
    form: Form | None,
    required: bool = False,
    hold_minutes: int = 10,
    by_text: bool = True,
    actor_id: int | None,
) -> FormUse | None:
    """Which form an inbox uses for ``purpose`` (None: no form for it)."""
    if purpose not in FormPurpose.values:
        raise ValidationError(f"Unknown use “{purpose}”.")
    if form is None:
        deleted, _ = FormUse.objects.filter(number=number, purpose=purpose).delete()
        if deleted:
            _audit_use(number, actor_id, purpose, "none")
        return None
    _use_check(number, purpose, form, hold_minutes)
    use, _ = FormUse.objects.update_or_create(
        number=number,
        purpose=purpose,
        defaults={
            "organization_id": number.organization_id,
            "form": form,
            "required": required,
            "hold_minutes": hold_minutes,
            "by_text": by_text,
        },
    )
    _audit_use(number, actor_id, purpose, form.name)
    return use


def _use_check(number: Number, purpose: str, form: Form, hold_minutes: int) -> None:
    if form.organization_id != number.organization_id:
        raise ValidationError({purpose: "Choose one of this organization's forms."})
    if form.archived_at is not None:
        raise ValidationError({purpose: f"“{form.name}” is archived: restore it first."})
    if form.current_version_id is None:
        raise ValidationError({purpose: f"“{form.name}” has no questions yet."})
    if (purpose == FormPurpose.RISK) != (form.kind == FormKind.RISK_SCREENER):
        raise ValidationError(
            {
                purpose: "The risk assessment is a risk screener form."
                if purpose == FormPurpose.RISK
                else "The risk screener is only for the risk assessment."
            }
        )
    if hold_minutes not in HOLD_MINUTES:
        raise ValidationError({"hold_minutes": "Hold a conversation 1 to 60 minutes."})


def _audit_use(number: Number, actor_id: int | None, purpose: str, what: str) -> None:
    audit_record(
        organization_id=number.organization_id,
        actor_id=actor_id,
        action="form.use_set",
        object_type="number",
        object_id=number.pk,
        detail=f"{FormPurpose(purpose).label}: {what}",
    )


# --- taxonomies -----------------------------------------------------------------------------


@transaction.atomic
def taxonomy_save(
    *,
    organization_id: int,
    actor_id: int | None,
    name: str,
    terms_text: str,
    taxonomy: Taxonomy | None = None,
) -> Taxonomy:
    """Create or change a taxonomy: terms one per line, "code | label" or just a label.
    Forms copy the terms when a taxonomy question is saved, so a change reaches a form
    when its question is saved again."""
    name = " ".join(name.split())
    if not name or len(name) > 120:
        raise ValidationError({"name": "Give the taxonomy a name (at most 120 characters)."})
    terms = terms_parse(terms_text)
    taken = Taxonomy.objects.filter(organization_id=organization_id, name__iexact=name)
    if taxonomy is not None:
        taken = taken.exclude(pk=taxonomy.pk)
    if taken.exists():
        raise ValidationError({"name": f"There is already a taxonomy named “{name}”."})
    if taxonomy is None:
        taxonomy = Taxonomy(organization_id=organization_id)
    elif taxonomy.organization_id != organization_id:
        raise ValidationError("That taxonomy belongs to another organization.")
    taxonomy.name, taxonomy.terms = name, terms
    try:
        with transaction.atomic():
            taxonomy.save()
    except IntegrityError:
        raise ValidationError({"name": f"There is already a taxonomy named “{name}”."}) from None
    audit_record(
        organization_id=organization_id,
        actor_id=actor_id,
        action="taxonomy.saved",
        object_type="taxonomy",
        object_id=taxonomy.pk,
        detail=f"{name} ({len(terms)} terms)",
    )
    return taxonomy


def terms_parse(text: str) -> list[dict[str, str]]:
    terms: list[dict[str, str]] = []
    codes: set[str] = set()
    labels: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        code, bar, label = line.partition("|")
        code, label = (
            (code.strip(), " ".join(label.split())) if bar else ("", " ".join(code.split()))
        )
        if not label:
            if code:
                raise ValidationError({"terms": f"Line {number}: a term needs a label after |."})
            continue
        code = code[:120] or option_value(label)
        if code in codes or label.casefold() in labels:
            raise ValidationError({"terms": f"Line {number}: “{label}” is listed twice."})
        codes.add(code)
        labels.add(label.casefold())
        terms.append({"code": code, "label": label[:300]})
    if not terms:
        raise ValidationError({"terms": "List at least one term."})
    if len(terms) > MAX_TERMS:
        raise ValidationError({"terms": f"A taxonomy has at most {MAX_TERMS} terms."})
    return terms


def terms_text(taxonomy: Taxonomy) -> str:
    return "\n".join(f"{t['code']} | {t['label']}" for t in taxonomy.terms)
