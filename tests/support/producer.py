"""aiokafka's batch-producer API over FastStream's in-memory test broker, so that the in-memory
contract tests publish through the same `send_in_batches` path as the services."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from faststream.kafka import KafkaBroker


@dataclass
class RecordBatch:
    """Takes records until `capacity` (then `append` answers None, as aiokafka's does when full)."""

    capacity: int
    records: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]] = field(
        default_factory=list
    )

    def append(
        self,
        *,
        timestamp: int | None,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]],
    ) -> object | None:
        if len(self.records) >= self.capacity:
            return None
        self.records.append((key, value, headers))
        return object()


class InMemoryProducer:
    """Delivers each record batch through the test broker's `publish` (which hands it to the
    subscribers at once); the returned future is already acknowledged."""

    def __init__(self, broker: KafkaBroker, partitions: int = 3, batch_capacity: int = 50) -> None:
        self._broker = broker
        self._partitions = set(range(partitions))
        self._capacity = batch_capacity
        self.batches_sent = 0

    async def partitions_for(self, topic: str) -> set[int]:
        return self._partitions

    def create_batch(self) -> RecordBatch:
        return RecordBatch(self._capacity)

    async def send_batch(
        self, batch: RecordBatch, topic: str, *, partition: int
    ) -> asyncio.Future[Any]:
        self.batches_sent += 1
        for key, value, headers in batch.records:
            await self._broker.publish(
                value,
                topic,
                key=key,
                partition=partition,
                headers={name: raw.decode() for name, raw in headers},
            )
        acknowledged: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        acknowledged.set_result(None)
        return acknowledged
