"""The tracker: sla.ownership and the response topics -> the SLA clocks' lifecycle on
sla.events. Wiring only: the rules are in clocks.py and responses.py.

State is one `TicketClocks` per ticket, per owned partition, kept on the tracker's changelog
topic (services/runtime/statestore.py). Timers are a heap of (moment, partition, ticket) kept
beside it: every state change pushes the ticket's next moment, and each tick pops the moments
that have come, checking them against the current state, so a moment that changed is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector, CollectorRegistry

from schemas.decision import SlaAssignedEvent
from services.runtime import events
from services.runtime.metrics import (
    SLA_AT_RISK,
    SLA_BREACHES,
    SLA_EVENTS,
    SLA_RESPONSES_IGNORED,
    SLA_TIMER_LAG,
)
from services.runtime.pipeline import BatchPipeline, Clock, Outgoing, Record, Rejected, utc_now
from services.runtime.service import ServiceSpec
from services.runtime.settings import TrackerSettings
from services.tracker.clocks import (
    ClockRules,
    SlaEvent,
    TicketClocks,
    Transition,
    assign,
    expire_held,
    fire_due,
    from_json,
    next_expiry,
    next_moment,
    open_clocks,
    respond,
    to_json,
)
from services.tracker.responses import ResponseTopics, read_response

log = structlog.get_logger()

TICK_SECONDS = 0.5  # the longest the timers sleep: new input may bring a moment forward
MIN_SLEEP_SECONDS = 0.02  # the shortest, so a burst of moments is fired in groups
Timer = tuple[float, int, str]  # (POSIX time of the moment, partition, ticket id)
OpenKinds = tuple[tuple[str, str], ...]  # a ticket's open clocks as (party, role)


@dataclass(frozen=True)
class TrackerTopics:
    assignments: str
    responses: ResponseTopics
    events: str
    state: str


def input_pattern(s: TrackerSettings) -> str:
    """Every topic the tracker reads: assignments, and responses (partners' by prefix, so a
    partner added later is followed too)."""
    names = "|".join(
        re.escape(t) for t in (s.topic_sla, s.topic_responses_redhat, s.topic_responses_tsanet)
    )
    return f"^({names}|{re.escape(s.topic_responses_partner_prefix)}[a-z0-9][a-z0-9-]*)$"


class TrackerProcessor:
    """Feeds consumed records and the wall clock to the pure core; keeps each owned
    partition's tickets, with what the batch in hand changed kept apart until it is done."""

    def __init__(
        self,
        settings: TrackerSettings,
        clock: Clock = utc_now,
    ) -> None:
        s = settings
        self._topics = TrackerTopics(
            s.topic_sla,
            ResponseTopics(
                s.topic_responses_redhat, s.topic_responses_partner_prefix, s.topic_responses_tsanet
            ),
            s.topic_sla_events,
            s.topic_tracker_state,
        )
        self._rules = ClockRules(s.at_risk_fraction, timedelta(seconds=s.held_response_seconds))
        self._source = s.event_source
        self._clock = clock
        # Per owned partition, each ticket's state in its stored form (JSON, as on the
        # changelog), decoded only while the ticket is being handled: a restore reads only the
        # records' headers, and 100,000 open tickets take about half the memory decoded ones do.
        self.tickets: dict[int, dict[str, bytes]] = {}
        # Per owned partition, each ticket's open clocks as (party, role); their total by kind.
        self._open: dict[int, dict[str, OpenKinds]] = {}
        self.open_clocks: Counter[tuple[str, str]] = Counter()
        # What the batch (or tick) in hand changed, kept apart until it is acknowledged.
        self._pending: dict[tuple[int, str], TicketClocks] = {}
        self._encoded: dict[tuple[int, str], bytes] = {}
        self._published: list[SlaEvent] = []
        self._ignored: Counter[str] = Counter()
        self._fired: list[Timer] = []
        self._timers: list[Timer] = []

    # --- consumed records ---------------------------------------------------------------------

    def process(self, record: Record) -> Sequence[Outgoing]:
        now = self._clock()
        if record.topic == self._topics.assignments:
            assignment = events.parse_record(SlaAssignedEvent, record)
            ticket_id = assignment.data.ticket_id
            step = assign(self._state(record.partition, ticket_id), assignment, now, self._rules)
        else:
            family = self._topics.responses.family(record.topic)
            if family is None:
                raise Rejected("unsupported_topic", f"the tracker does not read {record.topic}")
            response = read_response(*family, record)
            ticket_id = response.ticket_id
            state = self._state(record.partition, ticket_id)
            step = respond(state, response, family[0], now, self._rules)
        return self._apply(record.partition, ticket_id, step)

    # --- timers -------------------------------------------------------------------------------

    def fire(self) -> Sequence[Outgoing]:
        """The at-risk and breach moments, and the ends of held responses' waits, that have
        come: their events, in order of their moments."""
        now = self._clock()
        until = now.timestamp()
        outputs: list[Outgoing] = []
        while self._timers and self._timers[0][0] <= until:
            timer = heapq.heappop(self._timers)
            self._fired.append(timer)
            _, partition, ticket_id = timer
            if ticket_id not in self.tickets.get(partition, {}):
                continue  # partition given up, or ticket gone
            state = self._state(partition, ticket_id)
            step = fire_due(state, now)
            expired = expire_held(step.state, now)
            step = Transition(expired.state, step.events, (*step.ignored, *expired.ignored))
            if step.state is not state or step.events or step.ignored:
                outputs += self._apply(partition, ticket_id, step)
        return outputs

    async def run_timers(self, pipeline: BatchPipeline, stop: asyncio.Event) -> None:
        """Fire what has come, then sleep until the next moment (at most TICK_SECONDS, so a
        moment that new input brings forward is not missed by more than that)."""
        while not stop.is_set():
            now = self._clock().timestamp()
            if self._timers and self._timers[0][0] <= now:
                await pipeline.tick(self.fire)
                now = self._clock().timestamp()
            wait = TICK_SECONDS
            if self._timers:
                wait = min(max(self._timers[0][0] - now, MIN_SLEEP_SECONDS), TICK_SECONDS)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)

    # --- the batch's life ---------------------------------------------------------------------

    def changes(self) -> Sequence[Outgoing]:
        outputs = []
        for (partition, ticket_id), state in self._pending.items():
            encoded = self._encoded[(partition, ticket_id)] = _stored_form(state)
            headers = _summary_headers(state)
            outputs.append(
                Outgoing(self._topics.state, ticket_id.encode(), encoded, headers, partition)
            )
        return outputs

    def batch_done(self) -> None:
        published_at = self._clock()
        for (partition, ticket_id), state in self._pending.items():
            encoded = self._encoded.get((partition, ticket_id)) or _stored_form(state)
            self.tickets.setdefault(partition, {})[ticket_id] = encoded
            self._count_open(partition, ticket_id, _open_of(state))
            self._schedule(partition, ticket_id, _next_of(state))
        for event in self._published:
            _count(event, published_at)
        for reason, count in self._ignored.items():
            SLA_RESPONSES_IGNORED.labels(reason).inc(count)
        self._fired.clear()
        self._forget_batch()

    def batch_failed(self) -> None:
        """Forget the batch; the timers it fired come round again at the next tick."""
        for timer in self._fired:
            heapq.heappush(self._timers, timer)
        self._fired.clear()
        self._forget_batch()

    def _forget_batch(self) -> None:
        self._pending.clear()
        self._encoded.clear()
        self._published.clear()
        self._ignored.clear()

    # --- state store --------------------------------------------------------------------------

    def restore(self, partition: int, records: Sequence[Record]) -> None:
        tickets = self.tickets.setdefault(partition, {})
        for record in records:
            if record.key is None:
                continue
            ticket_id = record.key.decode()
            if record.value is None:
                tickets.pop(ticket_id, None)
                self._count_open(partition, ticket_id, ())
                continue
            tickets[ticket_id] = record.value
            headers = dict(record.headers)
            self._count_open(partition, ticket_id, _parse_open(headers.get(OPEN_HEADER)))
            moment = headers.get(NEXT_HEADER)
            if moment:
                self._schedule(partition, ticket_id, datetime.fromisoformat(moment.decode()))

    def revoke(self, partition: int) -> None:
        self.tickets.pop(partition, None)
        for still_open in self._open.pop(partition, {}).values():
            for kind in still_open:
                self.open_clocks[kind] -= 1

    # --- helpers ------------------------------------------------------------------------------

    def _state(self, partition: int, ticket_id: str) -> TicketClocks:
        pending = self._pending.get((partition, ticket_id))
        if pending is not None:
            return pending
        stored = self.tickets.get(partition, {}).get(ticket_id)
        return TicketClocks(ticket_id) if stored is None else from_json(stored)

    def _count_open(self, partition: int, ticket_id: str, now_open: OpenKinds) -> None:
        of_partition = self._open.setdefault(partition, {})
        counts = self.open_clocks
        for kind in of_partition.pop(ticket_id, ()):
            counts[kind] -= 1
        if now_open:
            of_partition[ticket_id] = now_open
            for kind in now_open:
                counts[kind] += 1

    def _apply(self, partition: int, ticket_id: str, step: Transition) -> list[Outgoing]:
        self._pending[(partition, ticket_id)] = step.state
        self._published += step.events
        self._ignored.update(step.ignored)
        return [
            events.encode(
                topic=self._topics.events,
                event_id=event.id,
                source=self._source,
                event_type=event.type,
                time=event.moment,
                subject=ticket_id,
                data=event.data,
            )
            for event in step.events
        ]

    def _schedule(self, partition: int, ticket_id: str, moment: datetime | None) -> None:
        if moment is not None:
            heapq.heappush(self._timers, (moment.timestamp(), partition, ticket_id))


