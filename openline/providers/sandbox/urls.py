from __future__ import annotations

from django.urls import path

from openline.providers.sandbox import views

app_name = "sandbox"
urlpatterns = [
    path("phone", views.phone_list, name="phone_list"),
    path("phone/<str:webhook_key>", views.phone, name="phone"),
    path("phone/<str:webhook_key>/send", views.send, name="send"),
    path("phone/<str:webhook_key>/thread", views.thread, name="thread"),
]
