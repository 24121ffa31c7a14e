"""The README's routing rules, SLA, topics and delivery guarantees, end to end through both
services, on both brokers.

Every expected due time is worked out by hand in the comments. The default ticket is opened
Tuesday 2026-11-24 14:00Z, which is 09:00 in New York (EST, UTC-5), by a premium US customer,
severity 2; the US calendar is 09:00-18:00 Monday to Friday.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.support.stack import Stack
from tests.support.tickets import Ref, component, encode, ticket_event, updated

ROUTED = "support.ticket.routed"
COLLAB = "support.collaboration.requested"


@dataclass(frozen=True)
class Case:
    rule: str
    event: dict[str, Any]
    topic: str
    owner: dict[str, Any]
    due: str
    actions: list[str] = field(default_factory=list)
    collaborators: list[dict[str, Any]] = field(default_factory=list)
    certification: str | None = None
    basis: str = "Red Hat Premium, severity 2: 2 hours, 24x7"


REDHAT = {"party": "redhat", "vendor_id": None}


def no_collaboration(event: dict[str, Any]) -> Case:
    """Uncertified, not removable, and no way to collaborate: Red Hat works it alone, premium
    severity 2, 2 hours 24x7: 14:00Z + 2h = 16:00Z."""
    return Case(
        "uncertified-no-collaboration",
        event,
        "queue.redhat",
        REDHAT,
        "2026-11-24T16:00:00Z",
        ["collaboration_unavailable"],
        certification="uncertified",
    )


def collaborating(
    rule: str, event: dict[str, Any], *, due: str, vendor: str, respond_by: str, **details: Any
) -> Case:
    """Red Hat owns it, due at `due`, and asks `vendor` through TSANet (collab.tsanet) to
    collaborate on the vendor's own 24x7 clock, answering by `respond_by`."""
    collaborator = {"vendor_id": vendor, "clock": "24x7", "respond_by": respond_by}
    return Case(rule, event, "collab.tsanet", REDHAT, due, collaborators=[collaborator], **details)


