"""WSGI entry point, for HTTP-only deployments (the live page needs ASGI)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fer_site.settings")

application = get_wsgi_application()
