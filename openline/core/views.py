from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Database and task-queue state; 503 when the database is unreachable."""
    from django_tasks_db.models import DBTaskResult

    from openline.messaging.intake import writer
    from openline.messaging.journal import journal_count
    from openline.messaging.models import InboundEvent

    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        ready = DBTaskResult.objects.ready().count()
        pending_inbound = (
            InboundEvent.objects.filter(processed_at__isnull=True).count() + journal_count()
        )
    except Exception as exc:
        return JsonResponse(
            {"status": "error", "database": f"unavailable: {type(exc).__name__}"}, status=503
        )
    return JsonResponse(
        {
            "status": "ok",
            "database": {"vendor": connection.vendor, "ok": True},
            "tasks": {"ready": ready, "inbound_pending": pending_inbound},
            # Webhook events this process stored, by how (messaging.intake): on the event
            # loop, in the overflow journal, or by the writer thread.
            "intake": dict(writer.stats),
        }
    )
