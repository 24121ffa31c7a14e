"""A service's life cycle: its spec, the batch subscriber around a BatchPipeline, the topics
it prepares, connecting with retries, the background work, and stopping within the grace
period. `serve` is what each `python -m services.<name>` runs."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar, cast

import structlog
from aiokafka import AIOKafkaProducer, ConsumerRecord
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from faststream.kafka import KafkaBroker
from faststream.kafka.message import KafkaMessage
from faststream.middlewares import AckPolicy

from services.runtime.health import Readiness, start_health_server
from services.runtime.kafka import (
    StartupError,
    build_broker,
    build_producer,
    check_co_partitioned,
    client_args,
    create_topics,
    send_in_batches,
    topic,
)
from services.runtime.logs import configure_logging
from services.runtime.pipeline import BatchPipeline, Outgoing, Processor, Publish
from services.runtime.progress import ConsumerProgress, HasConsumer
from services.runtime.settings import ServiceSettings, load_settings
from services.runtime.statestore import ChangelogListener, Restorable

log = structlog.get_logger()

PROBE_INTERVAL_SECONDS = 5.0


def _text_headers(record: ConsumerRecord[Any, Any]) -> ConsumerRecord[Any, Any]:
    headers = [(k, v) for k, v in record.headers if _is_text(v)]
    return dataclasses.replace(record, headers=headers)


def _is_text(raw: bytes | None) -> bool:
    if raw is None:  # Kafka allows a header without a value
        return False
    try:
        raw.decode()
    except UnicodeDecodeError:
        return False
    return True


async def _tolerant_parser(raw: Any, original: Any) -> KafkaMessage:
    # FastStream decodes every header as UTF-8 before a handler runs; a header of garbage
    # would fail the batch forever. Such headers are dropped so the record still reaches the
    # pipeline (and, if its body is bad too, the dead-letter topic).
    try:
        message: KafkaMessage = await original(raw)
    except (UnicodeDecodeError, AttributeError):
        log.warning("headers_not_text_dropped")
        records = raw if isinstance(raw, tuple) else (raw,)
        message = await original(tuple(_text_headers(r) for r in records))
    return message


async def _records_decoder(message: KafkaMessage, _original: Any) -> Any:
    return message.raw_message


@dataclass(frozen=True)
class ServiceSpec:
    """What makes one service: its name, input, consumer group, outputs and processor."""

    name: str
    settings: ServiceSettings
    input_topic: str
    group_id: str
    output_topics: Sequence[str]
    processor: Processor
    # The service's state store (statestore.py): its changelog topic, partitioned like the
    # input; the processor then restores from it and revokes partitions it gives up.
    changelog_topic: str | None = None
    # Read every topic matching this instead of `input_topic` alone (which must match it).
    input_pattern: str | None = None
    # Topics whose records must meet the input's by key in one instance: same partition count.
    co_partitioned: Sequence[str] = ()
    # Work beside the batches, e.g. timers, given the pipeline (for `tick`) until stopped.
    background: Callable[[BatchPipeline, asyncio.Event], Coroutine[Any, Any, None]] | None = None
    # Port of /metrics, /healthz and /readyz (0: any free port).
    metrics_port: int = 0


class Wiring(NamedTuple):
    subscriber: HasConsumer
    pipeline: BatchPipeline


def state_listener(
    spec: ServiceSpec, readiness: Readiness, pipeline: BatchPipeline
) -> ChangelogListener | None:
    """Restores the service's state when partitions are assigned (None: a stateless service)."""
    if spec.changelog_topic is None:
        return None
    service = cast(Restorable, spec.processor)
    return ChangelogListener(
        spec.changelog_topic, service, readiness, client_args(spec.settings), pipeline.busy
    )


