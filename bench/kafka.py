"""The bench's own Kafka clients: topic creation, preloading, counting outputs and timing them.

Counting never trusts end offsets (Tansu can under-report them): an OutputCounter reads every
partition of the output topics from the beginning, without a consumer group, and counts what
it receives.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.generate import HEADERS, Event

PARTITIONS = 6
TOPIC_EXISTS = 36


async def create_topics(bootstrap: str, names: Iterable[str], partitions: int = PARTITIONS) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        wanted = sorted(set(names))
        response = await asyncio.wait_for(
            admin.create_topics([NewTopic(n, partitions, 1) for n in wanted]), 60
        )
        for topic, code, message in response.topic_errors:
            if code not in (0, TOPIC_EXISTS):
                raise RuntimeError(f"cannot create topic {topic}: {code} {message}")
    finally:
        await admin.close()
    await wait_for_metadata(bootstrap, wanted, partitions)


async def delete_topics(bootstrap: str, names: Iterable[str]) -> None:
    """Best effort: a topic that will not go is only memory the broker keeps."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(admin.delete_topics(sorted(set(names))), 60)
    finally:
        await admin.close()


async def wait_for_metadata(
    bootstrap: str, topics: Sequence[str], partitions: int, within: float = 30
) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        deadline = time.monotonic() + within
        while True:
            await consumer._client.force_metadata_update()
            known = {t: consumer.partitions_for_topic(t) or set() for t in topics}
            if all(len(p) == partitions for p in known.values()):
                return
            if time.monotonic() > deadline:
                missing = [t for t, p in known.items() if len(p) != partitions]
                raise TimeoutError(f"topics without their {partitions} partitions: {missing}")
            await asyncio.sleep(0.2)
    finally:
        await consumer.stop()


def producer(bootstrap: str, linger_ms: int = 0) -> AIOKafkaProducer:
    # No idempotence: Tansu rejects idempotent producers.
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=linger_ms,
        max_batch_size=256 * 1024,
        request_timeout_ms=30_000,
    )


async def preload(bootstrap: str, topic: str, events: Sequence[Event]) -> float:
    """Publish every event and wait for every ack; the seconds it took."""
    started = time.perf_counter()
    p = producer(bootstrap, linger_ms=5)
    await p.start()
    try:
        for i in range(0, len(events), 5000):
            chunk = events[i : i + 5000]
            futures = [await p.send(topic, e.value, key=e.key, headers=HEADERS) for e in chunk]
            await asyncio.wait_for(asyncio.gather(*futures), 120)
    finally:
        await p.stop()
    return time.perf_counter() - started


@dataclass
class Progress:
    """What an OutputCounter saw: how many, and when the first and the last arrived."""

    count: int = 0
    first: float | None = None
    last: float | None = None
    per_topic: dict[str, int] = field(default_factory=dict)

    def rate(self) -> float:
        if self.first is None or self.last is None or self.last <= self.first:
            return 0.0
        return self.count / (self.last - self.first)


class OutputCounter:
    """Counts the records on every partition of `topics` (perf_counter timestamps), and hands
    each record to `on_record` if given. Runs as a task from `start()` to `stop()`."""

    def __init__(
        self,
        bootstrap: str,
        topics: Sequence[str],
        on_record: Callable[[ConsumerRecord[Any, Any], float], None] | None = None,
        fetch_max_wait_ms: int = 100,
    ) -> None:
        self._bootstrap = bootstrap
        self._topics = list(topics)
        self._on_record = on_record
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self.progress = Progress(per_topic=dict.fromkeys(topics, 0))
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._changed = asyncio.Event()

    async def start(self) -> OutputCounter:
        await wait_for_metadata(self._bootstrap, self._topics, PARTITIONS)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self._fetch_max_wait_ms,
            max_partition_fetch_bytes=4 * 1024 * 1024,
            fetch_max_bytes=32 * 1024 * 1024,
        )
        await consumer.start()
        partitions = [TopicPartition(t, p) for t in self._topics for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        self._consumer = consumer
        self._task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        assert self._consumer is not None
        progress, on_record = self.progress, self._on_record
        while True:
            batch = await self._consumer.getmany(timeout_ms=200, max_records=20_000)
            if not batch:
                continue
            now = time.perf_counter()
            for tp, records in batch.items():
                progress.per_topic[tp.topic] += len(records)
                progress.count += len(records)
                if on_record is not None:
                    for record in records:
                        on_record(record, now)
            if progress.first is None:
                progress.first = now
            progress.last = now
            self._changed.set()

    async def wait_for(self, expected: int, stall_timeout: float, total_timeout: float) -> bool:
        """Until `expected` records arrived (True), or nothing new came for `stall_timeout`
        seconds, or `total_timeout` passed (False)."""
        deadline = time.monotonic() + total_timeout
        while self.progress.count < expected:
            if self._task is not None and self._task.done():
                self._task.result()  # the counter died: say why
                return False
            self._changed.clear()
            wait = min(stall_timeout, deadline - time.monotonic())
            if wait <= 0:
                return False
            try:
                await asyncio.wait_for(self._changed.wait(), wait)
            except TimeoutError:
                return False
        return True

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._consumer.stop(), 10)
