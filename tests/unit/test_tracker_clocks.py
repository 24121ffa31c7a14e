"""The tracker's pure core: every transition on hand-worked clocks, then properties that must
hold for any order of assignments, responses and timers.

Every expected moment below is worked out by hand in its comment from the calendar, the
public holidays and the zone's offset that day; none is copied from the code's output.
New York is on EST (UTC-5) from 2026-11-01; Berlin is on CEST (UTC+2) until 2026-10-25 and on
CET (UTC+1) after. The sample calendars open 09:00-18:00 in the US and 09:00-17:00 elsewhere.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.catalog import BusinessHours, Clock
from schemas.decision import Collaborator, CustomerCalendar, Owner, SlaAssigned, SlaAssignedEvent
from schemas.tracker import (
    HMS_DURATION_PATTERN,
    ResponseFamily,
    ResponseRecorded,
    SlaCancelled,
    SlaCompleted,
    SlaCompletedEvent,
)
from services.businesstime import business_time_between, calendar_for, moment_after
from services.runtime.events import encode, parse
from services.runtime.pipeline import Rejected
from services.runtime.settings import TrackerSettings
from services.tracker.clocks import (
    IGNORED_REASONS,
    MAX_HELD,
    ClockRules,
    SlaEvent,
    TicketClocks,
    Transition,
    assign,
    expire_held,
    fire_due,
    from_json,
    hms_duration,
    next_expiry,
    next_moment,
    open_clocks,
    respond,
    to_json,
)
from services.tracker.responses import ResponseTopics, check_response, read_response

RULES = ClockRules()
TID = "T-1"
NEW_YORK = CustomerCalendar(timezone="America/New_York", country="US", start=time(9), end=time(18))
BERLIN = CustomerCalendar(timezone="Europe/Berlin", country="DE", start=time(9), end=time(17))


def z(y: int, mo: int, d: int, h: int, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=UTC)


def assignment(
    revision: int = 1,
    *,
    time_: datetime = z(2026, 11, 24, 13),
    owner: tuple[str, str | None] = ("redhat", None),
    clock: Clock = "24x7",
    clock_start: datetime = z(2026, 11, 24, 13),
    due: datetime = z(2026, 11, 24, 14),
    collaborators: tuple[tuple[str, Clock, datetime], ...] = (),
    calendar: CustomerCalendar = NEW_YORK,
    ticket_id: str = TID,
) -> SlaAssignedEvent:
    """An assignment as the router publishes it, read back as the tracker reads it."""
    data = SlaAssigned(
        ticket_id=ticket_id,
        revision=revision,
        decision_id=f"decision-{revision}",
        severity=2,
        owner=Owner(party=owner[0], vendor_id=owner[1]),  # type: ignore[arg-type]
        clock=clock,
        clock_start=clock_start,
        response_due_at=due,
        basis="test",
        collaborators=tuple(
            Collaborator(vendor_id=v, clock=c, respond_by=by) for v, c, by in collaborators
        ),
        calendar=calendar,
    )
    out = encode(
        topic="sla.ownership",
        event_id=str(uuid.uuid4()),
        source="/ticketroute/router",
        event_type="support.sla.assigned",
        time=time_,
        subject=ticket_id,
        data=data,
    )
    return SlaAssignedEvent.model_validate_json(out.value)


def response(
    responded_at: datetime,
    *,
    kind: str = "first_response",
    revision: int | None = None,
    vendor_id: str | None = None,
    ticket_id: str = TID,
) -> ResponseRecorded:
    return ResponseRecorded(
        ticket_id=ticket_id,
        revision=revision,
        responded_at=responded_at,
        kind=kind,  # type: ignore[arg-type]
        vendor_id=vendor_id,
    )


def kinds(step: Transition) -> list[tuple[str, str, str | None, datetime]]:
    """(type, role, vendor, occurred_at) of each event, in publishing order."""
    return [
        (e.type.rsplit(".", 1)[1], e.data.role, e.data.party.vendor_id, e.data.occurred_at)
        for e in step.events
    ]


def start(event: SlaAssignedEvent, now: datetime) -> TicketClocks:
    step = assign(TicketClocks(TID), event, now, RULES)
    assert step.events == ()
    return step.state


# A Red Hat 24x7 PT1H owner clock from 13:00Z, due 14:00Z: three quarters = 13:45Z; and a
# NetApp collaborator, P1D on the customer's New York business clock: 13:00Z is 08:00 EST on
# Tuesday, counting starts at 09:00, one US business day is 9 hours -> due 18:00 EST = 23:00Z;
# three quarters = 6h45 -> 15:45 EST = 20:45Z.
TSANET_ROUTE = assignment(
    collaborators=(("netapp", "business", z(2026, 11, 24, 23)),),
)


# --- assign ----------------------------------------------------------------------------------


def test_assignment_opens_owner_and_collaborator_clocks() -> None:
    state = start(TSANET_ROUTE, now=z(2026, 11, 24, 13, 0, 1))
    assert state.revision == 1
    assert state.calendar == NEW_YORK
    owner, collaborator = state.clocks
    assert (owner.party, owner.vendor_id, owner.role, owner.clock) == (
        "redhat",
        None,
        "owner",
        "24x7",
    )
    assert owner.at_risk_at == z(2026, 11, 24, 13, 45)
    assert owner.response_due_at == z(2026, 11, 24, 14)
    assert (collaborator.party, collaborator.vendor_id, collaborator.role) == (
        "vendor",
        "netapp",
        "collaborator",
    )
    assert collaborator.clock == "business"
    assert collaborator.clock_start == z(2026, 11, 24, 13)
    assert collaborator.at_risk_at == z(2026, 11, 24, 20, 45)
    assert next_moment(state) == z(2026, 11, 24, 13, 45)
    assert len(open_clocks(state)) == 2


def test_at_risk_fraction_is_a_parameter() -> None:
    # Half of the PT1H owner target: 13:30Z.
    step = assign(TicketClocks(TID), TSANET_ROUTE, z(2026, 11, 24, 13), ClockRules(0.5))
    assert step.state.clocks[0].at_risk_at == z(2026, 11, 24, 13, 30)


def test_business_target_at_risk_after_six_of_eight_business_hours() -> None:
    # Berlin, P1D = one 8-hour day, from Mon 2026-11-23 09:00 CET (08:00Z): due 17:00 CET
    # = 16:00Z; at risk after 6 business hours, 15:00 CET = 14:00Z.
    event = assignment(
        clock="business",
        clock_start=z(2026, 11, 23, 8),
        due=z(2026, 11, 23, 16),
        calendar=BERLIN,
    )
    state = start(event, z(2026, 11, 23, 8))
    assert state.clocks[0].at_risk_at == z(2026, 11, 23, 14)


def test_assignment_with_moments_past_publishes_them_at_once_in_order() -> None:
    # Consumed a day late: the owner's 13:45Z and 14:00Z, the collaborator's 20:45Z and 23:00Z.
    step = assign(TicketClocks(TID), TSANET_ROUTE, z(2026, 11, 25, 12), RULES)
    assert kinds(step) == [
        ("at_risk", "owner", None, z(2026, 11, 24, 13, 45)),
        ("breached", "owner", None, z(2026, 11, 24, 14)),
        ("at_risk", "collaborator", "netapp", z(2026, 11, 24, 20, 45)),
        ("breached", "collaborator", "netapp", z(2026, 11, 24, 23)),
    ]
    assert next_moment(step.state) is None
    assert len(open_clocks(step.state)) == 2  # breached clocks wait for their response


def test_same_revision_again_changes_nothing() -> None:
    state = start(TSANET_ROUTE, z(2026, 11, 24, 13))
    step = assign(state, TSANET_ROUTE, z(2026, 11, 25, 12), RULES)
    assert step.state is state
    assert step.events == ()
    assert step.ignored == ("repeated_assignment",)


def test_older_revision_is_stale_and_ignored() -> None:
    state = start(assignment(2, time_=z(2026, 11, 24, 13)), z(2026, 11, 24, 13))
    step = assign(state, assignment(1), z(2026, 11, 24, 13, 5), RULES)
    assert step.state is state
    assert step.events == ()
    assert step.ignored == ("stale_assignment",)


def test_newer_revision_cancels_open_clocks_at_its_time() -> None:
    state = start(TSANET_ROUTE, z(2026, 11, 24, 13))
    # Revision 2, published 13:30Z: before any moment of revision 1.
    newer = assignment(
        2,
        time_=z(2026, 11, 24, 13, 30),
        clock_start=z(2026, 11, 24, 13, 30),
        due=z(2026, 11, 24, 15),
    )
    step = assign(state, newer, z(2026, 11, 24, 13, 31), RULES)
    assert kinds(step) == [
        ("cancelled", "owner", None, z(2026, 11, 24, 13, 30)),
        ("cancelled", "collaborator", "netapp", z(2026, 11, 24, 13, 30)),
    ]
    for cancelled in step.events:
        assert isinstance(cancelled.data, SlaCancelled)
        assert (cancelled.data.reason, cancelled.data.superseded_by, cancelled.data.revision) == (
            "superseded",
            2,
            1,
        )
    # Revision 2's own clock: 13:30Z + three quarters of 90 minutes = 14:37:30Z.
    (clock,) = step.state.clocks
    assert (clock.revision, clock.at_risk_at) == (2, z(2026, 11, 24, 14, 37, 30))


def test_supersession_after_a_moment_publishes_that_moment_first() -> None:
    # Revision 1's at-risk moment (13:45Z) passed before revision 2's time (13:50Z), but the
    # timer had not fired yet: at_risk, then cancelled. The breach (14:00Z) never comes.
    state = start(TSANET_ROUTE, z(2026, 11, 24, 13))
    newer = assignment(2, time_=z(2026, 11, 24, 13, 50), due=z(2026, 11, 24, 16))
    step = assign(state, newer, z(2026, 11, 24, 14, 30), RULES)
    assert kinds(step)[:3] == [
        ("at_risk", "owner", None, z(2026, 11, 24, 13, 45)),
        ("cancelled", "owner", None, z(2026, 11, 24, 13, 50)),
        ("cancelled", "collaborator", "netapp", z(2026, 11, 24, 13, 50)),
    ]


def test_completed_clocks_are_not_cancelled() -> None:
    state = respond(
        start(TSANET_ROUTE, z(2026, 11, 24, 13)),
        response(z(2026, 11, 24, 13, 10)),
        "redhat",
        z(2026, 11, 24, 13, 10),
        RULES,
    ).state
    step = assign(
        state, assignment(2, time_=z(2026, 11, 24, 13, 20)), z(2026, 11, 24, 13, 20), RULES
    )
    assert kinds(step) == [("cancelled", "collaborator", "netapp", z(2026, 11, 24, 13, 20))]


# --- fire_due --------------------------------------------------------------------------------


def test_fire_due_publishes_each_moment_once_in_order() -> None:
    state = start(TSANET_ROUTE, z(2026, 11, 24, 13))
    assert fire_due(state, z(2026, 11, 24, 13, 44, 59)).events == ()
    step = fire_due(state, z(2026, 11, 24, 13, 45))  # no earlier than the moment itself
    assert kinds(step) == [("at_risk", "owner", None, z(2026, 11, 24, 13, 45))]
    assert fire_due(step.state, z(2026, 11, 24, 13, 59)).events == ()  # published once
    assert next_moment(step.state) == z(2026, 11, 24, 14)
    step = fire_due(step.state, z(2026, 11, 24, 23, 30))
    assert kinds(step) == [
        ("breached", "owner", None, z(2026, 11, 24, 14)),
        ("at_risk", "collaborator", "netapp", z(2026, 11, 24, 20, 45)),
        ("breached", "collaborator", "netapp", z(2026, 11, 24, 23)),
    ]
    assert fire_due(step.state, z(2026, 11, 30, 0)).events == ()


def test_fire_due_with_nothing_due_keeps_the_state() -> None:
    state = start(TSANET_ROUTE, z(2026, 11, 24, 13))
    assert fire_due(state, z(2026, 11, 24, 13, 1)).state is state
    assert next_moment(TicketClocks(TID)) is None


# --- respond ---------------------------------------------------------------------------------


def completed(step: Transition) -> SlaCompleted:
    data = step.events[-1].data
    assert isinstance(data, SlaCompleted)
    return data


def test_response_in_time_completes_the_clock_met() -> None:
    state = start(TSANET_ROUTE, z(2026, 11, 24, 13))
    step = respond(
        state, response(z(2026, 11, 24, 13, 30)), "redhat", z(2026, 11, 24, 13, 31), RULES
    )
    assert kinds(step) == [("completed", "owner", None, z(2026, 11, 24, 13, 30))]
    data = completed(step)
    assert (data.met, data.elapsed, data.responded_at) == (True, "PT30M", z(2026, 11, 24, 13, 30))
    assert next_moment(step.state) == z(2026, 11, 24, 20, 45)  # the collaborator's is left
    again = respond(
        step.state, response(z(2026, 11, 24, 13, 40)), "redhat", z(2026, 11, 24, 13, 41), RULES
    )
    assert again.ignored == ("already_completed",)
    assert again.events == ()


def test_late_response_publishes_missed_moments_then_completes_unmet() -> None:
    # The timers have not fired yet (no fire_due): at-risk 13:45Z and breach 14:00Z come out
    # first; 70 minutes of a 24x7 clock.
    state = start(TSANET_ROUTE, z(2026, 11, 24, 13))
    step = respond(
        state, response(z(2026, 11, 24, 14, 10)), "redhat", z(2026, 11, 24, 14, 10, 5), RULES
    )
    assert kinds(step) == [
        ("at_risk", "owner", None, z(2026, 11, 24, 13, 45)),
        ("breached", "owner", None, z(2026, 11, 24, 14)),
        ("completed", "owner", None, z(2026, 11, 24, 14, 10)),
    ]
    assert (completed(step).met, completed(step).elapsed) == (False, "PT1H10M")


def test_response_after_breach_is_never_met() -> None:
    state = fire_due(start(TSANET_ROUTE, z(2026, 11, 24, 13)), z(2026, 11, 24, 14, 30)).state
    step = respond(
        state, response(z(2026, 11, 24, 14, 20)), "redhat", z(2026, 11, 24, 14, 30), RULES
    )
    assert kinds(step) == [("completed", "owner", None, z(2026, 11, 24, 14, 20))]
    assert completed(step).met is False


def test_response_at_the_due_time_is_met_and_not_breached() -> None:
    state = start(TSANET_ROUTE, z(2026, 11, 24, 13))
    step = respond(state, response(z(2026, 11, 24, 14)), "redhat", z(2026, 11, 24, 14), RULES)
    assert [k[0] for k in kinds(step)] == ["at_risk", "completed"]
    assert completed(step).met is True
    assert completed(step).elapsed == "PT1H"


def test_response_after_a_breach_fired_at_its_moment_keeps_the_breach() -> None:
    # A response given before the due time but consumed after the breach was published:
    # met (it was in time), and the breach stays published; it is never taken back.
    state = fire_due(start(TSANET_ROUTE, z(2026, 11, 24, 13)), z(2026, 11, 24, 14, 5)).state
    step = respond(
        state, response(z(2026, 11, 24, 13, 55)), "redhat", z(2026, 11, 24, 14, 5), RULES
    )
    assert completed(step).met is True
    assert "breached" in step.state.clocks[0].published


def test_tsanet_answer_over_a_weekend_counts_business_time() -> None:
    # Berlin, NetApp collaborator P1D (8 business hours) from Fri 2026-11-20 14:00 CET (13:00Z):
    # 3h Friday, then Mon 09:00 CET + 5h -> due Mon 14:00 CET = 13:00Z; at risk after 6h:
    # Mon 12:00 CET = 11:00Z. Answered ("accepted") Mon 10:30 CET = 09:30Z: 3h + 1h30 = 4h30.
    event = assignment(
        clock_start=z(2026, 11, 20, 13),
        due=z(2026, 11, 20, 14),
        calendar=BERLIN,
        collaborators=(("netapp", "business", z(2026, 11, 23, 13)),),
    )
    state = start(event, z(2026, 11, 20, 13))
    assert state.clocks[1].at_risk_at == z(2026, 11, 23, 11)
    answer = response(z(2026, 11, 23, 9, 30), kind="accepted", vendor_id="netapp")
    step = respond(state, answer, "tsanet", z(2026, 11, 23, 9, 31), RULES)
    # The owner's 24x7 moments (13:45Z, 14:00Z on Friday) are not this clock's: only the
    # collaborator completes.
    assert kinds(step) == [("completed", "collaborator", "netapp", z(2026, 11, 23, 9, 30))]
    assert (completed(step).met, completed(step).elapsed) == (True, "PT4H30M")


def test_partner_answer_over_a_holiday_late() -> None:
    # New York, Pure owns the ticket, PT4H business from Wed 2026-11-25 16:00 EST (21:00Z):
    # 2h Wednesday (to 18:00), Thanksgiving Thursday closed, Fri 09:00 + 2h -> due Fri 11:00 EST
    # = 16:00Z; at risk after 3h: Fri 10:00 EST = 15:00Z. Answered Fri 11:30 EST = 16:30Z:
    # 2h + 2h30 = 4h30 of business time, late.
    event = assignment(
        owner=("vendor", "pure-storage"),
        clock="business",
        clock_start=z(2026, 11, 25, 21),
        due=z(2026, 11, 27, 16),
    )
    state = start(event, z(2026, 11, 25, 21))
    assert state.clocks[0].at_risk_at == z(2026, 11, 27, 15)
    answer = response(z(2026, 11, 27, 16, 30), vendor_id="pure-storage")
    step = respond(state, answer, "partner", z(2026, 11, 27, 16, 30), RULES)
    assert kinds(step) == [
        ("at_risk", "owner", "pure-storage", z(2026, 11, 27, 15)),
        ("breached", "owner", "pure-storage", z(2026, 11, 27, 16)),
        ("completed", "owner", "pure-storage", z(2026, 11, 27, 16, 30)),
    ]
    assert (completed(step).met, completed(step).elapsed) == (False, "PT4H30M")


def test_answer_across_a_dst_change() -> None:
    # Berlin leaves summer time on Sun 2026-10-25. Red Hat owns PT8H business from Fri
    # 2026-10-23 15:00 CEST (13:00Z): 2h Friday, Mon 09:00 CET + 6h -> due 15:00 CET = 14:00Z;
    # at risk after 6h: Mon 13:00 CET = 12:00Z. Answered Mon 09:30 CET = 08:30Z (07:30Z would
    # be 09:30 in summer time): 2h + 30m.
    event = assignment(
        clock="business", clock_start=z(2026, 10, 23, 13), due=z(2026, 10, 26, 14), calendar=BERLIN
    )
    state = start(event, z(2026, 10, 23, 13))
    assert state.clocks[0].at_risk_at == z(2026, 10, 26, 12)
    step = respond(state, response(z(2026, 10, 26, 8, 30)), "redhat", z(2026, 10, 26, 8, 31), RULES)
    assert (completed(step).met, completed(step).elapsed) == (True, "PT2H30M")


@pytest.mark.parametrize(
    ("family", "vendor", "reason"),
    [
        # Pure owns the ticket: Red Hat has no clock, NetApp owns nothing, and Pure is no
        # collaborator through TSANet.
        ("redhat", None, "not_owner"),
        ("partner", "netapp", "not_owner"),
        ("tsanet", "pure-storage", "not_collaborator"),
    ],
)
def test_response_from_a_party_without_a_clock_is_ignored(
    family: ResponseFamily, vendor: str | None, reason: str
) -> None:
    state = start(assignment(owner=("vendor", "pure-storage")), z(2026, 11, 24, 13))
    kind = "accepted" if family == "tsanet" else "first_response"
    step = respond(
        state,
        response(z(2026, 11, 24, 13, 5), kind=kind, vendor_id=vendor),
        family,
        z(2026, 11, 24, 13, 5),
        RULES,
    )
    assert (step.state, step.events, step.ignored) == (state, (), (reason,))


def test_partner_topic_answers_the_owner_clock_not_the_collaborator_one() -> None:
    # NetApp collaborates through TSANet: its answer on its own partner topic is not TSANet's.
    state = start(TSANET_ROUTE, z(2026, 11, 24, 13))
    step = respond(
        state,
        response(z(2026, 11, 24, 13, 5), vendor_id="netapp"),
        "partner",
        z(2026, 11, 24, 13, 5),
        RULES,
    )
    assert step.ignored == ("not_owner",)


def test_response_naming_a_superseded_revision_is_ignored() -> None:
    state = start(assignment(2, time_=z(2026, 11, 24, 13)), z(2026, 11, 24, 13))
    step = respond(
        state, response(z(2026, 11, 24, 13, 5), revision=1), "redhat", z(2026, 11, 24, 13, 5), RULES
    )
    assert step.ignored == ("superseded_revision",)
    # Without a revision it answers the latest.
    step = respond(state, response(z(2026, 11, 24, 13, 5)), "redhat", z(2026, 11, 24, 13, 5), RULES)
    assert [k[0] for k in kinds(step)] == ["completed"]
    assert step.events[0].data.revision == 2


def test_response_before_the_clock_started_is_ignored() -> None:
    # An update's clock starts at 13:30Z; a response at 13:20Z answered the revision before.
    state = start(
        assignment(2, clock_start=z(2026, 11, 24, 13, 30), due=z(2026, 11, 24, 14, 30)),
        z(2026, 11, 24, 13, 30),
    )
    step = respond(
        state, response(z(2026, 11, 24, 13, 20)), "redhat", z(2026, 11, 24, 13, 35), RULES
    )
    assert step.ignored == ("before_clock_start",)
    assert open_clocks(step.state) == list(state.clocks)


# --- held responses --------------------------------------------------------------------------


def unassigned(
    answer: ResponseRecorded, consumed_at: datetime, rules: ClockRules = RULES
) -> Transition:
    """Red Hat's `answer` consumed at `consumed_at`, before any assignment of the ticket."""
    return respond(TicketClocks(TID), answer, "redhat", consumed_at, rules)


