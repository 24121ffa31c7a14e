"""The tracker wired into one FastStream broker as it wires itself, on FastStream's in-memory
broker or on the embedded Tansu broker, with a clock the test sets: timers fire when the test
ticks the pipeline, so moments are passed in, never waited for. Also the assignment and
response events the tracker reads, as their producers write them (README, "The SLA
lifecycle: the tracker").

On the in-memory broker no rebalance listener runs, so nothing is restored; the tracker starts
empty, as on a new changelog topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry

from services.runtime.health import Readiness
from services.runtime.kafka import build_broker, publisher
from services.runtime.pipeline import BatchPipeline, Outgoing
from services.runtime.service import wire
from services.runtime.settings import TrackerSettings
from services.tracker.app import TrackerProcessor, tracker_spec
from tests.support.stack import Captured, batch_producer, capture, consuming

# The partners whose response topics exist in these tests (created before the tracker starts:
# a pattern subscription sees a new topic only at its next metadata refresh).
PARTNERS = ("pure-storage", "netapp")


def iso(moment: datetime) -> str:
    """A time as the contract writes it: UTC with `Z`."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def calendar(
    timezone: str = "America/New_York", country: str = "US", start: str = "09:00:00"
) -> dict[str, str]:
    """The customer's business calendar on an assignment; the US sample opens 09:00-18:00."""
    end = "18:00:00" if country in {"US", "CA"} else "17:00:00"
    return {"timezone": timezone, "country": country, "start": start, "end": end}


def assignment(
    ticket_id: str,
    *,
    clock_start: datetime,
    due: datetime,
    revision: int = 1,
    sent_at: datetime | None = None,
    owner: tuple[str, str | None] = ("redhat", None),
    clock: str = "24x7",
    collaborators: Sequence[tuple[str, str, datetime]] = (),
    customer_calendar: dict[str, str] | None = None,
) -> dict[str, Any]:
    """`support.sla.assigned` as the router publishes it on sla.ownership; the event's `time`
    (what a newer revision's cancellations are dated) is the clock start unless given."""
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/ticketroute/router",
        "type": "support.sla.assigned",
        "time": iso(sent_at or clock_start),
        "subject": ticket_id,
        "datacontenttype": "application/json",
        "data": {
            "ticket_id": ticket_id,
            "revision": revision,
            "decision_id": decision_id(ticket_id, revision),
            "severity": 1,
            "owner": {"party": owner[0], "vendor_id": owner[1]},
            "clock": clock,
            "clock_start": iso(clock_start),
            "response_due_at": iso(due),
            "basis": "as the router would say it",
            "collaborators": [
                {"vendor_id": vendor, "clock": kind, "respond_by": iso(by)}
                for vendor, kind, by in collaborators
            ],
            "calendar": customer_calendar or calendar(),
        },
    }


