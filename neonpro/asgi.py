"""ASGI entry point: HTTP (Django) and the chat WebSocket (Channels), served by daphne."""

import os
import sys

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "neonpro.settings")
django_asgi_app = get_asgi_application()

from django.conf import settings  # noqa: E402

# The event loop and the database pool threads share one GIL. A thread waking from a
# database round trip waits up to this long for the loop to let go of it (CPython's
# default is 5 ms), once per statement: on the accept path that cost about 2.5 ms
# before the first token at light load. Set here, for the web processes only.
sys.setswitchinterval(settings.GIL_SWITCH_INTERVAL_MS / 1000)

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from chat import shutdown  # noqa: E402
from chat.routing import websocket_urlpatterns  # noqa: E402
from chat.ws_auth import chat_auth_stack  # noqa: E402
from monitoring.access_log import AccessLogMiddleware  # noqa: E402
from neonpro.client_address import ClientAddressMiddleware  # noqa: E402
from neonpro.middleware import TraceContextASGIMiddleware  # noqa: E402

# Outermost: the client's address and scheme are settled (TRUSTED_PROXIES) before any
# limit, audit event or log line reads them; then the JSON access log sees every answer.
application = ClientAddressMiddleware(AccessLogMiddleware(ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": TraceContextASGIMiddleware(chat_auth_stack(URLRouter(websocket_urlpatterns))),
    }
)))

# The name lexicons and detectors load now, so no clinician's first message waits
# for them (about 0.2 s and 19 MiB per web process).
from compliance.redaction import warm_up  # noqa: E402

warm_up()

# On SIGTERM daphne stops its reactor: let answers in flight finish (or store them as
# stopped) first, so no message is left half-written.
shutdown.install_server_hooks()
