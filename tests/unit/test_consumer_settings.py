"""The consumer settings reach the aiokafka consumer FastStream builds for the batch subscriber."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from services.runtime.health import Readiness
from services.runtime.kafka import build_broker
from services.runtime.pipeline import Outgoing, Record
from services.runtime.service import ServiceSpec, wire
from services.runtime.settings import ServiceSettings


class _Nothing:
    def process(self, record: Record) -> Sequence[Outgoing]:
        return []

    def changes(self) -> Sequence[Outgoing]:
        return []

    def batch_done(self) -> None:
        pass

    def batch_failed(self) -> None:
        pass


async def _publish_nothing(outputs: Sequence[Outgoing]) -> Sequence[asyncio.Future[Any]]:
    return []


def _consumer_args(settings: ServiceSettings) -> dict[str, object]:
    broker = build_broker(settings)
    spec = ServiceSpec("test", settings, "in", "group", [], _Nothing())
    wire(broker, spec, Readiness(), _publish_nothing)
    (subscriber,) = broker.subscribers
    # FastStream's private state (pinned to 0.7.x): the keyword arguments of AIOKafkaConsumer.
    args: dict[str, object] = subscriber._connection_args  # type: ignore[attr-defined]
    return args


def test_fetch_limits_reach_the_consumer() -> None:
    args = _consumer_args(ServiceSettings(fetch_max_bytes=300_000, fetch_max_wait_ms=25))
    assert args["fetch_max_bytes"] == 300_000
    assert args["fetch_max_wait_ms"] == 25


def test_a_fetch_asks_for_one_and_a_half_mebibytes_by_default() -> None:
    # Not the client's 50 MiB: a broker may answer that with megabytes per partition, and
    # the fetched records wait in memory until handled (the router's peak RSS, README).
    assert _consumer_args(ServiceSettings())["fetch_max_bytes"] == 1_572_864
