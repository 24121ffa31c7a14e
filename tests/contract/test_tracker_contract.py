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
from datetime import UTC, datetime, timedelta
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


def one_hour_clock(ticket_id: str, **more: Any) -> dict[str, Any]:
    """The assignment most tests start from: 1 hour 24x7 from 13:00Z, so at risk at 13:45Z and
    due at 14:00Z, Red Hat's unless `more` names another owner (`more` as for `assignment`)."""
    return assignment(ticket_id, clock_start=z("11-24", "13:00"), due=z("11-24", "14:00"), **more)


# The moments of `one_hour_clock` as the lifecycle events carry them.
ONE_HOUR_MOMENTS = {"response_due_at": "2026-11-24T14:00:00Z", "at_risk_at": "2026-11-24T13:45:00Z"}

# Infinidat collaborating on 30 minutes 24x7 from 13:00Z: respond_by 13:30Z, at risk 13:22:30Z.
INFINIDAT_HALF_HOUR = ("infinidat", "24x7", z("11-24", "13:30"))


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


def completion(sent: dict[str, Any], *, responded_at: str, **more: Any) -> dict[str, Any]:
    """The `data` of a clock's completion: it happens when the response was given, so
    `occurred_at` is `responded_at`; the rest as for `clock_data`."""
    return clock_data(sent, occurred_at=responded_at, responded_at=responded_at, **more)


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


async def published(
    tracker: TrackerStack, ticket_id: str, kinds: list[str]
) -> list[dict[str, Any]]:
    """Until the ticket's events on sla.events are of these kinds, in order; the `data` of
    each, its envelope checked."""
    await tracker.published(ticket_id, kinds)
    return [
        envelope_checked(captured, ticket_id, kind)
        for captured, kind in zip(tracker.events(ticket_id), kinds, strict=True)
    ]


async def fires_at(
    tracker: TrackerStack, ticket_id: str, moment: datetime, kinds: list[str]
) -> dict[str, Any]:
    """The ticket's next event comes exactly at `moment`: a tick a second earlier publishes
    nothing for it, the tick at `moment` makes its events `kinds`; the last one's `data`."""
    assert for_ticket(await tracker.tick(moment - timedelta(seconds=1)), ticket_id) == []
    await tracker.tick(moment)
    return (await published(tracker, ticket_id, kinds))[-1]


async def dead_lettered(
    tracker: TrackerStack, ticket_id: str, value: bytes, topic_name: str, error_type: str
) -> bytes:
    """Until the tracker has dead-lettered the input `value` it read from `topic_name`: the
    ticket's one dead letter, its key and bytes those of the input, the error type and the
    source topic in its headers; its error message."""
    await tracker.wait_for(
        lambda: bool(tracker.dead_letters(ticket_id)), f"dead letter of {ticket_id}"
    )
    (dead,) = tracker.dead_letters(ticket_id)
    assert dead.key == ticket_id.encode()
    assert dead.value == value
    assert dead.headers["error.type"] == error_type.encode()
    assert dead.headers["source.topic"] == topic_name.encode()
    return dead.headers["error.message"]


async def assigned(tracker: TrackerStack, sent: dict[str, Any], *, at: datetime) -> dict[str, Any]:
    """The assignment `sent` once the tracker has read it, its first input of the ticket, with
    its clock at `at`."""
    await tracker.send(SLA, sent, at=at)
    await tracker.handled(sent["data"]["ticket_id"], 1)
    return sent


async def test_an_open_clock_is_at_risk_then_breached_as_the_clock_passes_each_moment(
    tracker: TrackerStack,
) -> None:
    # Red Hat, 1 hour 24x7 from 13:00Z: due 14:00Z; three quarters of an hour in, at risk at
    # 13:45Z.
    tid = ticket("moments")
    sent = await assigned(tracker, one_hour_clock(tid), at=z("11-24", "13:00"))
    assert tracker.events(tid) == []

    assert await fires_at(tracker, tid, z("11-24", "13:45"), ["at_risk"]) == clock_data(
        sent, occurred_at="2026-11-24T13:45:00Z", **ONE_HOUR_MOMENTS
    )
    assert await fires_at(tracker, tid, z("11-24", "14:00"), ["at_risk", "breached"]) == (
        clock_data(sent, occurred_at="2026-11-24T14:00:00Z", **ONE_HOUR_MOMENTS)
    )
    # Each moment once: later ticks publish nothing more for the clock.
    assert for_ticket(await tracker.tick(z("11-24", "18:00")), tid) == []
    assert tracker.kinds(tid) == ["at_risk", "breached"]


