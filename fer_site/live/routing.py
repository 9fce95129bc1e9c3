"""WebSocket route of the live page."""

from django.urls import path

from fer_site.live.consumers import LiveConsumer

websocket_urlpatterns = [
    path("ws/live/", LiveConsumer.as_asgi()),
]
