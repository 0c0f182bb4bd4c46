"""Staff alerts sent about conversations and how long after the first one a member assumed
the conversation; opt-outs and opt-ins from the consent ledger."""

from __future__ import annotations

from django.db.models import Count, F, Max, Min, Q

from openline.alerts.models import Alert, AlertKind
from openline.contacts.models import ConsentEvent, ConsentKind
from openline.reports.base import Chart, Report, ReportFilters, report
from openline.reports.queries import (
    column,
    conversation_q,
    days,
    duration,
    in_range,
    local_date,
    percentiles,
    readable,
    total,
)


@report("alerts")
def alerts(filters: ReportFilters) -> Report:
    by_kind = {
        kind: (sent, refused)
        for kind, sent, refused in Alert.objects.filter(conversation_q(filters, "conversation__"))
        .values("kind")
        .annotate(
            sent=Count("id", filter=Q(refused="")), refused=Count("id", filter=~Q(refused=""))
        )
        .values_list("kind", "sent", "refused")
    }
    rows: list[list[object]] = [
        [kind.label, *by_kind.get(kind.value, (0, 0))] for kind in AlertKind
    ]
    # From the alerts' side, grouped by conversation: only alerted conversations are read
    # (a subquery per conversation read every assumed one, measured in bench-reports).
    alerted = (
        Alert.objects.filter(
            conversation_q(filters, "conversation__"),
            refused="",
            conversation__assigned_at__isnull=False,
        )
        .order_by()
        .values("conversation_id")
        .annotate(first_alert=Min("created_at"), assumed=Max("conversation__assigned_at"))
        .filter(assumed__gte=F("first_alert"))
    )
    n, (p50, p90) = percentiles(alerted, duration("assumed", "first_alert"))
    return Report(
        key="alerts",
        title="Alerts sent",
        columns=["Kind", "Sent", "Not sent"],
        rows=rows,
        chart=Chart("bar", [str(row[0]) for row in rows], [("Sent", column(rows, 1))]),
        summary=[
            ("Alerts sent", sum(sent for sent, _ in by_kind.values())),
            ("Alerted, then assumed", n),
            ("p50 alert to assume", readable(p50)),
            ("p90 alert to assume", readable(p90)),
        ],
        note="Alert texts to staff about the range's conversations, by kind (not sent: the "
        "send service refused it, e.g. an opted-out phone). Alert to assume: from the first "
        "alert sent about a conversation to a member assuming it.",
    )


CONSENT_KINDS = [ConsentKind.OPT_OUT, ConsentKind.OPT_IN]


@report("consent")
def consent(filters: ReportFilters) -> Report:
    events = ConsentEvent.objects.filter(
        in_range(filters), organization_id=filters.organization_id, kind__in=CONSENT_KINDS
    )
    if filters.number_id is not None:
        events = events.filter(number_id=filters.number_id)
    counted = (
        events.annotate(day=local_date("created_at", filters))
        .values("day", "kind")
        .annotate(n=Count("id"))
        .values_list("day", "kind", "n")
    )
    per_day = {(day, kind): n for day, kind, n in counted}
    rows: list[list[object]] = [
        [day.isoformat(), *(per_day.get((day, kind.value), 0) for kind in CONSENT_KINDS)]
        for day in days(filters)
    ]
    totals = [total(rows, i) for i in (1, 2)]
    return Report(
        key="consent",
        title="Opt-outs and opt-ins",
        columns=["Day", "Opt-outs", "Opt-ins"],
        rows=rows,
        chart=Chart(
            "line",
            [str(row[0]) for row in rows],
            [
                ("Opt-outs", column(rows, 1)),
                ("Opt-ins", column(rows, 2)),
            ],
        ),
        summary=[("Opt-outs", totals[0]), ("Opt-ins", totals[1])],
        note="Opt-outs and opt-ins recorded in the consent ledger (keywords, staff, imports, "
        "the API), by day. They belong to phone numbers, not conversations: the inbox "
        "filter applies, the channel filter does not.",
    )
