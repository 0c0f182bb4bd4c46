"""Web chat settings: whether each inbox takes chats now (shifts and the inbox switch on
the shifts page decide; supervisors and admins) and the widgets an organization embeds on
its websites (admins)."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone

from openline.availability.selectors import inbox_states
from openline.chat.models import ChatQuestion, ChatSession, ChatWidget, QuestionKind, QuestionStage
from openline.chat.questions import question_create, question_delete, question_move
from openline.chat.services import ChatError, StartLimits, widget_create, widget_update
from openline.chat.survey import survey_use
from openline.core.models import Organization, Role
from openline.core.web import console_view
from openline.providers.models import Number


@console_view
def chat_settings(request: HttpRequest, organization: Organization) -> HttpResponse:
    membership = request.membership  # type: ignore[attr-defined]
    if not membership.can_manage:
        return render(request, "console/forbidden.html", status=403)
    is_admin = membership.role == Role.ADMIN
    error = ""
    form = request.POST if request.method == "POST" else {}
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "create" and is_admin:
                widget_create(
                    organization_id=organization.pk,
                    actor_id=request.user.pk,
                    number_id=int(request.POST.get("number", "0") or 0),
                    display_name=request.POST.get("display_name", ""),
                    allowed_origins=request.POST.get("allowed_origins", "").splitlines(),
                    greeting=request.POST.get("greeting", ""),
                    offline_text=request.POST.get("offline_text", ""),
                    color=request.POST.get("color", "#1f5fbf"),
                )
                messages.success(request, "Widget created. Paste its snippet into your website.")
                return redirect("console:chat_settings")
            error = "That action is not available to you."
        except (ValidationError, ChatError, ValueError) as exc:
            error = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
    context = {
        "inboxes": Number.objects.filter(organization=organization, is_active=True).order_by("pk"),
        "states": inbox_states(organization_id=organization.pk),
        "widgets": ChatWidget.objects.filter(organization=organization)
        .select_related("number")
        .annotate(question_count=Count("questions"))
        .order_by("pk"),
        "is_admin": is_admin,
        "error": error,
        "form": form,
        "base_url": request.build_absolute_uri("/").rstrip("/"),
        "abandoned_week": ChatSession.objects.filter(
            widget__organization=organization,
            abandoned=True,
            ended_at__gte=timezone.now() - timedelta(days=7),
        ).count(),
    }
    return render(request, "console/chat_settings.html", context, status=422 if error else 200)


@console_view
def chat_widget_questions(
    request: HttpRequest, organization: Organization, widget_id: int
) -> HttpResponse:
    """One widget's settings and pre-chat triage questions (admins). The survey after the
    chat is the inbox's post_survey form, chosen under Forms › Inbox uses: shown here."""
    membership = request.membership  # type: ignore[attr-defined]
    if membership.role != Role.ADMIN:
        return render(request, "console/forbidden.html", status=403)
    widget = get_object_or_404(ChatWidget, pk=widget_id, organization=organization)
    error = ""
    if request.method == "POST":
        try:
            _question_action(request, widget)
            return redirect("console:chat_widget_questions", widget_id=widget.pk)
        except (ValidationError, ValueError) as exc:
            error = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
            widget.refresh_from_db()  # show what is saved, not the refused edit
    use = survey_use(widget)
    context = {
        "widget": widget,
        "questions": list(widget.questions.filter(stage=QuestionStage.PRE)),
        "survey_form": use.form if use is not None else None,
        "uses_url": _inbox_uses_url(),
        "kinds": QuestionKind.choices,
        "error": error,
        "form": request.POST if error else {},
    }
    return render(request, "console/chat_questions.html", context, status=422 if error else 200)


def _inbox_uses_url() -> str:
    """The forms app's inbox-uses page (its URL name is the forms app's to choose), or the
    forms pages' root."""
    from django.urls import NoReverseMatch, reverse

    for name in ("forms:inbox_uses", "forms:uses", "forms:list", "forms:forms"):
        try:
            return reverse(name)
        except NoReverseMatch:
            continue
    return "/forms/"


def _whole_number(request: HttpRequest, field: str, label: str) -> int:
    raw = request.POST.get(field, "").strip()
    if not (raw.isascii() and raw.isdigit()):  # "²" is a digit to isdigit, not to int
        raise ValidationError(f"{label} must be a whole number, like 10")
    return int(raw)


def _start_limits(request: HttpRequest) -> StartLimits:
    return StartLimits(
        per_minute=_whole_number(request, "starts_per_minute", "new chats a minute"),
        per_address_per_minute=_whole_number(
            request, "starts_per_address_per_minute", "new chats a minute from one address"
        ),
        max_waiting=_whole_number(request, "max_waiting", "chats waiting at once"),
    )


def _question_action(request: HttpRequest, widget: ChatWidget) -> None:
    action = request.POST.get("action")
    if action == "update":
        widget_update(
            widget=widget,
            actor_id=request.user.pk,
            display_name=request.POST.get("display_name", ""),
            allowed_origins=request.POST.get("allowed_origins", "").splitlines(),
            greeting=request.POST.get("greeting", ""),
            offline_text=request.POST.get("offline_text", ""),
            color=request.POST.get("color", "#1f5fbf"),
            quick_exit_url=request.POST.get("quick_exit_url", ""),
            is_active=request.POST.get("is_active") == "on",
            busy_text=request.POST.get("busy_text", ""),
            limits=_start_limits(request),
        )
        messages.success(request, "Widget saved.")
        return
    if action == "add":
        question_create(
            widget=widget,
            actor_id=request.user.pk,
            stage=QuestionStage.PRE,
            kind=request.POST.get("kind", ""),
            prompt=request.POST.get("prompt", ""),
            required=request.POST.get("required") == "on",
            options_text=request.POST.get("options", ""),
            link=request.POST.get("link", ""),
        )
        messages.success(request, "Question added.")
        return
    question = get_object_or_404(
        ChatQuestion, pk=int(request.POST.get("question", "0") or 0), widget=widget
    )
    if action == "delete":
        question_delete(question=question, actor_id=request.user.pk)
        messages.success(request, "Question removed. Answers already given are kept.")
    elif action in ("up", "down"):
        question_move(question=question, up=action == "up")
    else:
        raise ValueError("That action is not available.")
