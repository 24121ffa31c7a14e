"""A service's state, kept in Kafka: a changelog topic with one partition per input partition.

The design follows Kafka Streams' state stores (docs/state.md says it for operators):

- **What is stored.** Each change of a service's state is one record on its changelog topic,
  keyed like the input (by ticket id) and written to the partition of the input record that
  caused it, so a partition's state travels with the partition. The topic is created compacted,
  so a real cluster keeps the latest record of each key.
- **When it is written.** After the batch's outputs are acknowledged and before its offsets are
  committed (the batch pipeline does this with the processor's `changes()`): a crash before the
  write repeats the outputs, with the same ids; a crash after it finds the state restored and
  does not repeat them.
- **When it is read.** When partitions are assigned, before the first batch of them is handled:
  the rebalance listener reads each assigned changelog partition from its beginning to its end
  and hands every record to the service (`restore`); `/readyz` is 503 meanwhile.
- **When it is dropped.** When partitions are revoked, once the batch or timer tick in hand is
  done (`revoke`). A rebalance revokes every partition and then assigns, so each assigned
  partition is read again: the state in hand may be stale if the partition was elsewhere.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any, Protocol

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from services.runtime.health import Readiness
from services.runtime.metrics import STATE_RESTORE_SECONDS, STATE_RESTORED_RECORDS

log = structlog.get_logger()

RESTORING = "restoring state"
# How long one poll of the changelog waits for records.
QUIET_MS = 200
# A partition that stops yielding records short of its end: restoring goes on without the rest
# rather than holding the partitions forever (it is logged; duplicates may then be repeated).
GIVE_UP_SECONDS = 10.0


class Restorable(Protocol):
    """A service whose state lives on a changelog topic."""

    def restore(self, partition: int, records: Sequence[Any]) -> None:
        """Records of one changelog partition, oldest first (part of it at a time)."""

    def revoke(self, partition: int) -> None:
        """The partition moved to another instance: forget its state."""


class ChangelogListener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Restores the state of the input partitions a rebalance assigns, before they are read."""

    def __init__(
        self,
        changelog_topic: str,
        service: Restorable,
        readiness: Readiness,
        client_args: dict[str, Any],
        busy: asyncio.Lock,
    ) -> None:
        self._topic = changelog_topic
        self._busy = busy
        self._service = service
        self._readiness = readiness
        self._client_args = client_args
        self._owned: set[int] = set()

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        # After the batch or timer tick in hand, so that none of it lands on a partition that
        # is no longer ours.
        async with self._busy:
            for partition in {tp.partition for tp in revoked} & self._owned:
                self._owned.discard(partition)
                self._service.revoke(partition)

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        new = sorted({tp.partition for tp in assigned} - self._owned)
        if not new:
            return
        self._readiness.fail(RESTORING)
        started = time.perf_counter()
        try:
            records = await restore(self._topic, new, self._service, self._client_args)
        finally:
            self._readiness.clear(RESTORING)
        self._owned.update(new)
        seconds = time.perf_counter() - started
        STATE_RESTORE_SECONDS.observe(seconds)
        STATE_RESTORED_RECORDS.inc(records)
        log.info(
            "state_restored",
            topic=self._topic,
            partitions=new,
            records=records,
            seconds=round(seconds, 3),
        )


async def restore(
    topic: str, partitions: Sequence[int], service: Restorable, client_args: dict[str, Any]
) -> int:
    """Read the changelog partitions from their beginning to their end into `service`; the
    number of records read."""
    consumer = AIOKafkaConsumer(
        **client_args, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        count = 0
        last_read = time.monotonic()
        while True:
            batches = await consumer.getmany(*tps, timeout_ms=QUIET_MS, max_records=10_000)
            for tp, records in batches.items():
                service.restore(tp.partition, records)
                count += len(records)
            if batches:
                last_read = time.monotonic()
                continue
            # The end is the high-water mark a fetch reported (None: no fetch answered yet).
            ends = [consumer.highwater(tp) for tp in tps]
            positions = [await consumer.position(tp) for tp in tps]
            if all(end is not None and at >= end for end, at in zip(ends, positions, strict=True)):
                return count
            if time.monotonic() - last_read > GIVE_UP_SECONDS:
                log.error(
                    "state_restore_incomplete",
                    topic=topic,
                    partitions=list(partitions),
                    positions=positions,
                    ends=ends,
                )
                return count
    finally:
        await consumer.stop()
