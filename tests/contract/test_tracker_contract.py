"""The README's SLA lifecycle end to end through the tracker, on both brokers: clocks opened by
assignments, at risk and breached as the clock passes their moments, completed by the three
response topic families, cancelled by a newer revision; the events and ids on sla.events;
dead letters.

The tracker's clock is set by each test and its timers run when the test ticks them, so every
moment is exact. Expected moments are worked out by hand in the comments: at risk is three
quarters of the target, counted in the target's clock. New York is on EST (UTC-5) in late
November and December 2026 and its business day is 09:00-18:00; 2026-11-24 is a Tuesday and
2026-12-04 a Friday, and no US public holiday falls on the days used.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from services.runtime.embedded import EmbeddedBroker
from tests.support.stack import Captured
from tests.support.tracker_stack import (
    TrackerStack,
    assignment,
    response,
    running_tracker,
    suffixed_topics,
)

SLA = "sla.ownership"
REDHAT = "responses.redhat"
TSANET = "responses.tsanet"
PURE = "responses.partner.pure-storage"
EVENT_TYPE = {
    "at_risk": "support.sla.at_risk",
    "breached": "support.sla.breached",
    "completed": "support.sla.completed",
    "cancelled": "support.sla.cancelled",
}


def z(day: str, hms: str) -> datetime:
    """2026-`day` at `hms` UTC, e.g. z("11-24", "13:45")."""
    return datetime.fromisoformat(f"2026-{day}T{hms}+00:00").astimezone(UTC)


@pytest.fixture(
    scope="module", params=["memory", pytest.param("tansu", marks=pytest.mark.integration)]
)
async def tracker(request: pytest.FixtureRequest) -> AsyncIterator[TrackerStack]:
    """One tracker for the module; each test uses tickets of its own and sets the clock."""
    bootstrap = "localhost:9092"
    if request.param == "tansu":
        embedded: EmbeddedBroker = request.getfixturevalue("tansu")
        bootstrap = embedded.bootstrap_servers
    async with running_tracker(request.param, bootstrap, z("11-24", "13:00")) as stack:
        yield stack


def ticket(name: str) -> str:
    return f"T-{name}-{uuid.uuid4().hex[:6]}"


def clock_data(
    sent: dict[str, Any],
    *,
    party: tuple[str, str | None] = ("redhat", None),
    role: str = "owner",
    clock: str | None = None,
    response_due_at: str,
    at_risk_at: str,
    occurred_at: str,
    **extra: object,
) -> dict[str, Any]:
    """The `data` every lifecycle event carries, for a clock of the assignment `sent`: its
    ticket, revision, decision and start echoed, the rest as given."""
    data = sent["data"]
    return {
        "ticket_id": data["ticket_id"],
        "revision": data["revision"],
        "decision_id": data["decision_id"],
        "party": {"party": party[0], "vendor_id": party[1]},
        "role": role,
        "clock": clock or data["clock"],
        "clock_start": data["clock_start"],
        "response_due_at": response_due_at,
        "at_risk_at": at_risk_at,
        "occurred_at": occurred_at,
        **extra,
    }


def envelope_checked(captured: Captured, ticket_id: str, kind: str) -> dict[str, Any]:
    """The CloudEvent on sla.events, after checking its envelope and record: structured mode,
    keyed by the ticket id, a UUIDv5 id; its `data`."""
    assert captured.key == ticket_id.encode()
    assert captured.headers["content-type"] == b"application/cloudevents+json"
    event = captured.event
    assert set(event) == {
        "specversion",
        "id",
        "source",
        "type",
        "time",
        "subject",
        "datacontenttype",
        "data",
    }
    assert event["specversion"] == "1.0"
    assert uuid.UUID(event["id"]).version == 5
    assert event["source"] == "/ticketroute/tracker"
    assert event["type"] == EVENT_TYPE[kind]
    assert datetime.fromisoformat(event["time"]).utcoffset() is not None
    assert event["subject"] == ticket_id
    assert event["datacontenttype"] == "application/json"
    data: dict[str, Any] = event["data"]
    return data


def for_ticket(fired: list[Any], ticket_id: str) -> list[Any]:
    """What one timer tick published for one ticket (other tests' clocks fire too)."""
    return [out for out in fired if out.key == ticket_id.encode()]


async def test_an_open_clock_is_at_risk_then_breached_as_the_clock_passes_each_moment(
    tracker: TrackerStack,
) -> None:
    # Red Hat, 1 hour 24x7 from 13:00Z: due 14:00Z; three quarters of an hour in, at risk at
    # 13:45Z.
    tid = ticket("moments")
    tracker.clock.now = z("11-24", "13:00")
    sent = assignment(tid, clock_start=z("11-24", "13:00"), due=z("11-24", "14:00"))
    await tracker.send(SLA, sent)
    await tracker.handled(tid, 1)
    assert tracker.events(tid) == []

    assert for_ticket(await tracker.tick(z("11-24", "13:44:59")), tid) == []
    await tracker.tick(z("11-24", "13:45"))
    await tracker.published(tid, ["at_risk"])
    assert envelope_checked(tracker.events(tid)[0], tid, "at_risk") == clock_data(
        sent,
        response_due_at="2026-11-24T14:00:00Z",
        at_risk_at="2026-11-24T13:45:00Z",
        occurred_at="2026-11-24T13:45:00Z",
    )

    assert for_ticket(await tracker.tick(z("11-24", "13:59:59")), tid) == []
    await tracker.tick(z("11-24", "14:00"))
    await tracker.published(tid, ["at_risk", "breached"])
    assert envelope_checked(tracker.events(tid)[1], tid, "breached") == clock_data(
        sent,
        response_due_at="2026-11-24T14:00:00Z",
        at_risk_at="2026-11-24T13:45:00Z",
        occurred_at="2026-11-24T14:00:00Z",
    )
    # Each moment once: later ticks publish nothing more for the clock.
    assert for_ticket(await tracker.tick(z("11-24", "18:00")), tid) == []
    assert tracker.kinds(tid) == ["at_risk", "breached"]


async def test_a_business_clock_does_not_run_over_the_weekend(tracker: TrackerStack) -> None:
    # Red Hat, 8 business hours from Friday 2026-12-04 19:00Z = 14:00 EST: 4 hours to Friday's
    # 18:00 close, then Monday 09:00-13:00 EST: due Monday 2026-12-07 13:00 EST = 18:00Z.
    # At risk after 6 of the 8 hours: Friday's 4, then Monday 09:00-11:00 EST: 16:00Z.
    tid = ticket("weekend")
    tracker.clock.now = z("12-04", "19:00")
    sent = assignment(
        tid, clock_start=z("12-04", "19:00"), due=z("12-07", "18:00"), clock="business"
    )
    await tracker.send(SLA, sent)
    await tracker.handled(tid, 1)

    # Saturday noon: 17 wall-clock hours have gone, no business hour since Friday's close.
    assert for_ticket(await tracker.tick(z("12-05", "12:00")), tid) == []
    assert for_ticket(await tracker.tick(z("12-07", "15:59:59")), tid) == []
    await tracker.tick(z("12-07", "16:00"))
    await tracker.published(tid, ["at_risk"])
    assert envelope_checked(tracker.events(tid)[0], tid, "at_risk") == clock_data(
        sent,
        response_due_at="2026-12-07T18:00:00Z",
        at_risk_at="2026-12-07T16:00:00Z",
        occurred_at="2026-12-07T16:00:00Z",
    )
    assert for_ticket(await tracker.tick(z("12-07", "17:59:59")), tid) == []
    await tracker.tick(z("12-07", "18:00"))
    await tracker.published(tid, ["at_risk", "breached"])
    assert envelope_checked(tracker.events(tid)[1], tid, "breached")["occurred_at"] == (
        "2026-12-07T18:00:00Z"
    )


async def test_a_red_hat_response_in_time_completes_the_clock_met(tracker: TrackerStack) -> None:
    # Red Hat, 1 hour 24x7 from 13:00Z (at risk 13:45Z, due 14:00Z), answered at 13:20Z:
    # met, 20 minutes elapsed.
    tid = ticket("redhat")
    tracker.clock.now = z("11-24", "13:00")
    sent = assignment(tid, clock_start=z("11-24", "13:00"), due=z("11-24", "14:00"))
    await tracker.send(SLA, sent)
    await tracker.handled(tid, 1)
    tracker.clock.now = z("11-24", "13:21")
    await tracker.send(REDHAT, response(tid, z("11-24", "13:20")))
    await tracker.published(tid, ["completed"])
    assert envelope_checked(tracker.events(tid)[0], tid, "completed") == clock_data(
        sent,
        response_due_at="2026-11-24T14:00:00Z",
        at_risk_at="2026-11-24T13:45:00Z",
        occurred_at="2026-11-24T13:20:00Z",
        responded_at="2026-11-24T13:20:00Z",
        met=True,
        elapsed="PT20M",
    )
    # A completed clock is neither at risk nor breached later.
    assert for_ticket(await tracker.tick(z("11-24", "15:00")), tid) == []
    assert tracker.kinds(tid) == ["completed"]


async def test_a_partner_response_completes_the_partners_own_clock(tracker: TrackerStack) -> None:
    # Pure Storage owns it, 4 business hours from Tuesday 14:00Z = 09:00 EST: due 13:00 EST =
    # 18:00Z; at risk after 3 hours, 12:00 EST = 17:00Z. Pure answers on its own topic at
    # 17:30Z = 12:30 EST, naming no vendor (the topic says who it is): met, 3.5 business hours.
    tid = ticket("partner")
    owner = ("vendor", "pure-storage")
    tracker.clock.now = z("11-24", "14:00")
    sent = assignment(
        tid, clock_start=z("11-24", "14:00"), due=z("11-24", "18:00"), owner=owner, clock="business"
    )
    await tracker.send(SLA, sent)
    await tracker.handled(tid, 1)
    await tracker.tick(z("11-24", "17:00"))
    await tracker.published(tid, ["at_risk"])
    tracker.clock.now = z("11-24", "17:31")
    await tracker.send(PURE, response(tid, z("11-24", "17:30")))
    await tracker.published(tid, ["at_risk", "completed"])
    times = {"response_due_at": "2026-11-24T18:00:00Z", "at_risk_at": "2026-11-24T17:00:00Z"}
    assert envelope_checked(tracker.events(tid)[0], tid, "at_risk") == clock_data(
        sent, party=owner, occurred_at="2026-11-24T17:00:00Z", **times
    )
    assert envelope_checked(tracker.events(tid)[1], tid, "completed") == clock_data(
        sent,
        party=owner,
        occurred_at="2026-11-24T17:30:00Z",
        responded_at="2026-11-24T17:30:00Z",
        met=True,
        elapsed="PT3H30M",
        **times,
    )


async def test_a_partner_answering_for_another_vendor_is_dead_lettered_forbidden(
    tracker: TrackerStack,
) -> None:
    # NetApp owns the clock (1 hour 24x7 from 13:00Z); Pure Storage, on its own topic, claims
    # to answer as NetApp. Refused, and NetApp's clock runs on.
    tid = ticket("spoof")
    tracker.clock.now = z("11-24", "13:00")
    sent = assignment(
        tid, clock_start=z("11-24", "13:00"), due=z("11-24", "14:00"), owner=("vendor", "netapp")
    )
    await tracker.send(SLA, sent)
    await tracker.handled(tid, 1)
    tracker.clock.now = z("11-24", "13:11")
    spoofed = await tracker.send(PURE, response(tid, z("11-24", "13:10"), vendor_id="netapp"))
    await tracker.wait_for(lambda: bool(tracker.dead_letters(tid)), f"dead letter of {tid}")
    (dead,) = tracker.dead_letters(tid)
    assert dead.value == spoofed
    assert dead.headers["error.type"] == b"forbidden"
    assert dead.headers["source.topic"] == PURE.encode()
    assert b"netapp" in dead.headers["error.message"]
    await tracker.tick(z("11-24", "14:00"))
    await tracker.published(tid, ["at_risk", "breached"])
    assert [e.event["data"]["party"] for e in tracker.events(tid)] == [
        {"party": "vendor", "vendor_id": "netapp"}
    ] * 2
    # The ticket's state was written for the assignment and for the tick, not for the refusal
    # (which came between them on the same partition).
    await tracker.handled(tid, 2)
    assert len(tracker.states(tid)) == 2
    assert b'"published":["at_risk","breached"]' in tracker.states(tid)[1].value


async def test_tsanet_accepted_completes_the_collaborator_clock(tracker: TrackerStack) -> None:
    # Red Hat owns 1 hour 24x7 from 13:00Z (at risk 13:45Z, due 14:00Z); Infinidat
    # collaborates on 30 minutes 24x7 (respond_by 13:30Z, at risk 13:22:30Z). TSANet reports
    # Infinidat's acceptance at 13:10Z: its clock is met after 10 minutes; Red Hat's runs on.
    tid = ticket("tsanet")
    tracker.clock.now = z("11-24", "13:00")
    sent = assignment(
        tid,
        clock_start=z("11-24", "13:00"),
        due=z("11-24", "14:00"),
        collaborators=[("infinidat", "24x7", z("11-24", "13:30"))],
    )
    await tracker.send(SLA, sent)
    await tracker.handled(tid, 1)
    tracker.clock.now = z("11-24", "13:11")
    await tracker.send(
        TSANET, response(tid, z("11-24", "13:10"), kind="accepted", vendor_id="infinidat")
    )
    await tracker.published(tid, ["completed"])
    assert envelope_checked(tracker.events(tid)[0], tid, "completed") == clock_data(
        sent,
        party=("vendor", "infinidat"),
        role="collaborator",
        response_due_at="2026-11-24T13:30:00Z",
        at_risk_at="2026-11-24T13:22:30Z",
        occurred_at="2026-11-24T13:10:00Z",
        responded_at="2026-11-24T13:10:00Z",
        met=True,
        elapsed="PT10M",
    )
    await tracker.tick(z("11-24", "13:45"))
    await tracker.published(tid, ["completed", "at_risk"])
    assert envelope_checked(tracker.events(tid)[1], tid, "at_risk") == clock_data(
        sent,
        response_due_at="2026-11-24T14:00:00Z",
        at_risk_at="2026-11-24T13:45:00Z",
        occurred_at="2026-11-24T13:45:00Z",
    )


async def test_a_response_before_its_assignment_is_held_then_applied(
    tracker: TrackerStack,
) -> None:
    # Red Hat answered at 13:50Z; the tracker reads that first, then at 14:05Z the assignment
    # (1 hour 24x7 from 13:00Z: at risk 13:45Z, due 14:00Z). Of the moments already past only
    # the one before the response is published, then the completion: met (13:50 <= 14:00),
    # 50 minutes elapsed; never breached.
    tid = ticket("held")
    tracker.clock.now = z("11-24", "14:00")
    await tracker.send(REDHAT, response(tid, z("11-24", "13:50")))
    await tracker.handled(tid, 1)
    assert tracker.events(tid) == []
    tracker.clock.now = z("11-24", "14:05")
    sent = assignment(tid, clock_start=z("11-24", "13:00"), due=z("11-24", "14:00"))
    await tracker.send(SLA, sent)
    await tracker.published(tid, ["at_risk", "completed"])
    times = {"response_due_at": "2026-11-24T14:00:00Z", "at_risk_at": "2026-11-24T13:45:00Z"}
    assert envelope_checked(tracker.events(tid)[0], tid, "at_risk") == clock_data(
        sent, occurred_at="2026-11-24T13:45:00Z", **times
    )
    assert envelope_checked(tracker.events(tid)[1], tid, "completed") == clock_data(
        sent,
        occurred_at="2026-11-24T13:50:00Z",
        responded_at="2026-11-24T13:50:00Z",
        met=True,
        elapsed="PT50M",
        **times,
    )
    assert for_ticket(await tracker.tick(z("11-24", "15:00")), tid) == []


async def test_a_newer_revision_cancels_the_old_clocks(tracker: TrackerStack) -> None:
    # Revision 1: Red Hat, 1 hour 24x7 from 13:00Z (at risk 13:45Z, due 14:00Z). Revision 2,
    # sent at 13:30Z, moves it to Pure Storage, 2 hours 24x7 from 13:30Z: due 15:30Z, at risk
    # after 90 minutes, 15:00Z. Revision 1's clock is cancelled at 13:30Z and never fires.
    tid = ticket("revision")
    tracker.clock.now = z("11-24", "13:00")
    first = assignment(tid, clock_start=z("11-24", "13:00"), due=z("11-24", "14:00"))
    await tracker.send(SLA, first)
    await tracker.handled(tid, 1)
    tracker.clock.now = z("11-24", "13:30")
    second = assignment(
        tid,
        revision=2,
        clock_start=z("11-24", "13:30"),
        due=z("11-24", "15:30"),
        owner=("vendor", "pure-storage"),
    )
    await tracker.send(SLA, second)
    await tracker.published(tid, ["cancelled"])
    assert envelope_checked(tracker.events(tid)[0], tid, "cancelled") == clock_data(
        first,
        response_due_at="2026-11-24T14:00:00Z",
        at_risk_at="2026-11-24T13:45:00Z",
        occurred_at="2026-11-24T13:30:00Z",
        reason="superseded",
        superseded_by=2,
    )
    # Revision 1 again is stale: nothing.
    tracker.clock.now = z("11-24", "13:40")
    await tracker.send(SLA, first)
    await tracker.handled(tid, 3)
    assert for_ticket(await tracker.tick(z("11-24", "14:59:59")), tid) == []
    await tracker.tick(z("11-24", "15:00"))
    await tracker.published(tid, ["cancelled", "at_risk"])
    assert envelope_checked(tracker.events(tid)[1], tid, "at_risk") == clock_data(
        second,
        party=("vendor", "pure-storage"),
        response_due_at="2026-11-24T15:30:00Z",
        at_risk_at="2026-11-24T15:00:00Z",
        occurred_at="2026-11-24T15:00:00Z",
    )


async def test_the_same_input_gives_the_same_event_ids(tracker: TrackerStack) -> None:
    # Read at 14:30Z, an assignment whose moments have all passed (Red Hat 1 hour 24x7 from
    # 13:00Z: at risk 13:45Z, due 14:00Z; Infinidat 30 minutes: at risk 13:22:30Z, due
    # 13:30Z) publishes them at once, in time order; then late answers from Red Hat (14:10Z)
    # and TSANet (14:20Z). A second tracker with state of its own reads the same bytes.
    tid = ticket("ids")
    sent = assignment(
        tid,
        clock_start=z("11-24", "13:00"),
        due=z("11-24", "14:00"),
        collaborators=[("infinidat", "24x7", z("11-24", "13:30"))],
    )
    answers = [
        (REDHAT, response(tid, z("11-24", "14:10"))),
        (TSANET, response(tid, z("11-24", "14:20"), kind="rejected", vendor_id="infinidat")),
    ]
    expected = ["at_risk", "breached", "at_risk", "breached", "completed", "completed"]

    async def feed(stack: TrackerStack, topics: dict[str, str]) -> list[tuple[str, str]]:
        stack.clock.now = z("11-24", "14:30")
        await stack.send(topics[SLA], sent)
        await stack.handled(tid, 1)
        # One at a time: topics are not ordered with each other.
        for handled, (topic_name, answer) in enumerate(answers, start=2):
            await stack.send(topics[topic_name], answer)
            await stack.handled(tid, handled)
        events = await stack.published(tid, expected)
        return [(e["type"], e["id"]) for e in events]

    first = await feed(tracker, {SLA: SLA, REDHAT: REDHAT, TSANET: TSANET})
    parties = [
        (e.event["data"]["party"]["party"], e.event["data"]["occurred_at"])
        for e in tracker.events(tid)
    ]
    assert parties == [
        ("vendor", "2026-11-24T13:22:30Z"),
        ("vendor", "2026-11-24T13:30:00Z"),
        ("redhat", "2026-11-24T13:45:00Z"),
        ("redhat", "2026-11-24T14:00:00Z"),
        ("redhat", "2026-11-24T14:10:00Z"),
        ("vendor", "2026-11-24T14:20:00Z"),
    ]
    assert [e.event["data"].get("met") for e in tracker.events(tid)][4:] == [False, False]
    assert len({event_id for _, event_id in first}) == len(first)

    run = uuid.uuid4().hex[:8]
    topics = suffixed_topics(run)
    async with running_tracker(
        tracker.kind, tracker.settings.kafka_bootstrap_servers, z("11-24", "14:30"), **topics
    ) as other:
        second = await feed(
            other,
            {
                SLA: topics["topic_sla"],
                REDHAT: topics["topic_responses_redhat"],
                TSANET: topics["topic_responses_tsanet"],
            },
        )
    assert second == first


async def test_a_response_of_the_wrong_kind_for_its_topic_is_dead_lettered_with_its_bytes(
    tracker: TrackerStack,
) -> None:
    # `accepted` is a TSANet answer; on Red Hat's topic it is invalid, whatever else it says.
    tid = ticket("badkind")
    tracker.clock.now = z("11-24", "13:00")
    await tracker.send(
        SLA, assignment(tid, clock_start=z("11-24", "13:00"), due=z("11-24", "14:00"))
    )
    await tracker.handled(tid, 1)
    bad = await tracker.send(REDHAT, response(tid, z("11-24", "13:10"), kind="accepted"))
    await tracker.wait_for(lambda: bool(tracker.dead_letters(tid)), f"dead letter of {tid}")
    (dead,) = tracker.dead_letters(tid)
    assert dead.key == tid.encode()
    assert dead.value == bad
    assert dead.headers["error.type"] == b"invalid_event"
    assert dead.headers["source.topic"] == REDHAT.encode()
    assert b"kind" in dead.headers["error.message"]
    # The clock was not answered: it still comes due.
    await tracker.tick(z("11-24", "14:00"))
    await tracker.published(tid, ["at_risk", "breached"])
