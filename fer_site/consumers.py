"""A diagnostic WebSocket that echoes each message through the channel layer.

It proves the whole path a live page depends on (socket, routing, channel
layer, possibly Redis) without the camera or the model.
"""

from __future__ import annotations

import json

from channels.generic.websocket import AsyncWebsocketConsumer

MAX_PING_BYTES = 1024


class PingConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await self.accept()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None or len(text_data) > MAX_PING_BYTES:
            await self.close(code=1003)
            return
        # Out through the layer and back to this very channel.
        await self.channel_layer.send(self.channel_name, {"type": "ping.echo", "text": text_data})

    async def ping_echo(self, event: dict) -> None:
        await self.send(text_data=json.dumps({"type": "pong", "echo": event["text"]}))
