from __future__ import annotations

from django.urls import URLPattern, path

from openline.availability import views

app_name = "availability"

urlpatterns: list[URLPattern] = [
    path("", views.shifts_week, name="shifts"),
    path("state", views.inbox_state, name="inbox_state"),
    path("new", views.shift_new, name="shift_new"),
    path("<int:shift_id>/delete", views.shift_delete, name="shift_delete"),
    path("<int:shift_id>/sign-up", views.shift_sign_up, name="shift_sign_up"),
    path("<int:shift_id>/withdraw", views.shift_withdraw, name="shift_withdraw"),
    path("inbox/<int:number_id>/switch", views.inbox_switch, name="inbox_switch"),
    path("responses", views.inbox_responses, name="responses"),
    path("mine/", views.my_shifts, name="my_shifts"),
    path("mine/feed", views.feed_rotate, name="feed_rotate"),
    path("feed/<str:token>.ics", views.feed, name="feed"),
]
