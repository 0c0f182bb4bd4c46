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
    # answer, keypress, hangup, decline (the call's id in the form)
    path("phone/<str:webhook_key>/call/<slug:action>", simulator.call_action, name="call"),
]
