from __future__ import annotations

import asyncio
import uuid

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from fer_site.asgi import application

# Channels closes old database connections around each message, so consumers need database access.
pytestmark = pytest.mark.django_db(transaction=True)


async def ping_round_trip(text: str) -> dict:
    communicator = WebsocketCommunicator(application, "/ws/ping/", headers=[(b"origin", b"http://localhost")])
    connected, _ = await communicator.connect()
    assert connected
    await communicator.send_to(text_data=text)
    reply = await communicator.receive_json_from(timeout=5)
    await communicator.disconnect()
    return reply


async def test_it_echoes_through_the_in_memory_channel_layer(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

    reply = await ping_round_trip("hello")

    assert type(get_channel_layer()).__name__ == "InMemoryChannelLayer"
    assert reply == {"type": "pong", "echo": "hello"}


@pytest.mark.redis
async def test_it_echoes_through_a_real_redis_channel_layer(settings, redis_url):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [redis_url], "prefix": f"attune-test-{uuid.uuid4().hex[:8]}:"},
        }
    }

    reply = await ping_round_trip("through redis")

    assert type(get_channel_layer()).__name__ == "RedisChannelLayer"
    assert reply == {"type": "pong", "echo": "through redis"}


async def test_it_refuses_a_websocket_from_a_foreign_origin():
    communicator = WebsocketCommunicator(
        application, "/ws/ping/", headers=[(b"origin", b"http://evil.example")]
    )

    connected, _ = await communicator.connect()

    assert not connected
    # Nothing stays behind for a refused handshake: no consumer, no channel-layer receive waiting for
    # the client to go (Channels' own denier keeps one, a blocking Redis pop, until then).
    ended, _ = await asyncio.wait([communicator.future], timeout=1)
    assert ended, "the refused connection's application is still running"


async def test_it_still_accepts_the_sites_own_origin_after_refusing_one():
    refused = WebsocketCommunicator(application, "/ws/ping/", headers=[(b"origin", b"http://evil.example")])
    assert not (await refused.connect())[0]

    reply = await ping_round_trip("after a refusal")

    assert reply == {"type": "pong", "echo": "after a refusal"}
