"""Input validation (README "Topics and events"): what is accepted, and the reason for what is
not."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta, timezone
from typing import Any

import pytest

from schemas.decision import CustomerCalendar, Owner, SlaAssigned
from schemas.events import TicketEvent
from services.runtime.events import encode, parse
from services.runtime.pipeline import Rejected
from tests.support.tickets import ticket_event


def reason(event: Any) -> tuple[str, str]:
    raw = event if isinstance(event, bytes) else json.dumps(event).encode()
    with pytest.raises(Rejected) as rejected:
        parse(TicketEvent, raw)
    return rejected.value.error_type, rejected.value.message


def with_data(**changes: Any) -> dict[str, Any]:
    event = ticket_event()
    for key, value in changes.items():
        event["data"][key] = value
    return event


def test_valid_event_and_unknown_fields_ignored() -> None:
    event = ticket_event(channel="portal")
    event["extension"] = "x"
    parsed = parse(TicketEvent, json.dumps(event).encode())
    assert parsed.data.ticket_id == event["data"]["ticket_id"]
    assert parsed.data.components[0].removable is None


@pytest.mark.parametrize(
    ("event", "error_type", "fragment"),
    [
        (b"", "empty", "no value"),
        (b"{", "invalid_json", "not valid JSON"),
        (b"\xff\xfe", "invalid_json", "not valid JSON"),
        ({**ticket_event(), "type": "support.ticket.deleted"}, "unsupported_type", "type:"),
        ({**ticket_event(), "specversion": "0.3"}, "invalid_event", "specversion"),
        (with_data(severity=5), "invalid_event", "data.severity"),
        (with_data(severity="1"), "invalid_event", "data.severity: Input should be a valid int"),
        (with_data(revision=0), "invalid_event", "data.revision"),
        (with_data(ticket_id="-bad"), "invalid_event", "data.ticket_id"),
        (with_data(ticket_id="x" * 65), "invalid_event", "data.ticket_id"),
        (with_data(summary=""), "invalid_event", "data.summary"),
        (with_data(summary="x" * 501), "invalid_event", "data.summary"),
        (with_data(description="x" * 20_001), "invalid_event", "data.description"),
        (with_data(opened_at="2026-11-24T14:00:00"), "invalid_event", "with an offset"),
        (with_data(opened_at="1795000000"), "invalid_event", "RFC 3339"),
        (with_data(opened_at=1795000000), "invalid_event", "RFC 3339"),
        (with_data(opened_at="9999-12-31T00:00:00Z"), "invalid_event", "data.opened_at"),
        ({**ticket_event(), "time": "0001-01-01T00:00:00Z"}, "invalid_event", "time"),
        (with_data(revision=2**64), "invalid_event", "data.revision"),
        (with_data(product={"name": "RHOSP", "version": "١٧.١"}), "invalid_event", "version"),
        (ticket_event(customer={"timezone": "localtime"}), "invalid_event", "IANA time zone"),
        (ticket_event(customer={"timezone": "Factory"}), "invalid_event", "IANA time zone"),
        (with_data(opened_at="yesterday"), "invalid_event", "data.opened_at"),
        (with_data(opened_at="0001-01-01T00:00:00Z"), "invalid_event", "data.opened_at"),
        (with_data(product={"name": "RHOSP", "version": "17.x"}), "invalid_event", "version"),
        (ticket_event(customer={"country": "XX"}), "invalid_event", "ISO 3166-1"),
        (ticket_event(customer={"timezone": "Mars/Base"}), "invalid_event", "IANA time zone"),
        (ticket_event(customer={"support_level": "gold"}), "invalid_event", "support_level"),
        (with_data(components=[{"ref": "x"}] * 51), "invalid_event", "data.components"),
        (with_data(components=[{"ref": ""}]), "invalid_event", "data.components.0.ref"),
        (with_data(components=[{"ref": "a\x1b[31mred"}]), "invalid_event", "control characters"),
        (with_data(needs_vendor_expertise="yes"), "invalid_event", "needs_vendor_expertise"),
        ({**ticket_event(), "subject": "other"}, "invalid_event", "is not the ticket_id"),
        (
            {k: v for k, v in ticket_event().items() if k != "id"},
            "invalid_event",
            "id: Field required",
        ),
    ],
)
def test_rejections(event: Any, error_type: str, fragment: str) -> None:
    got_type, message = reason(event)
    assert got_type == error_type
    assert fragment in message


def test_many_problems_are_summarised() -> None:
    event = with_data(severity=9, revision=0, summary="", ticket_id="!", description=1, product=1)
    _, message = reason(event)
    assert message.endswith("more")


def test_encoded_event_is_structured_cloudevent() -> None:
    sla = SlaAssigned(
        ticket_id="T-1",
        revision=1,
        decision_id="d",
        severity=1,
        owner=Owner(party="redhat", vendor_id=None),
        clock="24x7",
        clock_start=datetime(2026, 11, 24, 13, tzinfo=UTC),
        response_due_at=datetime(2026, 11, 24, 14, tzinfo=UTC),
        basis="b",
        collaborators=[],
        calendar=CustomerCalendar(
            timezone="Europe/Berlin", country="DE", start=time(9), end=time(17, 30)
        ),
    )
    out = encode(
        topic="sla.ownership",
        event_id="e1",
        source="/s",
        event_type="support.sla.assigned",
        # Given at +01:00: the event's time is in UTC.
        time=datetime(2026, 11, 24, 14, 0, 5, tzinfo=timezone(timedelta(hours=1))),
        subject="T-1",
        data=sla,
    )
    assert out.key == b"T-1"
    assert out.headers == {"content-type": "application/cloudevents+json"}
    event = json.loads(out.value)
    assert event == {
        "specversion": "1.0",
        "id": "e1",
        "source": "/s",
        "type": "support.sla.assigned",
        "time": "2026-11-24T13:00:05Z",
        "subject": "T-1",
        "datacontenttype": "application/json",
        "data": {
            "ticket_id": "T-1",
            "revision": 1,
            "decision_id": "d",
            "severity": 1,
            "owner": {"party": "redhat", "vendor_id": None},
            "clock": "24x7",
            "clock_start": "2026-11-24T13:00:00Z",
            "response_due_at": "2026-11-24T14:00:00Z",
            "basis": "b",
            "collaborators": [],
            "calendar": {
                "timezone": "Europe/Berlin",
                "country": "DE",
                "start": "09:00:00",
                "end": "17:30:00",
            },
        },
    }


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 11, 24, 13, 0, 5, 120_000, tzinfo=UTC),
        datetime(
            2026, 11, 24, 7, 30, 5, 120_000, tzinfo=timezone(timedelta(hours=-5, minutes=-30))
        ),
    ],
)
def test_event_time_keeps_fractions_of_a_second_in_utc(moment: datetime) -> None:
    out = encode(
        topic="t", event_id="e", source="/s", event_type="x", time=moment, subject="T-1", data={}
    )
    assert json.loads(out.value)["time"] == "2026-11-24T13:00:05.120000Z"