def test_response_before_its_assignment_is_held_then_completes() -> None:
    held = unassigned(response(z(2026, 11, 24, 13, 20)), z(2026, 11, 24, 13, 25))
    assert (held.events, held.ignored) == ((), ())
    assert next_expiry(held.state) == z(2026, 11, 24, 14, 25)  # an hour after it was consumed
    step = assign(held.state, TSANET_ROUTE, z(2026, 11, 24, 13, 30), RULES)
    assert kinds(step) == [("completed", "owner", None, z(2026, 11, 24, 13, 20))]
    assert (completed(step).met, completed(step).elapsed) == (True, "PT20M")
    assert step.state.held == ()


def test_late_assignment_with_a_held_response_publishes_only_moments_before_it() -> None:
    # The assignment is consumed at 15:00Z; Red Hat answered at 13:50Z: after the at-risk
    # moment (13:45Z), before the breach (14:00Z). The collaborator's moments are later.
    held = unassigned(response(z(2026, 11, 24, 13, 50)), z(2026, 11, 24, 14, 55))
    step = assign(held.state, TSANET_ROUTE, z(2026, 11, 24, 15), RULES)
    assert kinds(step) == [
        ("at_risk", "owner", None, z(2026, 11, 24, 13, 45)),
        ("completed", "owner", None, z(2026, 11, 24, 13, 50)),
    ]
    assert completed(step).met is True


