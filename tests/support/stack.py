"""Both services wired into one FastStream broker, and everything they publish, by topic: on
FastStream's in-memory broker (fast, no network) or on the embedded Tansu broker (the real
Kafka protocol). The contract tests run on both."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from faststream import Context
from faststream.kafka import KafkaBroker, TestKafkaBroker
from faststream.kafka.message import KafkaMessage

from services.enricher.app import enricher_spec
from services.enricher.enrich import CatalogIndex
from services.router.app import router_spec
from services.runtime.health import Readiness
from services.runtime.kafka import (
    BatchProducer,
    build_broker,
    build_producer,
    create_topics,
    publisher,
    topic,
)
from services.runtime.service import ServiceSpec, prepare_topics, wire
from services.runtime.settings import EnricherSettings, RouterSettings, ServiceSettings
from tests.support.producer import InMemoryProducer
from tests.support.tickets import sample_index


@dataclass(frozen=True)
class Captured:
    topic: str
    key: bytes
    value: bytes
    headers: dict[str, bytes]

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.value)
        return parsed


@dataclass
class Stack:
    """Both services on one broker, and everything they publish, by topic."""

    kind: str
    broker: KafkaBroker
    enricher: EnricherSettings
    router: RouterSettings
    outputs: dict[str, list[Captured]] = field(default_factory=lambda: defaultdict(list))

    async def send(self, value: bytes, key: bytes, headers: dict[str, str] | None = None) -> None:
        await self.broker.publish(
            value, self.enricher.topic_incoming, key=key, headers=headers or {}
        )

    def for_ticket(self, topic_name: str, ticket_id: str) -> list[Captured]:
        return [c for c in self.outputs[topic_name] if c.key == ticket_id.encode()]

    async def wait_for(
        self, condition: Callable[[], bool], timeout: float = 30.0, settle: float = 0.0
    ) -> None:
        """Until the condition holds (then `settle` seconds more, to catch what must NOT come)."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout}s on {self.kind}")
            await asyncio.sleep(0.05)
        if settle and self.kind == "tansu":
            await asyncio.sleep(settle)


def capture(
    broker: KafkaBroker,
    settings: ServiceSettings,
    names: Sequence[str],
    into: dict[str, list[Captured]],
) -> None:
    """Keep every record published on the topics `names`, by topic, in `into`."""
    for name in names:

        @broker.subscriber(topic(settings, name), auto_offset_reset="earliest")
        async def keep(body: Any, message: KafkaMessage = Context("message")) -> None:
            record = message.raw_message
            into[record.topic].append(
                Captured(record.topic, record.key, record.value or b"", dict(record.headers))
            )


def batch_producer(kind: str, broker: KafkaBroker, settings: ServiceSettings) -> BatchProducer:
    """What the services publish through: on the in-memory broker (`kind` memory) its own
    `publish`, batch by batch; on a real broker the services' producer, not started yet."""
    if kind == "memory":
        return InMemoryProducer(broker)
    return build_producer(settings)


@contextlib.asynccontextmanager
async def consuming(
    broker: KafkaBroker,
    producer: BatchProducer,
    specs: Sequence[ServiceSpec],
    also_create: Sequence[str] = (),
) -> AsyncIterator[None]:
    """The wired `broker` consuming. On a real broker the producer is started first and each
    service's topics are prepared as the service prepares them (`also_create` created too,
    with the first service's settings); on the in-memory broker nothing is to prepare."""
    if not isinstance(producer, AIOKafkaProducer):
        async with TestKafkaBroker(broker):
            yield
        return
    await producer.start()
    try:
        for spec in specs:
            await prepare_topics(spec, producer)
        if also_create:
            await create_topics(specs[0].settings, also_create)
        async with broker:
            await broker.start()
            yield
    finally:
        await producer.stop()


def wire_services(
    broker: KafkaBroker,
    producer: BatchProducer,
    enricher: EnricherSettings,
    router: RouterSettings,
    index: CatalogIndex,
) -> list[ServiceSpec]:
    """Both services on one FastStream broker, publishing through `producer`, wired as each
    service wires itself. The one place the contract tests call into the runtime's wiring."""
    readiness = Readiness()
    specs = [enricher_spec(enricher, index), router_spec(router)]
    for spec in specs:
        wire(broker, spec, readiness, publisher(producer))
    return specs


@contextlib.asynccontextmanager
async def running_stack(kind: str, bootstrap: str) -> AsyncIterator[Stack]:
    run = uuid.uuid4().hex[:8]
    common: dict[str, Any] = {
        "kafka_bootstrap_servers": bootstrap,
        "session_timeout_ms": 6000,
        "heartbeat_interval_ms": 2000,
        "batch_timeout_ms": 20,
    }
    enricher = EnricherSettings(enricher_group_id=f"enricher-{run}", **common)
    router = RouterSettings(router_group_id=f"router-{run}", **common)
    index = sample_index()
    broker = build_broker(enricher)
    producer = batch_producer(kind, broker, enricher)
    specs = wire_services(broker, producer, enricher, router, index)
    stack = Stack(kind, broker, enricher, router)
    partners = [router.topic_partner_prefix + v for v in index.partner_vendor_ids()]
    routes = [router.topic_redhat, router.topic_tsanet, router.topic_sla, router.topic_deadletter]
    capture(broker, enricher, [*routes, *partners], stack.outputs)
    async with consuming(broker, producer, specs):
        yield stack
