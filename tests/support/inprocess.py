"""The services' parser, batch pipeline and processors, without Kafka: consumed records made
by hand, a producer that only collects, and both services chained in one process."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from aiokafka import ConsumerRecord
from faststream.kafka.message import KafkaMessage
from faststream.kafka.parser import AioKafkaBatchParser

from services.enricher.app import EnricherProcessor
from services.router.app import RouterProcessor
from services.runtime.health import Readiness
from services.runtime.pipeline import BatchPipeline, Outgoing
from services.runtime.service import _tolerant_parser
from services.runtime.settings import EnricherSettings, RouterSettings
from tests.support.tickets import sample_index

FIXED_NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def consumer_record(
    value: bytes | None,
    key: bytes | None = b"T-1",
    headers: Sequence[tuple[str, bytes | None]] = (),
    *,
    topic: str = "tickets.incoming",
    partition: int = 0,
    offset: int = 0,
) -> ConsumerRecord[bytes, bytes]:
    """A record as aiokafka hands it to the consumer, broker timestamp 2026-11-19."""
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


class Collecting:
    """A producer that keeps what is published; each call's acknowledgement is one future,
    which fails while `fail` is set."""

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


class Stateless:
    """A processor that remembers nothing across batches (subclasses say what `process` does)."""

    def process(self, record: Any) -> Sequence[Outgoing]:
        raise NotImplementedError

    def changes(self) -> Sequence[Outgoing]:
        return ()

    def batch_done(self) -> None: ...
    def batch_failed(self) -> None: ...


async def through_parser(records: Sequence[ConsumerRecord[bytes, bytes]]) -> tuple[Any, ...]:
    """What the services' batch subscriber hands the pipeline: FastStream's batch parser
    behind the services' tolerant wrapper."""
    parser = AioKafkaBatchParser(KafkaMessage, None)
    message = await _tolerant_parser(tuple(records), parser.parse_batch)
    return tuple(message.raw_message)


async def run_pipeline(processor: Any, records: Sequence[Any]) -> list[Outgoing]:
    """Everything the processor publishes for one batch of these records."""
    producer = Collecting()
    await BatchPipeline(processor, producer.publish, "tickets.deadletter", Readiness()).handle(
        records
    )
    return producer.sent


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


def json_lines(buffer: io.BytesIO) -> list[dict[str, Any]]:
    """The JSON objects of a log buffer, one a line (each line must be one)."""
    lines = [line for line in buffer.getvalue().split(b"\n") if line]
    parsed = [json.loads(line) for line in lines]
    assert all(isinstance(p, dict) for p in parsed)
    return parsed
