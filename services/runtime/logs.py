"""structlog set-up, once per process: one JSON object per line on standard output."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, BinaryIO

import orjson
import structlog


class JsonLines:
    """Writes each rendered line to a binary stream and flushes it at once, except inside
    `held()`: the lines of a batch (one per decision) are kept and written together when it
    ends, in one write call. With PYTHONUNBUFFERED=1, as in our image, standard output has
    no buffer at all, and a write per line was a system call per ticket."""

    def __init__(self, stream: BinaryIO, max_held_lines: int = 2000) -> None:
        self._write = stream.write
        self._flush = stream.flush
        self._held = 0
        self._lines: list[bytes] = []
        self._max_held_lines = max_held_lines

    def msg(self, message: bytes) -> None:
        if self._held:
            self._lines.append(message)
            if len(self._lines) >= self._max_held_lines:
                self._drain()
        else:
            self._write(message + b"\n")
            self._flush()

    debug = info = warning = warn = error = critical = exception = fatal = msg

    def _drain(self) -> None:
        if self._lines:
            data = memoryview(b"\n".join(self._lines) + b"\n")
            self._lines.clear()
            while data:  # an unbuffered stream may take part of it
                written = self._write(data)
                if not written:  # a full non-blocking stream: drop, never hang the service
                    break
                data = data[written:]
        self._flush()

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1
            if not self._held:
                self._drain()


_output: JsonLines | None = None


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Flush log lines once when the block ends (a batch) rather than line by line."""
    if _output is None:
        yield
        return
    with _output.held():
        yield


def _utc_now(
    _logger: object, _method: str, event_dict: structlog.types.EventDict
) -> structlog.types.EventDict:
    # A datetime, written by the renderer: datetime.isoformat() took a third of the cost of the
    # router's decision line, where orjson writes it for next to nothing.
    event_dict["timestamp"] = datetime.now(UTC)
    return event_dict


def _times_as_text(
    _logger: object, _method: str, event_dict: structlog.types.EventDict
) -> structlog.types.EventDict:
    """For the console: times as RFC 3339 text, like the JSON lines (UTC ends in `Z`)."""
    for key, value in event_dict.items():
        if isinstance(value, datetime):
            event_dict[key] = value.isoformat().replace("+00:00", "Z")
    return event_dict


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    global _output  # noqa: PLW0603 - one output per process, set up once at start
    rendering: list[structlog.types.Processor]
    factory: Callable[..., Any]
    if fmt == "json":
        # JSON escapes newlines and control characters, so ticket text cannot forge a log line.
        # orjson writes datetimes as RFC 3339, UTC with `Z`.
        rendering = [
            structlog.processors.JSONRenderer(serializer=orjson.dumps, option=orjson.OPT_UTC_Z)
        ]
        _output = JsonLines(sys.stdout.buffer)
        output = _output
        factory = lambda *_args: output  # noqa: E731
    else:
        rendering = [_times_as_text, structlog.dev.ConsoleRenderer(colors=False)]
        _output = None
        factory = structlog.PrintLoggerFactory(sys.stdout)
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            _utc_now,
            structlog.processors.format_exc_info,
            *rendering,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
    # Libraries (aiokafka, FastStream) log through the standard library, on standard error:
    # their chatter below WARNING stays out of the way.
    logging.basicConfig(stream=sys.stderr, level=max(logging.getLevelName(level), logging.WARNING))
