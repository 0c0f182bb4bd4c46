"""The contacts directory and a contact's page: details, consent, new conversations."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from openline.console.forms import (
    AddNumberForm,
    ContactCreateForm,
    ContactEditForm,
    ContactFieldsForm,
    ContactSearchForm,
    CustomFieldForm,
    OptInForm,
    OptOutForm,
    StartConversationForm,
)
from openline.console.views.common import HISTORY_LIMIT
from openline.contacts.models import ConsentSource, Contact, CustomField
from openline.contacts.selectors import (
    consent_history,
    consent_state,
    contact_list,
    voice_do_not_call_entry,
)
from openline.contacts.services.consent import (
    ConsentError,
    consent_record_opt_out,
    consent_refusal,
)
from openline.contacts.services.contacts import (
    contact_add_number,
    contact_create,
    contact_numbers,
    contact_update,
)
from openline.contacts.services.fields import (
    FieldError,
    contact_field_texts,
    contact_set_field,
    custom_field_create,
)
from openline.contacts.services.tags import contact_set_tags
from openline.core.models import Organization
from openline.core.web import console_view, paginate, sentence
from openline.forms.filling import contact_latest_risk
from openline.messaging import selectors
from openline.messaging.segments import count_segments
from openline.messaging.services.assignment import AssignmentError, conversation_start
from openline.messaging.services.conversation_consent import consent_opt_in_with_welcome
from openline.messaging.services.outbound import SendRefused


@console_view
@require_GET
def contacts(request: HttpRequest, organization: Organization) -> HttpResponse:
    form = ContactSearchForm(request.GET)
    query = form.cleaned_data["q"] if form.is_valid() else ""
    found = contact_list(organization_id=organization.pk, query=query)
    context = {"form": form, "query": query, "page": paginate(request, found)}
    return render(request, "console/contact_list.html", context)


@console_view
@require_http_methods(["GET", "POST"])
def contact_new(request: HttpRequest, organization: Organization) -> HttpResponse:
    form = ContactCreateForm(request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        try:
            contact = contact_create(
                organization_id=organization.pk,
                phone=data["phone"],
                name=data["name"],
                number_type=data["number_type"] or None,
            )
        except ValueError as exc:  # InvalidPhoneNumber, or the number is already a contact
            form.add_error("phone", sentence(exc))
        else:
            messages.success(request, f"Added {contact.label}.")
            return redirect("console:contact", contact_id=contact.pk)
    status = 422 if form.errors else 200
    return render(request, "console/contact_new.html", {"form": form}, status=status)


def _contact_or_404(organization: Organization, contact_id: int) -> Contact:
    return get_object_or_404(Contact, organization_id=organization.pk, pk=contact_id)


def _contact_page(
    request: HttpRequest, organization: Organization, contact: Contact, **forms: Any
) -> HttpResponse:
    org_id = organization.pk
    state = consent_state(organization_id=org_id, phone=contact.phone)
    context = {
        "contact": contact,
        "consent": state.as_dict(),
        "consent_changed_at": state.last_change.created_at if state.last_change else None,
        "consent_history": consent_history(organization_id=org_id, phone=contact.phone)[
            :HISTORY_LIMIT
        ],
        "conversations": selectors.contact_conversations(
            organization_id=org_id,
            contact_id=contact.pk,
            membership=request.membership,  # type: ignore[attr-defined]
        )[:HISTORY_LIMIT],
        "refusal": consent_refusal(contact=contact),
        "do_not_call": voice_do_not_call_entry(organization_id=org_id, phone=contact.phone)
        if contact.phone
        else None,
        "edit_form": forms.get("edit_form")
        or ContactEditForm(
            initial={
                "name": contact.name,
                "number_type": contact.number_type,
                "notes": contact.notes,
                "tags": ", ".join(tag.name for tag in contact.tags.all()),
            }
        ),
        "start_form": forms.get("start_form") or StartConversationForm(organization_id=org_id),
        "person": contact.primary if contact.primary_id else None,
        "numbers": [
            (number, consent_state(organization_id=org_id, phone=number.phone).status)
            for number in contact_numbers(contact=contact)
        ],
        "add_number_form": forms.get("add_number_form") or AddNumberForm(),
        "fields_form": forms.get("fields_form") or _fields_form(contact),
        "opt_in_form": forms.get("opt_in_form") or OptInForm(),
        "opt_out_form": forms.get("opt_out_form") or OptOutForm(),
        "segments": count_segments(""),
        "risk": contact_latest_risk(organization_id=org_id, contact_id=contact.pk),
        "length": 0,
        "max_body": settings.OPENLINE_MAX_BODY_CHARS,
    }
    status = 422 if any(form.errors for form in forms.values()) else 200
    return render(request, "console/contact_detail.html", context, status=status)


@console_view
@require_GET
def contact_detail(
    request: HttpRequest, organization: Organization, contact_id: int
) -> HttpResponse:
    return _contact_page(request, organization, _contact_or_404(organization, contact_id))


@console_view
@require_POST
def contact_edit(request: HttpRequest, organization: Organization, contact_id: int) -> HttpResponse:
    contact = _contact_or_404(organization, contact_id)
    form = ContactEditForm(request.POST)
    if form.is_valid():
        data = dict(form.cleaned_data)
        with transaction.atomic():
            contact_set_tags(contact=contact, names=data.pop("tags"))
            contact_update(contact=contact, **data)
        messages.success(request, "Contact saved.")
        return redirect("console:contact", contact_id=contact.pk)
    return _contact_page(request, organization, contact, edit_form=form)


def _fields_form(contact: Contact, data: Any = None) -> ContactFieldsForm:
    fields = list(CustomField.objects.filter(organization_id=contact.organization_id))
    values = contact_field_texts(contact=contact)
    initial = {f"field_{field.pk}": values.get(field.key, "") for field in fields}
    return ContactFieldsForm(data, fields=fields, initial=initial)


@console_view
@require_POST
def contact_add_another_number(
    request: HttpRequest, organization: Organization, contact_id: int
) -> HttpResponse:
    contact = _contact_or_404(organization, contact_id)
    form = AddNumberForm(request.POST)
    if form.is_valid():
        try:
            number = contact_add_number(
                contact=contact,
                phone=form.cleaned_data["phone"],
                number_type=form.cleaned_data["number_type"] or None,
            )
        except ValueError as exc:  # an invalid number, or someone else's
            form.add_error("phone", sentence(exc))
        else:
            messages.success(request, f"Added {number.phone} to {contact.label}.")
            return redirect("console:contact", contact_id=contact.pk)
    return _contact_page(request, organization, contact, add_number_form=form)


@console_view
@require_POST
def contact_fields(
    request: HttpRequest, organization: Organization, contact_id: int
) -> HttpResponse:
    """Set the person's custom field values (all or nothing)."""
    contact = _contact_or_404(organization, contact_id)
    form = _fields_form(contact, request.POST)
    if form.is_valid():
        try:
            with transaction.atomic():
                for name, field in form.custom_fields.items():
                    contact_set_field(contact=contact, field=field, raw=form.cleaned_data[name])
        except FieldError as exc:
            form.add_error(None, sentence(exc))
        else:
            messages.success(request, "Fields saved.")
            return redirect("console:contact", contact_id=contact.pk)
    return _contact_page(request, organization, contact, fields_form=form)


