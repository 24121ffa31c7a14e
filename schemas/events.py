"""The CloudEvents 1.0 envelope (structured JSON mode) and the event types of every topic."""

from __future__ import annotations

from typing import Annotated, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.ticket import Ticket, Timestamp

CONTENT_TYPE = "application/cloudevents+json"

TICKET_CREATED = "support.ticket.created"
TICKET_UPDATED = "support.ticket.updated"
TICKET_ENRICHED = "support.ticket.enriched"
TICKET_ROUTED = "support.ticket.routed"
COLLABORATION_REQUESTED = "support.collaboration.requested"
SLA_ASSIGNED = "support.sla.assigned"

TicketEventType = Literal["support.ticket.created", "support.ticket.updated"]

DataT = TypeVar("DataT")


class CloudEvent(BaseModel, Generic[DataT]):
    """One event on any topic: the CloudEvents 1.0 envelope around `data` (README, "Topics and
    events")."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    specversion: Literal["1.0"]
    id: Annotated[str, Field(min_length=1, max_length=200)]
    source: Annotated[str, Field(min_length=1, max_length=500)]
    type: str
    time: Timestamp
    subject: str | None = None
    datacontenttype: Literal["application/json"] = "application/json"
    data: DataT


class TicketEvent(CloudEvent[Ticket]):
    """What the ticketing system publishes on `tickets.incoming`."""

    type: TicketEventType
    subject: Annotated[
        str | None,
        Field(
            description="The ticket_id, when present: the services refuse an event whose "
            "subject is not its data.ticket_id, a comparison JSON Schema cannot express."
        ),
    ] = None

    @model_validator(mode="after")
    def _subject_is_ticket(self) -> TicketEvent:
        if self.subject is not None and self.subject != self.data.ticket_id:
            raise ValueError(
                f"subject {self.subject!r} is not the ticket_id {self.data.ticket_id!r}"
            )
        return self
