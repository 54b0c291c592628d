"""uvicorn's httptools protocol with the limits it lacks against slow and hostile clients.

uvicorn (0.54) closes an idle keep-alive connection after ``timeout_keep_alive`` (used
as is), but it has no limit on the time a client may take to send a request: a
connection that sends half a request line, or trickles a body, is held forever (an
open issue upstream). Its ``limit_concurrency`` does not help: it is checked only once
a request head is complete, which a slow client never sends, and while the number of
connections is at the limit it answers 503 to *every* request, also on healthy
kept-alive connections. httptools itself puts no bound on the size of a request head.

The gaps closed here, per connection:

* a request head must be complete within ``head_timeout_s`` of its first byte (or of
  the connection's start), else 408 and close;
* a body must be complete within ``body_timeout_s`` of the end of its head, else 408
  and close (the app sees a disconnect);
* a head larger than ``MAX_HEAD_BYTES`` gets 431 and close, however its bytes arrive
  (one read or many: the parsed request line and headers are counted, and so are the
  raw bytes of a head that has not ended yet);
* beyond ``max_connections`` open connections in this worker, the connection that has
  waited longest without sending a complete request head (a slow client, or an idle
  kept-alive one) is shed, as nginx does, so a newcomer still gets an answer while
  slow clients are held; only when every connection is busy with a request does the
  newcomer get an immediate 503.

Each of these is logged once per interval by :mod:`app.serving.logs`, not per client.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("modelship.serving")
MAX_HEAD_BYTES = 64 * 1024

_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large", 503: b"Busy"}


def _raw_response(status: int, message: str) -> bytes:
    body = ('{"error": "' + message.replace('"', "'") + '"}').encode("utf-8")
    return b"".join(
        [
            b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status]),
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n",
            *([b"retry-after: 1\r\n"] if status == 503 else []),
            b"\r\n",
            body,
        ]
    )


class _HeadTooLarge(Exception):
    """Raised from a parser callback to stop parsing a head over the limit."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol plus read deadlines, a head size limit and a connection cap.

    Settings come from ``config.modelship`` (a :class:`ServeConfig`), attached to the
    uvicorn Config by ``app.serving.server``.
    """

    def __init__(self, config: Any, server_state: Any, app_state: Any, _loop: Any = None):
        super().__init__(config, server_state, app_state, _loop)
        settings = getattr(config, "modelship", None)
        self._head_timeout = getattr(settings, "head_timeout_s", 10.0)
        self._body_timeout = getattr(settings, "body_timeout_s", 30.0)
        self._max_connections = getattr(settings, "max_connections", 1000)
        self._deadline: asyncio.TimerHandle | None = None
        self._reading_head = True
        self._head_bytes = 0  # raw bytes of a head that has not ended yet
        self._parsed_head = 0  # bytes of the request line and headers parsed so far
        self._head_too_large = False
        # when this connection began waiting for a request head (None: a request is
        # being read or answered): the one waiting longest is shed at the cap
        self._waiting_since: float | None = None

    # ---- connection -------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._waiting_since = self.loop.time()
        if len(self.connections) > self._max_connections and not self._shed_one():
            log.warning(
                "too many open connections (over %d in this worker, "
                "MODELSHIP_MAX_CONNECTIONS), all busy with requests: answered 503",
                self._max_connections,
            )
            self._waiting_since = None
            self._refuse(503, "The server has too many open connections; retry shortly.")
            return
        self._arm(self._head_timeout, "head")

    def _shed_one(self) -> bool:
        """Close the connection that has waited longest for a complete request head, to
        make room for this one. False when there is none (all are busy)."""
        oldest: GuardedHttpToolsProtocol | None = None
        for other in self.connections:
            if other is self or not isinstance(other, GuardedHttpToolsProtocol):
                continue
            since = other._waiting_since
            if since is None or other.transport is None or other.transport.is_closing():
                continue
            if oldest is None or since < oldest._waiting_since:  # type: ignore[operator]
                oldest = other
        if oldest is None:
            return False
        log.warning(
            "too many open connections (over %d in this worker, MODELSHIP_MAX_CONNECTIONS):"
            " closed the one that waited longest for a request",
            self._max_connections,
        )
        oldest._shed()
        return True

    def _shed(self) -> None:
        self._waiting_since = None
        if self._head_bytes or self._parsed_head:  # in the middle of a head: say why
            self._refuse(503, "The server is busy; retry shortly.")
        else:  # idle: close, as for an expired keep-alive
            self._disarm()
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        in_head = self._reading_head
        super().data_received(data)
        if in_head and self._reading_head and not self.transport.is_closing():
            # still no complete head after this chunk: count it against the head limit
            # (the parser keeps an unfinished header to itself until it ends)
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._too_large()

    def send_400_response(self, msg: str) -> None:
        if self._head_too_large:  # the parser stopped because the head is too large
            self._too_large()
            return
        super().send_400_response(msg)

    def _too_large(self) -> None:
        log.warning("request head over %d bytes: answered 431", MAX_HEAD_BYTES)
        self._refuse(431, f"The request head is over {MAX_HEAD_BYTES} bytes.")

    def _count_head(self, n: int) -> None:
        """Count parsed head bytes; over the limit, stop the parser (before the request
        reaches the app): uvicorn then calls :meth:`send_400_response`, which says 431."""
        self._parsed_head += n
        if self._parsed_head > MAX_HEAD_BYTES:
            self._head_too_large = True
            raise _HeadTooLarge

    # ---- parser callbacks -----------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_head = True
        self._parsed_head = 16  # method, version, spaces and line ends
        if self._deadline is None:  # a new request on a kept-alive connection
            self._arm(self._head_timeout, "head")

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))  # may come in pieces
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._waiting_since = None
        self._head_bytes = 0
        self._parsed_head = 0
        self._disarm()
        self._arm(self._body_timeout, "body")
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        # back to waiting for the next request on this kept-alive connection
        self._waiting_since = self.loop.time()
        super().on_response_complete()

    # ---- deadlines --------------------------------------------------------------------
    def _arm(self, seconds: float, what: str) -> None:
        self._disarm()
        if seconds > 0:
            self._deadline = self.loop.call_later(seconds, self._expired, what, seconds)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self, what: str, seconds: float) -> None:
        self._deadline = None
        if self.transport is None or self.transport.is_closing():
            return
        if what == "head" and self.cycle is not None and not self.cycle.response_complete:
            return  # a response is being written: uvicorn's own keep-alive logic follows
        log.warning(
            "a client took over %gs to send a request %s (MODELSHIP_%s_TIMEOUT_S): answered 408",
            seconds,
            what,
            what.upper(),
        )
        started = self.cycle is not None and self.cycle.response_started
        if what == "head" and self._head_bytes == 0 and self.cycle is None:
            # connected and never sent a byte: no one to answer, just close
            self.transport.close()
            return
        if not started:
            self._refuse(408, f"The request {what} did not arrive within {seconds:g} s.")
        else:
            self.transport.close()

    def _refuse(self, status: int, message: str) -> None:
        self._disarm()
        try:
            self.transport.write(_raw_response(status, message))
        finally:
            self.transport.close()
