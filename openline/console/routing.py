from __future__ import annotations

from django.urls import path

from openline.chat.consumers import VisitorConsumer
from openline.console.consumers import ConsoleConsumer

websocket_urlpatterns = [
    path("ws/console/", ConsoleConsumer.as_asgi()),
    path("ws/chat/<str:public_id>/", VisitorConsumer.as_asgi()),
]