def test_held_responses_apply_in_the_order_they_were_given() -> None:
    state = TicketClocks(TID)
    for minute in (40, 10):  # consumed out of order
        state = respond(
            state, response(z(2026, 11, 24, 13, minute)), "redhat", z(2026, 11, 24, 13, 45), RULES
        ).state
    step = assign(state, assignment(), z(2026, 11, 24, 13, 50), RULES)
    assert kinds(step) == [("completed", "owner", None, z(2026, 11, 24, 13, 10))]
    assert step.ignored == ("already_completed",)


def test_response_for_a_newer_revision_waits_for_it() -> None:
    state = start(assignment(1), z(2026, 11, 24, 13))
    held = respond(
        state,
        response(z(2026, 11, 24, 13, 40), revision=2),
        "redhat",
        z(2026, 11, 24, 13, 40),
        RULES,
    )
    assert held.events == ()
    assert len(held.state.held) == 1
    newer = assignment(
        2,
        time_=z(2026, 11, 24, 13, 30),
        clock_start=z(2026, 11, 24, 13, 30),
        due=z(2026, 11, 24, 14, 30),
    )
    step = assign(held.state, newer, z(2026, 11, 24, 13, 45), RULES)
    assert kinds(step) == [
        ("cancelled", "owner", None, z(2026, 11, 24, 13, 30)),
        ("completed", "owner", None, z(2026, 11, 24, 13, 40)),
    ]
    assert step.events[1].data.revision == 2