def decision_id(ticket_id: str, revision: int) -> str:
    """The decision id the assignments in these tests carry (the router's is a UUID)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{ticket_id}/{revision}"))


def response(
    ticket_id: str,
    responded_at: datetime,
    *,
    kind: str = "first_response",
    vendor_id: str | None = None,
    revision: int | None = None,
) -> dict[str, Any]:
    """`support.response.recorded` as the ticketing system, a partner or the TSANet connector
    writes it; `vendor_id` and `revision` are left out when None."""
    data: dict[str, Any] = {
        "ticket_id": ticket_id,
        "responded_at": iso(responded_at),
        "kind": kind,
    }
    if vendor_id is not None:
        data["vendor_id"] = vendor_id
    if revision is not None:
        data["revision"] = revision
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/ticketing/prod",
        "type": "support.response.recorded",
        "time": iso(responded_at),
        "subject": ticket_id,
        "datacontenttype": "application/json",
        "data": data,
    }


class SetClock:
    """The tracker's clock: whatever the test last set."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class TrackerStack:
    """The tracker on one broker, its clock, and everything it publishes, by topic."""

    kind: str
    broker: KafkaBroker
    settings: TrackerSettings
    processor: TrackerProcessor
    pipeline: BatchPipeline
    clock: SetClock
    outputs: dict[str, list[Captured]] = field(default_factory=lambda: defaultdict(list))

    async def send(
        self, topic_name: str, event: dict[str, Any], *, at: datetime | None = None
    ) -> bytes:
        """Publish an event keyed by its ticket id, as its producer would, the clock set to `at`
        first when given (what the tracker reads it at); its bytes."""
        if at is not None:
            self.clock.now = at
        value = json.dumps(event).encode()
        await self.broker.publish(value, topic_name, key=event["data"]["ticket_id"].encode())
        return value

    def _of(self, topic_name: str, ticket_id: str) -> list[Captured]:
        return [c for c in self.outputs[topic_name] if c.key == ticket_id.encode()]

    def events(self, ticket_id: str) -> list[Captured]:
        """What the tracker published on sla.events for the ticket, in order."""
        return self._of(self.settings.topic_sla_events, ticket_id)

    def kinds(self, ticket_id: str) -> list[str]:
        return [c.event["type"].rsplit(".", 1)[-1] for c in self.events(ticket_id)]

    def dead_letters(self, ticket_id: str) -> list[Captured]:
        return self._of(self.settings.topic_deadletter, ticket_id)

    def states(self, ticket_id: str) -> list[Captured]:
        """The ticket's records on the tracker's changelog: one per input it handled."""
        return self._of(self.settings.topic_tracker_state, ticket_id)

    async def wait_for(self, condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {timeout}s on {self.kind}")
            await asyncio.sleep(0.02)

    async def handled(self, ticket_id: str, inputs: int) -> None:
        """Until the tracker has handled `inputs` of the ticket's inputs (each writes the
        ticket's state once its outputs are acknowledged)."""
        await self.wait_for(
            lambda: len(self.states(ticket_id)) >= inputs, f"{inputs} inputs of {ticket_id}"
        )

    async def published(self, ticket_id: str, kinds: list[str]) -> list[dict[str, Any]]:
        """Until the ticket's events on sla.events are of these types, in order; then they."""
        await self.wait_for(
            lambda: self.kinds(ticket_id) == kinds,
            f"{ticket_id}: {kinds} (have {self.kinds(ticket_id)})",
        )
        return [c.event for c in self.events(ticket_id)]

    async def tick(self, at: datetime) -> list[Outgoing]:
        """Set the clock and run one timer tick as the service does (through the pipeline,
        never during a batch); what it published, acknowledged."""
        self.clock.now = at
        fired: list[Outgoing] = []

        def fire() -> Sequence[Outgoing]:
            fired.extend(self.processor.fire())
            return fired

        await self.pipeline.tick(fire)
        return fired


def suffixed_topics(run: str) -> dict[str, str]:
    """Settings giving this tracker topics of its own, for a second tracker on a broker that
    another one already reads."""
    return {
        "topic_sla": f"sla.ownership.{run}",
        "topic_responses_redhat": f"responses.redhat.{run}",
        "topic_responses_tsanet": f"responses.tsanet.{run}",
        "topic_responses_partner_prefix": f"responses.partner.{run}.",
        "topic_sla_events": f"sla.events.{run}",
        "topic_deadletter": f"tickets.deadletter.{run}",
        "topic_tracker_state": f"ticketroute.tracker.state.{run}",
    }


@contextlib.asynccontextmanager
async def running_tracker(
    kind: str, bootstrap: str, now: datetime, **overrides: Any
) -> AsyncIterator[TrackerStack]:
    """The tracker on the in-memory broker (`kind` memory) or on the broker at `bootstrap`,
    its clock at `now`; `overrides` change its settings (e.g. `suffixed_topics`)."""
    run = uuid.uuid4().hex[:8]
    settings = TrackerSettings(
        kafka_bootstrap_servers=bootstrap,
        tracker_group_id=f"tracker-{run}",
        session_timeout_ms=6000,
        heartbeat_interval_ms=2000,
        batch_timeout_ms=20,
        **overrides,
    )
    clock = SetClock(now)
    # The service's own spec on the test's clock; its open-clocks gauge in a registry of its
    # own (the process-wide one takes a collector name once).
    spec = tracker_spec(settings, clock, CollectorRegistry())
    processor = spec.processor
    assert isinstance(processor, TrackerProcessor)
    broker = build_broker(settings)
    producer = batch_producer(kind, broker, settings)
    wiring = wire(broker, spec, Readiness(), publisher(producer))
    stack = TrackerStack(kind, broker, settings, processor, wiring.pipeline, clock)
    outputs = [settings.topic_sla_events, settings.topic_deadletter, settings.topic_tracker_state]
    capture(broker, settings, outputs, stack.outputs)
    partners = [settings.topic_responses_partner_prefix + p for p in PARTNERS]
    async with consuming(broker, producer, [spec], also_create=partners):
        yield stack