CASES = [
    # Premium severity 2 is 2 hours 24x7: 14:00Z + 2h = 16:00Z.
    Case(
        "no-component",
        ticket_event(components=[]),
        "queue.redhat",
        REDHAT,
        "2026-11-24T16:00:00Z",
        ["triage"],
    ),
    # Two components, neither suspected: no component in question.
    Case(
        "no-component",
        ticket_event(components=[component(Ref.OVN), component(Ref.NETAPP)]),
        "queue.redhat",
        REDHAT,
        "2026-11-24T16:00:00Z",
        ["triage"],
    ),
    Case(
        "unknown-component",
        ticket_event(components=[component(Ref.UNKNOWN, True)]),
        "queue.redhat",
        REDHAT,
        "2026-11-24T16:00:00Z",
        ["triage"],
        certification="unknown",
    ),
    # Premium severity 3 is 4 business hours: 09:00 EST + 4h = 13:00 EST = 18:00Z.
    Case(
        "redhat-component",
        ticket_event(severity=3, components=[component(Ref.OVN)]),
        "queue.redhat",
        REDHAT,
        "2026-11-24T18:00:00Z",
        certification="certified",
        basis="Red Hat Premium, severity 3: 4 hours, business hours",
    ),
    # Ref.VNX is certified for 16.2 only; on 17.1 it is uncertified, removable unknown.
    # Standard severity 2 is 4 business hours. Opened 20:00Z = 15:00 EST Tuesday: 3 hours to
    # 18:00, then 1 hour from Wednesday 09:00 -> Wednesday 10:00 EST = 2026-11-25 15:00Z.
    Case(
        "uncertified-replace",
        ticket_event(
            opened_at="2026-11-24T20:00:00+00:00",
            customer={"support_level": "standard"},
            components=[component(Ref.VNX, True)],
        ),
        "queue.redhat",
        REDHAT,
        "2026-11-25T15:00:00Z",
        ["request_component_replacement"],
        certification="uncertified",
        basis="Red Hat Standard, severity 2: 4 hours, business hours",
    ),
    # Premium severity 1: 1 hour 24x7 -> 15:00Z. Infinidat's own severity 1: 30 minutes 24x7
    # -> 14:30Z, its respond_by as collaborator.
    collaborating(
        "uncertified-collaborate",
        ticket_event(severity=1, components=[component(Ref.INFINIBOX, True, removable=False)]),
        due="2026-11-24T15:00:00Z",
        vendor="infinidat",
        respond_by="2026-11-24T14:30:00Z",
        certification="uncertified",
        basis="Red Hat Premium, severity 1: 1 hour, 24x7",
    ),
    # Huawei is not a TSANet member.
    no_collaboration(ticket_event(components=[component(Ref.OCEANSTOR, True, removable=False)])),
    # Infinidat is a member, but this customer has no agreement with it.
    no_collaboration(
        ticket_event(
            customer={"vendor_agreements": []},
            components=[component(Ref.INFINIBOX, True, removable=False)],
        )
    ),
    # Pure's own severity 3 is 4 business hours. Opened Friday 2026-11-27 21:00Z = 16:00 EST:
    # 2 hours to 18:00, weekend skipped, 2 hours from Monday 09:00 -> 11:00 EST = 16:00Z.
    Case(
        "partner-shipped",
        ticket_event(
            severity=3,
            opened_at="2026-11-27T21:00:00+00:00",
            components=[component(Ref.OVN), component(Ref.PURE, True)],
        ),
        "queue.partner.pure-storage",
        {"party": "vendor", "vendor_id": "pure-storage"},
        "2026-11-30T16:00:00Z",
        certification="certified",
        basis="Pure Storage, severity 3: 4 hours, business hours",
    ),
    # NetApp's severity 2 is 4 hours 24x7: 14:00Z + 4h = 18:00Z.
    collaborating(
        "redhat-shipped-collaborate",
        ticket_event(needs_vendor_expertise=True, components=[component(Ref.NETAPP, True)]),
        due="2026-11-24T16:00:00Z",
        vendor="netapp",
        respond_by="2026-11-24T18:00:00Z",
        certification="certified",
    ),
    Case(
        "redhat-shipped-engineering",
        ticket_event(needs_vendor_expertise=True, components=[component(Ref.NVIDIA)]),
        "queue.redhat",
        REDHAT,
        "2026-11-24T16:00:00Z",
        ["engage_partner_engineering"],
        certification="certified",
    ),
    # An update: the clock starts at the event's time, 2026-11-25 03:00Z; + 2h = 05:00Z.
    Case(
        "redhat-shipped",
        updated(
            ticket_event(components=[component(Ref.NETAPP, True)]), 2, "2026-11-25T03:00:00+00:00"
        ),
        "queue.redhat",
        REDHAT,
        "2026-11-25T05:00:00Z",
        certification="certified",
    ),
]


def _envelope_ok(message: Any, ticket_id: str, event_type: str) -> dict[str, Any]:
    assert message.key == ticket_id.encode()
    assert message.headers["content-type"] == b"application/cloudevents+json"
    event = message.event
    assert event["specversion"] == "1.0"
    assert event["type"] == event_type
    assert event["source"] == "/ticketroute/router"
    assert event["subject"] == ticket_id
    assert event["datacontenttype"] == "application/json"
    assert event["time"].endswith("Z")
    assert len(event["id"]) == 36
    return event


