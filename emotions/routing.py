"""WebSocket routes of the emotions app."""

from django.urls import path

from emotions.consumers import LiveConsumer

websocket_urlpatterns = [
    path("ws/live/", LiveConsumer.as_asgi()),
]
