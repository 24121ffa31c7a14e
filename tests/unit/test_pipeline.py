"""The shared batch loop: dead letters, at-least-once on publish failure, state rollback."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any

import pytest
from prometheus_client import REGISTRY

from services.enricher.app import EnricherProcessor
from services.router.app import RouterProcessor
from services.runtime.health import Readiness
from services.runtime.pipeline import BatchPipeline, Outgoing, Rejected, dead_letter
from services.runtime.settings import EnricherSettings, RouterSettings
from tests.support.inprocess import Collecting, Stateless, consumer_record
from tests.support.tickets import Ref, component, encode, sample_index, ticket_event


def test_dead_letter_keeps_bytes_key_and_says_why() -> None:
    headers = [("trace", b"abc"), ("bin", b"\xff"), ("error.type", b"x")]
    record = consumer_record(b"\xff{", headers=headers, partition=3, offset=42)
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


class Exploding(Stateless):
    def process(self, record: Any) -> Sequence[Outgoing]:
        if record.value == b"boom":
            raise ZeroDivisionError("bug")
        if record.value == b"bad":
            raise Rejected("invalid_event", "nope")
        return [Outgoing("out", b"k", record.value)]


async def test_bad_and_buggy_records_become_dead_letters_and_the_rest_goes_on() -> None:
    producer = Collecting()
    pipeline = BatchPipeline(Exploding(), producer.publish, "dlq", Readiness())
    await pipeline.handle(
        [consumer_record(b"boom"), consumer_record(b"bad"), consumer_record(b"ok")]
    )
    assert [(o.topic, o.value) for o in producer.sent] == [
        ("dlq", b"boom"),
        ("dlq", b"bad"),
        ("out", b"ok"),
    ]
    assert producer.sent[0].headers["error.type"] == "processing_error"
    assert producer.sent[0].headers["error.message"] == "ZeroDivisionError: bug"


async def test_unacknowledged_batch_raises_and_is_not_remembered() -> None:
    producer = Collecting()
    router = RouterProcessor(RouterSettings())
    enricher = EnricherProcessor(sample_index(), EnricherSettings())
    event = ticket_event(components=[component(Ref.NETAPP, True)])
    (enriched,) = enricher.process(consumer_record(encode(event)))
    readiness = Readiness()
    readiness.clear("starting")
    pipeline = BatchPipeline(
        router, producer.publish, "dlq", readiness, retry_backoff_max_seconds=0.01
    )
    producer.fail = True
    with pytest.raises(ConnectionError):
        await pipeline.handle([consumer_record(enriched.value)])
    assert not readiness.ready
    # Delivered again after the failure: routed, not mistaken for a duplicate of itself.
    producer.fail = False
    producer.sent.clear()
    await pipeline.handle([consumer_record(enriched.value)])
    # The outputs, then (once they are acknowledged) what the memory learnt, on the changelog
    # partition of the input record.
    assert [o.topic for o in producer.sent] == [
        "queue.redhat",
        "sla.ownership",
        "ticketroute.router.memory",
    ]
    remembered = producer.sent[2]
    assert remembered.partition == consumer_record(enriched.value).partition
    assert json.loads(remembered.value) == {
        "event_id": event["id"],
        "revision": event["data"]["revision"],
    }
    assert readiness.ready
    # Now it is remembered: a third delivery is a duplicate.
    producer.sent.clear()
    await pipeline.handle([consumer_record(enriched.value)])
    assert producer.sent == []
    assert json.loads(enriched.value)["type"] == "support.ticket.enriched"


class Slow(Stateless):
    """Processes each record in 20 ms; its broker acknowledges each send 50 ms later. Notes
    what happens in which order."""

    def __init__(self) -> None:
        self.happened: list[str] = []

    def process(self, record: Any) -> Sequence[Outgoing]:
        time.sleep(0.02)
        self.happened.append(record.value.decode())
        return [Outgoing("out", b"k", record.value)]

    async def publish(self, outs: Sequence[Outgoing]) -> list[asyncio.Future[Any]]:
        self.happened.append(f"send {len(outs)}")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(0.05, future.set_result, None)
        return [future]


async def test_outputs_are_sent_in_parts_while_the_batch_is_processed() -> None:
    slow = Slow()
    pipeline = BatchPipeline(slow, slow.publish, "dlq", Readiness(), send_every=2)
    await pipeline.handle([consumer_record(v.encode()) for v in "abcde"])
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
    await BatchPipeline(slow, slow.publish, "dlq", Readiness()).handle(
        [consumer_record(b"a"), consumer_record(b"b")]
    )
    batch, batches, wait, waits, latencies = (
        (REGISTRY.get_sample_value(name) or 0.0) - before[name] for name in names
    )
    assert (batches, waits, latencies) == (1, 1, 2)
    assert wait >= 0.05  # the acknowledgement of the one send
    assert batch - wait >= 0.04  # the two records' processing, before it


def test_dead_letter_too_large_to_publish_is_cut_to_fit() -> None:
    big = consumer_record(b"x" * 2_000_000, key=b"T-9")
    out = dead_letter(big, "invalid_event", "too long", "dlq", max_request_size=1_048_576)
    assert out.headers["error.value_truncated"] == "true"
    assert out.headers["error.value_size"] == "2000000"
    size = len(out.key) + len(out.value) + sum(len(k) + len(v) for k, v in out.headers.items())
    assert 1_040_000 < size < 1_048_576
    assert out.value == big.value[: len(out.value)]
    fits = consumer_record(b"y" * 1_000_000)
    kept = dead_letter(fits, "invalid_event", "too long", "dlq", max_request_size=1_048_576)
    assert kept.value == fits.value
    assert "error.value_truncated" not in kept.headers
