"""The phone simulator's pages, under /sandbox/ (the "sandbox" namespace: its page and
the console's navigation link to them by these names)."""

from __future__ import annotations

from django.urls import path

from openline.runtime import simulator

app_name = "sandbox"
urlpatterns = [
    path("phone", simulator.phone_list, name="phone_list"),
    path("phone/<str:webhook_key>", simulator.phone, name="phone"),
    path("phone/<str:webhook_key>/send", simulator.send, name="send"),
    path("phone/<str:webhook_key>/thread", simulator.thread, name="thread"),
    path("phone/<str:webhook_key>/calls", simulator.calls, name="calls"),
    path(
        "phone/<str:webhook_key>/calls/<int:call_id>/answer",
        simulator.call_answer,
        name="call_answer",
    ),
    path(
        "phone/<str:webhook_key>/calls/<int:call_id>/keypress",
        simulator.call_keypress,
        name="call_keypress",
    ),
    path(
        "phone/<str:webhook_key>/calls/<int:call_id>/hangup",
        simulator.call_hangup,
        name="call_hangup",
    ),
    path(
        "phone/<str:webhook_key>/calls/<int:call_id>/decline",
        simulator.call_decline,
        name="call_decline",
    ),
]
