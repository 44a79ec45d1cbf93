"""ASGI entry point: HTTP (Django) and the chat WebSocket (Channels), served by daphne."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "neonpro.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from chat import shutdown  # noqa: E402
from chat.routing import websocket_urlpatterns  # noqa: E402
from chat.ws_auth import chat_auth_stack  # noqa: E402
from monitoring.middleware import TraceContextASGIMiddleware  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": TraceContextASGIMiddleware(chat_auth_stack(URLRouter(websocket_urlpatterns))),
    }
)

# On SIGTERM daphne stops its reactor: let answers in flight finish (or store them as
# stopped) first, so no message is left half-written.
shutdown.install_server_hooks()
