"""structlog set-up, once per process: one JSON object per line on standard output."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

import orjson
import structlog


class JsonLines:
    """Writes each rendered line to a binary stream, and flushes it at once, except inside
    `held()`: the per-decision lines of a batch are flushed together when it ends, one write
    instead of one per ticket (the log call is on every ticket's path)."""

    def __init__(self, stream: BinaryIO) -> None:
        self._write = stream.write
        self._flush = stream.flush
        self._held = 0

    def msg(self, message: bytes) -> None:
        self._write(message + b"\n")
        if not self._held:
            self._flush()

    debug = info = warning = warn = error = critical = exception = fatal = msg

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1
            self._flush()


_output: JsonLines | None = None


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Flush log lines once when the block ends (a batch) rather than line by line."""
    if _output is None:
        yield
        return
    with _output.held():
        yield


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    global _output  # noqa: PLW0603 - one output per process, set up once at start
    renderer: structlog.types.Processor
    factory: Callable[..., Any]
    if fmt == "json":
        # JSON escapes newlines and control characters, so ticket text cannot forge a log line.
        renderer = structlog.processors.JSONRenderer(serializer=orjson.dumps)
        _output = JsonLines(sys.stdout.buffer)
        output = _output
        factory = lambda *_args: output  # noqa: E731
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
        _output = None
        factory = structlog.PrintLoggerFactory(sys.stdout)
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
    # Libraries (aiokafka, FastStream) log through the standard library, on standard error:
    # their chatter below WARNING stays out of the way.
    logging.basicConfig(stream=sys.stderr, level=max(logging.getLevelName(level), logging.WARNING))
