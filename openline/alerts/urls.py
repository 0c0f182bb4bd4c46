from __future__ import annotations

from django.urls import URLPattern, path

from openline.alerts import views

app_name = "alerts"

urlpatterns: list[URLPattern] = [
    path("", views.alert_settings, name="settings"),
    path("calculator", views.alert_calculator, name="calculator"),
    path("after-hours/confirm", views.after_hours_confirm, name="after_hours_confirm"),
    path("after-hours/code", views.after_hours_code, name="after_hours_code"),
    path("me", views.my_alerts, name="mine"),
    path("me/confirm", views.my_alerts_confirm, name="mine_confirm"),
    path("me/code", views.my_alerts_code, name="mine_code"),
]
