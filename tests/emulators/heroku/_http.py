"""A minimal streaming HTTP/1.1 client on h11 for the emulator's two proxies.

Why not requests or httpx: the proxies run inside the emulator's asyncio loop and must
stream bodies both ways (blob uploads, chunked PATCHes, slow app responses) without a
thread per request; h11 is already there as uvicorn's HTTP parser.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable

import h11

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}

Headers = list[tuple[bytes, bytes]]


class UpstreamError(Exception):
    """The upstream could not be reached or broke the exchange."""


class Upstream:
    """One request/response exchange with an upstream on a fresh connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.conn = h11.Connection(h11.CLIENT)

    @classmethod
    async def connect(cls, host: str, port: int, timeout: float = 5.0) -> Upstream:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        except (OSError, TimeoutError) as exc:
            raise UpstreamError(f"cannot connect to {host}:{port}: {exc}") from exc
        return cls(reader, writer)

    async def _next_event(self) -> object:
        while True:
            event = self.conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            try:
                data = await self.reader.read(65536)
            except OSError as exc:
                raise UpstreamError(str(exc)) from exc
            self.conn.receive_data(data)

    async def send_request(
        self, method: str, target: str, headers: Headers, body: AsyncIterator[bytes]
    ) -> None:
        try:
            self.writer.write(
                self.conn.send(h11.Request(method=method, target=target, headers=headers))
            )
            async for chunk in body:
                if chunk:
                    self.writer.write(self.conn.send(h11.Data(data=chunk)))
                    await self.writer.drain()
            self.writer.write(self.conn.send(h11.EndOfMessage()))
            await self.writer.drain()
        except (OSError, h11.LocalProtocolError) as exc:
            raise UpstreamError(str(exc)) from exc

    async def response(self) -> h11.Response:
        try:
            while True:
                event = await self._next_event()
                if isinstance(event, h11.Response):
                    return event
                if isinstance(event, h11.ConnectionClosed):
                    raise UpstreamError("upstream closed the connection without a response")
        except h11.RemoteProtocolError as exc:
            raise UpstreamError(str(exc)) from exc

    async def body(self) -> AsyncIterator[bytes]:
        try:
            while True:
                event = await self._next_event()
                if isinstance(event, h11.Data):
                    yield bytes(event.data)
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    return
        except h11.RemoteProtocolError as exc:
            raise UpstreamError(str(exc)) from exc

    def close(self) -> None:
        self.writer.close()


def request_headers(
    scope_headers: Iterable[tuple[bytes, bytes]], has_body: bool, extra: Headers = ()
) -> Headers:
    """The client's headers minus hop-by-hop ones; framing redone for the new hop."""
    out: Headers = []
    length = None
    chunked = False
    for name, value in scope_headers:
        lower = name.lower()
        if lower == b"transfer-encoding":
            chunked = True
        if lower == b"content-length":
            length = value
        if lower.decode("latin-1") in HOP_BY_HOP or lower == b"content-length":
            continue
        out.append((lower, value))
    if length is not None:
        out.append((b"content-length", length))
    elif chunked or has_body:
        out.append((b"transfer-encoding", b"chunked"))
    out.extend(extra)
    out.append((b"connection", b"close"))
    return out


def response_headers(headers: Iterable[tuple[bytes, bytes]]) -> Headers:
    return [
        (name.lower(), value)
        for name, value in headers
        if name.lower().decode("latin-1") not in HOP_BY_HOP
    ]


async def asgi_body(receive) -> AsyncIterator[bytes]:  # type: ignore[no-untyped-def]
    """The request body of an ASGI http scope, chunk by chunk."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


async def iterate(data: bytes) -> AsyncIterator[bytes]:
    yield data
