"""Log output: one JSON object per line, written at once outside a batch and together at the
end of a batch, nothing lost when the stream takes only part of a write."""

from __future__ import annotations

import io
import json
import re
import sys
from datetime import UTC, datetime

import pytest
import structlog

from services.runtime import logs
from services.runtime.logs import JsonLines, configure_logging


class RawStream:
    """Like an unbuffered standard output: each write may take only part of the data."""

    def __init__(self, chunk: int) -> None:
        self.chunk = chunk
        self.data = b""
        self.writes = 0
        self.flushes = 0

    def write(self, data: bytes | memoryview) -> int:
        taken = bytes(data[: self.chunk])
        self.data += taken
        self.writes += 1
        return len(taken)

    def flush(self) -> None:
        self.flushes += 1


def line(n: int) -> bytes:
    return json.dumps({"event": "ticket_routed", "n": n, "text": "x" * 50}).encode()


def test_outside_a_batch_each_line_is_written_and_flushed_at_once() -> None:
    stream = RawStream(chunk=1 << 20)
    out = JsonLines(stream)  # type: ignore[arg-type]
    out.info(line(1))
    assert stream.data == line(1) + b"\n"
    assert stream.flushes == 1


def test_lines_of_a_batch_are_written_together_in_order_when_it_ends() -> None:
    stream = RawStream(chunk=1 << 20)
    out = JsonLines(stream)  # type: ignore[arg-type]
    with out.held():
        for n in range(500):
            out.info(line(n))
        assert stream.data == b""  # nothing yet: one write at the end
    assert stream.writes == 1
    assert [json.loads(x)["n"] for x in stream.data.splitlines()] == list(range(500))


def test_a_stream_taking_part_of_each_write_still_gets_every_line() -> None:
    stream = RawStream(chunk=97)
    out = JsonLines(stream, max_held_lines=64)  # type: ignore[arg-type]
    with out.held():
        for n in range(300):
            out.warning(line(n))
    assert [json.loads(x)["n"] for x in stream.data.splitlines()] == list(range(300))
    assert stream.data.endswith(b"\n")


def test_a_long_batch_is_written_every_max_held_lines() -> None:
    stream = RawStream(chunk=1 << 20)
    out = JsonLines(stream, max_held_lines=100)  # type: ignore[arg-type]
    with out.held():
        for n in range(250):
            out.info(line(n))
        assert len(stream.data.splitlines()) == 200  # bounded memory while held
    assert len(stream.data.splitlines()) == 250


def _logged(monkeypatch, fmt: str, emit) -> bytes:  # type: ignore[no-untyped-def]
    """What `emit(logger)` writes to standard output with logging configured as `fmt`."""
    stdout = io.TextIOWrapper(io.BytesIO(), write_through=True)
    monkeypatch.setattr(sys, "stdout", stdout)
    monkeypatch.setattr(logs, "_output", None)  # restored after the test, like sys.stdout
    configure_logging("INFO", fmt)
    try:
        emit(structlog.get_logger())
    finally:
        structlog.reset_defaults()
    written: bytes = stdout.buffer.getvalue()  # type: ignore[attr-defined]
    return written


def test_a_json_line_carries_level_and_a_utc_rfc3339_timestamp(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The timestamp is a datetime written by orjson: it must still read as RFC 3339 in UTC
    (`Z`), and values of other types as JSON."""
    window: list[datetime] = []

    def emit(log: structlog.types.BindableLogger) -> None:
        window.append(datetime.now(UTC))
        log.info("ticket_routed", ticket_id="T-1", revision=2)
        window.append(datetime.now(UTC))
        log.debug("below_the_level")

    lines = _logged(monkeypatch, "json", emit).splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["event"] == "ticket_routed"
    assert entry["level"] == "info"
    assert (entry["ticket_id"], entry["revision"]) == ("T-1", 2)
    stamp = entry["timestamp"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z", stamp)
    assert window[0] <= datetime.fromisoformat(stamp) <= window[1]


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_times_in_a_line_read_as_rfc3339_utc_in_both_formats(monkeypatch, fmt: str) -> None:  # type: ignore[no-untyped-def]
    due = datetime(2026, 11, 24, 14, tzinfo=UTC)
    text = _logged(
        monkeypatch, fmt, lambda log: log.info("ticket_routed", response_due_at=due)
    ).decode()
    assert "2026-11-24T14:00:00Z" in text
    assert "datetime.datetime" not in text
    assert re.match(r"(\{.*\"timestamp\":\")?\d{4}-\d\d-\d\dT[\d:.]+Z", text)