# A state record's headers say what the timers and the open-clocks gauge need, so a restore
# does not decode the states themselves.
NEXT_HEADER = "next"  # the state's next timer moment, RFC 3339 (absent: none)
OPEN_HEADER = "open"  # its open clocks, as party/role, comma-separated


def _stored_form(state: TicketClocks) -> bytes:
    """The state as the changelog and the tracker's memory keep it: its JSON, copied to exactly
    its length (orjson's result keeps the whole buffer it wrote into, about 4 KB, and the
    tracker keeps one of these for every open ticket)."""
    return memoryview(to_json(state)).tobytes()


def _next_of(state: TicketClocks) -> datetime | None:
    return min((m for m in (next_moment(state), next_expiry(state)) if m is not None), default=None)


def _open_of(state: TicketClocks) -> OpenKinds:
    return tuple((clock.party, clock.role) for clock in open_clocks(state))


def _summary_headers(state: TicketClocks) -> dict[str, str]:
    headers = {OPEN_HEADER: ",".join(f"{party}/{role}" for party, role in _open_of(state))}
    moment = _next_of(state)
    if moment is not None:
        headers[NEXT_HEADER] = moment.isoformat()
    return headers


@functools.lru_cache(maxsize=256)  # a handful of distinct values; their tuples are shared
def _parse_open(raw: bytes | None) -> OpenKinds:
    if not raw:
        return ()
    return tuple(
        (party, role)
        for party, _, role in (item.partition("/") for item in raw.decode().split(","))
    )