def test_held_response_for_a_revision_superseded_on_arrival_is_ignored() -> None:
    held = unassigned(response(z(2026, 11, 24, 13, 5), revision=1), z(2026, 11, 24, 13, 5))
    step = assign(held.state, assignment(2), z(2026, 11, 24, 13, 10), RULES)
    assert step.ignored == ("superseded_revision",)
    assert step.events == ()


def test_held_responses_expire_after_the_hold() -> None:
    held = unassigned(response(z(2026, 11, 24, 13)), z(2026, 11, 24, 13)).state
    assert expire_held(held, z(2026, 11, 24, 13, 59, 59)).state is held
    step = expire_held(held, z(2026, 11, 24, 14))
    assert (step.state.held, step.ignored) == ((), ("unknown_ticket",))
    assert next_expiry(step.state) is None
    # A longer hold is a setting.
    longer = unassigned(
        response(z(2026, 11, 24, 13)), z(2026, 11, 24, 13), ClockRules(held_for=timedelta(hours=3))
    )
    assert next_expiry(longer.state) == z(2026, 11, 24, 16)


def test_held_response_for_a_revision_that_never_came() -> None:
    state = start(assignment(1), z(2026, 11, 24, 13))
    held = respond(
        state, response(z(2026, 11, 24, 13, 5), revision=3), "redhat", z(2026, 11, 24, 13, 5), RULES
    ).state
    assert expire_held(held, z(2026, 11, 24, 14, 5)).ignored == ("unknown_revision",)


