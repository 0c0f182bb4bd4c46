"""The form builder (admins only; supervisors, counselors and staff get 403): the forms
list, a form's page (sections, questions, a preview as counselors see it), one question's
page, which form each inbox uses, and taxonomies. Every change goes through
forms.services; a refused change answers 422 with its message next to the field."""

from __future__ import annotations

from typing import Any

from django import forms as dj
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from openline.core.models import Organization, Role
from openline.core.web import FORBIDDEN_TEMPLATE, console_view
from openline.forms import services
from openline.forms.models import (
    Form,
    FormKind,
    FormPurpose,
    FormResponse,
    FormUse,
    Taxonomy,
)
from openline.forms.schema import KIND_LABELS, PICKED, Field, FieldKind, Schema, schema_load
from openline.providers.models import Number

SEVERITY_NAMES = {1: "elevated", 2: "high", 3: "urgent"}


def _refused(request: HttpRequest) -> HttpResponse | None:
    if request.membership.role != Role.ADMIN:  # type: ignore[attr-defined]
        return render(request, FORBIDDEN_TEMPLATE, status=403)
    return None


def _form(organization: Organization, form_id: int) -> Form:
    found = (
        Form.objects.select_related("current_version")
        .filter(pk=form_id, organization=organization)
        .first()
    )
    if found is None:
        raise Http404("No such form.")
    return found


def _schema(form: Form) -> Schema:
    return schema_load(form.current_version.schema if form.current_version else {"sections": []})


def _error(form: dj.Form, exc: ValidationError) -> None:
    """A service's refusal next to the field it names (else above the form)."""
    if hasattr(exc, "error_dict"):
        for name, errors in exc.message_dict.items():
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, exc)


def _choice(form: dj.Form, name: str) -> dj.ChoiceField:
    field_ = form.fields[name]
    assert isinstance(field_, dj.ChoiceField)
    return field_


# --- the list -------------------------------------------------------------------------------


class NameForm(dj.Form):
    name = dj.CharField(label="Name", max_length=120)
    description = dj.CharField(label="Description (optional)", max_length=500, required=False)


@console_view
def form_list(request: HttpRequest, organization: Organization) -> HttpResponse:
    if refused := _refused(request):
        return refused
    new = NameForm(request.POST or None, prefix="new")
    if request.method == "POST" and new.is_valid():
        try:
            form = services.form_create(
                organization_id=organization.pk, actor_id=request.user.pk, **new.cleaned_data
            )
        except ValidationError as exc:
            _error(new, exc)
        else:
            messages.success(request, f"“{form.name}” created: add its questions.")
            return redirect("forms:detail", form.pk)
    archived = request.GET.get("archived") == "1"
    rows = (
        Form.objects.filter(organization=organization, archived_at__isnull=not archived)
        .select_related("current_version")
        .annotate(inboxes=Count("uses", distinct=True))
        .order_by("name")
    )
    context = {
        "forms": rows,
        "archived": archived,
        "new": new,
        "has_screener": Form.objects.filter(
            organization=organization, kind=FormKind.RISK_SCREENER
        ).exists(),
    }
    status = 422 if new.errors else 200
    return render(request, "forms/builder/list.html", context, status=status)


@console_view
@require_POST
def screener_add(request: HttpRequest, organization: Organization) -> HttpResponseBase:
    if refused := _refused(request):
        return refused
    try:
        form = services.form_create_screener(
            organization_id=organization.pk, actor_id=request.user.pk
        )
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
        return redirect("forms:list")
    messages.success(request, "The risk screener is added: choose it as an inbox's risk form.")
    return redirect("forms:detail", form.pk)


# --- a form's page --------------------------------------------------------------------------


class SectionForm(dj.Form):
    title = dj.CharField(label="Section title", max_length=300)


