"""The Kafka clients the services share: FastStream's broker for consuming, our own aiokafka
producer for publishing (outputs sent as record batches, placed as the default partitioner
places them), the admin client for topics, and the security all three use. The service's
life cycle around them is in service.py."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence
from typing import Any, Protocol

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code
from aiokafka.partitioner import murmur2
from faststream.kafka import KafkaBroker, Topic
from faststream.kafka.security import parse_security
from faststream.security import (
    BaseSecurity,
    SASLPlaintext,
    SASLScram256,
    SASLScram512,
)

from services.runtime.pipeline import Outgoing, Publish
from services.runtime.progress import ConsumerProgress, FastStreamLog
from services.runtime.settings import ServiceSettings

log = structlog.get_logger()

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
