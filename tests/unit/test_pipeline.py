"""The shared batch loop: dead letters, at-least-once on publish failure, state rollback."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from prometheus_client import REGISTRY

from services.enricher.app import EnricherProcessor
from services.router.app import RouterProcessor
from services.runtime.health import Readiness
from services.runtime.pipeline import BatchPipeline, Outgoing, Rejected, dead_letter
from services.runtime.settings import EnricherSettings, RouterSettings
from tests.factories import NETAPP, component, encode, sample_index, ticket_event


@dataclass
class Record:
    value: bytes | None
    key: bytes | None = b"T-1"
    topic: str = "tickets.incoming"
    partition: int = 3
    offset: int = 42
    timestamp: int = 0
    headers: Sequence[tuple[str, bytes]] = field(default_factory=list)


class Broker:
    """Collects what is published; `fail` makes every acknowledgement fail."""

    def __init__(self) -> None:
        self.sent: list[Outgoing] = []
        self.fail = False

    async def publish(self, outs: Sequence[Outgoing]) -> list[asyncio.Future[Any]]:
        self.sent.extend(outs)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.fail:
            future.set_exception(ConnectionError("broker gone"))
        else:
            future.set_result(None)
        return [future]


def test_dead_letter_keeps_bytes_key_and_says_why() -> None:
    record = Record(b"\xff{", headers=[("trace", b"abc"), ("bin", b"\xff"), ("error.type", b"x")])
    out = dead_letter(record, "invalid_json", "bad\nline", "tickets.deadletter")
    assert (out.topic, out.key, out.value) == ("tickets.deadletter", b"T-1", b"\xff{")
    assert out.headers == {
        "trace": "abc",
        "error.type": "invalid_json",
        "error.message": "bad line",
        "source.topic": "tickets.incoming",
        "source.partition": "3",
        "source.offset": "42",
    }


class Exploding:
    def process(self, record: Any) -> Sequence[Outgoing]:
        if record.value == b"boom":
            raise ZeroDivisionError("bug")
        if record.value == b"bad":
            raise Rejected("invalid_event", "nope")
        return [Outgoing("out", b"k", record.value)]

    def batch_done(self) -> None: ...
    def batch_failed(self) -> None: ...


async def test_bad_and_buggy_records_become_dead_letters_and_the_rest_goes_on() -> None:
    broker = Broker()
    pipeline = BatchPipeline(Exploding(), broker.publish, "dlq", Readiness())
    await pipeline.handle([Record(b"boom"), Record(b"bad"), Record(b"ok")])
    assert [(o.topic, o.value) for o in broker.sent] == [
        ("dlq", b"boom"),
        ("dlq", b"bad"),
        ("out", b"ok"),
    ]
    assert broker.sent[0].headers["error.type"] == "processing_error"
    assert broker.sent[0].headers["error.message"] == "ZeroDivisionError: bug"


async def test_unacknowledged_batch_raises_and_is_not_remembered() -> None:
    broker = Broker()
    router = RouterProcessor(RouterSettings())
    enricher = EnricherProcessor(sample_index(), EnricherSettings())
    event = ticket_event(components=[component(NETAPP, True)])
    (enriched,) = enricher.process(Record(encode(event)))
    readiness = Readiness()
    readiness.clear("starting")
    pipeline = BatchPipeline(
        router, broker.publish, "dlq", readiness, retry_backoff_max_seconds=0.01
    )
    broker.fail = True
    with pytest.raises(ConnectionError):
        await pipeline.handle([Record(enriched.value)])
    assert not readiness.ready
    # Delivered again after the failure: routed, not mistaken for a duplicate of itself.
    broker.fail = False
    broker.sent.clear()
    await pipeline.handle([Record(enriched.value)])
    assert [o.topic for o in broker.sent] == ["queue.redhat", "sla.ownership"]
    assert readiness.ready
    # Now it is remembered: a third delivery is a duplicate.
    broker.sent.clear()
    await pipeline.handle([Record(enriched.value)])
    assert broker.sent == []
    assert json.loads(enriched.value)["type"] == "support.ticket.enriched"


class Slow:
    """Processes each record in 20 ms; its broker acknowledges each send 50 ms later. Notes
    what happens in which order."""

    def __init__(self) -> None:
        self.happened: list[str] = []

    def process(self, record: Any) -> Sequence[Outgoing]:
        time.sleep(0.02)
        self.happened.append(record.value.decode())
        return [Outgoing("out", b"k", record.value)]

    def batch_done(self) -> None: ...
    def batch_failed(self) -> None: ...

    async def publish(self, outs: Sequence[Outgoing]) -> list[asyncio.Future[Any]]:
        self.happened.append(f"send {len(outs)}")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(0.05, future.set_result, None)
        return [future]


async def test_outputs_are_sent_in_parts_while_the_batch_is_processed() -> None:
    slow = Slow()
    pipeline = BatchPipeline(slow, slow.publish, "dlq", Readiness(), send_every=2)
    await pipeline.handle([Record(v.encode()) for v in "abcde"])
    assert slow.happened == ["a", "b", "send 2", "c", "d", "send 2", "e", "send 1"]


async def test_batch_time_is_split_into_own_work_and_waiting() -> None:
    names = [
        f"ticketroute_{name}"
        for name in (
            "batch_seconds_sum",
            "batch_seconds_count",
            "ack_wait_seconds_sum",
            "ack_wait_seconds_count",
            "processing_latency_seconds_count",
        )
    ]
    before = {name: REGISTRY.get_sample_value(name) or 0.0 for name in names}
    slow = Slow()
    await BatchPipeline(slow, slow.publish, "dlq", Readiness()).handle([Record(b"a"), Record(b"b")])
    batch, batches, wait, waits, latencies = (
        (REGISTRY.get_sample_value(name) or 0.0) - before[name] for name in names
    )
    assert (batches, waits, latencies) == (1, 1, 2)
    assert wait >= 0.05  # the acknowledgement of the one send
    assert batch - wait >= 0.04  # the two records' processing, before it


def test_dead_letter_too_large_to_publish_is_cut_to_fit() -> None:
    big = Record(b"x" * 2_000_000, key=b"T-9")
    out = dead_letter(big, "invalid_event", "too long", "dlq", max_request_size=1_048_576)
    assert out.headers["error.value_truncated"] == "true"
    assert out.headers["error.value_size"] == "2000000"
    size = len(out.key) + len(out.value) + sum(len(k) + len(v) for k, v in out.headers.items())
    assert 1_040_000 < size < 1_048_576
    assert out.value == big.value[: len(out.value)]
    fits = Record(b"y" * 1_000_000)
    kept = dead_letter(fits, "invalid_event", "too long", "dlq", max_request_size=1_048_576)
    assert kept.value == fits.value
    assert "error.value_truncated" not in kept.headers