def test_held_responses_are_bounded_per_ticket() -> None:
    state = TicketClocks(TID)
    for i in range(MAX_HELD):
        state = respond(
            state, response(z(2026, 11, 24, 13, 0, i)), "redhat", z(2026, 11, 24, 13), RULES
        ).state
    step = respond(state, response(z(2026, 11, 24, 13, 1)), "redhat", z(2026, 11, 24, 13), RULES)
    assert (step.state, step.ignored) == (state, ("too_many_held",))


# --- ids, state and formats ------------------------------------------------------------------


def test_event_ids_are_uuid5_of_ticket_revision_party_role_and_type() -> None:
    first = assign(TicketClocks(TID), TSANET_ROUTE, z(2026, 11, 25, 0), RULES).events
    again = assign(TicketClocks(TID), TSANET_ROUTE, z(2026, 11, 26, 0), RULES).events
    assert [e.id for e in first] == [e.id for e in again]  # a replay keeps the ids
    assert len({e.id for e in first}) == 4
    assert all(uuid.UUID(e.id).version == 5 for e in first)
    other = assign(
        TicketClocks("T-2"), assignment(ticket_id="T-2"), z(2026, 11, 25, 0), RULES
    ).events
    assert not {e.id for e in other} & {e.id for e in first}


def test_state_round_trips_through_json() -> None:
    state = start(TSANET_ROUTE, z(2026, 11, 24, 13))
    state = fire_due(state, z(2026, 11, 24, 13, 50)).state
    state = respond(
        state, response(z(2026, 11, 24, 13, 55)), "redhat", z(2026, 11, 24, 13, 56), RULES
    ).state
    state = respond(
        state, response(z(2026, 11, 24, 14), revision=2), "redhat", z(2026, 11, 24, 14), RULES
    ).state
    raw = to_json(state)
    assert from_json(raw) == state
    document = orjson.loads(raw)
    assert document["state"]["clocks"][0]["at_risk_at"] == "2026-11-24T13:45:00Z"
    assert document["state"]["clocks"][0]["published"] == ["at_risk", "completed"]
    assert from_json(to_json(TicketClocks(TID))) == TicketClocks(TID)
    with pytest.raises(ValueError, match="format"):
        from_json(b'{"format": 99, "state": {}}')