@pytest.mark.parametrize("case", CASES, ids=[f"{i}-{c.rule}" for i, c in enumerate(CASES)])
async def test_rule_end_to_end(stack: Stack, case: Case) -> None:
    event = case.event
    ticket = event["data"]
    tid = ticket["ticket_id"]
    await stack.send(encode(event), tid.encode())
    await stack.wait_for(
        lambda: bool(stack.for_ticket(case.topic, tid) and stack.for_ticket("sla.ownership", tid)),
        settle=1.0,
    )
    route_topics = ["queue.redhat", "collab.tsanet", *stack.outputs]
    routed = {
        t: stack.for_ticket(t, tid) for t in route_topics if t.startswith(("queue.", "collab."))
    }
    assert {t: len(m) for t, m in routed.items() if m} == {case.topic: 1}, "one route message"
    assert len(stack.for_ticket("sla.ownership", tid)) == 1

    out = _envelope_ok(
        routed[case.topic][0], tid, COLLAB if case.topic == "collab.tsanet" else ROUTED
    )
    decision = out["data"]["decision"]
    assert decision["rule"] == case.rule
    assert decision["ticket_id"] == tid
    assert decision["revision"] == ticket["revision"]
    assert decision["route"] == {"queue.redhat": "redhat", "collab.tsanet": "tsanet"}.get(
        case.topic, "partner"
    )
    assert decision["topic"] == case.topic
    assert decision["owner"] == case.owner
    assert decision["actions"] == case.actions
    assert decision["catalog_version"] == "2026-11-24"
    assert decision["response_due_at"] == case.due
    assert decision["collaborators"] == case.collaborators
    if case.certification is None:
        assert decision["component"] is None
    else:
        assert decision["component"]["certification"] == case.certification
    # The trace: every rule evaluated in order, the last one matched, all before it not.
    trace = decision["trace"]
    assert trace[-1] == {"rule": case.rule, "matched": True, "reason": trace[-1]["reason"]}
    assert all(not step["matched"] for step in trace[:-1])
    assert trace[0]["rule"] == "no-component"
    assert all(step["reason"] for step in trace)

    sla = _envelope_ok(stack.for_ticket("sla.ownership", tid)[0], tid, "support.sla.assigned")
    clock_start = ticket["opened_at"] if event["type"].endswith("created") else event["time"]
    assert sla["data"] == {
        "ticket_id": tid,
        "revision": ticket["revision"],
        "decision_id": decision["decision_id"],
        "severity": ticket["severity"],
        "owner": case.owner,
        "clock": decision["clock"],
        "clock_start": clock_start.replace("+00:00", "Z"),
        "response_due_at": case.due,
        "basis": case.basis,
        "collaborators": case.collaborators,
        # Every case's customer is in New York; the sample catalog opens US calendars 09-18.
        "calendar": {
            "timezone": "America/New_York",
            "country": "US",
            "start": "09:00:00",
            "end": "18:00:00",
        },
    }

    if case.topic == "collab.tsanet":
        collaboration = out["data"]["collaboration"]
        vendor = case.collaborators[0]["vendor_id"]
        assert collaboration == {
            "submitter_case_number": tid,
            "receiver_vendor_id": vendor,
            "receiver_company_id": {"infinidat": "1476", "netapp": "1042"}[vendor],
            "priority": "HIGH",
            "problem_summary": ticket["summary"],
            "problem_description": ticket["description"],
            "respond_by": case.collaborators[0]["respond_by"],
            "customer": {"account_id": "ACME-001", "name": "Acme Corp"},
            "submitter_contact": {
                "name": "Red Hat Global Support",
                "email": "tsanet@redhat.example",
                "phone": None,
            },
        }
    elif case.topic == "queue.redhat":
        assert out["data"]["ticket"]["customer"] == ticket["customer"]