async def test_a_business_clock_does_not_run_over_the_weekend(tracker: TrackerStack) -> None:
    # Red Hat, 8 business hours from Friday 2026-12-04 19:00Z = 14:00 EST: 4 hours to Friday's
    # 18:00 close, then Monday 09:00-13:00 EST: due Monday 2026-12-07 13:00 EST = 18:00Z.
    # At risk after 6 of the 8 hours: Friday's 4, then Monday 09:00-11:00 EST: 16:00Z.
    tid = ticket("weekend")
    sent = assignment(
        tid, clock_start=z("12-04", "19:00"), due=z("12-07", "18:00"), clock="business"
    )
    await assigned(tracker, sent, at=z("12-04", "19:00"))

    # Saturday noon: 17 wall-clock hours have gone, no business hour since Friday's close.
    assert for_ticket(await tracker.tick(z("12-05", "12:00")), tid) == []
    assert await fires_at(tracker, tid, z("12-07", "16:00"), ["at_risk"]) == clock_data(
        sent,
        response_due_at="2026-12-07T18:00:00Z",
        at_risk_at="2026-12-07T16:00:00Z",
        occurred_at="2026-12-07T16:00:00Z",
    )
    breached = await fires_at(tracker, tid, z("12-07", "18:00"), ["at_risk", "breached"])
    assert breached["occurred_at"] == "2026-12-07T18:00:00Z"


async def test_a_red_hat_response_in_time_completes_the_clock_met(tracker: TrackerStack) -> None:
    # Red Hat, 1 hour 24x7 from 13:00Z (at risk 13:45Z, due 14:00Z), answered at 13:20Z:
    # met, 20 minutes elapsed.
    tid = ticket("redhat")
    sent = await assigned(tracker, one_hour_clock(tid), at=z("11-24", "13:00"))
    await tracker.send(REDHAT, response(tid, z("11-24", "13:20")), at=z("11-24", "13:21"))
    assert await published(tracker, tid, ["completed"]) == [
        completion(
            sent,
            responded_at="2026-11-24T13:20:00Z",
            met=True,
            elapsed="PT20M",
            **ONE_HOUR_MOMENTS,
        )
    ]
    # A completed clock is neither at risk nor breached later.
    assert for_ticket(await tracker.tick(z("11-24", "15:00")), tid) == []
    assert tracker.kinds(tid) == ["completed"]