@pytest.mark.parametrize(
    ("length", "text"),
    [
        (timedelta(hours=17), "PT17H"),
        (timedelta(minutes=5, seconds=12), "PT5M12S"),
        (timedelta(0), "PT0S"),
        (timedelta(hours=30, seconds=1), "PT30H1S"),  # no days: a business day is not 24h
        (timedelta(milliseconds=250), "PT0.25S"),
        (timedelta(hours=1, minutes=2, seconds=3, microseconds=4), "PT1H2M3.000004S"),
    ],
)
def test_elapsed_durations(length: timedelta, text: str) -> None:
    assert hms_duration(length) == text
    assert re.fullmatch(HMS_DURATION_PATTERN, text)


def test_published_events_validate_against_their_schema() -> None:
    step = assign(TicketClocks(TID), TSANET_ROUTE, z(2026, 11, 24, 13, 50), RULES)
    step = respond(
        step.state, response(z(2026, 11, 24, 13, 50)), "redhat", z(2026, 11, 24, 13, 50), RULES
    )
    out = encode(
        topic="sla.events",
        event_id=step.events[-1].id,
        source="/ticketroute/tracker",
        event_type=step.events[-1].type,
        time=z(2026, 11, 24, 13, 50, 1),
        subject=TID,
        data=step.events[-1].data,
    )
    event = SlaCompletedEvent.model_validate_json(out.value)
    assert event.data.elapsed == "PT50M"
    data = orjson.loads(out.value)["data"]
    assert data["responded_at"] == "2026-11-24T13:50:00Z"
    assert data["party"] == {"party": "redhat", "vendor_id": None}
    assert set(data) == {
        "ticket_id", "revision", "decision_id", "party", "role", "clock", "clock_start",
        "response_due_at", "at_risk_at", "occurred_at", "responded_at", "met", "elapsed",
    }  # fmt: skip


def test_a_state_of_another_ticket_is_refused() -> None:
    with pytest.raises(ValueError, match="T-2"):
        assign(TicketClocks(TID), assignment(ticket_id="T-2"), z(2026, 11, 24, 13), RULES)


def test_tracker_settings() -> None:
    tracker = TrackerSettings()
    assert (tracker.at_risk_fraction, tracker.held_response_seconds) == (0.75, 3600)
    assert (tracker.metrics_port, tracker.topic_sla_events) == (9103, "sla.events")
    with pytest.raises(ValidationError):
        TrackerSettings(at_risk_fraction=1.0)
    with pytest.raises(ValidationError):
        TrackerSettings(held_response_seconds=600)  # less than an hour


# --- response topics -------------------------------------------------------------------------

TOPICS = ResponseTopics("responses.redhat", "responses.partner.", "responses.tsanet")


def test_topic_families() -> None:
    assert TOPICS.family("responses.redhat") == ("redhat", None)
    assert TOPICS.family("responses.tsanet") == ("tsanet", None)
    assert TOPICS.family("responses.partner.pure-storage") == ("partner", "pure-storage")
    assert TOPICS.family("responses.partner.Not_A_Vendor") is None
    assert TOPICS.family("queue.redhat") is None


