"""The tracker's pure core: one ticket's SLA clocks, from their assignment until they are met,
breached or superseded (README, "The SLA lifecycle: the tracker").

Everything here is a function of a ticket's state, one input and the time passed in; nothing
reads a clock, a broker or a file. The service keeps one `TicketClocks` per ticket id in its
Kafka-backed store (`to_json` / `from_json`), feeds it assignments and responses as they are
consumed, and calls `fire_due` when `next_moment` comes round on the wall clock. Each step
returns the new state, the events to publish on `sla.events`, and the reasons it ignored
inputs (for the metrics); the old state is left untouched, so a batch that fails to publish
keeps the state it started from.

Business time is counted by services/businesstime.py, shared with the router.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from typing import Literal

import orjson

from schemas.catalog import BusinessHours, Clock
from schemas.decision import CustomerCalendar, Party, SlaAssignedEvent
from schemas.tracker import (
    SLA_AT_RISK,
    SLA_BREACHED,
    SLA_CANCELLED,
    SLA_COMPLETED,
    ResponseFamily,
    ResponseRecorded,
    Role,
    SlaCancelled,
    SlaClockEvent,
    SlaCompleted,
    SlaEventType,
    SlaParty,
)
from services.businesstime import (
    BusinessCalendar,
    calendar_for,
    clock_time_between,
    fraction_elapsed_at,
)
from services.runtime.events import derived_id

Moment = Literal["at_risk", "breached"]
Published = Literal["at_risk", "breached", "completed"]
"""What a clock has published; `cancelled` is not kept: a cancelled clock is dropped."""

IgnoredReason = Literal[
    # assignments
    "stale_assignment",  # an older revision than the latest known
    "repeated_assignment",  # the latest revision again: changes nothing
    # responses
    "unknown_ticket",  # held, and no assignment of the ticket came in time
    "unknown_revision",  # held for a newer revision than known, which did not come in time
    "superseded_revision",  # answers a revision a newer one has superseded
    "not_owner",  # Red Hat or partner response: that party owns no clock of the revision
    "not_collaborator",  # TSANet response: the vendor is no collaborator of the revision
    "already_completed",  # the clock was already answered
    "before_clock_start",  # given before the clock started: it answered an earlier revision
    "too_many_held",  # the ticket already has MAX_HELD responses waiting
]
IGNORED_REASONS: tuple[IgnoredReason, ...] = IgnoredReason.__args__  # type: ignore[attr-defined]

# Held responses wait for an assignment that may never come (a ticket the tracker will never
# be told about); a bound keeps one ticket from growing without end.
MAX_HELD = 32
_STATE_FORMAT = 1
_EVENT_TYPES: dict[Published | Literal["cancelled"], SlaEventType] = {
    "at_risk": SLA_AT_RISK,
    "breached": SLA_BREACHED,
    "completed": SLA_COMPLETED,
    "cancelled": SLA_CANCELLED,
}


@dataclass(frozen=True, slots=True)
class ClockRules:
    """The tracker's settings that the rules depend on."""

    at_risk_fraction: float = 0.75
    """Share of the target, in the target's clock, after which an open clock is at risk."""
    held_for: timedelta = timedelta(hours=1)
    """How long a response waits for the assignment it answers."""


@dataclass(frozen=True, slots=True)
class SlaClock:
    """One party's clock for one revision of a ticket. Open until it is completed; a clock a
    newer revision supersedes is dropped once its `cancelled` event is out."""

    revision: int
    decision_id: str
    party: Party
    vendor_id: str | None
    role: Role
    clock: Clock
    clock_start: datetime
    response_due_at: datetime
    at_risk_at: datetime
    published: tuple[Published, ...] = ()

    @property
    def is_open(self) -> bool:
        return "completed" not in self.published

    def moment(self, which: Moment) -> datetime:
        return self.at_risk_at if which == "at_risk" else self.response_due_at


@dataclass(frozen=True, slots=True)
class HeldResponse:
    """A response that came before the assignment it answers; `revision` None means whichever
    revision is the latest when it is applied."""

    family: ResponseFamily
    revision: int | None
    vendor_id: str | None
    responded_at: datetime
    held_until: datetime


@dataclass(frozen=True, slots=True)
class TicketClocks:
    """What the tracker knows of one ticket: the latest assignment's revision and calendar,
    that revision's clocks (open and completed), and the responses waiting for an assignment."""

    ticket_id: str
    revision: int | None = None
    """The latest revision assigned; None until the first assignment."""
    calendar: CustomerCalendar | None = None
    clocks: tuple[SlaClock, ...] = ()
    held: tuple[HeldResponse, ...] = ()