async def test_a_partner_response_completes_the_partners_own_clock(tracker: TrackerStack) -> None:
    # Pure Storage owns it, 4 business hours from Tuesday 14:00Z = 09:00 EST: due 13:00 EST =
    # 18:00Z; at risk after 3 hours, 12:00 EST = 17:00Z. Pure answers on its own topic at
    # 17:30Z = 12:30 EST, naming no vendor (the topic says who it is): met, 3.5 business hours.
    tid = ticket("partner")
    owner = ("vendor", "pure-storage")
    sent = assignment(
        tid, clock_start=z("11-24", "14:00"), due=z("11-24", "18:00"), owner=owner, clock="business"
    )
    await assigned(tracker, sent, at=z("11-24", "14:00"))
    await tracker.tick(z("11-24", "17:00"))
    await tracker.published(tid, ["at_risk"])
    await tracker.send(PURE, response(tid, z("11-24", "17:30")), at=z("11-24", "17:31"))
    at_risk, completed = await published(tracker, tid, ["at_risk", "completed"])
    times = {"response_due_at": "2026-11-24T18:00:00Z", "at_risk_at": "2026-11-24T17:00:00Z"}
    assert at_risk == clock_data(sent, party=owner, occurred_at="2026-11-24T17:00:00Z", **times)
    assert completed == completion(
        sent,
        party=owner,
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
    await assigned(tracker, one_hour_clock(tid, owner=("vendor", "netapp")), at=z("11-24", "13:00"))
    spoofed = await tracker.send(
        PURE, response(tid, z("11-24", "13:10"), vendor_id="netapp"), at=z("11-24", "13:11")
    )
    assert b"netapp" in await dead_lettered(tracker, tid, spoofed, PURE, "forbidden")
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
    sent = await assigned(
        tracker, one_hour_clock(tid, collaborators=[INFINIDAT_HALF_HOUR]), at=z("11-24", "13:00")
    )
    accepted = response(tid, z("11-24", "13:10"), kind="accepted", vendor_id="infinidat")
    await tracker.send(TSANET, accepted, at=z("11-24", "13:11"))
    assert await published(tracker, tid, ["completed"]) == [
        completion(
            sent,
            party=("vendor", "infinidat"),
            role="collaborator",
            response_due_at="2026-11-24T13:30:00Z",
            at_risk_at="2026-11-24T13:22:30Z",
            responded_at="2026-11-24T13:10:00Z",
            met=True,
            elapsed="PT10M",
        )
    ]
    await tracker.tick(z("11-24", "13:45"))
    assert (await published(tracker, tid, ["completed", "at_risk"]))[1] == clock_data(
        sent, occurred_at="2026-11-24T13:45:00Z", **ONE_HOUR_MOMENTS
    )


async def test_a_response_before_its_assignment_is_held_then_applied(
    tracker: TrackerStack,
) -> None:
    # Red Hat answered at 13:50Z; the tracker reads that first, then at 14:05Z the assignment
    # (1 hour 24x7 from 13:00Z: at risk 13:45Z, due 14:00Z). Of the moments already past only
    # the one before the response is published, then the completion: met (13:50 <= 14:00),
    # 50 minutes elapsed; never breached.
    tid = ticket("held")
    await tracker.send(REDHAT, response(tid, z("11-24", "13:50")), at=z("11-24", "14:00"))
    await tracker.handled(tid, 1)
    assert tracker.events(tid) == []
    sent = one_hour_clock(tid)
    await tracker.send(SLA, sent, at=z("11-24", "14:05"))
    at_risk, completed = await published(tracker, tid, ["at_risk", "completed"])
    assert at_risk == clock_data(sent, occurred_at="2026-11-24T13:45:00Z", **ONE_HOUR_MOMENTS)
    assert completed == completion(
        sent,
        responded_at="2026-11-24T13:50:00Z",
        met=True,
        elapsed="PT50M",
        **ONE_HOUR_MOMENTS,
    )
    assert for_ticket(await tracker.tick(z("11-24", "15:00")), tid) == []


async def test_a_newer_revision_cancels_the_old_clocks(tracker: TrackerStack) -> None:
    # Revision 1: Red Hat, 1 hour 24x7 from 13:00Z (at risk 13:45Z, due 14:00Z). Revision 2,
    # sent at 13:30Z, moves it to Pure Storage, 2 hours 24x7 from 13:30Z: due 15:30Z, at risk
    # after 90 minutes, 15:00Z. Revision 1's clock is cancelled at 13:30Z and never fires.
    tid = ticket("revision")
    first = await assigned(tracker, one_hour_clock(tid), at=z("11-24", "13:00"))
    pure = ("vendor", "pure-storage")
    second = assignment(
        tid, revision=2, clock_start=z("11-24", "13:30"), due=z("11-24", "15:30"), owner=pure
    )
    await tracker.send(SLA, second, at=z("11-24", "13:30"))
    assert await published(tracker, tid, ["cancelled"]) == [
        clock_data(
            first,
            occurred_at="2026-11-24T13:30:00Z",
            reason="superseded",
            superseded_by=2,
            **ONE_HOUR_MOMENTS,
        )
    ]
    # Revision 1 again is stale: nothing.
    await tracker.send(SLA, first, at=z("11-24", "13:40"))
    await tracker.handled(tid, 3)
    at_risk = await fires_at(tracker, tid, z("11-24", "15:00"), ["cancelled", "at_risk"])
    assert at_risk == clock_data(
        second,
        party=pure,
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
    sent = one_hour_clock(tid, collaborators=[INFINIDAT_HALF_HOUR])
    answers = [
        (REDHAT, response(tid, z("11-24", "14:10"))),
        (TSANET, response(tid, z("11-24", "14:20"), kind="rejected", vendor_id="infinidat")),
    ]
    expected = ["at_risk", "breached", "at_risk", "breached", "completed", "completed"]

    async def feed(stack: TrackerStack, topics: dict[str, str]) -> list[tuple[str, str]]:
        await stack.send(topics[SLA], sent, at=z("11-24", "14:30"))
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
    await assigned(tracker, one_hour_clock(tid), at=z("11-24", "13:00"))
    bad = await tracker.send(REDHAT, response(tid, z("11-24", "13:10"), kind="accepted"))
    assert b"kind" in await dead_lettered(tracker, tid, bad, REDHAT, "invalid_event")
    # The clock was not answered: it still comes due.
    await tracker.tick(z("11-24", "14:00"))
    await tracker.published(tid, ["at_risk", "breached"])
