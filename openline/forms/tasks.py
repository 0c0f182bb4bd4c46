"""Task entry points of forms: thin wrappers over the survey services."""

from __future__ import annotations

from django_tasks import task


@task()
def pre_surveys_start(conversation_ids: list[int]) -> None:
    from openline.forms.surveys.pre import pre_survey_start

    for conversation_id in conversation_ids:
        pre_survey_start(conversation_id=conversation_id)


@task()
def post_surveys_start(conversation_ids: list[int]) -> None:
    from openline.forms.surveys.post import post_survey_start

    for conversation_id in conversation_ids:
        post_survey_start(conversation_id=conversation_id)