def subscribe(
    broker: KafkaBroker, spec: ServiceSpec, pipeline: BatchPipeline, readiness: Readiness
) -> HasConsumer:
    """The service's batch subscriber: each batch goes through the pipeline, then is committed."""
    s = spec.settings
    # A pattern reads several topics; range assignment then gives one instance the same
    # partition of each, so a ticket's records on them meet in one instance (round robin, the
    # client's default, would not). With one topic the two assign alike.
    topics = [] if spec.input_pattern else [topic(s, spec.input_topic)]
    subscriber = broker.subscriber(
        *topics,
        pattern=spec.input_pattern,
        partition_assignment_strategy=(RangePartitionAssignor,),
        batch=True,
        group_id=spec.group_id,
        max_records=s.batch_max_records,
        batch_timeout_ms=s.batch_timeout_ms,
        fetch_max_wait_ms=s.fetch_max_wait_ms,
        fetch_max_bytes=s.fetch_max_bytes,
        auto_offset_reset="earliest",
        session_timeout_ms=s.session_timeout_ms,
        heartbeat_interval_ms=s.heartbeat_interval_ms,
        # Commit after the handler returns, i.e. after every output is acknowledged;
        # on error rewind to the batch's first offsets so it is delivered again.
        ack_policy=AckPolicy.NACK_ON_ERROR,
        parser=_tolerant_parser,
        decoder=_records_decoder,
        title=f"{spec.name}:{spec.input_topic}",
        listener=state_listener(spec, readiness, pipeline),
    )

    @subscriber
    async def on_batch(records: Any) -> None:
        await pipeline.handle(records)

    return subscriber


def wire(broker: KafkaBroker, spec: ServiceSpec, readiness: Readiness, publish: Publish) -> Wiring:
    """Put a service on a broker: its batch subscriber, publishing through `publish`."""
    pipeline = BatchPipeline(
        spec.processor,
        publish,
        spec.settings.topic_deadletter,
        readiness,
        retry_backoff_max_seconds=spec.settings.retry_backoff_max_seconds,
        max_request_size=spec.settings.kafka_max_request_size,
    )
    return Wiring(subscribe(broker, spec, pipeline, readiness), pipeline)


async def prepare_topics(spec: ServiceSpec, producer: AIOKafkaProducer) -> None:
    """Create the service's missing topics (its changelog compacted, with the input's partition
    count), then check that the topics it joins by key are co-partitioned with its input."""
    s = spec.settings
    if s.topic_create:
        await create_topics(s, [spec.input_topic, *spec.output_topics])
    if spec.changelog_topic is not None and s.topic_create:
        input_partitions = len(await producer.partitions_for(spec.input_topic))
        await create_topics(s, [spec.changelog_topic], partitions=input_partitions, compacted=True)
    others = [*spec.co_partitioned, *([spec.changelog_topic] if spec.changelog_topic else [])]
    if others:
        await check_co_partitioned(producer, spec.input_topic, others)


class Connection:
    """The service's clients: FastStream's consumer broker and our own producer. A producer
    once stopped cannot be started again, so each start builds a new one."""

    def __init__(self, broker: KafkaBroker, settings: ServiceSettings) -> None:
        self.broker = broker
        self._settings = settings
        self.producer: AIOKafkaProducer | None = None

    async def publish(self, outputs: Sequence[Outgoing]) -> Sequence[asyncio.Future[Any]]:
        """The pipeline's `Publish`, through the producer of the current connection."""
        assert self.producer is not None, "publishing before the connection started"
        return await send_in_batches(self.producer, outputs)

    async def start(self, spec: ServiceSpec) -> None:
        self.producer = build_producer(self._settings)
        await self.producer.start()
        await prepare_topics(spec, self.producer)
        await self.broker.start()

    async def stop(self) -> None:
        """Stop consuming (the batch in hand finishes and is committed), then close the producer.
        Not in a `finally`: when the grace period cuts the first step short, closing the
        producer would wait for outputs a hung broker never acknowledges."""
        await self.broker.stop()
        if self.producer is not None:
            await self.producer.stop()

    async def reset(self) -> None:
        """After a failed start: close whatever did start, each part on its own."""
        with contextlib.suppress(Exception):
            await self.broker.stop()
        if self.producer is not None:
            with contextlib.suppress(Exception):
                await self.producer.stop()