@dataclass(frozen=True, slots=True)
class SlaEvent:
    """One event to publish on `sla.events`, keyed by `data.ticket_id`. Its id is derived
    from the ticket, revision, party, role and type, so a repeat after a crash keeps it."""

    type: SlaEventType
    id: str
    data: SlaClockEvent

    @property
    def moment(self) -> datetime:
        """The moment the event is about (timer lag is publish time minus this)."""
        return self.data.occurred_at


@dataclass(frozen=True, slots=True)
class Transition:
    """The outcome of one input: the ticket's new state, what to publish (in order) and the
    reasons inputs were ignored."""

    state: TicketClocks
    events: tuple[SlaEvent, ...] = ()
    ignored: tuple[IgnoredReason, ...] = ()


# --- transitions -----------------------------------------------------------------------------


def assign(
    state: TicketClocks, assignment: SlaAssignedEvent, now: datetime, rules: ClockRules
) -> Transition:
    """An SLA assignment: opens a clock for the owner and one per collaborator. A newer revision
    cancels the open clocks of the one before (at the assignment event's `time`); an older one
    is stale, the same one again changes nothing. Held responses for the revision are applied,
    and moments already past are published at once."""
    data = assignment.data
    _same_ticket(state, data.ticket_id)
    if state.revision is not None and data.revision < state.revision:
        return Transition(state, ignored=("stale_assignment",))
    if state.revision is not None and data.revision == state.revision:
        return Transition(state, ignored=("repeated_assignment",))

    superseded_at = _utc(assignment.time)
    cancelled: list[SlaEvent] = []
    for old in state.clocks:
        if old.is_open:
            clock, passed = _publish_moments(state, old, now, before=superseded_at)
            cancelled += passed
            cancelled.append(
                _event(
                    state,
                    clock,
                    "cancelled",
                    superseded_at,
                    cls=SlaCancelled,
                    reason="superseded",
                    superseded_by=data.revision,
                )
            )

    calendar = _business_calendar(data.calendar)
    parties: list[tuple[Party, str | None, Role, Clock, datetime]] = [
        (data.owner.party, data.owner.vendor_id, "owner", data.clock, data.response_due_at)
    ]
    parties += [
        ("vendor", c.vendor_id, "collaborator", c.clock, c.respond_by) for c in data.collaborators
    ]
    clocks: dict[tuple[Party, str | None, Role], SlaClock] = {}
    for party, vendor_id, role, clock_kind, due in parties:
        start, due_utc = _utc(data.clock_start), _utc(due)
        clocks.setdefault(
            (party, vendor_id, role),
            SlaClock(
                revision=data.revision,
                decision_id=data.decision_id,
                party=party,
                vendor_id=vendor_id,
                role=role,
                clock=clock_kind,
                clock_start=start,
                response_due_at=due_utc,
                at_risk_at=fraction_elapsed_at(
                    start, due_utc, rules.at_risk_fraction, clock_kind, calendar
                ),
            ),
        )
    waiting = state.held
    state = replace(
        state,
        revision=data.revision,
        calendar=data.calendar,
        clocks=tuple(clocks.values()),
        held=(),
    )

    # Held responses in the order they were given: the first to answer a clock completes it.
    events: list[SlaEvent] = []
    ignored: list[IgnoredReason] = []
    still_held: list[HeldResponse] = []
    for held in sorted(waiting, key=lambda h: h.responded_at):
        if held.revision is not None and held.revision > data.revision:
            still_held.append(held)
        elif held.revision is not None and held.revision < data.revision:
            ignored.append("superseded_revision")
        else:
            step = _answer(state, held.family, held.vendor_id, held.responded_at, now)
            state = step.state
            events += step.events
            ignored += step.ignored
    state = replace(state, held=tuple(still_held))
    timers = fire_due(state, now)
    # In time order (sorted is stable: one clock's own events are already in order).
    opened = sorted([*events, *timers.events], key=lambda e: e.moment)
    return Transition(timers.state, (*cancelled, *opened), tuple(ignored))


def respond(
    state: TicketClocks,
    response: ResponseRecorded,
    family: ResponseFamily,
    now: datetime,
    rules: ClockRules,
) -> Transition:
    """A first response, checked against its topic (services/tracker/responses.py): completes
    the clock it answers (`met` when no later than the due time), after publishing the moments
    that passed before it. One that may answer an assignment not seen yet is held."""
    _same_ticket(state, response.ticket_id)
    vendor_id = None if family == "redhat" else response.vendor_id
    if family != "redhat" and vendor_id is None:
        raise ValueError(f"a {family} response names its vendor (check_response fills it in)")
    responded_at = _utc(response.responded_at)
    if state.revision is None or (
        response.revision is not None and response.revision > state.revision
    ):
        if len(state.held) >= MAX_HELD:
            return Transition(state, ignored=("too_many_held",))
        held = HeldResponse(
            family, response.revision, vendor_id, responded_at, now + rules.held_for
        )
        return Transition(replace(state, held=(*state.held, held)))
    if response.revision is not None and response.revision < state.revision:
        return Transition(state, ignored=("superseded_revision",))
    return _answer(state, family, vendor_id, responded_at, now)


