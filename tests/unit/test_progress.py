"""The stall watch: when a partition with records to read stops moving, and when it moves again."""

from __future__ import annotations

import logging

from structlog.testing import capture_logs

from services.runtime.health import Readiness
from services.runtime.progress import ConsumerProgress, FastStreamLog

REASON = "partition tickets.incoming[3] makes no progress"


def _watch() -> tuple[ConsumerProgress, Readiness]:
    readiness = Readiness()
    readiness.clear("starting")
    return ConsumerProgress(readiness, stall_after_seconds=10), readiness


def test_a_partition_with_lag_that_does_not_move_is_stalled_after_the_timeout() -> None:
    progress, readiness = _watch()
    progress.observe("tickets.incoming", 3, position=40, highwater=45, now=100.0)
    progress.observe("tickets.incoming", 3, position=40, highwater=45, now=109.9)
    assert readiness.ready
    progress.observe("tickets.incoming", 3, position=40, highwater=46, now=110.0)
    assert readiness.reasons == [REASON]


def test_a_partition_that_moves_or_has_nothing_to_read_is_never_stalled() -> None:
    progress, readiness = _watch()
    for second in range(0, 100, 5):
        progress.observe("tickets.incoming", 3, position=40 + second, highwater=500, now=second)
    for second in range(100, 200, 5):
        progress.observe("tickets.incoming", 3, position=140, highwater=140, now=second)
    assert readiness.ready


def test_progress_clears_the_stall() -> None:
    progress, readiness = _watch()
    progress.observe("tickets.incoming", 3, position=40, highwater=45, now=0.0)
    progress.observe("tickets.incoming", 3, position=40, highwater=45, now=30.0)
    assert not readiness.ready
    progress.observe("tickets.incoming", 3, position=41, highwater=45, now=32.0)
    assert readiness.ready


def test_a_partition_moved_to_another_consumer_is_no_longer_reported() -> None:
    progress, readiness = _watch()
    progress.observe("tickets.incoming", 3, position=40, highwater=45, now=0.0)
    progress.observe("tickets.incoming", 3, position=40, highwater=45, now=30.0)
    progress.forget_others({("tickets.incoming", 1)}, now=31.0)
    assert readiness.ready


def test_the_stall_log_names_the_partition_offset_and_the_consumer_error_as_cause() -> None:
    progress, _ = _watch()
    progress.observe("tickets.incoming", 3, position=40, highwater=45, now=0.0)
    progress.consumer_error("CorruptRecordException: Invalid CRC", now=1.0)
    with capture_logs() as logs:
        progress.observe("tickets.incoming", 3, position=40, highwater=45, now=12.0)
    (stall,) = [line for line in logs if line["event"] == "partition_stalled"]
    assert stall["log_level"] == "error"
    assert (stall["topic"], stall["partition"], stall["offset"], stall["lag"]) == (
        "tickets.incoming",
        3,
        40,
        5,
    )
    assert stall["cause"] == "CorruptRecordException: Invalid CRC"


def test_without_a_consumer_error_a_refusing_broker_is_named_as_the_cause() -> None:
    progress, readiness = _watch()
    readiness.fail("publishing")
    progress.observe("tickets.incoming", 3, position=40, highwater=45, now=0.0)
    with capture_logs() as logs:
        progress.observe("tickets.incoming", 3, position=40, highwater=45, now=12.0)
    assert "does not acknowledge the outputs" in logs[0]["cause"]


def test_faststream_errors_reach_the_watch_and_its_chatter_does_not() -> None:
    causes: list[str] = []
    log = FastStreamLog(causes.append)
    log.log(logging.INFO, "Received", extra={"message_id": "1"})
    log.log(logging.ERROR, "Kafka error occurred", exc_info=ValueError("bad batch"))
    assert causes == ["ValueError: bad batch"]