def _detail_context(
    form: Form, *, rename: NameForm | None = None, section: SectionForm | None = None
) -> dict[str, Any]:
    schema = _schema(form)
    answered = (
        FormResponse.objects.filter(version_id=form.current_version_id).count()
        if form.current_version_id
        else 0
    )
    return {
        "form": form,
        "screener": form.kind == FormKind.RISK_SCREENER,
        "schema": schema,
        "sections": [(s, [_row(schema, f) for f in s.fields]) for s in schema.sections],
        "version": form.current_version.number if form.current_version else 0,
        "answered": answered,
        "rename": rename or NameForm(initial={"name": form.name, "description": form.description}),
        "section_form": section or SectionForm(),
        "uses": FormUse.objects.filter(form=form).select_related("number").order_by("number_id"),
    }


def _row(schema: Schema, field_: Field) -> dict[str, Any]:
    condition = ""
    if field_.show_if:
        earlier = schema.field(field_.show_if.field)
        if earlier is not None:
            shown = [o.label for o in earlier.all_options() if o.value in field_.show_if.values]
            condition = f"Shown when “{earlier.label}” is {' or '.join(shown)}"
    return {
        "field": field_,
        "kind": KIND_LABELS[field_.kind],
        "condition": condition,
        "options": [
            (o.value, o.label, SEVERITY_NAMES.get(o.severity, "")) for o in field_.all_options()
        ],
    }


@console_view
def form_detail(request: HttpRequest, organization: Organization, form_id: int) -> HttpResponse:
    if refused := _refused(request):
        return refused
    form = _form(organization, form_id)
    rename = NameForm(request.POST or None, initial={"name": form.name})
    if request.method == "POST" and rename.is_valid():
        try:
            services.form_update(form=form, actor_id=request.user.pk, **rename.cleaned_data)
        except ValidationError as exc:
            _error(rename, exc)
        else:
            messages.success(request, "Saved.")
            return redirect("forms:detail", form.pk)
        form.refresh_from_db()
    context = _detail_context(form, rename=rename if request.method == "POST" else None)
    status = 422 if rename.errors else 200
    return render(request, "forms/builder/detail.html", context, status=status)


@console_view
@require_POST
def form_archive_toggle(
    request: HttpRequest, organization: Organization, form_id: int
) -> HttpResponseBase:
    if refused := _refused(request):
        return refused
    form = _form(organization, form_id)
    if request.POST.get("action") == "restore":
        services.form_restore(form=form, actor_id=request.user.pk)
        messages.success(request, f"“{form.name}” is restored.")
    else:
        services.form_archive(form=form, actor_id=request.user.pk)
        messages.success(request, f"“{form.name}” is archived: inboxes stop using it.")
    return redirect("forms:detail", form.pk)


@console_view
@require_POST
def section_add(request: HttpRequest, organization: Organization, form_id: int) -> HttpResponse:
    if refused := _refused(request):
        return refused
    form = _form(organization, form_id)
    section = SectionForm(request.POST)
    if section.is_valid():
        try:
            services.form_section_add(
                form=form, actor_id=request.user.pk, title=section.cleaned_data["title"]
            )
        except ValidationError as exc:
            _error(section, exc)
        else:
            return redirect("forms:detail", form.pk)
    context = _detail_context(form, section=section)
    return render(request, "forms/builder/detail.html", context, status=422)


@console_view
@require_POST
def section_action(
    request: HttpRequest, organization: Organization, form_id: int, section_key: str
) -> HttpResponse:
    """Rename, move up or down, or remove a section."""
    if refused := _refused(request):
        return refused
    form = _form(organization, form_id)
    action = request.POST.get("action", "")
    common: dict[str, Any] = {"form": form, "actor_id": request.user.pk, "section_key": section_key}
    try:
        if action in ("up", "down"):
            services.form_section_move(**common, by=-1 if action == "up" else 1)
        elif action == "remove":
            services.form_section_remove(**common)
        elif action == "rename":
            services.form_section_rename(**common, title=request.POST.get("title", ""))
        else:
            raise ValidationError("Unknown action.")
    except ValidationError as exc:
        return _detail_refused(request, form, exc)
    return redirect(f"{reverse('forms:detail', args=[form.pk])}#section-{section_key}")


