"""Limits daphne lacks, added to its protocol classes when it serves Attune.

Request bodies: Twisted, daphne's HTTP layer, parses form and multipart bodies
into ``request.args`` in its event-loop thread before daphne hands the request
on, and nothing reads those args: one 10 MB body of 200,000 tiny parts froze
every connection of the process for seconds. That parsing is turned off;
Django parses bodies itself, in a worker thread, with its own field and file
limits. Twisted also buffers any body of 100 KB or more
in a temporary file. Images sent to the API are personal data that must never
touch a disk, so every body stays in memory, and one larger than
``DATA_UPLOAD_MAX_MEMORY_SIZE`` is dropped as it arrives and answered 413.
Django's ASGI handler spools to disk only above ``FILE_UPLOAD_MAX_MEMORY_SIZE``,
which settings keep equal to it.

WebSocket pings: daphne pings only a connection that has sent nothing for the
ping interval, so a client that keeps sending frames but never reads its socket
is never pinged, and autobahn, under daphne, takes any incoming message as
good as a pong; the answers meant for such a client pile up in the server's
buffers. Every open connection is pinged instead, and only a pong counts: one
that does not answer within the ping timeout (it cannot, without reading) is
dropped. Browsers answer pings by themselves.
"""

from __future__ import annotations

import json
from io import BytesIO

TOO_LARGE_BODY = json.dumps(
    {"error": {"code": "request_too_large", "message": "The request body is too large.", "details": None}}
).encode()


def install_daphne_body_limit(max_bytes: int) -> None:
    """Patch daphne's request class so bodies stay in memory and are capped at ``max_bytes``."""
    from daphne.http_protocol import WebRequest

    original_process = getattr(WebRequest, "_attune_original_process", WebRequest.process)

    def gotLength(self, length: int | None) -> None:  # noqa: N802 (Twisted's name)
        self.content = BytesIO()
        self.attune_too_large = length is not None and length > max_bytes

    def handleContentChunk(self, data: bytes) -> None:  # noqa: N802
        if self.attune_too_large or self.content.tell() + len(data) > max_bytes:
            self.attune_too_large = True  # keep reading the connection, but nothing more is stored
            self.content.seek(0)
            self.content.truncate()
            return
        self.content.write(data)

    def process(self) -> None:
        if getattr(self, "attune_too_large", False):
            self.setResponseCode(413)
            self.setHeader(b"Content-Type", b"application/json")
            self.setHeader(b"Connection", b"close")
            self.write(TOO_LARGE_BODY)
            self.finish()
            return
        original_process(self)

    WebRequest._attune_original_process = original_process
    # Twisted's own switch (twisted.web.http.Request sets it per request in __init__): no form or
    # multipart parsing in the event loop.
    original_init = getattr(WebRequest, "_attune_original_init", WebRequest.__init__)

    def __init__(self, *args, **kwargs) -> None:
        original_init(self, *args, **kwargs)
        self._parsePOSTFormSubmission = False

    WebRequest._attune_original_init = original_init
    WebRequest.__init__ = __init__
    WebRequest.gotLength = gotLength
    WebRequest.handleContentChunk = handleContentChunk
    WebRequest.process = process


def install_daphne_ping_every_connection() -> None:
    """Patch daphne's WebSocket classes so incoming messages neither postpone a ping nor stand for a pong."""
    from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol

    original_init = getattr(WebSocketFactory, "_attune_original_init", WebSocketFactory.__init__)

    def __init__(self, *args, **kwargs) -> None:
        original_init(self, *args, **kwargs)
        # failByDrop=False: a protocol failure (e.g. a message over the size limit) ends with a close
        # frame and its code (1009), not a dropped TCP connection the client can only read as 1006.
        self.setProtocolOptions(autoPingRestartOnAnyTraffic=False, failByDrop=False)

    WebSocketFactory._attune_original_init = original_init
    WebSocketFactory.__init__ = __init__

    original_on_message = getattr(
        WebSocketProtocol, "_attune_original_onMessage", WebSocketProtocol.onMessage
    )

    def onMessage(self, payload: bytes, isBinary: bool) -> None:  # noqa: N802, N803 (autobahn's names)
        last_ping = self.last_ping
        original_on_message(self, payload, isBinary)
        self.last_ping = last_ping

    WebSocketProtocol._attune_original_onMessage = original_on_message
    WebSocketProtocol.onMessage = onMessage
