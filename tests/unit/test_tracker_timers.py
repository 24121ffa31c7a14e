"""The tracker's timers in process, with the clock passed in: what a tick fires, and that a tick
the broker does not acknowledge is fired again, not lost."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from services.runtime.health import Readiness
from services.runtime.pipeline import BatchPipeline
from services.runtime.settings import TrackerSettings
from services.tracker.app import TrackerProcessor
from tests.support.inprocess import Collecting, consumer_record
from tests.support.tracker_stack import SetClock, assignment

START = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def _tracker() -> tuple[TrackerProcessor, BatchPipeline, Collecting, SetClock]:
    clock = SetClock(START)
    tracker = TrackerProcessor(TrackerSettings(), clock=clock)
    producer = Collecting()
    readiness = Readiness()
    readiness.clear("starting")
    pipeline = BatchPipeline(tracker, producer.publish, "tickets.deadletter", readiness)
    return tracker, pipeline, producer, clock


def _types(producer: Collecting, topic: str = "sla.events") -> list[str]:
    return [json.loads(o.value)["type"] for o in producer.sent if o.topic == topic]


async def test_a_tick_fires_what_has_come_and_keeps_the_rest() -> None:
    tracker, pipeline, producer, clock = _tracker()
    # 24x7, one hour from 09:00: at risk at 09:45 (0.75), due at 10:00.
    event = assignment("T-1", clock_start=START, due=START + timedelta(hours=1))
    await pipeline.handle([consumer_record(json.dumps(event).encode(), topic="sla.ownership")])
    clock.now = START + timedelta(minutes=44, seconds=59)
    await pipeline.tick(tracker.fire)
    assert _types(producer) == []
    clock.now = START + timedelta(minutes=45)
    await pipeline.tick(tracker.fire)
    assert _types(producer) == ["support.sla.at_risk"]
    clock.now = START + timedelta(hours=2)
    await pipeline.tick(tracker.fire)
    assert _types(producer) == ["support.sla.at_risk", "support.sla.breached"]
    # The state after each tick went to the changelog, on the input's partition.
    states = [o for o in producer.sent if o.topic == "ticketroute.tracker.state"]
    assert [o.partition for o in states] == [0, 0, 0]
    assert states[-1].headers["open"] == "redhat/owner"
    assert "next" not in states[-1].headers  # nothing left to fire


async def test_a_tick_the_broker_does_not_acknowledge_fires_again() -> None:
    tracker, pipeline, producer, clock = _tracker()
    event = assignment("T-2", clock_start=START, due=START + timedelta(hours=1))
    await pipeline.handle([consumer_record(json.dumps(event).encode(), topic="sla.ownership")])
    clock.now = START + timedelta(minutes=50)
    producer.fail = True
    await pipeline.tick(tracker.fire)
    failed = [json.loads(o.value)["id"] for o in producer.sent if o.topic == "sla.events"]
    producer.fail = False
    producer.sent.clear()
    await pipeline.tick(tracker.fire)
    again = [json.loads(o.value)["id"] for o in producer.sent if o.topic == "sla.events"]
    assert again == failed  # the same at-risk event, with the same id
    assert _types(producer) == ["support.sla.at_risk"]
