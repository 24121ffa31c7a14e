"""Fault injection on both services as real processes against the embedded Tansu broker.

Reuses the integration fixtures (the broker, `ServiceProcess`, `System`, the service
environment) and adds what fault tests need: separate stdout (the JSON logs) and stderr per
process, a consumer of every output including `tickets.enriched`, bulk producing, and
helpers that check "nothing lost, nothing decided twice differently".
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from faststream.kafka.message import KafkaMessage
from faststream.kafka.parser import AioKafkaBatchParser

from services.enricher.app import EnricherProcessor
from services.router.app import RouterProcessor
from services.runtime.embedded import EmbeddedBroker
from services.runtime.health import Readiness
from services.runtime.kafka import _tolerant_parser
from services.runtime.logs import configure_logging
from services.runtime.pipeline import BatchPipeline, Outgoing
from services.runtime.settings import EnricherSettings, RouterSettings
from tests.factories import sample_index
from tests.integration.conftest import (
    ROOT,
    ServiceProcess,
    System,
    collect_outputs,
    embedded_broker,
    http_get,
    service_env,
)

__all__ = [
    "ROOT",
    "FaultProcess",
    "System",
    "embedded_broker",
    "http_get",
    "running_system",
    "service_env",
]

ROUTE_TOPIC_PATTERN = r"^(queue\..*|collab\.tsanet)$"
ALL_OUTPUTS_PATTERN = (
    r"^(queue\..*|collab\.tsanet|sla\.ownership|tickets\.deadletter|tickets\.enriched)$"
)
# Large enough for the 1 MiB-description fuzz case on the test's own clients.
BIG_MESSAGE = 4 * 1024 * 1024


class FaultProcess(ServiceProcess):
    """A service process whose stdout (structlog JSON) and stderr (libraries) are kept apart,
    so a test can check that every stdout line is exactly one JSON object."""

    def __init__(self, module: str, env: dict[str, str], log: Path) -> None:
        super().__init__(module, env, log)
        self.err = log.with_suffix(".stderr")
        self.starts = 0

    def start(self) -> FaultProcess:
        self.starts += 1
        with self.log.open("ab") as out, self.err.open("ab") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module],
                env=self.env,
                stdout=out,
                stderr=err,
                cwd=ROOT,
            )
        return self

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stdout_lines(self) -> list[bytes]:
        raw = self.log.read_bytes() if self.log.exists() else b""
        return [line for line in raw.split(b"\n") if line]

    def json_logs(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout_lines()]

    def events(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.json_logs() if e.get("event") == name]

    def logs(self) -> str:
        err = self.err.read_text(errors="replace")[-2000:] if self.err.exists() else ""
        return super().logs() + ("\n--- stderr:\n" + err if err else "")


def make_producer(bootstrap: str) -> AIOKafkaProducer:
    # Not idempotent: Tansu rejects idempotent producers.
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=5,
        max_request_size=BIG_MESSAGE,
        request_timeout_ms=60_000,
    )


@contextlib.asynccontextmanager
async def running_system(
    broker: EmbeddedBroker,
    tmp_path: Path,
    *,
    start: Iterable[str] = ("enricher", "router"),
    pattern: str = ALL_OUTPUTS_PATTERN,
    **env: str,
) -> AsyncIterator[System]:
    """Both services (those named in `start` started and ready), a producer, a collector."""
    base = service_env(broker.bootstrap_servers, uuid.uuid4().hex[:8])
    base.update(env)
    enricher = FaultProcess("services.enricher", base, tmp_path / "enricher.log")
    router = FaultProcess("services.router", base, tmp_path / "router.log")
    chosen = {"enricher": enricher, "router": router}
    for name in start:
        chosen[name].start()
    producer = make_producer(broker.bootstrap_servers)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=broker.bootstrap_servers,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=BIG_MESSAGE,
        fetch_max_bytes=4 * BIG_MESSAGE,
        metadata_max_age_ms=2000,  # partner topics appear after the start
    )
    collector: asyncio.Task[None] | None = None
    try:
        for name in start:
            chosen[name].wait_ready()
        await producer.start()
        await consumer.start()
        consumer.subscribe(pattern=pattern)
        system = System(broker, enricher, router, producer, outputs=defaultdict(list))
        collector = asyncio.create_task(collect_outputs(consumer, system))
        yield system
    finally:
        if collector:
            collector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await collector
        await consumer.stop()
        await producer.stop()
        enricher.stop()
        router.stop()


@pytest.fixture
async def faults(embedded_broker: EmbeddedBroker, tmp_path: Path) -> AsyncIterator[System]:
    async with running_system(embedded_broker, tmp_path) as system:
        yield system


# --- producing ------------------------------------------------------------------------------


async def send_all(
    producer: AIOKafkaProducer, events: Iterable[dict[str, Any]], topic: str = "tickets.incoming"
) -> None:
    """Send without waiting for each acknowledgement, then wait for all of them."""
    futures = [
        await producer.send(topic, json.dumps(e).encode(), key=e["data"]["ticket_id"].encode())
        for e in events
    ]
    await asyncio.gather(*futures)


async def send_paced(
    producer: AIOKafkaProducer,
    events: list[dict[str, Any]],
    *,
    chunk: int,
    pause: float,
) -> None:
    for i in range(0, len(events), chunk):
        await send_all(producer, events[i : i + chunk])
        await asyncio.sleep(pause)


# --- checking -------------------------------------------------------------------------------


def values(system: System, topic: str) -> list[dict[str, Any]]:
    return [json.loads(r.value) for r in system.outputs[topic]]


def route_messages(system: System) -> list[tuple[str, dict[str, Any]]]:
    """(topic, decision) of every message on a route topic."""
    found = []
    for name, records in list(system.outputs.items()):
        if name.startswith(("queue.", "collab.")):
            found += [(name, json.loads(r.value)["data"]["decision"]) for r in records]
    return found


@dataclass
class Audit:
    """What the outputs say about a set of expected (ticket_id, revision) pairs."""

    expected: set[tuple[str, int]]
    routed: set[tuple[str, int]]
    sla: set[tuple[str, int]]
    conflicts: dict[tuple[str, int], set[str]]
    duplicate_deliveries: int

    @property
    def lost(self) -> set[tuple[str, int]]:
        return self.expected - (self.routed & self.sla)

    def ok(self) -> bool:
        return not self.lost and not self.conflicts


def _signature(d: dict[str, Any], keys: tuple[str, ...]) -> str:
    return json.dumps({k: d.get(k) for k in keys}, sort_keys=True)


_ROUTE_KEYS = ("decision_id", "route", "topic", "rule", "owner", "response_due_at", "clock_start")
_SLA_KEYS = ("decision_id", "owner", "clock", "clock_start", "response_due_at", "basis")


def audit(system: System, expected: set[tuple[str, int]]) -> Audit:
    """One decision per ticket revision once duplicates (same decision_id) are dropped; no
    revision with two different decisions; every expected revision on a route topic and on
    sla.ownership."""
    tickets = {tid for tid, _ in expected}
    route_sigs: dict[tuple[str, int], set[str]] = defaultdict(set)
    sla_sigs: dict[tuple[str, int], set[str]] = defaultdict(set)
    deliveries = 0
    for name, decision in route_messages(system):
        if decision["ticket_id"] not in tickets:
            continue
        assert decision["topic"] == name, (decision["topic"], name)
        route_sigs[(decision["ticket_id"], decision["revision"])].add(
            _signature(decision, _ROUTE_KEYS)
        )
        deliveries += 1
    for event in values(system, "sla.ownership"):
        data = event["data"]
        if data["ticket_id"] in tickets:
            sla_sigs[(data["ticket_id"], data["revision"])].add(_signature(data, _SLA_KEYS))
    conflicts = {
        rev: route_sigs.get(rev, set()) | sla_sigs.get(rev, set())
        for rev in set(route_sigs) | set(sla_sigs)
        if len(route_sigs.get(rev, ())) > 1
        or len(sla_sigs.get(rev, ())) > 1
        or len({json.loads(sig)["decision_id"] for sig in route_sigs[rev] | sla_sigs[rev]}) > 1
    }
    routed = set(route_sigs)
    return Audit(expected, routed, set(sla_sigs), conflicts, deliveries - len(routed))


async def wait_all_routed(
    system: System, expected: set[tuple[str, int]], timeout: float, what: str
) -> Audit:
    deadline = time.monotonic() + timeout
    while True:
        result = audit(system, expected)
        if not result.lost:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{what}: {len(result.lost)} of {len(expected)} ticket revisions not routed "
                f"within {timeout}s, e.g. {sorted(result.lost)[:5]}\n"
                f"--- enricher:\n{system.enricher.logs()}\n--- router:\n{system.router.logs()}"
            )
        await asyncio.sleep(0.25)


def poll(port: int, path: str) -> int | None:
    """The HTTP status of an endpoint, None when nothing answers."""
    try:
        return http_get(port, path)[0]
    except OSError:
        return None


# --- in process: the services' parser, pipeline and processors, without Kafka ----------------


def consumer_record(
    value: bytes | None,
    key: bytes | None,
    headers: Sequence[tuple[str, bytes | None]] = (),
    *,
    topic: str = "tickets.incoming",
    partition: int = 0,
    offset: int = 0,
) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic=topic,
        partition=partition,
        offset=offset,
        timestamp=1_795_000_000_000,
        timestamp_type=0,
        key=key,
        value=value,
        checksum=None,
        serialized_key_size=len(key or b""),
        serialized_value_size=len(value or b""),
        headers=tuple(headers),  # type: ignore[arg-type]
    )


async def through_parser(records: Sequence[ConsumerRecord[bytes, bytes]]) -> tuple[Any, ...]:
    """What the services' batch subscriber hands the pipeline: FastStream's batch parser
    behind the services' tolerant wrapper."""
    parser = AioKafkaBatchParser(KafkaMessage, None)
    message = await _tolerant_parser(tuple(records), parser.parse_batch)
    return tuple(message.raw_message)


