"""What the organization sent on its own: broadcast delivery, and the credits it used."""

from __future__ import annotations

from django.db.models import Count, Q, Sum
from django.db.models.functions import Coalesce

from openline.billing.models import CreditEntry, CreditKind, CreditPurpose
from openline.campaigns.models import Broadcast, BroadcastRecipient, RecipientStatus
from openline.messaging.models import CallStatus, MessageStatus
from openline.reports.base import Chart, Report, ReportFilters, report
from openline.reports.queries import column, in_range, share, total

DELIVERY = [
    (
        "Delivered",
        Q(message__status=MessageStatus.DELIVERED) | Q(call__status=CallStatus.COMPLETED),
    ),
    ("Sent, not yet confirmed", Q(message__status=MessageStatus.SENT)),
    (
        "Undelivered or failed",
        Q(message__status__in=[MessageStatus.UNDELIVERED, MessageStatus.FAILED])
        | Q(
            call__status__in=[
                CallStatus.BUSY,
                CallStatus.NO_ANSWER,
                CallStatus.FAILED,
                CallStatus.CANCELED,
            ]
        ),
    ),
    ("Not sent (refused)", Q(status=RecipientStatus.REFUSED)),
    ("Cancelled", Q(status=RecipientStatus.CANCELLED)),
]
IN_PROGRESS = "Still sending"


@report("broadcasts")
def broadcasts(filters: ReportFilters) -> Report:
    started = Broadcast.objects.filter(
        in_range(filters, "started_at"), organization_id=filters.organization_id
    )
    if filters.channel:
        started = started.filter(channel=filters.channel)
    recipients = BroadcastRecipient.objects.filter(
        organization_id=filters.organization_id, broadcast__in=started
    )
    if filters.number_id is not None:
        recipients = recipients.filter(number_id=filters.number_id)
    counts = recipients.aggregate(
        total=Count("id"),
        **{f"b{i}": Count("id", filter=q) for i, (_, q) in enumerate(DELIVERY)},
    )
    total = counts.pop("total")
    values = [counts[f"b{i}"] for i in range(len(DELIVERY))]
    labels = [label for label, _ in DELIVERY] + [IN_PROGRESS]
    values.append(total - sum(values))
    return Report(
        key="broadcasts",
        title="Broadcast delivery",
        columns=["Outcome", "Recipients", "Share"],
        rows=[
            [label, value, share(value, total)] for label, value in zip(labels, values, strict=True)
        ],
        chart=Chart("doughnut", labels, [("Recipients", values)]),
        summary=[
            ("Broadcasts started", started.count()),
            ("Recipients", total),
            ("Delivered", f"{values[0]} ({share(values[0], total)})"),
        ],
        note="Recipients of broadcasts that started in the range, by what became of their "
        "text or call (delivered: the carrier confirmed it, or the call was answered).",
    )


@report("credits")
def credits(filters: ReportFilters) -> Report:
    entries = CreditEntry.objects.filter(in_range(filters), organization_id=filters.organization_id)
    counted = {
        purpose: (spent, refunded)
        for purpose, spent, refunded in entries.filter(
            kind__in=[CreditKind.DEBIT, CreditKind.REFUND]
        )
        .values("purpose")
        .annotate(
            spent=Coalesce(Sum("credits", filter=Q(kind=CreditKind.DEBIT)), 0),
            refunded=Coalesce(Sum("credits", filter=Q(kind=CreditKind.REFUND)), 0),
        )
        .values_list("purpose", "spent", "refunded")
    }
    purposes = [(p.value, p.label) for p in CreditPurpose] + [("", "Other")]
    rows: list[list[object]] = []
    for value, label in purposes:
        spent, refunded = counted.get(value, (0, 0))
        rows.append([label, spent, refunded, spent - refunded])
    added = entries.filter(kind__in=[CreditKind.PURCHASE, CreditKind.ALLOWANCE]).aggregate(
        n=Coalesce(Sum("credits"), 0)
    )["n"]
    used = total(rows, 3)
    return Report(
        key="credits",
        title="Credits used",
        columns=["Purpose", "Spent", "Refunded", "Used"],
        rows=rows,
        chart=Chart("bar", [str(r[0]) for r in rows], [("Used", column(rows, 3))]),
        summary=[("Credits used", used), ("Credits added", added)],
        note="Credits debited from the ledger in the range by what they paid for, less "
        "refunds for messages that failed before the carrier took them. The ledger is the "
        "organization's: the inbox and channel filters do not apply.",
    )
