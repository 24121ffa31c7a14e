"""Kafka wiring shared by the services: FastStream's broker for consuming, our own aiokafka
producer for publishing, topic creation, the batch subscriber around a BatchPipeline, and the
service's life cycle."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import ssl
import sys
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, TypeVar, cast

import structlog
from aiokafka import AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import TopicAlreadyExistsError, for_code
from aiokafka.partitioner import murmur2
from faststream.kafka import KafkaBroker, Topic
from faststream.kafka.message import KafkaMessage
from faststream.kafka.security import parse_security
from faststream.middlewares import AckPolicy
from faststream.security import (
    BaseSecurity,
    SASLPlaintext,
    SASLScram256,
    SASLScram512,
)

from services.runtime.health import Readiness, start_health_server
from services.runtime.logs import configure_logging
from services.runtime.pipeline import BatchPipeline, Outgoing, Processor, Publish
from services.runtime.progress import ConsumerProgress, FastStreamLog, HasConsumer
from services.runtime.settings import ServiceSettings, load_settings
from services.runtime.statestore import ChangelogListener, Restorable

log = structlog.get_logger()

PROBE_INTERVAL_SECONDS = 5.0
METADATA_SECONDS = 15.0  # how long a topic that must exist may take to appear in the metadata


def ssl_context(settings: ServiceSettings) -> ssl.SSLContext | None:
    if not settings.kafka_security_protocol.endswith("SSL"):
        return None
    context = ssl.create_default_context(
        cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
    )
    if settings.kafka_ssl_certfile and settings.kafka_ssl_keyfile:
        context.load_cert_chain(str(settings.kafka_ssl_certfile), str(settings.kafka_ssl_keyfile))
    return context


def kafka_security(settings: ServiceSettings) -> BaseSecurity | None:
    """The FastStream security object the settings describe (None for PLAINTEXT)."""
    protocol = settings.kafka_security_protocol
    context = ssl_context(settings)
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return BaseSecurity(ssl_context=context, use_ssl=True)
    sasl = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}
    # The settings validator guarantees all three with a SASL protocol.
    assert settings.kafka_sasl_mechanism
    assert settings.kafka_sasl_username
    assert settings.kafka_sasl_password
    return sasl[settings.kafka_sasl_mechanism](
        username=settings.kafka_sasl_username,
        password=settings.kafka_sasl_password.get_secret_value(),
        ssl_context=context,
        use_ssl=protocol == "SASL_SSL",
    )


def build_broker(
    settings: ServiceSettings, progress: ConsumerProgress | None = None
) -> KafkaBroker:
    """FastStream's broker, for consuming: the services publish through their own producer
    (`build_producer`). FastStream's errors (a fetch that fails, a record batch it cannot
    decode) reach our logs through `progress`; its per-batch lines at INFO are dropped."""
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        security=kafka_security(settings),
        client_id=settings.kafka_client_id,
        graceful_timeout=settings.shutdown_grace_seconds,
        allow_auto_create_topics=settings.topic_create,
        # A pattern subscription sees a new topic (a partner added by a catalog change) at the
        # next metadata refresh: every 30 s rather than the client's 5 minutes.
        metadata_max_age_ms=30_000,
        logger=progress.faststream_log if progress else FastStreamLog(),
    )


def topic(settings: ServiceSettings, name: str) -> Topic:
    return Topic(
        name,
        num_partitions=settings.topic_partitions,
        replication_factor=settings.topic_replication_factor,
        declare=settings.topic_create,
    )


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


def client_args(settings: ServiceSettings) -> dict[str, Any]:
    """The keyword arguments every aiokafka client of ours takes: brokers, client id, security."""
    return {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "client_id": settings.kafka_client_id,
        **parse_security(kafka_security(settings)),
    }


def build_producer(settings: ServiceSettings) -> AIOKafkaProducer:
    """The services' producer: acks=all, so an output counts as delivered only once the in-sync
    replicas have it. Idempotence stays off: the embedded test broker cannot grant producer ids,
    and every repeat carries the same derived ids anyway."""
    return AIOKafkaProducer(
        **client_args(settings),
        acks="all",
        max_request_size=settings.kafka_max_request_size,
        linger_ms=2,
        max_batch_size=256 * 1024,
        retry_backoff_ms=200,
    )


class BatchProducer(Protocol):
    """What `send_in_batches` needs of a producer: aiokafka's batch API (a fake in the
    in-memory contract tests)."""

    async def partitions_for(self, topic: str) -> set[int]: ...

    def create_batch(self) -> Any: ...

    async def send_batch(
        self, batch: Any, topic: str, *, partition: int
    ) -> asyncio.Future[Any]: ...


async def send_in_batches(
    producer: BatchProducer, outputs: Sequence[Outgoing]
) -> list[asyncio.Future[Any]]:
    """Send records as aiokafka record batches, one per topic and partition, each record keyed
    and placed where the default partitioner would put it (so per-key order holds).

    One `send_batch` per partition instead of one `send` per record: the per-record cost of
    aiokafka's `send` (futures, metadata and partitioner calls) was the largest part of what a
    service spent outside its own code (bench/README.md)."""
    partitions: dict[str, list[int]] = {}
    hashes: dict[bytes, int] = {}  # the router sends two records per ticket with one key
    batches: dict[tuple[str, int], Any] = {}
    futures: list[asyncio.Future[Any]] = []
    for out in outputs:
        partition = out.partition
        if partition is None:
            topic_partitions = partitions.get(out.topic)
            if topic_partitions is None:
                topic_partitions = partitions[out.topic] = sorted(
                    await producer.partitions_for(out.topic)
                )
            key_hash = hashes.get(out.key)
            if key_hash is None:
                # The Java client's (and aiokafka's) default partitioner: murmur2 of the key.
                key_hash = hashes[out.key] = murmur2(out.key) & 0x7FFFFFFF
            partition = topic_partitions[key_hash % len(topic_partitions)]
        where = (out.topic, partition)
        headers = [(name, value.encode()) for name, value in out.headers.items()]
        batch = batches.get(where)
        if batch is None:
            batch = batches[where] = producer.create_batch()
        if batch.append(timestamp=None, key=out.key, value=out.value, headers=headers) is None:
            # Full: send it and start another (a batch always takes its first record).
            futures.append(await producer.send_batch(batch, where[0], partition=where[1]))
            batch = batches[where] = producer.create_batch()
            batch.append(timestamp=None, key=out.key, value=out.value, headers=headers)
    for (topic_name, partition), batch in batches.items():
        futures.append(await producer.send_batch(batch, topic_name, partition=partition))
    return futures


def publisher(producer: BatchProducer) -> Publish:
    """Publish a batch's outputs without waiting for the broker; the pipeline awaits the
    futures at once."""

    async def publish(outputs: Sequence[Outgoing]) -> Sequence[asyncio.Future[Any]]:
        return await send_in_batches(producer, outputs)

    return publish


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


class StartupError(Exception):
    """A problem an operator must fix before the service can run; it stops with this message."""


async def create_topics(
    settings: ServiceSettings,
    names: Sequence[str],
    *,
    partitions: int | None = None,
    compacted: bool = False,
) -> None:
    """Create the topics that do not exist yet (partitions and replication from the settings);
    one that exists already is fine, any other refusal is logged and the service goes on."""
    configs = {"cleanup.policy": "compact"} if compacted else {}
    admin = AIOKafkaAdminClient(**client_args(settings))
    await admin.start()
    try:
        response = await admin.create_topics(
            [
                NewTopic(
                    name,
                    partitions or settings.topic_partitions,
                    settings.topic_replication_factor,
                    topic_configs=configs,
                )
                for name in dict.fromkeys(names)
            ]
        )
    finally:
        await admin.close()
    for name, code, *rest in response.topic_errors:
        error = for_code(code)
        if code and error is not TopicAlreadyExistsError:
            message = rest[0] if rest and rest[0] else error.__name__
            log.warning("topic_not_created", topic=name, error=message)


async def check_co_partitioned(
    producer: AIOKafkaProducer, topic_name: str, others: Sequence[str]
) -> None:
    """Topics whose records meet by key in one instance need the input's partition count."""
    expected = len(await producer.partitions_for(topic_name))
    for other in others:
        try:
            count = len(await asyncio.wait_for(producer.partitions_for(other), METADATA_SECONDS))
        except TimeoutError:
            raise StartupError(
                f"topic {other} does not exist: create it with {expected} partitions, as "
                f"{topic_name} has (or let the service create it: TOPIC_CREATE=true)"
            ) from None
        if count != expected:
            raise StartupError(
                f"topic {other} has {count} partitions but {topic_name} has {expected}: a "
                f"ticket's records must meet in one instance, so give {other} {expected} "
                "partitions (recreate it, or add partitions to the smaller one while no "
                "record is in flight)"
            )


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
