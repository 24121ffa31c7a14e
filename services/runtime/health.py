"""The operations HTTP server: /metrics, /healthz and /readyz on one port.

A few lines of asyncio rather than a web framework: three read-only GET endpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from services.runtime.metrics import READY

_MAX_REQUEST = 8192


class Readiness:
    """Whether the service can do its work: started, and the brokers answer."""

    def __init__(self) -> None:
        self._reasons: set[str] = {"starting"}

    def fail(self, reason: str) -> None:
        self._reasons.add(reason)
        READY.set(0)

    def clear(self, reason: str) -> None:
        self._reasons.discard(reason)
        READY.set(0 if self._reasons else 1)

    @property
    def ready(self) -> bool:
        return not self._reasons

    @property
    def reasons(self) -> list[str]:
        return sorted(self._reasons)


def _response(status: str, body: bytes, content_type: str = "text/plain; charset=utf-8") -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


def route(path: str, readiness: Readiness) -> bytes:
    if path == "/metrics":
        return _response("200 OK", generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
    if path == "/healthz":
        return _response("200 OK", b"ok\n")
    if path == "/readyz":
        if readiness.ready:
            return _response("200 OK", b"ready\n")
        return _response("503 Service Unavailable", ("; ".join(readiness.reasons) + "\n").encode())
    return _response("404 Not Found", b"not found\n")


def _handler(
    readiness: Readiness,
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
            method, _, rest = request[:_MAX_REQUEST].decode("latin-1").partition(" ")
            path = rest.split(" ", 1)[0].split("?", 1)[0]
            if method not in {"GET", "HEAD"}:
                writer.write(_response("405 Method Not Allowed", b"GET only\n"))
            else:
                writer.write(route(path, readiness))
            await writer.drain()
        except (
            TimeoutError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ConnectionError,
        ):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    return handle


async def start_health_server(host: str, port: int, readiness: Readiness) -> asyncio.Server:
    return await asyncio.start_server(_handler(readiness), host, port, limit=_MAX_REQUEST)
