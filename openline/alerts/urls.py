from __future__ import annotations

from django.urls import URLPattern, path

from openline.alerts import views

app_name = "alerts"

urlpatterns: list[URLPattern] = [
    path("", views.alert_settings, name="settings"),
    path("calculator", views.alert_calculator, name="calculator"),
    path("me", views.my_alerts, name="mine"),
]
