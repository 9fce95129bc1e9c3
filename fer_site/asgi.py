"""ASGI entry point: HTTP through Django, WebSockets through Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fer_site.settings")

# Set up Django before anything imports models (the routes below do).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from fer_site.live.limits import AllowedHostsOrigins, ClientConnectionLimits  # noqa: E402
from fer_site.request_limits import (  # noqa: E402
    install_daphne_body_limit,
    install_daphne_ping_every_connection,
)
from fer_site.routing import websocket_urlpatterns  # noqa: E402

install_daphne_body_limit(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
install_daphne_ping_every_connection()

if os.environ.get("ATTUNE_PRELOAD_ENGINE") == "1":
    # Set by `manage.py serve`: load the model (LiteRT; TensorFlow only with the Keras backend) now,
    # so the first visitor does not wait for it.
    from emotions.services import emotion_engine

    emotion_engine()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOrigins(
            ClientConnectionLimits(
                AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
                max_open=settings.LIVE_MAX_CONNECTIONS_PER_CLIENT,
                per_minute=settings.LIVE_CONNECTS_PER_MINUTE_PER_CLIENT,
            )
        ),
    }
)
