"""What the router builds from a decision: ids, the partner's view, the bundled samples."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from schemas.decision import EnrichedTicket, SubmitterContact
from schemas.events import TicketEvent
from services.enricher.enrich import enrich
from services.router.outputs import Topics, decision_id, partner_view, route
from services.runtime.events import to_json
from tests.support.tickets import Ref, component, sample_events, sample_index, ticket_event
from ticketroute.cli import main as cli

TOPICS = Topics("queue.redhat", "queue.partner.", "collab.tsanet", "sla.ownership")
SUBMITTER = SubmitterContact(name="Red Hat", email="tsanet@redhat.example")

# Worked out by hand from the rule table: services/samples/EXPECTED.md.
EXPECTED_SAMPLES = {
    ("04012873", 1): "no-component",
    ("04012873", 2): "redhat-shipped-collaborate",
    ("04013120", 1): "no-component",
    ("04013377", 1): "unknown-component",
    ("04013502", 1): "redhat-component",
    ("04013618", 1): "uncertified-replace",
    ("04013655", 1): "uncertified-replace",
    ("04013790", 1): "uncertified-collaborate",
    ("04013811", 1): "uncertified-no-collaboration",
    ("04013904", 1): "uncertified-no-collaboration",
    ("04014016", 1): "partner-shipped",
    ("04014102", 1): "partner-shipped",
    ("04014230", 1): "redhat-shipped-engineering",
    ("04014371", 1): "redhat-shipped",
    ("04014455", 1): "partner-shipped",
}


def enriched_from(event: dict) -> EnrichedTicket:  # type: ignore[type-arg]
    return enrich(TicketEvent.model_validate_json(json.dumps(event)), sample_index())


def routed(event: dict) -> object:  # type: ignore[type-arg]
    return route(enriched_from(event), TOPICS, SUBMITTER)


def test_samples_route_as_worked_out_by_hand() -> None:
    got = {}
    for event in sample_events():
        r = routed(event)
        got[(r.decision.ticket_id, r.decision.revision)] = r.decision.rule  # type: ignore[attr-defined]
    assert got == EXPECTED_SAMPLES
    assert len(set(EXPECTED_SAMPLES.values())) == 10  # every rule id of the contract


def test_decision_id_is_deterministic() -> None:
    assert decision_id("T-1", 2, "v1") == decision_id("T-1", 2, "v1")
    assert (
        len(
            {
                decision_id("T-1", 2, "v1"),
                decision_id("T-1", 3, "v1"),
                decision_id("T-1", 2, "v2"),
                decision_id("T-12", 2, "v1"),
            }
        )
        == 4
    )
    event = ticket_event()
    again = {**event, "id": "another-delivery", "time": "2026-11-24T18:00:00+00:00"}
    assert routed(event).decision.decision_id == routed(again).decision.decision_id  # type: ignore[attr-defined]


def test_partner_view_drops_agreements_and_support_level() -> None:
    ticket = TicketEvent.model_validate_json(json.dumps(ticket_event())).data
    view = json.loads(to_json(partner_view(ticket)))
    assert "vendor_agreements" not in view["customer"]
    assert "support_level" not in view["customer"]
    assert view["customer"]["account_id"] == ticket.customer.account_id
    assert view["components"] == [asdict(c) for c in ticket.components]


@pytest.mark.parametrize("flag", [[], ["--json"]])
def test_explain_command(tmp_path, capsys, flag) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "t.json"
    path.write_text(json.dumps(ticket_event(components=[component(Ref.PURE, True)])["data"]))
    assert cli(["explain", str(path), *flag]) == 0
    out = capsys.readouterr().out
    if flag:
        result = json.loads(out)
        assert result["decision"]["rule"] == "partner-shipped"
        assert result["message"]["topic"] == "queue.partner.pure-storage"
        assert "vendor_agreements" not in result["message"]["data"]["ticket"]["customer"]
        # Bare ticket: taken as created, clock from opened_at; Pure sev 2 is 2h 24x7.
        assert result["sla"]["response_due_at"] == "2026-11-24T16:00:00Z"
    else:
        assert "MATCH partner-shipped" in out
        assert "first response due 2026-11-24 16:00Z (Tue 2026-11-24 11:00 customer time)" in out


def test_explain_reports_invalid_input(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    bad = ticket_event()
    bad["data"]["severity"] = 7
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    assert cli(["explain", str(path)]) == 2
    assert "data.severity" in capsys.readouterr().err
    assert cli(["explain", str(tmp_path / "missing.json")]) == 2


def pydantic_json(value: object) -> bytes:
    """The reference: pydantic's own serialisation of the output's type (its JSON Schema's)."""
    return TypeAdapter(type(value)).dump_json(value)


def published(event: dict) -> list[object]:  # type: ignore[type-arg]
    """What the services write for `event`: the enriched ticket, then the router's outputs."""
    enriched = enriched_from(event)
    r = route(enriched, TOPICS, SUBMITTER)
    return [enriched, r.payload, r.sla, r.decision]


@pytest.mark.parametrize("event", sample_events(), ids=lambda e: e["id"][:8])
def test_outputs_are_written_as_pydantic_writes_them(event: dict) -> None:  # type: ignore[type-arg]
    for value in published(event):
        assert to_json(value) == pydantic_json(value)
        assert TypeAdapter(type(value)).validate_json(to_json(value)) == value


@given(
    description=st.text(max_size=80),
    summary=st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40),
    offset_minutes=st.integers(-14 * 60, 14 * 60),
    microsecond=st.integers(0, 999_999),
    sample=st.sampled_from([e for e in sample_events() if e["data"]["components"]]),
)
@settings(max_examples=150, deadline=None)
def test_outputs_written_as_pydantic_for_any_text_and_time(
    description: str,
    summary: str,
    offset_minutes: int,
    microsecond: int,
    sample: dict,  # type: ignore[type-arg]
) -> None:
    """Escaping (control characters, non-ASCII, U+2028), offsets and fractions of a second
    come out byte for byte as pydantic writes them, in the enriched ticket and on every route."""
    opened = datetime(
        2026, 11, 20, 9, 30, 5, microsecond, timezone(timedelta(minutes=offset_minutes))
    )
    event = {**sample, "data": {**sample["data"], "description": description, "summary": summary}}
    event["data"]["opened_at"] = event["time"] = opened.isoformat()
    for value in published(event):
        assert to_json(value) == pydantic_json(value)