async def test_partner_never_sees_agreements_or_contract(stack: Stack) -> None:
    event = ticket_event(
        customer={"vendor_agreements": ["netapp", "infinidat", "hpe"], "support_level": "premium"},
        components=[component(Ref.PURE, True)],
    )
    tid = event["data"]["ticket_id"]
    await stack.send(encode(event), tid.encode())
    topic = "queue.partner.pure-storage"
    await stack.wait_for(lambda: bool(stack.for_ticket(topic, tid)))
    raw = stack.for_ticket(topic, tid)[0].value
    data = stack.for_ticket(topic, tid)[0].event["data"]
    assert set(data["ticket"]["customer"]) == {"account_id", "name", "country", "timezone"}
    for secret in (
        b"vendor_agreements",
        b"support_level",
        b"infinidat",
        b"hpe",
        b"netapp",
        b"premium",
        b"Premium",
    ):
        assert secret not in raw, secret


async def test_duplicate_event_routed_once(stack: Stack) -> None:
    event = ticket_event(components=[component(Ref.NETAPP, True)])
    tid = event["data"]["ticket_id"]
    await stack.send(encode(event), tid.encode())
    await stack.send(encode(event), tid.encode())
    await stack.wait_for(lambda: bool(stack.for_ticket("sla.ownership", tid)), settle=2.0)
    assert len(stack.for_ticket("queue.redhat", tid)) == 1
    assert len(stack.for_ticket("sla.ownership", tid)) == 1


async def test_stale_revision_not_routed_equal_revision_same_decision(stack: Stack) -> None:
    first = ticket_event(components=[component(Ref.NETAPP, True)])
    tid = first["data"]["ticket_id"]
    third = updated(first, 3, "2026-11-24T16:00:00+00:00")
    second = updated(first, 2, "2026-11-24T15:00:00+00:00")  # arrives after revision 3
    third_again = updated(first, 3, "2026-11-24T17:00:00+00:00")  # new event, same revision
    for event in (first, third, second, third_again):
        await stack.send(encode(event), tid.encode())
    await stack.wait_for(lambda: len(stack.for_ticket("sla.ownership", tid)) >= 3, settle=2.0)
    slas = [m.event["data"] for m in stack.for_ticket("sla.ownership", tid)]
    assert [s["revision"] for s in slas] == [1, 3, 3]
    assert slas[1]["decision_id"] == slas[2]["decision_id"]
    assert slas[0]["decision_id"] != slas[1]["decision_id"]
    # Same decision, later clock start: the update restarts the clock (README "SLA").
    assert slas[1]["clock_start"] == "2026-11-24T16:00:00Z"
    assert slas[2]["clock_start"] == "2026-11-24T17:00:00Z"
    assert len(stack.for_ticket("queue.redhat", tid)) == 3


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "invalid_json"),
        (b"", "empty"),
        (None, "unsupported_type"),
        (None, "invalid_event"),
    ],
    ids=["truncated-json", "empty", "unknown-type", "severity-9"],
)
async def test_bad_message_dead_lettered_and_next_routed(
    stack: Stack, payload: bytes | None, reason: str
) -> None:
    good = ticket_event(components=[component(Ref.NETAPP, True)])
    tid = good["data"]["ticket_id"]
    if payload is None and reason == "unsupported_type":
        payload = encode({**ticket_event(tid), "type": "support.ticket.deleted"})
    elif payload is None:
        bad = ticket_event(tid)
        bad["data"]["severity"] = 9
        payload = encode(bad)
    await stack.send(payload, tid.encode(), headers={"x-origin": "test"})
    await stack.send(encode(good), tid.encode())
    await stack.wait_for(
        lambda: (
            bool(stack.for_ticket("tickets.deadletter", tid))
            and bool(stack.for_ticket("sla.ownership", tid))
        )
    )
    (dead,) = stack.for_ticket("tickets.deadletter", tid)
    assert dead.value == payload
    assert dead.headers["error.type"] == reason.encode()
    assert dead.headers["error.message"]
    assert dead.headers["source.topic"] == b"tickets.incoming"
    assert dead.headers["source.partition"].isdigit()
    assert dead.headers["source.offset"].isdigit()
    assert dead.headers["x-origin"] == b"test"
    if reason == "invalid_event":
        assert b"severity" in dead.headers["error.message"]