@console_view
@require_http_methods(["GET", "POST"])
def custom_fields(request: HttpRequest, organization: Organization) -> HttpResponse:
    """The organization's custom fields: supervisors and admins add them."""
    if not request.membership.can_manage:  # type: ignore[attr-defined]
        return render(request, "console/forbidden.html", status=403)
    form = CustomFieldForm(request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        try:
            field = custom_field_create(
                organization_id=organization.pk,
                name=data["name"],
                kind=data["kind"],
                choices=data["choices"].split(","),
            )
        except FieldError as exc:
            form.add_error(None, sentence(exc))
        else:
            messages.success(request, f"Added {field.name}: {{{field.key}}} in broadcasts.")
            return redirect("console:custom_fields")
    fields = CustomField.objects.filter(organization_id=organization.pk)
    status = 422 if form.errors else 200
    return render(
        request, "console/custom_fields.html", {"form": form, "fields": fields}, status=status
    )


@console_view
@require_POST
def contact_start(
    request: HttpRequest, organization: Organization, contact_id: int
) -> HttpResponse:
    contact = _contact_or_404(organization, contact_id)
    form = StartConversationForm(request.POST, organization_id=organization.pk)
    if form.is_valid():
        try:
            message = conversation_start(
                membership=request.membership,  # type: ignore[attr-defined]
                contact=contact,
                number_id=form.cleaned_data["number"].pk,
                body=form.cleaned_data["body"],
            )
        except (SendRefused, AssignmentError) as exc:
            form.add_error("body", sentence(exc))
        else:
            return redirect("console:conversation", conversation_id=message.conversation_id)
    return _contact_page(request, organization, contact, start_form=form)


@console_view
@require_POST
def contact_opt_in(
    request: HttpRequest, organization: Organization, contact_id: int
) -> HttpResponse:
    contact = _contact_or_404(organization, contact_id)
    form = OptInForm(request.POST)
    if form.is_valid():
        try:
            welcome = consent_opt_in_with_welcome(
                organization_id=organization.pk,
                phone=contact.phone,
                source=ConsentSource.STAFF,
                evidence=form.cleaned_data["evidence"],
                actor_id=request.user.pk,
            )
        except (ConsentError, SendRefused) as exc:
            form.add_error("evidence", sentence(exc))
        else:
            sent = " The welcome text is on its way." if welcome is not None else ""
            messages.success(request, f"Opt-in recorded.{sent}")
            return redirect("console:contact", contact_id=contact.pk)
    return _contact_page(request, organization, contact, opt_in_form=form)


@console_view
@require_POST
def contact_opt_out(
    request: HttpRequest, organization: Organization, contact_id: int
) -> HttpResponse:
    contact = _contact_or_404(organization, contact_id)
    form = OptOutForm(request.POST)
    if not form.is_valid():
        return _contact_page(request, organization, contact, opt_out_form=form)
    consent_record_opt_out(
        organization_id=organization.pk,
        phone=contact.phone,
        source=ConsentSource.STAFF,
        text=form.cleaned_data["text"],
        actor_id=request.user.pk,
    )
    messages.success(request, f"Opt-out recorded. No more texts will go to {contact.label}.")
    return redirect("console:contact", contact_id=contact.pk)
