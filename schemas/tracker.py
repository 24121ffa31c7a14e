"""What the tracker reads and writes besides the SLA assignment: first responses on the three
response topic families, and the lifecycle of every SLA clock on `sla.events` (README, "SLA
lifecycle")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Final, Generic, Literal, TypeVar

from pydantic import ConfigDict, Field, model_validator

from schemas.catalog import Clock
from schemas.decision import PartyRef, VendorId
from schemas.events import CloudEvent
from schemas.ticket import TICKET_ID_PATTERN, Contact, Timestamp

RESPONSE_RECORDED: Final = "support.response.recorded"
SLA_AT_RISK: Final = "support.sla.at_risk"
SLA_BREACHED: Final = "support.sla.breached"
SLA_COMPLETED: Final = "support.sla.completed"
SLA_CANCELLED: Final = "support.sla.cancelled"

SlaEventType = Literal[
    "support.sla.at_risk", "support.sla.breached", "support.sla.completed", "support.sla.cancelled"
]
Role = Literal["owner", "collaborator"]
ResponseFamily = Literal["redhat", "partner", "tsanet"]
"""Which response topic a response came from: `responses.redhat`, a partner's own
`responses.partner.<vendor_id>`, or `responses.tsanet`."""
FirstResponseKind = Literal["first_response"]
TsanetResponseKind = Literal["accepted", "rejected", "information_requested"]
"""TSANet stops its clock at the receiving vendor's first answer, whichever of these it is."""
ResponseKind = Literal["first_response", "accepted", "rejected", "information_requested"]
KINDS_BY_FAMILY: dict[ResponseFamily, frozenset[ResponseKind]] = {
    "redhat": frozenset({"first_response"}),
    "partner": frozenset({"first_response"}),
    "tsanet": frozenset({"accepted", "rejected", "information_requested"}),
}

# ISO 8601 in hours, minutes and seconds only (PT17H, PT5M12S, PT0.5S, PT0S): no days, since
# a business day is not 24 hours, and at least one part. Without look-ahead, which the schema
# engine lacks: one alternative per leading part.
_SECONDS = r"[0-9]+(\.[0-9]+)?S"
_LEADING_HOURS = rf"[0-9]+H([0-9]+M)?({_SECONDS})?"
_LEADING_MINUTES = rf"[0-9]+M({_SECONDS})?"
HMS_DURATION_PATTERN = f"^PT({_LEADING_HOURS}|{_LEADING_MINUTES}|{_SECONDS})$"
HmsDuration = Annotated[str, Field(pattern=HMS_DURATION_PATTERN)]


# --- responses (input) -----------------------------------------------------------------------

# Validated input, strict as the ticket (schemas/ticket.py): "2" is not a revision. Unknown
# fields are ignored, so the ticketing system and the connectors may add fields.
_STRICT = ConfigDict(strict=True, extra="ignore")


@dataclass(kw_only=True)
class ResponseRecorded:
    """A first response to a ticket, whichever topic it came from. `revision` absent means the
    latest revision the tracker knows; `vendor_id` is the vendor that answered (none for Red
    Hat)."""

    __pydantic_config__ = _STRICT

    ticket_id: Annotated[str, Field(pattern=TICKET_ID_PATTERN)]
    revision: Annotated[int, Field(ge=1, le=2**63 - 1)] | None = None
    responded_at: Timestamp
    kind: ResponseKind
    vendor_id: VendorId | None = None
    responder: Contact | None = None


# One data type per topic family, so that each channel's published schema says exactly which
# kinds belong on it, and a kind from another family is refused when the event is parsed.


@dataclass(kw_only=True)
class RedHatResponse(ResponseRecorded):
    """`responses.redhat`: a Red Hat engineer's first response. A `vendor_id` is not read."""

    __pydantic_config__ = _STRICT

    kind: FirstResponseKind


@dataclass(kw_only=True)
class PartnerResponse(ResponseRecorded):
    """`responses.partner.<vendor_id>`: the partner's first response; `vendor_id`, when given,
    must be the topic's vendor."""

    __pydantic_config__ = _STRICT

    kind: FirstResponseKind


