"""CloudEvents in and out: parsing input, in structured or binary mode, into a model (or a
dead-letter verdict) and encoding outputs in structured JSON mode."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from schemas.catalog import CatalogModel
from schemas.events import CONTENT_TYPE
from schemas.ids import Uuid5Namespace
from services.runtime.pipeline import Outgoing, Record, Rejected

HEADERS = {"content-type": CONTENT_TYPE}
# The CloudEvents Kafka binding: binary mode's attribute headers, and the content types that
# mark a structured event.
BINARY_PREFIX = "ce_"
STRUCTURED_CONTENT_TYPES = "application/cloudevents"
# Output event ids are derived, so the same output published twice keeps its id.
EVENT_IDS = Uuid5Namespace(uuid.UUID("0b5e3f7a-9d64-5c2e-8a1b-3f4c6d7e8f90"))
_MAX_PROBLEMS = 5

ModelT = TypeVar("ModelT", bound=BaseModel)


# The schemas' own checks (schemas/ticket.py) say what is wrong but, running in pydantic-core,
# not with which value: the value is added here, shortened, as data (the log escapes it).
_SHOW_VALUE = frozenset({"country", "timezone", "control_characters", "rfc3339"})


def _with_value(problem: ErrorDetails) -> str:
    value = problem.get("input")
    if problem["type"] in _SHOW_VALUE and isinstance(value, str):
        return f"{problem['msg']} (got {value[:60]!r})"
    return problem["msg"]


def _describe(error: ValidationError) -> tuple[str, str]:
    """The dead-letter reason (a bounded metric label) and a message that says what to fix."""
    problems = error.errors(include_url=False)
    if any(p["type"] == "json_invalid" for p in problems):
        return "invalid_json", f"not valid JSON: {problems[0]['msg']}"
    if any(p["loc"] == ("type",) for p in problems):
        return "unsupported_type", "type: " + next(
            p["msg"] for p in problems if p["loc"] == ("type",)
        )
    parts = [
        f"{'.'.join(str(x) for x in p['loc']) or 'event'}: {_with_value(p)}"
        for p in problems[:_MAX_PROBLEMS]
    ]
    more = len(problems) - _MAX_PROBLEMS
    return "invalid_event", "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def parse(model: type[ModelT], raw: bytes | None) -> ModelT:
    """A structured-mode event: the whole CloudEvent is the JSON value."""
    if not raw:
        raise Rejected("empty", "the message has no value")
    try:
        return model.model_validate_json(raw)
    except ValidationError as error:
        raise Rejected(*_describe(error)) from None


def parse_record(model: type[ModelT], record: Record) -> ModelT:
    """An input event in either mode of the CloudEvents Kafka binding: binary (attributes in
    `ce_*` headers, the data as the value) when a `ce_specversion` header is present and the
    content type is not a structured CloudEvent's; structured otherwise, whatever its
    `content-type` header says (the SDKs write `application/json` in structured mode)."""
    if record.headers:
        attributes = _binary_attributes(record.headers)
        if attributes is not None:
            return parse(model, _as_structured(attributes, record.value))
    return parse(model, record.value)


def _binary_attributes(headers: Sequence[tuple[str, bytes | None]]) -> dict[str, str] | None:
    attributes: dict[str, str] = {}
    content_type = ""
    for name, raw in headers:
        lowered = name.lower()
        if lowered == "content-type" and raw is not None:
            content_type = raw.decode(errors="replace")
        elif lowered.startswith(BINARY_PREFIX) and raw is not None:
            try:
                attributes[lowered[len(BINARY_PREFIX) :]] = raw.decode()
            except UnicodeDecodeError:
                raise Rejected(
                    "invalid_event", f"header {name}: a CloudEvents attribute must be UTF-8"
                ) from None
    if "specversion" not in attributes or content_type.startswith(STRUCTURED_CONTENT_TYPES):
        return None
    if content_type:
        attributes["datacontenttype"] = content_type
    return attributes


def _as_structured(attributes: dict[str, str], value: bytes | None) -> bytes:
    """The binary event written as the structured one it stands for, so that both modes are
    validated by one model with the same rules and messages."""
    if not value:
        raise Rejected("empty", "the message has no value (binary mode: the event's data)")
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError as error:
        raise Rejected("invalid_json", f"not valid JSON (binary mode data): {error}") from None
    return orjson.dumps({**attributes, "data": data})


def derived_id(*parts: str) -> str:
    return EVENT_IDS.id("\n".join(parts))


def _pydantic_json(value: object) -> orjson.Fragment:
    """orjson's fallback: a pydantic model (the catalog's targets and calendars) is written by
    pydantic itself, as its JSON Schema describes it."""
    if isinstance(value, CatalogModel):
        return orjson.Fragment(value.cached_json)
    if isinstance(value, BaseModel):
        return orjson.Fragment(value.__pydantic_serializer__.to_json(value))
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def to_json(value: object) -> bytes:
    """JSON as the services publish it: dataclasses natively (orjson), pydantic models by
    pydantic; times in UTC end in `Z`, as pydantic writes them."""
    return orjson.dumps(value, default=_pydantic_json, option=orjson.OPT_UTC_Z)


def encode(
    *,
    topic: str,
    event_id: str,
    source: str,
    event_type: str,
    time: datetime,
    subject: str,
    data: object,
) -> Outgoing:
    """One CloudEvent in structured JSON mode, keyed by the ticket id (its subject); its `time`
    in UTC (orjson writes it: datetime.isoformat() costs more than the rest of the envelope)."""
    value = to_json(
        {
            "specversion": "1.0",
            "id": event_id,
            "source": source,
            "type": event_type,
            "time": time if time.tzinfo is UTC else time.astimezone(UTC),
            "subject": subject,
            "datacontenttype": "application/json",
            "data": data,
        }
    )
    # Positional: this runs for every output, and keywords cost measurably more (bench/README.md).
    return Outgoing(topic, subject.encode(), value, HEADERS)