def fire_due(state: TicketClocks, now: datetime) -> Transition:
    """Publishes every at-risk and breach moment that has come (moment ≤ now) on an open clock
    and was not published yet: in time order, at-risk before breached."""
    events: list[SlaEvent] = []
    clocks = []
    for clock in state.clocks:
        updated, passed = _publish_moments(state, clock, now)
        clocks.append(updated)
        events += passed
    if not events:
        return Transition(state)
    events.sort(key=lambda e: e.moment)
    return Transition(replace(state, clocks=tuple(clocks)), tuple(events))


def next_moment(state: TicketClocks) -> datetime | None:
    """The earliest at-risk or breach moment still to publish, for the timer wheel; None when
    no open clock has one left."""
    pending = [
        clock.moment(which)
        for clock in state.clocks
        if clock.is_open
        for which in ("at_risk", "breached")
        if which not in clock.published
    ]
    return min(pending, default=None)


def next_expiry(state: TicketClocks) -> datetime | None:
    """When the first held response stops waiting (see `expire_held`); None if none waits."""
    return min((h.held_until for h in state.held), default=None)


def expire_held(state: TicketClocks, now: datetime) -> Transition:
    """Drops the held responses whose wait is over: no assignment of their ticket came
    (`unknown_ticket`), or none of the newer revision they name (`unknown_revision`)."""
    expired = [h for h in state.held if h.held_until <= now]
    if not expired:
        return Transition(state)
    reason: IgnoredReason = "unknown_ticket" if state.revision is None else "unknown_revision"
    kept = tuple(h for h in state.held if h.held_until > now)
    return Transition(replace(state, held=kept), ignored=(reason,) * len(expired))


def open_clocks(state: TicketClocks) -> list[SlaClock]:
    """The ticket's open clocks (for the open-clocks gauge)."""
    return [clock for clock in state.clocks if clock.is_open]


# --- state in the store ----------------------------------------------------------------------


def to_json(state: TicketClocks) -> bytes:
    """The stored form of a ticket's state: JSON, times in UTC."""
    return orjson.dumps({"format": _STATE_FORMAT, "state": state}, option=orjson.OPT_UTC_Z)


def from_json(raw: bytes) -> TicketClocks:
    """The state `to_json` stored. Built by hand rather than validated by pydantic: a restore
    reads every ticket's state, and only the tracker writes them."""
    document = orjson.loads(raw)
    if document.get("format") != _STATE_FORMAT:
        raise ValueError(f"tracker state format {document.get('format')!r} is not supported")
    s = document["state"]
    cal = s["calendar"]
    return TicketClocks(
        ticket_id=s["ticket_id"],
        revision=s["revision"],
        calendar=None
        if cal is None
        else CustomerCalendar(
            timezone=cal["timezone"],
            country=cal["country"],
            start=time.fromisoformat(cal["start"]),
            end=time.fromisoformat(cal["end"]),
        ),
        clocks=tuple(
            SlaClock(
                revision=c["revision"],
                decision_id=c["decision_id"],
                party=c["party"],
                vendor_id=c["vendor_id"],
                role=c["role"],
                clock=c["clock"],
                clock_start=datetime.fromisoformat(c["clock_start"]),
                response_due_at=datetime.fromisoformat(c["response_due_at"]),
                at_risk_at=datetime.fromisoformat(c["at_risk_at"]),
                published=tuple(c["published"]),
            )
            for c in s["clocks"]
        ),
        held=tuple(
            HeldResponse(
                family=h["family"],
                revision=h["revision"],
                vendor_id=h["vendor_id"],
                responded_at=datetime.fromisoformat(h["responded_at"]),
                held_until=datetime.fromisoformat(h["held_until"]),
            )
            for h in s["held"]
        ),
    )


# --- helpers ---------------------------------------------------------------------------------


def hms_duration(length: timedelta) -> str:
    """ISO 8601 in hours, minutes and seconds only: PT17H, PT5M12S, PT0.25S, PT0S. No days: a
    business day is not 24 hours. Fractions of a second are kept, so the figure is exact."""
    micros = max(length, timedelta(0)) // timedelta(microseconds=1)
    seconds, fraction = divmod(micros, 1_000_000)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    text = "PT" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    if seconds or fraction or text == "PT":
        text += str(seconds) + (f".{fraction:06d}".rstrip("0") if fraction else "") + "S"
    return text


