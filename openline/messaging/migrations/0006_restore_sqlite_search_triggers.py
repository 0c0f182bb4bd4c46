"""SQLite rebuilds a table to add a column with a database default (0005), and the search
triggers of 0003 went with the old table. Put them back and re-index. (Any later migration
that rebuilds messaging_message on SQLite must do the same; the console's search tests
fail if it does not.)"""

from __future__ import annotations

from typing import Any

from django.db import migrations

TRIGGERS = [
    "CREATE TRIGGER IF NOT EXISTS messaging_message_fts_ai AFTER INSERT ON messaging_message "
    "BEGIN INSERT INTO messaging_message_fts(rowid, body) VALUES (new.id, new.body); END",
    "CREATE TRIGGER IF NOT EXISTS messaging_message_fts_ad AFTER DELETE ON messaging_message "
    "BEGIN INSERT INTO messaging_message_fts(messaging_message_fts, rowid, body) "
    "VALUES ('delete', old.id, old.body); END",
    "CREATE TRIGGER IF NOT EXISTS messaging_message_fts_au AFTER UPDATE OF body "
    "ON messaging_message BEGIN "
    "INSERT INTO messaging_message_fts(messaging_message_fts, rowid, body) "
    "VALUES ('delete', old.id, old.body); "
    "INSERT INTO messaging_message_fts(rowid, body) VALUES (new.id, new.body); END",
    "INSERT INTO messaging_message_fts(messaging_message_fts) VALUES ('rebuild')",
]


def restore(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "sqlite":
        for sql in TRIGGERS:
            schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("messaging", "0005_offline_marks_and_alerts")]

    operations = [migrations.RunPython(restore, migrations.RunPython.noop)]
