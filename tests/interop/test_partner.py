"""A partner as it may really consume: a librdkafka consumer group on its own topic, each
message read by the CloudEvents SDK and checked against the published JSON Schema of its
channel in schemas/asyncapi.yaml. Every other output likewise (README, "Topics and events")."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import pytest
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat
from confluent_kafka import Consumer, Message

from tests.interop.conftest import TicketingProducer, cloudevent_message, schema_problems
from tests.support.checks import wait_all_routed
from tests.support.processes import System
from tests.support.tickets import Ref, component, ticket_event

pytestmark = pytest.mark.integration

VENDOR = "pure-storage"
PARTNER_TOPIC = f"queue.partner.{VENDOR}"
EVENT_TYPES = {
    PARTNER_TOPIC: "support.ticket.routed",
    "queue.redhat": "support.ticket.routed",
    "collab.tsanet": "support.collaboration.requested",
    "sla.ownership": "support.sla.assigned",
    "tickets.enriched": "support.ticket.enriched",
}
RUN = uuid.uuid4().hex[:6]


def read_own_topic(bootstrap: str, want: set[bytes], timeout: float) -> list[Message]:
    """What the partner's consumer group reads from its topic until it has seen `want`."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"partner-{VENDOR}-{RUN}",
            # On the embedded broker a librdkafka group needs a session timeout near 6 s.
            "session.timeout.ms": 6000,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([PARTNER_TOPIC])  # by name: the embedded broker has no regex groups
    messages: list[Message] = []
    deadline = time.monotonic() + timeout
    try:
        while not want <= {m.key() for m in messages} and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            assert message.error() is None, message.error()
            messages.append(message)
        if messages:
            consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    return messages


def check_message(topic: str, key: bytes, value: bytes, headers: dict[str, bytes]) -> Any:
    """The message read by the SDK, as any consumer would, and validated against its
    channel's schema; its data."""
    assert headers.get("content-type") == b"application/cloudevents+json", headers
    event = ce_kafka.from_structured(
        ce_kafka.KafkaMessage(headers=headers, key=key, value=value), JSONFormat()
    )
    assert event.get_specversion() == "1.0"
    assert event.get_type() == EVENT_TYPES[topic]
    assert event.get_subject() == key.decode()
    assert event.get_datacontenttype() == "application/json"
    assert event.get_time() is not None
    assert event.get_time().utcoffset() is not None
    problems = schema_problems(topic, json.loads(value))
    assert not problems, (topic, problems)
    return event.get_data()


async def test_partner_reads_its_own_topic_and_every_output_matches_its_schema(
    interop: System, ticketing: dict[str, TicketingProducer]
) -> None:
    partner_tickets = [f"T-{RUN}-partner-{n}" for n in range(3)]
    others = {
        f"T-{RUN}-redhat": component(Ref.NETAPP, True),
        f"T-{RUN}-tsanet": component(Ref.INFINIBOX, True, False),
    }
    sent = {tid: component(Ref.PURE, True) for tid in partner_tickets} | others
    for tid, suspected in sent.items():
        event = ticket_event(tid, components=[suspected])
        ticketing["zstd"].send(tid, *cloudevent_message(event, "structured"))
    await wait_all_routed(interop, {(tid, 1) for tid in sent}, 30, "the partner's tickets")

    want = {tid.encode() for tid in partner_tickets}
    bootstrap = interop.broker.bootstrap_servers
    messages = await asyncio.to_thread(read_own_topic, bootstrap, want, 30)
    assert want <= {m.key() for m in messages}
    for message in messages:
        assert message.topic() == PARTNER_TOPIC
        data = check_message(
            PARTNER_TOPIC, message.key(), message.value(), dict(message.headers() or [])
        )
        assert data["decision"]["owner"] == {"party": "vendor", "vendor_id": VENDOR}
        assert "vendor_agreements" not in data["ticket"]["customer"]

    # Every other output of these tickets, as the services' own consumer collected it.
    for topic, expected in [
        ("queue.redhat", {f"T-{RUN}-redhat"}),
        ("collab.tsanet", {f"T-{RUN}-tsanet"}),
        ("sla.ownership", set(sent)),
        ("tickets.enriched", set(sent)),
    ]:
        records = [r for r in interop.outputs[topic] if r.key.decode() in sent]
        assert {r.key.decode() for r in records} == expected, topic
        for record in records:
            check_message(topic, record.key, record.value, dict(record.headers))
