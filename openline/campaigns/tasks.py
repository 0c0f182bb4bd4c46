"""Task entry points: thin wrappers over services."""

from __future__ import annotations

from django_tasks import task


@task()
def run_broadcast(broadcast_id: int, runner: int | None = None) -> None:
    from openline.campaigns.services import broadcast_run

    broadcast_run(broadcast_id=broadcast_id, runner=runner)


@task()
def replan_reminders(type_id: int) -> None:
    from openline.campaigns.reminders import reminders_replan_type

    reminders_replan_type(type_id=type_id)
