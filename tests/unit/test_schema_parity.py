"""The published ticket-event JSON Schema refuses what the services refuse, wherever JSON Schema
can say it (README, "Topics and events"): a ticketing system that validates against
schemas/jsonschema/ before publishing meets no dead letter. The fault suite's bad inputs, its
hostile but valid tickets and the bundled samples go through both the schema (python-jsonschema,
formats checked) and the services' own parser; their verdicts agree but for the exceptions
listed here, each explained."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from schemas.events import TicketEvent
from schemas.generate import HERE
from services.runtime.events import parse
from services.runtime.pipeline import Rejected
from tests.faults.test_fuzz import (
    _MISSING,
    _OUT_OF_RANGE,
    CLASS_DRAWS,
    CLASSES,
    FIELDS,
    Case,
    at,
    changed,
    dumps,
    event,
)
from tests.faults.test_hostile import hostile_ticket
from tests.support.tickets import sample_events

SCHEMA = json.loads((HERE / "jsonschema" / "ticket-event.json").read_text())
VALIDATOR = Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)


def service_verdict(raw: bytes) -> str | None:
    """None when the services accept the message, else their dead-letter message."""
    try:
        parse(TicketEvent, raw)
    except Rejected as rejected:
        return f"{rejected.error_type}: {rejected.message}"
    return None


def schema_verdict(raw: bytes) -> str | None:
    """None when the message is valid against the published schema, else why not; text that
    is not JSON is no instance of any schema."""
    try:
        instance = json.loads(raw)
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError
        return f"not JSON: {error}"
    problems = [e.message for e in VALIDATOR.iter_errors(instance)]
    return "; ".join(problems)[:300] or None


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in (*_texts(k), *_texts(v))]
    if isinstance(value, list):
        return [t for v in value for t in _texts(v)]
    return []


def _lone_surrogate(raw: bytes, service: str) -> bool:
    if not service.startswith("invalid_json"):
        return False
    texts = _texts(json.loads(raw))
    return any(re.search("[\ud800-\udfff]", t) for t in texts)


def _subject_not_ticket(raw: bytes, service: str) -> bool:
    return "is not the ticket_id" in service


# Where the services refuse what the schema cannot refuse. Each is named in the schema's
# descriptions or is about the JSON text itself, not about an instance.
EXCEPTIONS: dict[str, tuple[Callable[[bytes, str], bool], str]] = {
    "lone surrogate": (
        _lone_surrogate,
        "A \\u escape of a lone surrogate (\\ud800) is JSON syntax that is not Unicode text "
        "(RFC 8259, section 8.2). Python's json reads it into a string, so the instance "
        "validates; the services' parser refuses the text as invalid JSON before any schema.",
    ),
    "subject is another ticket": (
        _subject_not_ticket,
        "`subject` must equal `data.ticket_id`: JSON Schema cannot compare two values of one "
        "instance. The subject's description says so.",
    ),
}


def disagreement(raw: bytes) -> str | None:
    """Why the two verdicts differ, when they do and no listed exception explains it."""
    service, schema = service_verdict(raw), schema_verdict(raw)
    if (service is None) == (schema is None):
        return None
    if service is not None and schema is None:
        for check, _why in EXCEPTIONS.values():
            if check(raw, service):
                return None
    return f"services: {service or 'accepted'}; schema: {schema or 'accepted'}; {raw[:300]!r}"


# --- the fault suite's bad inputs -------------------------------------------------------------


def _field_cases() -> list[tuple[str, bytes]]:
    """Every wrong value of every field of the fault suite, and every required field left out."""
    cases = []
    for path, wrong, optional in FIELDS:
        where = ".".join(map(str, path))
        cases += [(f"{where}={v!r}"[:60], dumps(at(event(), path, v))) for v in wrong]
        if not optional:
            cases.append((f"{where} missing", dumps(at(event(), path, _MISSING))))
    return cases


FIELD_CASES = _field_cases()


@pytest.mark.parametrize("raw", [c[1] for c in FIELD_CASES], ids=[c[0] for c in FIELD_CASES])
def test_wrong_field_values_refused_by_both(raw: bytes) -> None:
    assert service_verdict(raw) is not None
    assert not disagreement(raw)


def _known_case(change: dict[str, Any]) -> bytes:
    """The fault suite's broken inputs once accepted by the enricher, applied to one event."""
    return dumps(changed(event(), change))


@pytest.mark.parametrize(
    "raw", [_known_case(k[2]) for k in _OUT_OF_RANGE], ids=[k[0] for k in _OUT_OF_RANGE]
)
def test_once_accepted_broken_inputs_refused_by_both(raw: bytes) -> None:
    assert service_verdict(raw) is not None
    assert not disagreement(raw)


@pytest.mark.parametrize("kind", list(CLASSES))
@settings(CLASS_DRAWS, max_examples=50)
@given(data=st.data())
def test_input_classes_same_verdict(kind: str, data: st.DataObject) -> None:
    case: Case = data.draw(CLASSES[kind], label=kind)
    assert case.value is not None
    # The fault suite's own expectation holds, so the comparison is about the right verdict.
    assert (service_verdict(case.value) is None) == (not case.reasons)
    assert not disagreement(case.value)


# --- good inputs --------------------------------------------------------------------------


@pytest.mark.parametrize("sample", sample_events(), ids=lambda e: e["data"]["ticket_id"])
def test_bundled_samples_pass_both(sample: dict[str, Any]) -> None:
    raw = json.dumps(sample).encode()
    assert service_verdict(raw) is None
    assert schema_verdict(raw) is None


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(case=hostile_ticket())
def test_hostile_but_valid_tickets_pass_both(case: tuple[dict[str, Any], list[str]]) -> None:
    raw = json.dumps(case[0]).encode()
    assert service_verdict(raw) is None
    assert schema_verdict(raw) is None


# --- the exceptions are real, and the schema says what it cannot check ------------------------


def test_listed_exceptions_occur_and_schema_accepts_them() -> None:
    mismatched = event()
    mismatched["subject"] = "T-someone-else"
    lone = dumps(event(summary="@@")).replace(b"@@", b"\\ud800")
    for raw, name in [(dumps(mismatched), "subject is another ticket"), (lone, "lone surrogate")]:
        service = service_verdict(raw)
        assert service is not None
        assert schema_verdict(raw) is None
        assert EXCEPTIONS[name][0](raw, service)
    assert "ticket_id" in SCHEMA["properties"]["subject"]["description"]


def test_schema_lists_the_zones_and_countries_the_services_accept() -> None:
    customer = SCHEMA["$defs"]["Customer"]["properties"]
    zones, countries = customer["timezone"]["enum"], customer["country"]["enum"]
    for zone in ("Europe/Berlin", "America/New_York", "UTC"):
        assert zone in zones
    for not_a_zone in ("localtime", "Factory", "posixrules", "Europe/Atlantis"):
        assert not_a_zone not in zones
    assert {"US", "DE", "JP"} <= set(countries)
    assert not {"UK", "EU", "XK"} & set(countries)
    for zone in zones[:: max(1, len(zones) // 40)]:  # a spread of them, through the services
        raw = dumps(event(customer={"timezone": zone}))
        assert service_verdict(raw) is None, zone