@dataclass(kw_only=True)
class TsanetResponse(ResponseRecorded):
    """`responses.tsanet`: the receiving vendor's first answer to a collaboration request."""

    __pydantic_config__ = _STRICT

    kind: TsanetResponseKind
    vendor_id: VendorId


ResponseT = TypeVar("ResponseT", bound=ResponseRecorded)


class ResponseEvent(CloudEvent[ResponseT], Generic[ResponseT]):
    """A `support.response.recorded` event; its subject, when given, is the ticket id."""

    type: Literal["support.response.recorded"]

    @model_validator(mode="after")
    def _subject_is_ticket(self) -> ResponseEvent[ResponseT]:
        if self.subject is not None and self.subject != self.data.ticket_id:
            raise ValueError(
                f"subject {self.subject!r} is not the ticket_id {self.data.ticket_id!r}"
            )
        return self


class RedHatResponseEvent(ResponseEvent[RedHatResponse]):
    """`responses.redhat`, written by the ticketing system."""


class PartnerResponseEvent(ResponseEvent[PartnerResponse]):
    """`responses.partner.<vendor_id>`, written by that partner only."""


class TsanetResponseEvent(ResponseEvent[TsanetResponse]):
    """`responses.tsanet`, written by the TSANet connector."""


RESPONSE_EVENTS: dict[ResponseFamily, type[ResponseEvent[ResponseRecorded]]] = {
    "redhat": RedHatResponseEvent,  # type: ignore[dict-item]
    "partner": PartnerResponseEvent,  # type: ignore[dict-item]
    "tsanet": TsanetResponseEvent,  # type: ignore[dict-item]
}


# --- the SLA lifecycle (output on sla.events) ------------------------------------------------

# Built by the tracker and only serialised, like the decision (schemas/decision.py): plain
# dataclasses that orjson writes; pydantic validates them when a consumer parses the event.
# Every time is in UTC and written with `Z`.


@dataclass(kw_only=True)
class SlaParty(PartyRef):
    """Whose clock it is: Red Hat, or a vendor by its catalog id."""


@dataclass(kw_only=True)
class SlaClockEvent:
    """What every lifecycle event says of its clock; alone, the data of `at_risk` and
    `breached`. `occurred_at` is the moment the event is about: the at-risk moment, the due
    time, the response, or the superseding assignment's time."""

    ticket_id: str
    revision: int
    decision_id: str
    party: SlaParty
    role: Role
    clock: Clock
    clock_start: datetime
    response_due_at: datetime
    at_risk_at: datetime
    occurred_at: datetime


@dataclass(kw_only=True)
class SlaCompleted(SlaClockEvent):
    """A response was recorded. `met` when it came no later than the due time; `elapsed` is the
    clock's time from its start to the response (business time under a business clock)."""

    responded_at: datetime
    met: bool
    elapsed: HmsDuration


@dataclass(kw_only=True)
class SlaCancelled(SlaClockEvent):
    """A newer revision of the ticket superseded the clock."""

    reason: Literal["superseded"]
    superseded_by: int


class SlaAtRiskEvent(CloudEvent[SlaClockEvent]):
    """`sla.events`, type support.sla.at_risk: most of the target has gone, no response yet."""

    type: Literal["support.sla.at_risk"]


class SlaBreachedEvent(CloudEvent[SlaClockEvent]):
    """`sla.events`, type support.sla.breached: the due time passed with no response."""

    type: Literal["support.sla.breached"]


class SlaCompletedEvent(CloudEvent[SlaCompleted]):
    """`sla.events`, type support.sla.completed: a response stopped the clock."""

    type: Literal["support.sla.completed"]


class SlaCancelledEvent(CloudEvent[SlaCancelled]):
    """`sla.events`, type support.sla.cancelled: a newer revision superseded the clock."""

    type: Literal["support.sla.cancelled"]
