"""structlog set-up, once per process: one JSON object per line on standard output."""

from __future__ import annotations

import logging
import sys

import orjson
import structlog


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    renderer: structlog.types.Processor
    factory: structlog.BytesLoggerFactory | structlog.PrintLoggerFactory
    if fmt == "json":
        # JSON escapes newlines and control characters, so ticket text cannot forge a log line.
        renderer = structlog.processors.JSONRenderer(serializer=orjson.dumps)
        factory = structlog.BytesLoggerFactory(sys.stdout.buffer)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
        factory = structlog.PrintLoggerFactory(sys.stdout)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
    # Libraries (aiokafka, FastStream) log through the standard library: same stream, same level,
    # but their chatter below WARNING stays out of the way.
    logging.basicConfig(stream=sys.stderr, level=max(logging.getLevelName(level), logging.WARNING))
