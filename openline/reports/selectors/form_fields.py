"""The answers to one field of one form, counted across the form's versions by the field's
key, with the labels of the latest version that has the field."""

from __future__ import annotations

from django.db.models import Avg, Case, CharField, Count, Max, Min, QuerySet, Value, When
from django.db.models.functions import TruncMonth

from openline.forms.models import Form, FormAnswer, FormVersion
from openline.forms.schema import PICKED, Field, FieldKind, SchemaError, schema_load
from openline.reports.base import Chart, Report, ReportFilters, report
from openline.reports.queries import column, conversation_q, share, total

BUCKETS = 5
TITLE = "Form answers"


def form_fields(*, organization_id: int, form_id: int) -> dict[str, Field]:
    """Every field the form has had, by key, as its latest version defines it."""
    fields: dict[str, Field] = {}
    versions = FormVersion.objects.filter(organization_id=organization_id, form_id=form_id)
    for schema in versions.order_by("-number").values_list("schema", flat=True):
        try:
            loaded = schema_load(schema)
        except SchemaError:
            continue
        for field_ in loaded.fields():
            fields.setdefault(field_.key, field_)
    return fields


def _empty(note: str) -> Report:
    return Report(key="form_field", title=TITLE, columns=["Answer", "Answers"], rows=[], note=note)


@report("form_field")
def form_field(filters: ReportFilters) -> Report:
    if filters.form_id is None or not filters.field_key:
        return _empty("Choose a form and one of its fields above to count its answers.")
    form = Form.objects.filter(organization_id=filters.organization_id, pk=filters.form_id).first()
    field_ = form_fields(organization_id=filters.organization_id, form_id=filters.form_id).get(
        filters.field_key
    )
    if form is None or field_ is None:
        return _empty("That form or field is not one of this organization's.")
    answers = FormAnswer.objects.filter(
        conversation_q(filters, "response__conversation__"),
        organization_id=filters.organization_id,
        form_id=filters.form_id,
        field_key=filters.field_key,
    )
    title = f"{form.name}: {field_.label}"
    if field_.kind in PICKED or field_.kind in (FieldKind.YESNO, FieldKind.SCALE):
        return _picked(title, field_, answers)
    if field_.kind == FieldKind.NUMBER:
        return _numbers(title, answers)
    if field_.kind == FieldKind.DATE:
        return _dates(title, answers)
    responses = answers.values("response_id").distinct().count()
    return Report(
        key="form_field",
        title=title,
        columns=["Answered", "Responses"],
        rows=[["Answered", responses]],
        summary=[("Responses answering", responses)],
        note="A text field: only how many answered it is counted (its answers stay in the "
        "conversations).",
    )


def _picked(title: str, field_: Field, answers: QuerySet[FormAnswer]) -> Report:
    counted = {
        value: (n, label)
        for value, n, label in answers.values("value")
        .annotate(n=Count("id"), label=Max("label"))
        .values_list("value", "n", "label")
    }
    responses = answers.values("response_id").distinct().count()
    known = [o.value for o in field_.all_options()]
    labels = {o.value: o.label for o in field_.all_options()}
    order = known + sorted(v for v in counted if v not in labels)
    rows: list[list[object]] = [
        [
            labels.get(v) or counted[v][1] or v,
            counted.get(v, (0, ""))[0],
            share(counted.get(v, (0, ""))[0], responses),
        ]
        for v in order
    ]
    return Report(
        key="form_field",
        title=title,
        columns=["Answer", "Answers", "Share of responses"],
        rows=rows,
        chart=Chart("bar", [str(r[0]) for r in rows], [("Answers", column(rows, 1))]),
        summary=[("Responses answering", responses)],
        note="Answers given under every version of the form, counted by the field's key, "
        "with the labels of its latest version. A multiple choice counts each item ticked, "
        "so shares can add up to more than 100%.",
    )


def _bounds(low: float, high: float) -> list[tuple[float, float]]:
    width = (high - low) / BUCKETS
    return [(low + i * width, low + (i + 1) * width) for i in range(BUCKETS)]


def _number_label(low: float, high: float) -> str:
    return f"{low:g}–{high:g}"


def _numbers(title: str, answers: QuerySet[FormAnswer]) -> Report:
    typed = answers.filter(number__isnull=False)
    stats = typed.aggregate(
        n=Count("id"), low=Min("number"), mean=Avg("number"), high=Max("number")
    )
    rows: list[list[object]] = []
    if stats["n"]:
        low, high = float(stats["low"]), float(stats["high"])
        if low == high:
            rows = [[f"{low:g}", stats["n"]]]
        else:
            bounds = _bounds(low, high)
            whens = [
                When(number__lt=top, then=Value(_number_label(bottom, top)))
                for bottom, top in bounds[:-1]
            ]
            last = _number_label(*bounds[-1])
            counted = dict(
                typed.annotate(bucket=Case(*whens, default=Value(last), output_field=CharField()))
                .values("bucket")
                .annotate(n=Count("id"))
                .values_list("bucket", "n")
            )
            rows = [[_number_label(b, t), counted.get(_number_label(b, t), 0)] for b, t in bounds]
    mean = stats["mean"]
    return Report(
        key="form_field",
        title=title,
        columns=["Range", "Answers"],
        rows=rows,
        chart=Chart("bar", [str(r[0]) for r in rows], [("Answers", column(rows, 1))]),
        summary=[
            ("Answers", stats["n"]),
            ("Minimum", f"{stats['low']:g}" if stats["n"] else "–"),
            ("Average", f"{mean:.1f}" if mean is not None else "–"),
            ("Maximum", f"{stats['high']:g}" if stats["n"] else "–"),
        ],
        note=f"Numbers in {BUCKETS} equal ranges from the smallest to the largest answer "
        "(each range includes its lower end; the last includes both).",
    )


def _dates(title: str, answers: QuerySet[FormAnswer]) -> Report:
    counted = (
        answers.filter(date__isnull=False)
        .annotate(month=TruncMonth("date"))
        .values("month")
        .annotate(n=Count("id"))
        .order_by("month")
        .values_list("month", "n")
    )
    rows: list[list[object]] = [[month.strftime("%Y-%m"), n] for month, n in counted]
    return Report(
        key="form_field",
        title=title,
        columns=["Month", "Answers"],
        rows=rows,
        chart=Chart("bar", [str(r[0]) for r in rows], [("Answers", column(rows, 1))]),
        summary=[("Answers", total(rows, 1))],
        note="Dates answered, counted by month.",
    )
