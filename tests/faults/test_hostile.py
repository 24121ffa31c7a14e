"""Hostile input: nothing in a ticket chooses a topic, nothing in a ticket forges a log line,
and a partner's payload never carries another vendor's id, the customer's vendor agreements or
support level."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.decision import SubmitterContact
from schemas.events import TicketEvent
from services.enricher.enrich import enrich
from services.router.outputs import Topics, route
from services.runtime import events
from tests.support.checks import wait_all_routed
from tests.support.inprocess import (
    InProcess,
    consumer_record,
    dead_for,
    json_lines,
    routed_for,
    run_pipeline,
    through_parser,
)
from tests.support.processes import System
from tests.support.tickets import Ref, component, sample_index, ticket_event, updated

INDEX = sample_index()
CATALOG = INDEX.catalog
VENDORS = sorted(INDEX.vendors)
PARTNERS = INDEX.partner_vendor_ids()
TOPICS = Topics("queue.redhat", "queue.partner.", "collab.tsanet", "sla.ownership")
SUBMITTER = SubmitterContact(name="Red Hat Global Support", email="tsanet@redhat.example")
ALLOWED_ROUTE_TOPICS = {"queue.redhat", "collab.tsanet"} | {f"queue.partner.{v}" for v in PARTNERS}

CATALOG_REFS = sorted(INDEX.by_ref)
HOSTILE_REFS = [
    "../x",
    "../../queue.redhat",
    "queue.partner.evil",
    "queue.partner.netapp",
    "queue.redhat",
    "collab.tsanet",
    "evil",
    "redhat",
    *VENDORS,  # vendor ids are not component refs
    " pure-flasharray-cinder ",  # trimmed: a real catalog id (legitimately matched)
    "рure-flasharray-cinder",  # Cyrillic р
    "Ref.PURE-FLASHARRAY-CINDER",
    "pure-flasharray-cinder\u200b",
    "cinder.volume.drivers.pure.PureISCSIDriver/../../evil",
    "${jndi:ldap://x/a}",
    "'; DROP TABLE tickets; --",
]
AGREEMENTS = [*VENDORS, "evil", "../x", "queue.partner.evil", "redhat", "QUEUE.PARTNER.X"]


def agreement_token() -> st.SearchStrategy[str]:
    """A customer agreement id that cannot occur in any other field by chance."""
    return st.uuids().map(lambda u: f"agr{u.hex[:12]}")


@st.composite
def hostile_ticket(draw: st.DrawFn) -> tuple[dict[str, Any], list[str]]:
    refs = st.sampled_from(CATALOG_REFS) | st.sampled_from(HOSTILE_REFS)
    components = draw(
        st.lists(
            st.builds(
                component,
                refs,
                st.booleans(),
                st.sampled_from([None, True, False]),
            ),
            max_size=4,
        )
    )
    secrets = draw(st.lists(agreement_token(), max_size=3))
    agreements = draw(st.lists(st.sampled_from(AGREEMENTS), max_size=5)) + secrets
    event = ticket_event(
        components=components,
        severity=draw(st.integers(1, 4)),
        needs_vendor_expertise=draw(st.booleans()),
        product={
            "name": "Red Hat OpenStack Platform",
            "version": draw(st.sampled_from(["16.1", "16.2", "17.1", "17.1.4", "17.10", "18.0"])),
        },
        customer={
            "vendor_agreements": agreements,
            "support_level": draw(st.sampled_from(["premium", "standard"])),
            "country": draw(st.sampled_from(["US", "DE", "JP", "IN", "BR"])),
        },
    )
    if draw(st.booleans()):
        event = updated(event, 2, "2026-11-25T10:00:00+00:00")
    return event, secrets


def decide(event: dict[str, Any]) -> Any:
    parsed = TicketEvent.model_validate_json(json.dumps(event))
    return route(enrich(parsed, INDEX), TOPICS, SUBMITTER)


def _tokens(value: Any) -> set[str]:
    """Every lower-case word of every string in a JSON value."""
    if isinstance(value, str):
        return set(re.findall(r"[a-z0-9][a-z0-9-]*", value.lower()))
    if isinstance(value, dict):
        return set().union(*(_tokens(k) | _tokens(v) for k, v in value.items())) if value else set()
    if isinstance(value, list):
        return set().union(*(_tokens(v) for v in value)) if value else set()
    return set()


def assert_partner_safe(raw: bytes, event: dict[str, Any], secrets: list[str], vendor: str) -> None:
    """The serialized partner message: no agreements, no support level, no other vendor."""
    data = json.loads(raw)["data"]
    customer = data["ticket"]["customer"]
    assert set(customer) == {"account_id", "name", "country", "timezone"}
    for word in (b"vendor_agreements", b"support_level", b"premium", b"standard", b"Premium"):
        assert word not in raw, word
    for secret in secrets:
        assert secret.encode() not in raw, secret
    decision = data["decision"]
    others = (set(VENDORS) | {"evil"}) - {vendor}
    assert not _tokens(decision) & others, _tokens(decision) & others
    assert decision["owner"] == {"party": "vendor", "vendor_id": vendor}
    assert decision["component"]["vendor_id"] == vendor
    assert decision["collaborators"] == []
    # The customer's agreement ids never appear as such: only the catalog vendor routed to.
    listed = set(event["data"]["customer"]["vendor_agreements"]) - {vendor}
    assert not (_tokens(decision) & {a.lower() for a in listed} & others)


# --- topics ----------------------------------------------------------------------------------


@settings(max_examples=600, deadline=None, derandomize=True, database=None)
@given(case=hostile_ticket())
def test_nothing_in_a_ticket_chooses_a_topic(case: tuple[dict[str, Any], list[str]]) -> None:
    event, secrets = case
    routing = decide(event)
    decision = routing.decision
    assert routing.topic in ALLOWED_ROUTE_TOPICS, routing.topic
    assert decision.topic == routing.topic
    if decision.route == "partner":
        # Only a catalog component shipped by its vendor makes a partner topic: that vendor's.
        match = decision.component
        assert match is not None
        assert match.shipped_by == "vendor"
        assert match.id in {c.id for c in CATALOG.components}
        assert routing.topic == f"queue.partner.{match.vendor_id}"
        raw = events.encode(
            topic=routing.topic,
            event_id="e",
            source="/t",
            event_type=routing.event_type,
            time=decision.clock_start,
            subject=decision.ticket_id,
            data=routing.payload,
        ).value
        assert_partner_safe(raw, event, secrets, str(match.vendor_id))
    else:
        assert not routing.topic.startswith("queue.partner.")


def _rule_cases() -> list[tuple[str, dict[str, Any]]]:
    e = ticket_event
    return [
        ("no-component", e(components=[])),
        ("unknown-component", e(components=[component(Ref.UNKNOWN, True)])),
        ("redhat-component", e(components=[component(Ref.OVN)])),
        ("uncertified-replace", e(components=[component(Ref.VNX, True)])),
        ("uncertified-collaborate", e(components=[component(Ref.INFINIBOX, True, False)])),
        ("uncertified-no-collaboration", e(components=[component(Ref.OCEANSTOR, True, False)])),
        ("partner-shipped", e(components=[component(Ref.OVN), component(Ref.PURE, True)])),
        (
            "redhat-shipped-collaborate",
            e(needs_vendor_expertise=True, components=[component(Ref.NETAPP)]),
        ),
        (
            "redhat-shipped-engineering",
            e(needs_vendor_expertise=True, components=[component(Ref.NVIDIA)]),
        ),
        ("redhat-shipped", e(components=[component(Ref.NETAPP, True)])),
    ]


@pytest.mark.parametrize(("rule", "base"), _rule_cases(), ids=[r for r, _ in _rule_cases()])
@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    agreements=st.lists(st.sampled_from(VENDORS), max_size=6),
    secrets=st.lists(agreement_token(), min_size=1, max_size=3),
    level=st.sampled_from(["premium", "standard"]),
    severity=st.integers(1, 4),
)
def test_every_rule_partner_payload_is_minimal(
    rule: str,
    base: dict[str, Any],
    agreements: list[str],
    secrets: list[str],
    level: str,
    severity: int,
) -> None:
    event = json.loads(json.dumps(base))
    event["data"]["customer"]["vendor_agreements"] = agreements + secrets
    event["data"]["customer"]["support_level"] = level
    event["data"]["severity"] = severity
    routing = decide(event)
    decision = routing.decision
    if rule in {"uncertified-collaborate"} and "infinidat" not in agreements:
        assert decision.rule == "uncertified-no-collaboration"
    else:
        assert decision.rule == rule
    raw = events.to_json(routing.payload)
    wrapped = b'{"data":' + raw + b"}"
    if decision.route == "partner":
        assert_partner_safe(wrapped, event, secrets, str(decision.owner.vendor_id))
    else:
        assert not routing.topic.startswith("queue.partner.")
    # No route, partner or not, ever carries the customer's secret agreement ids in the
    # decision, and TSANet requests carry only the customer's id and name.
    assert not any(s.encode() in events.to_json(decision) for s in secrets)
    if decision.route == "tsanet":
        collaboration = json.loads(raw)["collaboration"]
        assert set(collaboration["customer"]) == {"account_id", "name"}
        assert all(s.encode() not in raw for s in secrets)
        assert b"support_level" not in raw


@pytest.mark.parametrize(
    "vendor_id",
    ["../x", "queue.redhat", "pure-storage\n"],
)
async def test_router_refuses_vendor_ids_that_are_not_topic_safe(vendor_id: str) -> None:
    """The router builds a partner topic from the enriched ticket's vendor id, so it validates
    that id against the catalog's pattern: a forged enriched ticket whose vendor id is not
    topic-safe ("queue.redhat" would reach `queue.partner.queue.redhat`; "../x" is not a
    topic name at all) is dead-lettered, never published."""
    event = ticket_event(components=[component(Ref.PURE, True)])
    enriched = enrich(TicketEvent.model_validate_json(json.dumps(event)), INDEX)
    data = json.loads(events.to_json(enriched))
    data["components"][0]["catalog"]["vendor_id"] = vendor_id
    data["components"][0]["catalog"]["vendor"]["id"] = vendor_id
    forged = {
        "specversion": "1.0",
        "id": "forged-1",
        "source": "/somebody",
        "type": "support.ticket.enriched",
        "time": "2026-11-24T14:00:00Z",
        "subject": event["data"]["ticket_id"],
        "data": data,
    }
    stack = InProcess()
    record = consumer_record(json.dumps(forged).encode(), b"k", topic="tickets.enriched")
    outputs = await _router_only(stack, record)
    topics = {o.topic for o in outputs}
    assert topics <= ALLOWED_ROUTE_TOPICS | {"sla.ownership", "tickets.deadletter"}, topics
    assert topics == {"tickets.deadletter"}, topics


async def _router_only(stack: InProcess, record: Any) -> list[Any]:
    return await run_pipeline(stack.router, await through_parser([record]))


# --- logs ------------------------------------------------------------------------------------

CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
FORGED = '{"event":"forged","level":"critical","admin":true}'
HOSTILE_TEXT = [
    f"\n{FORGED}\n",
    f"\r{FORGED}",
    "\x1b[2J\x1b[31mALERT\x1b[0m",
    f"\u2028{FORGED}\u2029",
    "\x00\x01\x7f",
    '\\"}\n{\\"event\\":\\"forged\\"}',
    "\u202eevil\u202c",
]


@pytest.mark.integration
async def test_log_lines_cannot_be_forged_and_no_topic_appears(faults: System) -> None:
    run = uuid.uuid4().hex[:6]
    sent: dict[str, dict[str, Any]] = {}
    for n, text in enumerate(HOSTILE_TEXT):
        # In the event id (logged by the router on every decision) and in free text.
        e = ticket_event(
            f"T-{run}-{n}",
            # Summaries refuse control characters other than tab and newlines.
            summary="s " + CONTROL.sub("", text),
            description=text,
            components=[component(HOSTILE_REFS[n % len(HOSTILE_REFS)], True)],
            customer={"vendor_agreements": AGREEMENTS},
        )
        e["id"] = f"{run}-{n}{text}"
        sent[e["data"]["ticket_id"]] = e
    # Rejected input echoes into dead-letter logs: a zone, a country, a component ref.
    rejected = [
        ticket_event(f"T-{run}-tz", customer={"timezone": f"X{FORGED}\n{FORGED}"}),
        ticket_event(f"T-{run}-cc", customer={"country": f"\n{FORGED}"}),
        ticket_event(f"T-{run}-ref", components=[component(f"r\x1b\n{FORGED}", True)]),
    ]
    for e in [*sent.values(), *rejected]:
        await faults.producer.send_and_wait(
            "tickets.incoming", json.dumps(e).encode(), key=e["data"]["ticket_id"].encode()
        )
    await wait_all_routed(faults, {(t, 1) for t in sent}, 60, "hostile tickets")
    await faults.wait_until(
        lambda: (
            len(
                [
                    r
                    for r in faults.outputs["tickets.deadletter"]
                    if r.key.startswith(f"T-{run}".encode())
                ]
            )
            == 3
        ),
        what="the rejected ones",
    )
    await asyncio.sleep(0.5)

    for service in (faults.enricher, faults.router):
        lines = service.stdout_lines()
        assert lines
        for line in lines:
            parsed = json.loads(line)  # one JSON object per line, or this raises
            assert isinstance(parsed, dict)
            assert parsed.get("event") != "forged"
            assert "admin" not in parsed
            # JSON escapes every C0 control character (DEL, 0x7f, needs no escape).
            for byte in (b"\r", b"\x1b", b"\x00", b"\x01"):
                assert byte not in line
        err = service.err.read_bytes()
        assert b"forged" not in err, err[-2000:]
    routed_ids = {e["event_id"] for e in faults.router.events("ticket_routed")}
    assert {e["id"] for e in sent.values()} <= routed_ids  # escaped, and read back unchanged
    dead_logged = " ".join(e["error"] for e in faults.enricher.events("dead_lettered"))
    assert "forged" in dead_logged  # the hostile values are in the log, as data

    admin = AIOKafkaAdminClient(bootstrap_servers=faults.broker.bootstrap_servers)
    await admin.start()
    try:
        topics = set(await admin.list_topics())
    finally:
        await admin.close()
    # The partners' response topics are created with their queues; the router's memory is
    # its changelog.
    expected = (
        ALLOWED_ROUTE_TOPICS
        | {f"responses.partner.{v}" for v in PARTNERS}
        | {
            "tickets.incoming",
            "tickets.enriched",
            "sla.ownership",
            "tickets.deadletter",
            "ticketroute.router.memory",
        }
    )
    assert topics - {"__consumer_offsets"} <= expected, topics - expected


async def test_dead_letter_headers_are_single_line_text() -> None:
    stack = InProcess()
    bad = ticket_event("T-h", customer={"timezone": f"X\n{FORGED}\r\n"})
    record = consumer_record(
        json.dumps(bad).encode(),
        b"T-h",
        [("error.type", b"spoofed"), ("source.topic", b"queue.partner.evil"), ("x", b"\xff")],
    )
    outputs = await stack.send([record])
    (dead,) = dead_for(outputs, b"T-h")
    assert dead.headers["error.type"] == "invalid_event"
    assert dead.headers["source.topic"] == "tickets.incoming"
    assert "x" not in dead.headers  # not text: not copied
    assert all("\n" not in v and "\r" not in v for v in dead.headers.values())
    assert not routed_for(outputs, b"T-h")


def test_json_logs_escape_everything(json_logs: Any) -> None:
    import structlog  # noqa: PLC0415

    log = structlog.get_logger()
    for text in HOSTILE_TEXT:
        log.warning("probe", value=text, **{f"k{text[:3]}": text})
    parsed = json_lines(json_logs)
    assert [p["value"] for p in parsed] == HOSTILE_TEXT