def test_partner_may_answer_only_for_itself() -> None:
    mine = check_response("partner", "pure-storage", response(z(2026, 11, 24, 13)))
    assert mine.vendor_id == "pure-storage"  # filled in from the topic
    named = response(z(2026, 11, 24, 13), vendor_id="pure-storage")
    assert check_response("partner", "pure-storage", named) is named
    with pytest.raises(Rejected) as refused:
        check_response("partner", "pure-storage", response(z(2026, 11, 24, 13), vendor_id="netapp"))
    assert refused.value.error_type == "forbidden"
    assert "netapp" in refused.value.message


@pytest.mark.parametrize(
    ("family", "kind", "vendor"),
    [
        ("redhat", "accepted", None),
        ("partner", "rejected", None),
        ("tsanet", "first_response", "netapp"),
        ("tsanet", "accepted", None),  # TSANet answers name the vendor
    ],
)
def test_invalid_responses_for_their_topic(
    family: ResponseFamily, kind: str, vendor: str | None
) -> None:
    with pytest.raises(Rejected) as refused:
        check_response(
            family, "pure-storage", response(z(2026, 11, 24, 13), kind=kind, vendor_id=vendor)
        )
    assert refused.value.error_type == "invalid_event"


def test_red_hat_responses_name_no_vendor() -> None:
    checked = check_response("redhat", None, response(z(2026, 11, 24, 13), vendor_id="netapp"))
    assert checked.vendor_id is None


@dataclass
class FakeRecord:
    value: bytes | None
    topic: str = "responses.tsanet"
    partition: int = 0
    offset: int = 0
    timestamp: int = 0
    key: bytes | None = TID.encode()
    headers: list[tuple[str, bytes]] = field(default_factory=list)


def response_event(**data: Any) -> bytes:
    body = {"ticket_id": TID, "responded_at": "2026-11-24T14:00:00+01:00", **data}
    return orjson.dumps(
        {
            "specversion": "1.0",
            "id": "r-1",
            "source": "/tsanet/connector",
            "type": "support.response.recorded",
            "time": "2026-11-24T13:00:01Z",
            "subject": TID,
            "data": body,
        }
    )


def test_read_response_parses_with_the_family_schema() -> None:
    answer = read_response(
        "tsanet", None, FakeRecord(response_event(kind="information_requested", vendor_id="netapp"))
    )
    assert (answer.kind, answer.vendor_id, answer.responded_at) == (
        "information_requested",
        "netapp",
        z(2026, 11, 24, 13),
    )
    for family, raw in [
        ("tsanet", response_event(kind="first_response", vendor_id="netapp")),
        ("tsanet", response_event(kind="accepted")),
        ("redhat", response_event(kind="accepted")),
        ("redhat", response_event(kind="first_response", revision=0)),
        ("redhat", response_event(kind="first_response", responded_at="2026-11-24T14:00:00")),
    ]:
        with pytest.raises(Rejected) as refused:
            read_response(family, None, FakeRecord(raw))  # type: ignore[arg-type]
        assert refused.value.error_type == "invalid_event", raw
    with pytest.raises(Rejected) as refused:
        read_response(
            "partner",
            "pure-storage",
            FakeRecord(response_event(kind="first_response", vendor_id="netapp")),
        )
    assert refused.value.error_type == "forbidden"


# --- properties ------------------------------------------------------------------------------

CALENDARS = [
    NEW_YORK,
    BERLIN,
    CustomerCalendar(timezone="Asia/Kolkata", country="IN", start=time(9), end=time(17)),
]
VENDORS = ["netapp", "pure-storage"]


@dataclass(frozen=True)
class Revision:
    """What the router would assign for one revision of the ticket."""

    owner: tuple[str, str | None]
    clock: Clock
    start_offset: timedelta
    target: timedelta
    collaborator: tuple[str, Clock, timedelta] | None


revisions = st.builds(
    Revision,
    owner=st.sampled_from([("redhat", None), ("vendor", "netapp"), ("vendor", "pure-storage")]),
    clock=st.sampled_from(["24x7", "business"]),
    start_offset=st.timedeltas(timedelta(0), timedelta(hours=12)),
    target=st.timedeltas(timedelta(minutes=1), timedelta(days=1)),
    collaborator=st.none()
    | st.tuples(
        st.sampled_from(VENDORS),
        st.sampled_from(["24x7", "business"]),
        st.timedeltas(timedelta(minutes=1), timedelta(days=1)),
    ),
)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("assign"), st.integers(1, 3)),
        st.tuples(
            st.just("respond"),
            # Mostly a party of the latest revision answering; sometimes anyone.
            st.sampled_from(["owner", "owner", "collaborator", "redhat", "partner", "tsanet"]),
            st.sampled_from(VENDORS),
            st.none() | st.integers(1, 3),
            st.timedeltas(timedelta(hours=-6), timedelta(hours=2)),  # given before "now"
        ),
        st.tuples(
            st.just("fire"),
        ),
        st.tuples(
            st.just("expire"),
        ),
    ),
    max_size=14,
)


