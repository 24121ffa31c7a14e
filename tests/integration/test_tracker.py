"""The tracker as a process on the embedded broker: clocks fire on the wall clock, responses
complete them, and a tracker killed with open clocks loses none of them (docs/state.md)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from services.runtime.embedded import EmbeddedBroker
from tests.support.processes import ServiceProcess, consumer_from_start, http_get, service_env
from tests.support.tracker_stack import assignment, response

pytestmark = pytest.mark.integration


class Tracker:
    def __init__(self, broker: EmbeddedBroker, tmp_path: Path) -> None:
        env = service_env(broker.bootstrap_servers, uuid.uuid4().hex[:8])
        env["TRACKER_GROUP_ID"] = f"tracker-{uuid.uuid4().hex[:8]}"
        self.process = ServiceProcess("services.tracker", env, tmp_path / "tracker.log")
        self.events: list[dict[str, Any]] = []

    async def send(self, producer: AIOKafkaProducer, topic: str, event: dict[str, Any]) -> None:
        key = event["data"]["ticket_id"].encode()
        await producer.send_and_wait(topic, json.dumps(event).encode(), key=key)

    def of(self, ticket_id: str) -> list[str]:
        return [e["type"].rsplit(".", 1)[-1] for e in self.events if e["subject"] == ticket_id]

    async def wait_for(self, ticket_id: str, kinds: list[str], timeout: float = 30.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while self.of(ticket_id) != kinds:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{ticket_id}: {self.of(ticket_id)}\n{self.process.logs()}")
            await asyncio.sleep(0.05)


@pytest.fixture
async def tracker(
    embedded_broker: EmbeddedBroker, tmp_path: Path
) -> AsyncIterator[tuple[Tracker, AIOKafkaProducer]]:
    tracker = Tracker(embedded_broker, tmp_path)
    tracker.process.start().wait_ready()
    producer = AIOKafkaProducer(bootstrap_servers=embedded_broker.bootstrap_servers)
    consumer = consumer_from_start(embedded_broker.bootstrap_servers, "sla.events")
    await producer.start()
    await consumer.start()

    async def collect() -> None:
        async for record in consumer:
            tracker.events.append(json.loads(record.value or b"{}"))

    collecting = asyncio.create_task(collect())
    try:
        yield tracker, producer
    finally:
        collecting.cancel()
        await consumer.stop()
        await producer.stop()
        tracker.process.stop()


async def test_clocks_fire_on_time_and_responses_complete_them(
    tracker: tuple[Tracker, AIOKafkaProducer],
) -> None:
    t, producer = tracker
    now = datetime.now(UTC)
    # 24x7, 20 s from start to due: at risk 15 s after the start (0.75), i.e. 1 s from now.
    late = f"T-late-{uuid.uuid4().hex[:6]}"
    await t.send(
        producer,
        "sla.ownership",
        assignment(late, clock_start=now - timedelta(seconds=14), due=now + timedelta(seconds=6)),
    )
    # Answered in time: completed, met.
    answered = f"T-ok-{uuid.uuid4().hex[:6]}"
    await t.send(
        producer,
        "sla.ownership",
        assignment(answered, clock_start=now, due=now + timedelta(hours=1)),
    )
    await t.send(producer, "responses.redhat", response(answered, now + timedelta(seconds=1)))
    # A response consumed before its assignment is held, then counts.
    early = f"T-early-{uuid.uuid4().hex[:6]}"
    await t.send(producer, "responses.redhat", response(early, now + timedelta(seconds=1)))
    await asyncio.sleep(1)
    await t.send(
        producer, "sla.ownership", assignment(early, clock_start=now, due=now + timedelta(hours=1))
    )

    await t.wait_for(answered, ["completed"])
    await t.wait_for(early, ["completed"])
    await t.wait_for(late, ["at_risk"], timeout=10)
    at_risk = next(e for e in t.events if e["subject"] == late)
    await t.wait_for(late, ["at_risk", "breached"], timeout=15)
    breached = [e for e in t.events if e["subject"] == late][1]
    assert at_risk["data"]["occurred_at"] == at_risk["data"]["at_risk_at"]
    assert breached["data"]["occurred_at"] == breached["data"]["response_due_at"]
    completed = next(e for e in t.events if e["subject"] == answered)
    assert completed["data"]["met"] is True
    assert completed["data"]["elapsed"] == "PT1S"
    metrics = http_get(t.process.port, "/metrics")[1]
    assert 'ticketroute_sla_breaches_total{party="redhat",vendor=""} 1.0' in metrics
    lag = [
        line
        for line in metrics.splitlines()
        if line.startswith('ticketroute_sla_timer_lag_seconds_bucket{le="2.0"}')
    ]
    assert lag == ['ticketroute_sla_timer_lag_seconds_bucket{le="2.0"} 2.0'], lag


async def test_a_killed_tracker_loses_no_clock_and_fires_each_event_once(
    tracker: tuple[Tracker, AIOKafkaProducer],
) -> None:
    t, producer = tracker
    now = datetime.now(UTC)
    tickets = [f"T-k{i}-{uuid.uuid4().hex[:6]}" for i in range(20)]
    for i, ticket_id in enumerate(tickets):
        # Due between 6 and 12 s from now; at risk 3/4 of the way from a start 20 s ago.
        await t.send(
            producer,
            "sla.ownership",
            assignment(
                ticket_id,
                clock_start=now - timedelta(seconds=20),
                due=now + timedelta(seconds=6 + i * 0.3),
            ),
        )
    await t.wait_for(tickets[0], ["at_risk"], timeout=10)
    t.process.kill()  # SIGKILL: open clocks, some at risk already, none breached yet
    t.process.start().wait_ready()
    for ticket_id in tickets:
        await t.wait_for(ticket_id, ["at_risk", "breached"], timeout=40)
    await asyncio.sleep(2)  # nothing more may come
    ids = Counter(e["id"] for e in t.events if e["subject"] in tickets)
    assert len(ids) == 40
    assert t.process.events("state_restored")[-1]["records"] >= 20
    # Breached but unanswered clocks stay open; counted from the restored records' headers.
    metrics = http_get(t.process.port, "/metrics")[1]
    assert 'ticketroute_sla_open_clocks{party="redhat",role="owner"} 20.0' in metrics
    # An event published before the kill may be published again (at least once), with its id.
    assert all(count <= 2 for count in ids.values())
