"""WSGI entry point (admin and REST only; chat streaming needs the ASGI app)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "neonpro.settings")
application = get_wsgi_application()
