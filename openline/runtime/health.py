from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Database and task-queue state; 503 when the database is unreachable.

    Parked inbound events (processing gave up on them) make the status "degraded" but keep
    200: a load balancer must not take a web node out of service for them (it cannot fix
    them, and intake still works); monitoring should alert on "degraded". Counts and ages
    only: nothing here names a person or carries message text."""
    from django_tasks_db.models import DBTaskResult

    from openline.messaging.models import InboundEvent
    from openline.messaging.selectors import inbound_parked_summary
    from openline.runtime.intake import writer
    from openline.runtime.journal import journal_count

    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        ready = DBTaskResult.objects.ready().count()
        pending_inbound = (
            InboundEvent.objects.filter(processed_at__isnull=True).count() + journal_count()
        )
        parked = inbound_parked_summary(organization_id=None)
    except Exception as exc:
        return JsonResponse(
            {"status": "error", "database": f"unavailable: {type(exc).__name__}"}, status=503
        )
    oldest = parked.oldest_received_at
    return JsonResponse(
        {
            "status": "degraded" if parked.count else "ok",
            "database": {"vendor": connection.vendor, "ok": True},
            "tasks": {"ready": ready, "inbound_pending": pending_inbound},
            # Inbound events processing gave up on (messaging.services.parked): admins see
            # them under System health; `openline inbound retry` retries them.
            "inbound_parked": {
                "count": parked.count,
                "oldest_age_seconds": (
                    None if oldest is None else int((timezone.now() - oldest).total_seconds())
                ),
            },
            # Webhook events this process stored, by how (runtime.intake): on the event
            # loop, in the overflow journal, or by the writer thread.
            "intake": dict(writer.stats),
        }
    )
