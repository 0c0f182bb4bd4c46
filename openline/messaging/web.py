"""A conversation's pages share one guard (the console's views and other apps' pane
sections alike): load it within the organization, check the member may read it."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, Concatenate, ParamSpec

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from openline.core.models import Organization
from openline.core.web import is_htmx
from openline.messaging import selectors
from openline.messaging.models import Conversation
from openline.messaging.services import assignment
from openline.messaging.services.assignment import Access

P = ParamSpec("P")

ConversationView = Callable[Concatenate[HttpRequest, Organization, Conversation, Access, P], Any]


def with_conversation(
    view: ConversationView[P],
) -> Callable[Concatenate[HttpRequest, Organization, int, P], HttpResponse]:
    """Load the conversation (404 for another organization's) and check this member may
    read it (403 otherwise: a counselor opening someone else's active conversation)."""

    @wraps(view)
    def wrapped(
        request: HttpRequest,
        organization: Organization,
        conversation_id: int,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> HttpResponse:
        conversations = selectors.conversation_queryset(organization_id=organization.pk)
        conversation = get_object_or_404(conversations, pk=conversation_id)
        access = assignment.conversation_access(
            membership=request.membership,  # type: ignore[attr-defined]
            conversation=conversation,
        )
        if not access.read:
            holder = conversation.assigned_to
            if is_htmx(request):
                who_has = f"Already taken: {holder} has it." if holder else "Not in your views."
                return render(request, "console/_pane_error.html", {"error": who_has}, status=403)
            return render(
                request,
                "console/conversation_forbidden.html",
                {"holder": holder, "conversation": conversation},
                status=403,
            )
        return view(request, organization, conversation, access, *args, **kwargs)  # type: ignore[no-any-return]

    return wrapped  # type: ignore[return-value]  # functools.wraps keeps the inner signature