async def _connect(connection: Connection, spec: ServiceSpec, stop: asyncio.Event) -> bool:
    """Connect, create the topics, start consuming; retry with backoff until stopped."""
    s = spec.settings
    delay = 0.5
    while not stop.is_set():
        try:
            await connection.start(spec)
        except StartupError:
            await connection.reset()
            raise
        except Exception as error:
            log.warning(
                "kafka_unreachable_retrying",
                bootstrap_servers=s.kafka_bootstrap_servers,
                error=f"{type(error).__name__}: {error}",
                retry_in_s=round(delay, 1),
            )
            await connection.reset()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, s.retry_backoff_max_seconds)
        else:
            return True
    return False


async def _probe(broker: KafkaBroker, readiness: Readiness, stop: asyncio.Event) -> None:
    """Readiness follows whether the brokers answer, checked every few seconds."""
    while not stop.is_set():
        if await broker.ping(timeout=PROBE_INTERVAL_SECONDS):
            readiness.clear("kafka unreachable")
        else:
            if "kafka unreachable" not in readiness.reasons:
                log.warning("kafka_unreachable")
            readiness.fail("kafka unreachable")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), PROBE_INTERVAL_SECONDS)


SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


def serve(settings_class: type[SettingsT], spec_of: Callable[[SettingsT], ServiceSpec]) -> None:
    """`python -m services.<name>`: read the settings once (a bad one stops the start, naming
    it), set up logging, build the service and run it until stopped; exit with its status."""
    settings = load_settings(settings_class)
    configure_logging(settings.log_level, settings.log_format)
    raise SystemExit(asyncio.run(run_service(spec_of(settings))))


async def run_service(spec: ServiceSpec) -> int:
    """Serve until SIGTERM or SIGINT, then finish the batch in hand, commit and stop.

    Returns the exit code: 1 when the batch in hand could not finish within the grace period
    (it is delivered again on the next start), else 0."""
    s = spec.settings
    readiness = Readiness()
    server = await start_health_server(s.metrics_host, spec.metrics_port, readiness)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    progress = ConsumerProgress(readiness, stall_after_seconds=s.stall_timeout_seconds)
    broker = build_broker(s, progress)
    connection = Connection(broker, s)
    wiring = wire(broker, spec, readiness, connection.publish)
    log.info(
        "service_starting",
        service=spec.name,
        bootstrap_servers=s.kafka_bootstrap_servers,
        input_topic=spec.input_topic,
        group_id=spec.group_id,
        metrics_port=spec.metrics_port,
    )
    watchers: list[asyncio.Task[None]] = []
    background: asyncio.Task[None] | None = None
    try:
        connected = await _connect(connection, spec, stop)
    except StartupError as error:
        log.error("service_cannot_start", service=spec.name, error=str(error))  # noqa: TRY400
        print(f"ticketroute {spec.name}: {error}", file=sys.stderr)  # noqa: T201
        server.close()
        return 2
    if connected:
        readiness.clear("starting")
        log.info("service_ready", service=spec.name)
        watchers.append(asyncio.create_task(_probe(broker, readiness, stop)))
        watchers.append(asyncio.create_task(progress.watch(wiring.subscriber, stop)))
        if spec.background is not None:
            background = asyncio.create_task(spec.background(wiring.pipeline, stop))
        await stop.wait()
    readiness.fail("stopping")
    log.info("service_stopping", service=spec.name, grace_s=s.shutdown_grace_seconds)
    for task in watchers:
        task.cancel()
    status = 0
    try:
        async with asyncio.timeout(s.shutdown_grace_seconds):
            if background is not None:
                await background  # it sees `stop` and returns after the tick in hand
            await connection.stop()
    except TimeoutError:
        status = 1
        log.error(  # noqa: TRY400 - the timeout is the news, not its traceback
            "shutdown_grace_exceeded", grace_s=s.shutdown_grace_seconds
        )
    server.close()
    log.info("service_stopped", service=spec.name, exit_code=status)
    return status
