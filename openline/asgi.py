"""ASGI entry point: lean webhook intake in front of Django (HTTP) and Channels (WebSocket)."""

from __future__ import annotations

import os
import warnings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "openline.settings")
# Static files (whitenoise) are small synchronous iterators; serving them that way is fine.
warnings.filterwarnings("ignore", message="StreamingHttpResponse must consume synchronous")

from django.core.asgi import get_asgi_application  # noqa: E402

django_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from openline.console.routing import websocket_urlpatterns  # noqa: E402
from openline.runtime.intake import IntakeRouter  # noqa: E402

application = IntakeRouter(
    ProtocolTypeRouter(
        {
            "http": django_app,
            # The consumer checks Origin against Host (ALLOWED_HOSTS defaults to "*").
            "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
        }
    )
)
