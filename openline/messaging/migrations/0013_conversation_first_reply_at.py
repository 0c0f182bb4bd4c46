from __future__ import annotations

from typing import Any

from django.db import migrations, models


def first_replies(apps: Any, schema_editor: Any) -> None:
    """Each conversation's first personal reply, from its messages (one UPDATE)."""
    Conversation = apps.get_model("messaging", "Conversation")
    Message = apps.get_model("messaging", "Message")
    first = (
        Message.objects.filter(
            conversation_id=models.OuterRef("pk"), direction="out", kind="personal"
        )
        .order_by("created_at")
        .values("created_at")[:1]
    )
    Conversation.objects.update(first_reply_at=models.Subquery(first))


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0012_report_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="conversation",
            name="first_reply_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(first_replies, migrations.RunPython.noop),
    ]