def sla_event_id(ticket_id: str, clock: SlaClock, event_type: SlaEventType) -> str:
    """UUIDv5 of the ticket, revision, party, role and type: the same event, the same id."""
    who = "redhat" if clock.party == "redhat" else f"vendor:{clock.vendor_id}"
    return derived_id(ticket_id, str(clock.revision), who, clock.role, event_type)


def _answer(
    state: TicketClocks,
    family: ResponseFamily,
    vendor_id: str | None,
    responded_at: datetime,
    now: datetime,
) -> Transition:
    """A response to the state's latest revision: completes the clock it counts for."""
    index = _clock_for(state.clocks, family, vendor_id)
    if index is None:
        return Transition(
            state, ignored=("not_collaborator" if family == "tsanet" else "not_owner",)
        )
    clock = state.clocks[index]
    if not clock.is_open:
        return Transition(state, ignored=("already_completed",))
    if responded_at < clock.clock_start:
        return Transition(state, ignored=("before_clock_start",))
    clock, passed = _publish_moments(state, clock, now, before=responded_at)
    elapsed = clock_time_between(
        clock.clock_start, responded_at, clock.clock, _business_calendar(state.calendar)
    )
    completed = _event(
        state,
        clock,
        "completed",
        responded_at,
        cls=SlaCompleted,
        responded_at=responded_at,
        met=responded_at <= clock.response_due_at,
        elapsed=hms_duration(elapsed),
    )
    clock = replace(clock, published=(*clock.published, "completed"))
    clocks = (*state.clocks[:index], clock, *state.clocks[index + 1 :])
    return Transition(replace(state, clocks=clocks), (*passed, completed))


def _clock_for(
    clocks: tuple[SlaClock, ...], family: ResponseFamily, vendor_id: str | None
) -> int | None:
    """Which clock a response counts for: Red Hat's own clock; the owner clock of the partner
    whose topic it came on; the collaborator clock of the vendor TSANet names."""
    for index, clock in enumerate(clocks):
        if family == "redhat":
            found = clock.party == "redhat"
        elif family == "partner":
            found = clock.role == "owner" and clock.party == "vendor"
            found = found and clock.vendor_id == vendor_id
        else:
            found = clock.role == "collaborator" and clock.vendor_id == vendor_id
        if found:
            return index
    return None


def _publish_moments(
    state: TicketClocks, clock: SlaClock, now: datetime, before: datetime | None = None
) -> tuple[SlaClock, list[SlaEvent]]:
    """The clock's at-risk and breach moments that have come (≤ now), were not published, and
    (when `before` is given) came strictly before it: a response or supersession at the very
    moment stops the clock first."""
    events: list[SlaEvent] = []
    published = clock.published
    if not clock.is_open:
        return clock, events
    moments: tuple[Moment, ...] = ("at_risk", "breached")
    for which in moments:
        moment = clock.moment(which)
        if which in published or moment > now or (before is not None and moment >= before):
            continue
        events.append(_event(state, clock, which, moment))
        published = (*published, which)
    return (replace(clock, published=published) if events else clock), events


def _event(
    state: TicketClocks,
    clock: SlaClock,
    kind: Published | Literal["cancelled"],
    occurred_at: datetime,
    cls: type[SlaClockEvent] = SlaClockEvent,
    **extra: object,
) -> SlaEvent:
    event_type = _EVENT_TYPES[kind]
    data = cls(
        ticket_id=state.ticket_id,
        revision=clock.revision,
        decision_id=clock.decision_id,
        party=SlaParty(party=clock.party, vendor_id=clock.vendor_id),
        role=clock.role,
        clock=clock.clock,
        clock_start=clock.clock_start,
        response_due_at=clock.response_due_at,
        at_risk_at=clock.at_risk_at,
        occurred_at=occurred_at,
        **extra,
    )
    return SlaEvent(event_type, sla_event_id(state.ticket_id, clock, event_type), data)


def _business_calendar(calendar: CustomerCalendar | None) -> BusinessCalendar:
    if calendar is None:
        raise ValueError("an SLA assignment without the customer's calendar")
    hours = BusinessHours(start=calendar.start, end=calendar.end)
    return calendar_for(calendar.country, calendar.timezone, hours)


def _utc(moment: datetime) -> datetime:
    """Every time the tracker keeps or writes is in UTC (written with `Z`)."""
    return moment if moment.tzinfo is UTC else moment.astimezone(UTC)


def _same_ticket(state: TicketClocks, ticket_id: str) -> None:
    if state.ticket_id != ticket_id:
        raise ValueError(f"ticket {ticket_id!r} given to the state of {state.ticket_id!r}")
