"""All WebSocket routes."""

from django.urls import path

from fer_site.consumers import PingConsumer
from fer_site.live.routing import websocket_urlpatterns as live_websocket_urlpatterns

websocket_urlpatterns = [
    path("ws/ping/", PingConsumer.as_asgi()),
    *live_websocket_urlpatterns,
]