def parse_hms(text: str) -> timedelta:
    match = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?", text)
    assert match, text
    h, m, s = match.groups()
    return timedelta(hours=int(h or 0), minutes=int(m or 0), seconds=float(s or 0))


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(CALENDARS),
    st.datetimes(datetime(2026, 1, 1), datetime(2027, 12, 31)),
    st.lists(revisions, min_size=3, max_size=3),
    steps,
    st.lists(st.timedeltas(timedelta(0), timedelta(hours=20)), min_size=14, max_size=14),
)
def test_lifecycle_properties(
    calendar: CustomerCalendar,
    origin_naive: datetime,
    plans: list[Revision],
    script: list[tuple[Any, ...]],
    gaps: list[timedelta],
) -> None:
    origin = origin_naive.replace(tzinfo=UTC)
    business = calendar_for(
        calendar.country, calendar.timezone, BusinessHours(start=calendar.start, end=calendar.end)
    )

    def due(start_: datetime, clock: Clock, length: timedelta) -> datetime:
        return moment_after(start_, length, clock, business)

    def assignment_of(revision: int) -> SlaAssignedEvent:
        plan = plans[revision - 1]
        clock_start = origin + plan.start_offset
        collaborators = ()
        if plan.collaborator:
            vendor, clock, length = plan.collaborator
            collaborators = ((vendor, clock, due(clock_start, clock, length)),)
        return assignment(
            revision,
            time_=clock_start,
            owner=plan.owner,
            clock=plan.clock,
            clock_start=clock_start,
            due=due(clock_start, plan.clock, plan.target),
            collaborators=collaborators,
            calendar=calendar,
        )

    state = TicketClocks(TID)
    now = origin
    published: list[tuple[SlaEvent, datetime]] = []
    for (action, *args), gap in zip(script, gaps, strict=False):
        now += gap
        if action == "assign":
            step = assign(state, assignment_of(args[0]), now, RULES)
        elif action == "respond":
            who, vendor, revision, before = args
            family = who
            plan = plans[(state.revision or 1) - 1]
            if who == "owner":
                family, vendor = (
                    ("redhat", None) if plan.owner[0] == "redhat" else ("partner", plan.owner[1])
                )
            elif who == "collaborator":
                family = "tsanet"
                vendor = plan.collaborator[0] if plan.collaborator else vendor
            kind = "accepted" if family == "tsanet" else "first_response"
            answer = response(
                now + before,
                kind=kind,
                revision=revision,
                vendor_id=None if family == "redhat" else vendor,
            )
            step = respond(state, answer, family, now, RULES)
        elif action == "fire":
            step = fire_due(state, now)
        else:
            step = expire_held(state, now)
        assert set(step.ignored) <= set(IGNORED_REASONS)
        for reason in step.ignored:
            event(f"ignored {reason}")  # --hypothesis-show-statistics: what the runs reach
        published += [(e, now) for e in step.events]
        # What the store keeps is what the next step starts from.
        assert from_json(to_json(step.state)) == step.state
        state = from_json(to_json(step.state))
        for clock in state.clocks:  # every clock kept, published from or not
            assert clock.clock_start <= clock.at_risk_at <= clock.response_due_at
        assert next_moment(state) is None or all(
            next_moment(state) <= m  # type: ignore[operator]
            for c in open_clocks(state)
            for m in (c.at_risk_at, c.response_due_at)
            if m >= next_moment(state)  # type: ignore[operator]
        )

    # At most one event of each type per clock: ids are per (ticket, revision, party, role,
    # type), and no id comes out twice.
    ids = [e.id for e, _ in published]
    assert len(ids) == len(set(ids))
    per_clock: dict[tuple[Any, ...], list[str]] = {}
    for sla_event, at in published:
        data = sla_event.data
        key = (data.revision, data.party.party, data.party.vendor_id, data.role)
        per_clock.setdefault(key, []).append(sla_event.type.rsplit(".", 1)[1])
        event(f"published {sla_event.type}")
        assert data.at_risk_at <= data.response_due_at
        assert data.occurred_at.tzinfo is UTC
        if sla_event.type.endswith("at_risk"):
            assert data.occurred_at == data.at_risk_at
        if sla_event.type.endswith("breached"):
            assert data.occurred_at == data.response_due_at
        if sla_event.type.endswith(("at_risk", "breached")):
            assert data.occurred_at <= at  # never before its moment
        if isinstance(data, SlaCompleted):
            assert data.met == (data.responded_at <= data.response_due_at)
            event(f"completed met={data.met} on a {data.clock} clock")
            if data.clock == "business":
                expected = business_time_between(data.clock_start, data.responded_at, business)
            else:
                expected = data.responded_at - data.clock_start
            assert parse_hms(data.elapsed) == expected
            assert re.fullmatch(HMS_DURATION_PATTERN, data.elapsed)
    for history in per_clock.values():
        # At most one event of each type per clock, whatever their ids.
        assert len(history) == len(set(history)), history
        # at risk before breached; nothing after a clock ends; never both ends.
        assert history == sorted(
            history, key=["at_risk", "breached", "completed", "cancelled"].index
        )
        assert not {"completed", "cancelled"} <= set(history)
        assert history.count("completed") + history.count("cancelled") <= 1


def test_assignment_with_an_unknown_calendar_is_refused_when_read() -> None:
    raw = orjson.loads(assignment().model_dump_json())
    raw["data"]["calendar"]["timezone"] = "Mars/Olympus"
    with pytest.raises(Rejected) as refused:
        parse(SlaAssignedEvent, orjson.dumps(raw))
    assert refused.value.error_type == "invalid_event"
    assert "data.calendar.timezone" in refused.value.message
