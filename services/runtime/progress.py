"""Nothing stalls silently: a partition that has records to read but makes no progress is
logged, counted and reported on /readyz, whatever the cause.

Causes seen in practice: a fetch that keeps failing, a record batch the consumer cannot decode
(a corrupt batch; a codec without its library), a broker that refuses the outputs so the batch
in hand is retried. Each keeps the partition's position where it is while records wait behind
it. The watch compares each assigned partition's position with its high-water mark every few
seconds; the cause, when the consumer reported one, comes from FastStream's error log, which
is routed here (`FastStreamLog`) instead of being switched off.

A batch that can never be decoded is not skipped: skipping would drop the tickets in it, and a
bad checksum can be a transient fault that the next fetch cures. The service keeps saying so,
and an operator moves the group past it (docs/operations.md, "When a partition stalls").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from services.runtime.health import Readiness
from services.runtime.metrics import CONSUMER_ERRORS, PARTITION_STALLS, PARTITIONS_STALLED

log = structlog.get_logger()

REPEAT_SECONDS = 60.0  # how often a stall that goes on is logged again


class FastStreamLog:
    """FastStream's logger. Its per-batch lines (below WARNING) are dropped; what it reports
    from its consume loop (a fetch or decode error, logged without a message context) is an
    error in our log, counted, and handed to `on_error` as the likely cause of a stall. Errors
    of our own handler are logged by the batch pipeline already, so here they are logged once
    more only at debug level."""

    def __init__(self, on_error: Callable[[str], None] | None = None) -> None:
        self._on_error = on_error

    def log(
        self,
        level: int,
        msg: Any,
        /,
        *,
        exc_info: Any = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        if level < logging.WARNING:
            return
        if extra is not None:
            log.debug("faststream_handler_error", message=str(msg))
            return
        if isinstance(exc_info, BaseException):
            kind, cause = type(exc_info).__name__, f"{type(exc_info).__name__}: {exc_info}"
        else:
            kind, cause = "unknown", str(msg)
        CONSUMER_ERRORS.labels(kind).inc()
        log.error("consumer_error", error=cause, faststream_message=str(msg))
        if self._on_error is not None:
            self._on_error(cause)


class PartitionReader(Protocol):
    """What the watch reads of a consumer (aiokafka's AIOKafkaConsumer has it)."""

    def assignment(self) -> set[Any]: ...

    def highwater(self, partition: Any) -> int | None: ...

    async def position(self, partition: Any) -> int: ...


class HasConsumer(Protocol):
    """FastStream's subscriber: its aiokafka consumer once started, else None."""

    consumer: Any


@dataclass
class _Partition:
    position: int
    since: float  # when the position last moved, or the partition last had nothing to read
    stalled: bool = False
    logged: float = 0.0


class ConsumerProgress:
    """Watches the positions of the partitions assigned to one consumer."""

    def __init__(
        self, readiness: Readiness, stall_after_seconds: float, check_every_seconds: float = 2.0
    ) -> None:
        self._readiness = readiness
        self._stall_after = stall_after_seconds
        self._check_every = min(check_every_seconds, stall_after_seconds / 2)
        self._partitions: dict[tuple[str, int], _Partition] = {}
        self._last_error: tuple[float, str] | None = None
        self.faststream_log = FastStreamLog(self.consumer_error)

    def consumer_error(self, cause: str, now: float | None = None) -> None:
        self._last_error = (time.monotonic() if now is None else now, cause)

    def observe(
        self, topic: str, partition: int, position: int, highwater: int | None, now: float
    ) -> None:
        """One look at a partition: its position and the offset the next record will get."""
        key = (topic, partition)
        state = self._partitions.get(key)
        lagging = highwater is not None and highwater > position
        if state is None or state.position != position or not lagging:
            if state is not None and state.stalled:
                self._resume(key, state, position, now)
            self._partitions[key] = _Partition(position, now)
            return
        if now - state.since < self._stall_after:
            return
        if not state.stalled:
            state.stalled = True
            PARTITION_STALLS.inc()
            PARTITIONS_STALLED.inc()
            self._readiness.fail(_reason(key))
        if now - state.logged >= REPEAT_SECONDS or not state.logged:
            state.logged = now
            log.error(
                "partition_stalled",
                topic=topic,
                partition=partition,
                offset=position,
                lag=(highwater or 0) - position,
                stalled_for_s=round(now - state.since, 1),
                cause=self._cause(state.since),
            )

    def forget_others(self, assigned: set[tuple[str, int]], now: float) -> None:
        """Partitions no longer assigned are another consumer's to report."""
        for key in set(self._partitions) - assigned:
            state = self._partitions.pop(key)
            if state.stalled:
                self._resume(key, state, state.position, now, reason="partition moved away")

    def _resume(
        self,
        key: tuple[str, int],
        state: _Partition,
        position: int,
        now: float,
        reason: str = "progress resumed",
    ) -> None:
        PARTITIONS_STALLED.dec()
        self._readiness.clear(_reason(key))
        log.info(
            "partition_resumed",
            topic=key[0],
            partition=key[1],
            offset=position,
            stalled_for_s=round(now - state.since, 1),
            reason=reason,
        )

    def _cause(self, since: float) -> str:
        if self._last_error is not None and self._last_error[0] >= since - self._stall_after:
            return self._last_error[1]
        if "publishing" in self._readiness.reasons:
            return "the broker does not acknowledge the outputs; the batch is being retried"
        return "no error reported by the consumer; the batch in hand has not finished"

    async def check(self, consumer: PartitionReader, now: float) -> None:
        assigned = set()
        for tp in consumer.assignment():
            key = (tp.topic, tp.partition)
            assigned.add(key)
            try:
                position = await asyncio.wait_for(consumer.position(tp), 1.0)
            except Exception:  # noqa: S112 - not known now (a rebalance); look again later
                continue
            self.observe(tp.topic, tp.partition, position, consumer.highwater(tp), now)
        self.forget_others(assigned, now)

    async def watch(self, subscriber: HasConsumer, stop: asyncio.Event) -> None:
        """Every few seconds until stopped."""
        while not stop.is_set():
            consumer = subscriber.consumer
            if consumer is not None:
                await self.check(consumer, time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._check_every)


def _reason(key: tuple[str, int]) -> str:
    return f"partition {key[0]}[{key[1]}] makes no progress"
