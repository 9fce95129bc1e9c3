"""All WebSocket routes; each app contributes its own list."""

from django.urls import path

from emotions.routing import websocket_urlpatterns as emotions_websocket_urlpatterns
from fer_site.consumers import PingConsumer

websocket_urlpatterns = [
    path("ws/ping/", PingConsumer.as_asgi()),
    *emotions_websocket_urlpatterns,
]
