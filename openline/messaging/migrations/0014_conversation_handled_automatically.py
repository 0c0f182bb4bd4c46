from __future__ import annotations

from typing import Any

from django.db import migrations, models

# The event note both automatic closes wrote before the flag existed (campaigns' reminder
# answers and forms' post-survey answers): "… Handled automatically."
HANDLED_NOTE = "Handled automatically."


def mark_handled(apps: Any, schema_editor: Any) -> None:
    """Conversations closed unattended after a clear reminder or survey answer (one UPDATE)."""
    Conversation = apps.get_model("messaging", "Conversation")
    ConversationNote = apps.get_model("messaging", "ConversationNote")
    notes = ConversationNote.objects.filter(
        conversation_id=models.OuterRef("pk"), kind="event", body__endswith=HANDLED_NOTE
    )
    Conversation.objects.filter(status="closed", assigned_at__isnull=True).filter(
        models.Exists(notes)
    ).update(handled_automatically=True)


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0013_conversation_first_reply_at"),
    ]

    operations = [
        migrations.AddField(
            model_name="conversation",
            name="handled_automatically",
            field=models.BooleanField(db_default=False, default=False),
        ),
        migrations.RunPython(mark_handled, migrations.RunPython.noop),
    ]
