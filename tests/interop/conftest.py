"""The services as the systems around them meet them: the ticketing system producing with
librdkafka (`confluent-kafka`) and the official CloudEvents SDK, partners consuming with
librdkafka, and the published schemas read by a standard JSON Schema validator.

One embedded broker and one pair of service processes (tests/support/processes.py) serve the
whole folder; each test uses its own ticket ids.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from functools import cache
from typing import Any

import pytest
import yaml
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from cloudevents.v1 import kafka as ce_kafka_legacy
from cloudevents.v1.http import CloudEvent as LegacyCloudEvent
from confluent_kafka import KafkaError, Message, Producer
from jsonschema import Draft202012Validator

from tests.support.processes import ROOT, System, system_on_own_broker

SCHEMAS = ROOT / "schemas"

# How a ticketing system may put a CloudEvent on Kafka, each as the official Python SDK does
# it: structured mode with today's API (`content-type: application/cloudevents+json`), the
# SDK's older API (structured, but `content-type` is the data's: `application/json`), and
# binary mode (attributes in `ce_*` headers, the data alone as the value).
MODES = ("structured", "structured-legacy-api", "binary")
CODECS = ("none", "gzip", "snappy", "lz4", "zstd")


@pytest.fixture(scope="package")
async def interop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[System]:
    async with system_on_own_broker(tmp_path_factory.mktemp("interop")) as system:
        yield system


# --- the ticketing system ---------------------------------------------------------------------


def _subject(event: Any) -> str:
    return str(event.get_subject() if hasattr(event, "get_subject") else event["subject"])


def cloudevent_message(event: dict[str, Any], mode: str) -> tuple[bytes, list[tuple[str, bytes]]]:
    """The Kafka value and headers of a ticket event (a dict as tests/factories.py builds it),
    built by the CloudEvents SDK in `mode`, keyed by the subject (the ticket id)."""
    attributes = {k: v for k, v in event.items() if k != "data"}
    if mode == "structured-legacy-api":
        legacy = LegacyCloudEvent(attributes, event["data"])
        message = ce_kafka_legacy.to_structured(legacy, key_mapper=_subject)
        return message.value, list(message.headers.items())
    attributes["time"] = datetime.fromisoformat(attributes["time"])
    current = CloudEvent(attributes, event["data"])
    convert = {"structured": ce_kafka.to_structured, "binary": ce_kafka.to_binary}[mode]
    built = convert(current, JSONFormat(), _subject)
    return built.value, list(built.headers.items())


class TicketingProducer:
    """A librdkafka producer configured as a ticketing system might be."""

    def __init__(self, bootstrap: str, compression: str) -> None:
        self.compression = compression
        # librdkafka's defaults otherwise (acks=all; not idempotent, which Tansu refuses).
        self._producer = Producer(
            {"bootstrap.servers": bootstrap, "compression.type": compression, "linger.ms": 5}
        )
        self.failures: list[str] = []

    def _delivered(self, error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            self.failures.append(str(error))

    def send(self, key: str, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        self._producer.produce(
            "tickets.incoming",
            value=value,
            key=key.encode(),
            headers=headers,
            on_delivery=self._delivered,
        )
        left = self._producer.flush(15)
        assert left == 0, f"{left} messages not delivered"
        assert not self.failures, self.failures

    def close(self) -> None:
        self._producer.flush(5)
        del self._producer  # librdkafka closes its connections as the producer goes


@pytest.fixture(scope="package")
def ticketing(interop: System) -> Iterator[dict[str, TicketingProducer]]:
    """One producer per codec (compression is a producer-wide setting)."""
    producers = {c: TicketingProducer(interop.broker.bootstrap_servers, c) for c in CODECS}
    yield producers
    for producer in producers.values():
        producer.close()


# --- the published contracts ------------------------------------------------------------------


@cache
def _asyncapi() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((SCHEMAS / "asyncapi.yaml").read_text())
    return document


def _address_pattern(address: str) -> re.Pattern[str]:
    """A channel address as a pattern: `queue.partner.{vendor_id}` matches any vendor's."""
    parts = re.split(r"(\{[^}]+\})", address)
    return re.compile("".join("[^.]+" if p.startswith("{") else re.escape(p) for p in parts) + "$")


@cache
def validator_for(topic: str) -> Draft202012Validator:
    """The JSON Schema validator of the message of `topic`'s channel in schemas/asyncapi.yaml,
    its `$ref` resolved to the file under schemas/, checking formats (date-time)."""
    document = _asyncapi()
    (channel,) = [
        c for c in document["channels"].values() if _address_pattern(c["address"]).match(topic)
    ]
    (message_ref,) = [m["$ref"] for m in channel["messages"].values()]
    message = document["components"]["messages"][message_ref.rsplit("/", 1)[-1]]
    schema_file = (SCHEMAS / message["payload"]["$ref"]).resolve()
    assert schema_file.parent == SCHEMAS / "jsonschema", schema_file
    schema = json.loads(schema_file.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def schema_problems(topic: str, value: Any) -> list[str]:
    return [
        f"{'/'.join(str(p) for p in e.absolute_path)}: {e.message}"
        for e in validator_for(topic).iter_errors(value)
    ]