async def run_pipeline(processor: Any, records: Sequence[Any]) -> list[Outgoing]:
    published: list[Outgoing] = []

    async def publish(outs: Sequence[Outgoing]) -> list[asyncio.Future[Any]]:
        published.extend(outs)
        return []

    await BatchPipeline(processor, publish, "tickets.deadletter", Readiness()).handle(records)
    return published


FIXED_NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


class InProcess:
    """Both services' processors, fresh state, fed through the real parser and pipeline."""

    def __init__(self) -> None:
        self.enricher = EnricherProcessor(sample_index(), EnricherSettings(), lambda: FIXED_NOW)
        self.router = RouterProcessor(RouterSettings(), lambda: FIXED_NOW)
        self._offset = 0

    async def send(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> list[Outgoing]:
        """Everything both services publish for these input records."""
        enriched_out = await run_pipeline(self.enricher, await through_parser(records))
        onward = []
        for out in enriched_out:
            if out.topic == "tickets.enriched":
                self._offset += 1
                onward.append(
                    consumer_record(
                        out.value,
                        out.key,
                        [(k, v.encode()) for k, v in out.headers.items()],
                        topic="tickets.enriched",
                        offset=self._offset,
                    )
                )
        routed_out = await run_pipeline(self.router, await through_parser(onward)) if onward else []
        return enriched_out + routed_out


def routed_for(outputs: Sequence[Outgoing], key: bytes) -> list[Outgoing]:
    return [
        o for o in outputs if o.key == key and o.topic.startswith(("queue.", "collab.", "sla."))
    ]


def dead_for(outputs: Sequence[Outgoing], key: bytes) -> list[Outgoing]:
    return [o for o in outputs if o.topic == "tickets.deadletter" and o.key == key]


@pytest.fixture
def json_logs() -> Iterator[io.BytesIO]:
    """The services' own structlog set-up (JSON via orjson), writing into a buffer, so a log
    call that cannot be rendered fails here as it would in the service."""
    buffer = io.BytesIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "stdout", SimpleNamespace(buffer=buffer))
        configure_logging("INFO", "json")
    # Not cached: other tests configure structlog their own way afterwards.
    structlog.configure(cache_logger_on_first_use=False)
    yield buffer
    structlog.reset_defaults()


def json_lines(buffer: io.BytesIO) -> list[dict[str, Any]]:
    lines = [line for line in buffer.getvalue().split(b"\n") if line]
    parsed = [json.loads(line) for line in lines]
    assert all(isinstance(p, dict) for p in parsed)
    return parsed
