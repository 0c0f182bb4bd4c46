"""Task entry points: thin wrappers over services. Each runs one turn and enqueues the next."""

from __future__ import annotations

from django_tasks import task


@task()
def check_contact_import(import_id: int, start: int) -> None:
    from openline.contacts.services.imports import contact_import_check

    contact_import_check(import_id=import_id, start=start)


@task()
def import_contacts(import_id: int, start: int) -> None:
    from openline.contacts.services.imports import contact_import_run

    contact_import_run(import_id=import_id, start=start)
