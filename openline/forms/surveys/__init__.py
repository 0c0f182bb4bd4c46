"""Surveys over text: the pre-conversation survey that holds a new conversation out of the
queue while the texter answers (surveys.pre), and the post-conversation survey after a
member closes one (surveys.post); questions and answers as texts live in forms.sms, the
periodic sweep in surveys.expiry. Registered with messaging.hooks and messaging.answers in
FormsConfig.ready."""

from __future__ import annotations


def register() -> None:
    """Register the survey hooks and the answer readers."""
    from openline.forms.surveys import post, pre
    from openline.forms.surveys.common import POST, PRE
    from openline.messaging import hooks
    from openline.messaging.answers import answer_reader_set

    hooks.opening_hold_set("pre_survey", pre.hold_minutes)
    hooks.on_held_set("pre_survey", pre.on_held)
    hooks.on_closed_set("post_survey", post.on_closed)
    answer_reader_set(PRE, pre.pre_answer_read)
    answer_reader_set(POST, post.post_answer_read)
