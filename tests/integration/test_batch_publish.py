"""The services publish a batch's outputs as aiokafka record batches (`send_in_batches`), in
parts while the batch is processed (`BatchPipeline`): on the embedded broker, every record must
land on the partition the default partitioner would pick for its key, in order per key, with
its key, value and headers unchanged."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.partitioner import DefaultPartitioner

from services.runtime.embedded import EmbeddedBroker
from services.runtime.health import Readiness
from services.runtime.kafka import send_in_batches
from services.runtime.pipeline import BatchPipeline, Outgoing
from tests.support.inprocess import Stateless
from tests.support.processes import consumer_from_start

pytestmark = pytest.mark.integration  # every test here runs on the embedded broker

PARTITIONS = {"out.six": 6, "out.three": 3}


class Replay(Stateless):
    """A processor whose record n has the output n of a list."""

    def __init__(self, outputs: Sequence[Outgoing]) -> None:
        self.outputs = outputs

    def process(self, record: Any) -> Sequence[Outgoing]:
        return [self.outputs[record.offset]]


@pytest.mark.parametrize("in_parts", [False, True], ids=["one call", "pipeline in parts"])
async def test_batches_keep_each_key_on_its_default_partition_in_order(
    embedded_broker: EmbeddedBroker, in_parts: bool
) -> None:
    bootstrap = embedded_broker.bootstrap_servers
    suffix = uuid.uuid4().hex[:6]
    topics = {f"{name}.{suffix}": n for name, n in PARTITIONS.items()}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, n, 1) for t, n in topics.items()])
    finally:
        await admin.close()

    rng = random.Random(7)
    keys = [f"T-{rng.randrange(10**6)}".encode() for _ in range(40)] + [b""]
    outputs = [
        Outgoing(
            topic=rng.choice(list(topics)),
            key=rng.choice(keys),
            value=f"{n}:".encode() + b"x" * rng.randrange(10, 2000),
            headers={"content-type": "application/cloudevents+json", "n": str(n)},
        )
        for n in range(600)
    ]
    # Larger than a record batch (256 KiB in the services): it must get a batch of its own.
    outputs.insert(300, Outgoing(next(iter(topics)), b"T-big", b"600:" + b"y" * 600_000, {}))

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=2, max_batch_size=256 * 1024
    )
    await producer.start()
    futures: list[asyncio.Future[Any]] = []

    async def publish(part: Sequence[Outgoing]) -> list[asyncio.Future[Any]]:
        sent = await send_in_batches(producer, part)
        futures.extend(sent)
        return sent

    try:
        if in_parts:  # parts of 50 records sent while the next ones are processed
            pipeline = BatchPipeline(Replay(outputs), publish, "dlq", Readiness(), send_every=50)
            records = [
                SimpleNamespace(topic="in", offset=n, timestamp=0) for n in range(len(outputs))
            ]
            await asyncio.wait_for(pipeline.handle(records), 30)
        else:
            await publish(outputs)
        await asyncio.wait_for(asyncio.gather(*futures), 30)
    finally:
        await producer.stop()
    if not in_parts:
        assert len(futures) < len(outputs) / 10  # batched, not one send per record

    consumer = consumer_from_start(bootstrap, *topics)
    await consumer.start()
    received = []
    try:
        async with asyncio.timeout(30):
            while len(received) < len(outputs):
                batches = await consumer.getmany(timeout_ms=200)
                received += [r for records in batches.values() for r in records]
    finally:
        await consumer.stop()

    partitioner = DefaultPartitioner()
    for record in received:
        expected = partitioner(record.key, list(range(topics[record.topic])), [])
        assert record.partition == expected, (record.topic, record.key)
    sent = sorted((o.topic, o.key, o.value, sorted(o.headers.items())) for o in outputs)
    got = sorted(
        (r.topic, r.key, r.value, sorted((k, v.decode()) for k, v in r.headers)) for r in received
    )
    assert got == sent
    # Order per key and topic: the sequence numbers at the head of the values only grow.
    for topic_name in topics:
        for key in {*keys, b"T-big"}:
            sent_order = [o.value for o in outputs if o.topic == topic_name and o.key == key]
            got_order = [
                r.value
                for r in sorted(received, key=lambda r: r.offset)
                if r.topic == topic_name and r.key == key
            ]
            assert got_order == sent_order