def _detail_refused(request: HttpRequest, form: Form, exc: ValidationError) -> HttpResponse:
    form.refresh_from_db()
    context = {**_detail_context(form), "refusal": " ".join(exc.messages)}
    return render(request, "forms/builder/detail.html", context, status=422)


# --- one question ---------------------------------------------------------------------------


class FieldForm(dj.Form):
    label = dj.CharField(label="Question", max_length=300)
    kind = dj.ChoiceField(
        label="Kind of answer", choices=[(k.value, v) for k, v in KIND_LABELS.items()]
    )
    required = dj.BooleanField(label="Required", required=False)
    help = dj.CharField(label="Help text (optional)", max_length=500, required=False)
    options = dj.CharField(
        label="Options",
        required=False,
        widget=dj.Textarea(attrs={"rows": 5}),
        help_text="One per line. End a line with “| elevated”, “| high” or “| urgent” (or 1, 2, "
        "3) when that answer raises the conversation's priority.",
    )
    remember = dj.BooleanField(
        label="Remember for returning texters",
        required=False,
        help_text="A standard question (age group…) a returning texter is not asked again.",
    )
    min = dj.FloatField(label="Smallest number (optional)", required=False)
    max = dj.FloatField(label="Largest number (optional)", required=False)
    taxonomy = dj.TypedChoiceField(label="Taxonomy", coerce=int, required=False, empty_value=None)
    show_if_field = dj.ChoiceField(label="Show this question", required=False)
    show_if_values = dj.MultipleChoiceField(label="…when the answer is", required=False)
    section = dj.ChoiceField(label="Section", required=False)

    def __init__(
        self,
        *args: Any,
        organization: Organization,
        schema: Schema,
        earlier: list[Field],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.earlier = [f for f in earlier if f.all_options()]
        taxonomies = Taxonomy.objects.filter(organization=organization).order_by("name")
        _choice(self, "taxonomy").choices = [("", "—")] + [(t.pk, t.name) for t in taxonomies]
        _choice(self, "show_if_field").choices = [("", "Always")] + [
            (f.key, f"Only when “{f.label}” is answered…") for f in self.earlier
        ]
        _choice(self, "show_if_values").choices = [
            (f"{f.key}:{o.value}", o.label) for f in self.earlier for o in f.all_options()
        ]
        _choice(self, "section").choices = [
            (s.key, s.title or "Questions") for s in schema.sections
        ]

    def show_if_groups(self) -> list[dict[str, Any]]:
        """The earlier questions' answers, grouped for the template's checkboxes."""
        chosen = set(self["show_if_values"].value() or [])
        return [
            {
                "field": f,
                "options": [
                    (f"{f.key}:{o.value}", o.label, f"{f.key}:{o.value}" in chosen)
                    for o in f.all_options()
                ],
            }
            for f in self.earlier
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind = data.get("kind")
        try:
            data["parsed"] = services.options_parse(data.get("options") or "")
        except ValidationError as exc:
            _error(self, exc)
        if kind in PICKED - {FieldKind.TAXONOMY} and not data.get("options", "").strip():
            self.add_error("options", "List the answers to choose from, one per line.")
        if kind == FieldKind.TAXONOMY and not data.get("taxonomy"):
            self.add_error("taxonomy", "Choose the taxonomy its answers come from.")
        low, high = data.get("min"), data.get("max")
        if low is not None and high is not None and low > high:
            self.add_error("max", "The largest number must not be below the smallest.")
        key = data.get("show_if_field")
        values = [
            v.split(":", 1)[1] for v in data.get("show_if_values", []) if v.startswith(f"{key}:")
        ]
        if key and not values:
            self.add_error("show_if_values", "Choose the answers that show this question.")
        data["show_if"] = {"field": key, "values": values} if key else None
        return data

    def question(self) -> dict[str, Any]:
        data = self.cleaned_data
        question = {
            "label": data["label"],
            "kind": data["kind"],
            "required": data["required"],
            "help": data["help"],
            "remember": data["remember"],
            "options": data.get("parsed", []),
            "min": data["min"],
            "max": data["max"],
            "taxonomy": data["taxonomy"],
        }
        if data.get("show_if"):
            question["show_if"] = data["show_if"]
        return question


def _initial(field_: Field) -> dict[str, Any]:
    editable = (
        [{"label": o.label, "severity": o.severity} for o in field_.options]
        if field_.kind != FieldKind.TAXONOMY
        else []
    )
    return {
        "label": field_.label,
        "kind": field_.kind.value,
        "required": field_.required,
        "help": field_.help,
        "options": services.options_text(editable),
        "remember": field_.remember,
        "min": field_.min,
        "max": field_.max,
        "taxonomy": field_.taxonomy,
        "show_if_field": field_.show_if.field if field_.show_if else "",
        "show_if_values": [f"{field_.show_if.field}:{v}" for v in field_.show_if.values]
        if field_.show_if
        else [],
    }


def _earlier(schema: Schema, *, before: str = "", section: str = "") -> list[Field]:
    """Questions a new or edited one may depend on: those before it in the form."""
    found: list[Field] = []
    for s in schema.sections:
        for f in s.fields:
            if f.key == before:
                return found
            found.append(f)
        if s.key == section:
            return found
    return found


@console_view
def field_add(request: HttpRequest, organization: Organization, form_id: int) -> HttpResponse:
    if refused := _refused(request):
        return refused
    form = _form(organization, form_id)
    if form.kind == FormKind.RISK_SCREENER:
        return _detail_refused(request, form, ValidationError(services.SCREENER_LOCKED))
    schema = _schema(form)
    section = request.POST.get("section") or request.GET.get("section") or ""
    question = FieldForm(
        request.POST or None,
        organization=organization,
        schema=schema,
        earlier=_earlier(schema, section=section),
        initial={"section": section, "kind": FieldKind.TEXT.value},
    )
    if request.method == "POST" and question.is_valid():
        try:
            services.form_field_add(
                form=form,
                actor_id=request.user.pk,
                section_key=question.cleaned_data["section"],
                field=question.question(),
            )
        except ValidationError as exc:
            _error(question, exc)
        else:
            messages.success(request, f"“{question.cleaned_data['label']}” added.")
            return redirect("forms:detail", form.pk)
    return _field_page(request, form, question, adding=True)


@console_view
def field_edit(
    request: HttpRequest, organization: Organization, form_id: int, field_key: str
) -> HttpResponse:
    if refused := _refused(request):
        return refused
    form = _form(organization, form_id)
    schema = _schema(form)
    field_ = schema.field(field_key)
    if field_ is None:
        raise Http404("No such question.")
    if form.kind == FormKind.RISK_SCREENER:
        return _detail_refused(request, form, ValidationError(services.SCREENER_LOCKED))
    question = FieldForm(
        request.POST or None,
        organization=organization,
        schema=schema,
        earlier=_earlier(schema, before=field_key),
        initial=_initial(field_),
    )
    question.fields["section"].disabled = True  # move it with up and down instead
    if request.method == "POST" and question.is_valid():
        try:
            services.form_field_update(
                form=form, actor_id=request.user.pk, key=field_key, field=question.question()
            )
        except ValidationError as exc:
            _error(question, exc)
        else:
            messages.success(request, f"“{question.cleaned_data['label']}” saved.")
            return redirect("forms:detail", form.pk)
    return _field_page(request, form, question, adding=False, key=field_key)


def _field_page(
    request: HttpRequest, form: Form, question: FieldForm, *, adding: bool, key: str = ""
) -> HttpResponse:
    context = {
        "form": form,
        "question": question,
        "adding": adding,
        "key": key,
        "new_version": services.form_version_will_change(form),
        "version": form.current_version.number if form.current_version else 0,
    }
    status = 422 if question.errors else 200
    return render(request, "forms/builder/field.html", context, status=status)


@console_view
@require_POST
def field_action(
    request: HttpRequest, organization: Organization, form_id: int, field_key: str
) -> HttpResponse:
    """Move a question up or down, or remove it."""
    if refused := _refused(request):
        return refused
    form = _form(organization, form_id)
    action = request.POST.get("action", "")
    common: dict[str, Any] = {"form": form, "actor_id": request.user.pk, "key": field_key}
    try:
        if action in ("up", "down"):
            services.form_field_move(**common, by=-1 if action == "up" else 1)
        elif action == "remove":
            services.form_field_remove(**common)
        else:
            raise ValidationError("Unknown action.")
    except ValidationError as exc:
        return _detail_refused(request, form, exc)
    return redirect(f"{reverse('forms:detail', args=[form.pk])}#q-{field_key}")


# --- inbox uses -----------------------------------------------------------------------------


class UsesForm(dj.Form):
    contact = dj.TypedChoiceField(
        label=FormPurpose.CONTACT.label, coerce=int, required=False, empty_value=None
    )
    required = dj.BooleanField(label="Required before closing a conversation", required=False)
    pre_survey = dj.TypedChoiceField(
        label="Survey before the conversation (texts only)",
        coerce=int,
        required=False,
        empty_value=None,
        help_text="Texted one question at a time before the conversation reaches the queue.",
    )
    hold_minutes = dj.IntegerField(
        label="Longest hold before the queue (minutes)", min_value=1, max_value=60, initial=10
    )
    post_survey = dj.TypedChoiceField(
        label=FormPurpose.POST_SURVEY.label,
        coerce=int,
        required=False,
        empty_value=None,
        help_text="Web chat visitors see it when a chat ends.",
    )
    by_text = dj.BooleanField(
        label="Also text it after a counselor closes a text conversation", required=False
    )
    risk = dj.TypedChoiceField(
        label=FormPurpose.RISK.label, coerce=int, required=False, empty_value=None
    )

    def __init__(self, *args: Any, organization: Organization, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        usable = list(
            Form.objects.filter(
                organization=organization, archived_at__isnull=True, current_version__isnull=False
            ).order_by("name")
        )
        custom = [("", "None")] + [(f.pk, f.name) for f in usable if f.kind == FormKind.CUSTOM]
        for name in ("contact", "pre_survey", "post_survey"):
            _choice(self, name).choices = custom
        _choice(self, "risk").choices = [("", "None")] + [
            (f.pk, f.name) for f in usable if f.kind == FormKind.RISK_SCREENER
        ]


def _uses_initial(number: Number) -> dict[str, Any]:
    initial: dict[str, Any] = {"hold_minutes": 10}
    for use in FormUse.objects.filter(number=number):
        initial[use.purpose] = use.form_id
        if use.purpose == FormPurpose.CONTACT:
            initial["required"] = use.required
        if use.purpose == FormPurpose.PRE_SURVEY:
            initial["hold_minutes"] = use.hold_minutes
        if use.purpose == FormPurpose.POST_SURVEY:
            initial["by_text"] = use.by_text
    return initial


@console_view
def uses(request: HttpRequest, organization: Organization) -> HttpResponse:
    if refused := _refused(request):
        return refused
    inboxes = list(Number.objects.filter(organization=organization, is_active=True).order_by("pk"))
    chosen = request.POST.get("inbox") or request.GET.get("inbox") or ""
    number = next((n for n in inboxes if str(n.pk) == chosen), None)
    if chosen and number is None:
        raise Http404("No such inbox.")
    number = number or (inboxes[0] if inboxes else None)
    initial = _uses_initial(number) if number else {}
    choice = UsesForm(request.POST or None, organization=organization, initial=initial)
    if request.method == "POST" and number is not None and choice.is_valid():
        try:
            _uses_save(request, number, choice.cleaned_data, initial)
        except ValidationError as exc:
            _error(choice, exc)
        else:
            messages.success(request, f"Forms saved for {number.label}.")
            return redirect(f"{reverse('forms:uses')}?inbox={number.pk}")
    context = {"inboxes": inboxes, "number": number, "choice": choice}
    status = 422 if choice.errors else 200
    return render(request, "forms/builder/uses.html", context, status=status)


def _uses_save(
    request: HttpRequest, number: Number, data: dict[str, Any], before: dict[str, Any]
) -> None:
    """One service call per use that changed, all or none."""
    forms_by_id = {
        f.pk: f
        for f in Form.objects.filter(
            organization_id=number.organization_id,
            pk__in=[data[p] for p in FormPurpose.values if data[p]],
        )
    }
    with transaction.atomic():
        for purpose in FormPurpose.values:
            required = data["required"] if purpose == FormPurpose.CONTACT else False
            hold = data["hold_minutes"] if purpose == FormPurpose.PRE_SURVEY else 10
            by_text = data["by_text"] if purpose == FormPurpose.POST_SURVEY else True
            same = before.get(purpose) == data[purpose]
            if purpose == FormPurpose.CONTACT:
                same = same and bool(before.get("required")) == required
            if purpose == FormPurpose.PRE_SURVEY:
                same = same and before.get("hold_minutes") == hold
            if purpose == FormPurpose.POST_SURVEY:
                same = same and bool(before.get("by_text")) == by_text
            if same:
                continue
            services.form_use_set(
                number=number,
                purpose=purpose,
                form=forms_by_id.get(data[purpose]) if data[purpose] else None,
                required=required,
                hold_minutes=hold,
                by_text=by_text,
                actor_id=request.user.pk,
            )


# --- taxonomies -----------------------------------------------------------------------------


class TaxonomyForm(dj.Form):
    name = dj.CharField(label="Name", max_length=120)
    terms = dj.CharField(
        label="Terms",
        widget=dj.Textarea(attrs={"rows": 12}),
        help_text="One per line: “code | label”, or just the label (at most 500).",
    )


@console_view
def taxonomies(request: HttpRequest, organization: Organization) -> HttpResponse:
    if refused := _refused(request):
        return refused
    return _taxonomy_page(request, organization, None)


@console_view
def taxonomy(request: HttpRequest, organization: Organization, taxonomy_id: int) -> HttpResponse:
    if refused := _refused(request):
        return refused
    found = Taxonomy.objects.filter(pk=taxonomy_id, organization=organization).first()
    if found is None:
        raise Http404("No such taxonomy.")
    return _taxonomy_page(request, organization, found)


def _taxonomy_page(
    request: HttpRequest, organization: Organization, taxonomy: Taxonomy | None
) -> HttpResponse:
    initial = {"name": taxonomy.name, "terms": services.terms_text(taxonomy)} if taxonomy else {}
    edit = TaxonomyForm(request.POST or None, initial=initial)
    if request.method == "POST" and edit.is_valid():
        try:
            saved = services.taxonomy_save(
                organization_id=organization.pk,
                actor_id=request.user.pk,
                name=edit.cleaned_data["name"],
                terms_text=edit.cleaned_data["terms"],
                taxonomy=taxonomy,
            )
        except ValidationError as exc:
            _error(edit, exc)
        else:
            messages.success(
                request,
                f"“{saved.name}” saved. Forms pick up changed terms when their taxonomy "
                "question is saved again.",
            )
            return redirect("forms:taxonomy", saved.pk)
    context = {
        "taxonomies": Taxonomy.objects.filter(organization=organization).order_by("name"),
        "taxonomy": taxonomy,
        "edit": edit,
        "used_by": _taxonomy_users(organization, taxonomy) if taxonomy else [],
    }
    status = 422 if edit.errors else 200
    return render(request, "forms/builder/taxonomies.html", context, status=status)


def _taxonomy_users(organization: Organization, taxonomy: Taxonomy) -> list[Form]:
    """Forms whose current version has a question from this taxonomy."""
    forms = Form.objects.filter(organization=organization, current_version__isnull=False)
    return [
        f
        for f in forms.select_related("current_version").filter(~Q(kind=FormKind.RISK_SCREENER))
        if any(q.taxonomy == taxonomy.pk for q in _schema(f).fields())
    ]