def _count(event: SlaEvent, published_at: datetime) -> None:
    kind = event.type.rsplit(".", 1)[-1]
    SLA_EVENTS.labels(kind).inc()
    party = event.data.party
    if kind == "breached":
        SLA_BREACHES.labels(party.party, party.vendor_id or "").inc()
    elif kind == "at_risk":
        SLA_AT_RISK.labels(party.party, party.vendor_id or "").inc()
    if kind in {"breached", "at_risk"}:
        SLA_TIMER_LAG.observe(max(0.0, (published_at - event.moment).total_seconds()))


class OpenClocks(Collector):
    """`ticketroute_sla_open_clocks{party,role}`, as the tracker counts them."""

    LABELS = ("party", "role")

    def __init__(self, tracker: TrackerProcessor) -> None:
        self._tracker = tracker

    @classmethod
    def family(cls) -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "ticketroute_sla_open_clocks",
            "Open SLA clocks (no response yet), by party and role.",
            labels=list(cls.LABELS),
        )

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = self.family()
        for (party, role), count in sorted(self._tracker.open_clocks.items()):
            if count:
                family.add_metric([party, role], count)
        yield family


def tracker_spec(
    settings: TrackerSettings,
    clock: Clock = utc_now,
    registry: CollectorRegistry = REGISTRY,
) -> ServiceSpec:
    """The tracker on the wall clock, its open-clocks gauge in the process's registry (tests
    pass their own clock, and a registry of their own for each tracker they build)."""
    s = settings
    processor = TrackerProcessor(s, clock)
    registry.register(OpenClocks(processor))
    return ServiceSpec(
        name="tracker",
        settings=s,
        input_topic=s.topic_sla,
        group_id=s.tracker_group_id,
        output_topics=[
            s.topic_sla_events,
            s.topic_deadletter,
            s.topic_responses_redhat,
            s.topic_responses_tsanet,
        ],
        processor=processor,
        changelog_topic=s.topic_tracker_state,
        input_pattern=input_pattern(s),
        co_partitioned=[s.topic_responses_redhat, s.topic_responses_tsanet],
        background=processor.run_timers,
        metrics_port=s.metrics_port,
    )
