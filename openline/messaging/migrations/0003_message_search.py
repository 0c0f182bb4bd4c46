"""Full-text search over message bodies: an FTS5 index kept by triggers on SQLite, a GIN
expression index on PostgreSQL. Selectors in ``messaging.search`` query whichever exists."""

from __future__ import annotations

from typing import Any

from django.db import migrations

SQLITE_UP = [
    "CREATE VIRTUAL TABLE messaging_message_fts USING fts5("
    "body, content='messaging_message', content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER messaging_message_fts_ai AFTER INSERT ON messaging_message BEGIN "
    "INSERT INTO messaging_message_fts(rowid, body) VALUES (new.id, new.body); END",
    "CREATE TRIGGER messaging_message_fts_ad AFTER DELETE ON messaging_message BEGIN "
    "INSERT INTO messaging_message_fts(messaging_message_fts, rowid, body) "
    "VALUES ('delete', old.id, old.body); END",
    "CREATE TRIGGER messaging_message_fts_au AFTER UPDATE OF body ON messaging_message BEGIN "
    "INSERT INTO messaging_message_fts(messaging_message_fts, rowid, body) "
    "VALUES ('delete', old.id, old.body); "
    "INSERT INTO messaging_message_fts(rowid, body) VALUES (new.id, new.body); END",
    "INSERT INTO messaging_message_fts(messaging_message_fts) VALUES ('rebuild')",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS messaging_message_fts_ai",
    "DROP TRIGGER IF EXISTS messaging_message_fts_ad",
    "DROP TRIGGER IF EXISTS messaging_message_fts_au",
    "DROP TABLE IF EXISTS messaging_message_fts",
]
POSTGRES_UP = [
    "CREATE INDEX messaging_message_body_fts ON messaging_message "
    "USING gin (to_tsvector('simple', body))"
]
POSTGRES_DOWN = ["DROP INDEX IF EXISTS messaging_message_body_fts"]


def _run(statements: dict[str, list[str]]) -> Any:
    def run(apps: Any, schema_editor: Any) -> None:
        for sql in statements.get(schema_editor.connection.vendor, []):
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("messaging", "0002_notes_participants_reads")]

    operations = [
        migrations.RunPython(
            _run({"sqlite": SQLITE_UP, "postgresql": POSTGRES_UP}),
            _run({"sqlite": SQLITE_DOWN, "postgresql": POSTGRES_DOWN}),
        )
    ]
