"""What the services produce: the enriched ticket, the decision with its trace, the routed
ticket, the TSANet collaboration request and the SLA assignment (README, "Topics and
events")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from typing import Annotated, Literal

from pydantic import Field

from schemas.catalog import VENDOR_ID_PATTERN, BusinessHours, Clock, ShippedBy, SlaTarget
from schemas.events import CloudEvent, TicketEventType
from schemas.ticket import Country, PartnerTicket, Ticket, Timestamp, TimeZoneName

Route = Literal["redhat", "partner", "tsanet"]
Certification = Literal["certified", "uncertified", "unknown"]
Party = Literal["redhat", "vendor"]
Priority = Literal["HIGH", "MEDIUM", "LOW"]
RuleId = Literal[
    "no-component",
    "unknown-component",
    "redhat-component",
    "uncertified-replace",
    "uncertified-collaborate",
    "uncertified-no-collaboration",
    "partner-shipped",
    "redhat-shipped-collaborate",
    "redhat-shipped-engineering",
    "redhat-shipped",
]
Action = Literal[
    "triage",
    "request_component_replacement",
    "collaboration_unavailable",
    "engage_partner_engineering",
]


# --- the enriched ticket (tickets.enriched), everything the router needs -------------------

# Plain dataclasses, like the decision below (and for the same reasons): the enricher builds
# one per ticket and orjson writes it; the router reads it through pydantic, which validates
# each field (strictly, as its event's envelope) and builds these dataclasses. The catalog
# facts of a component are remembered by the enricher and shared between tickets, so they
# are frozen; the rest is built per ticket and is not.


# Vendor ids become topic names: the router takes none that the catalog could not hold.
VendorId = Annotated[str, Field(pattern=VENDOR_ID_PATTERN)]


@dataclass(kw_only=True)
class SourceEvent:
    """The input event an enriched ticket came from; its id is the duplicate key."""

    id: str
    type: TicketEventType
    time: Timestamp
    source: str


@dataclass(frozen=True, kw_only=True)
class VendorFacts:
    id: VendorId
    name: str
    tsanet_member: bool
    tsanet_company_id: str | None
    engineering_relationship: bool
    target: SlaTarget
    """The vendor's own response target for this ticket's severity."""


@dataclass(frozen=True, kw_only=True)
class CatalogMatch:
    id: str
    name: str
    kind: str
    vendor_id: VendorId
    shipped_by: ShippedBy
    certified: bool
    """Certified for the ticket's product version."""
    vendor: VendorFacts | None
    """None for Red Hat's own components."""


@dataclass(kw_only=True)
class EnrichedComponent:
    ref: str
    suspected: bool
    removable: bool | None
    catalog: CatalogMatch | None
    """None when the catalog does not know the ref."""


@dataclass(kw_only=True)
class EnrichedTicket:
    event: SourceEvent
    ticket: Ticket
    catalog_version: str
    business_hours: BusinessHours
    """The customer's calendar, in the customer's time zone."""
    redhat_target: SlaTarget
    """Red Hat's target for the customer's support level and the ticket's severity."""
    redhat_basis: str
    """E.g. 'Red Hat Premium, severity 1: 1 hour, 24x7'."""
    components: list[EnrichedComponent]


# --- the decision ---------------------------------------------------------------------------

# The decision and the outputs are built by the router, once per ticket, and only ever
# serialised: plain dataclasses, which orjson writes natively at a fraction of a validated
# model's cost to build and serialise. pydantic still validates them when a consumer parses an
# output event, and generates their JSON Schemas; a test checks orjson's bytes equal
# pydantic's. Not frozen: a frozen dataclass sets each field through object.__setattr__, which
# makes building one markedly dearer, and nothing shares these. Trace steps are shared between
# remembered rule-table outcomes, so they are frozen.


@dataclass(frozen=True, kw_only=True)
class TraceStep:
    rule: RuleId
    matched: bool
    reason: str


@dataclass(kw_only=True)
class PartyRef:
    """Red Hat, or a vendor by its catalog id: who owns a first response, or whose SLA clock
    it is (schemas/tracker.py)."""

    party: Party
    vendor_id: str | None


# Who owns the first response. Its own class so that the published schemas keep calling it
# `Owner`; no docstring, which they would publish as a description it has never had.
@dataclass(kw_only=True)
class Owner(PartyRef):
    pass


@dataclass(kw_only=True)
class DecisionComponent:
    ref: str
    id: str | None = None
    vendor_id: str | None = None
    shipped_by: ShippedBy | None = None
    certification: Certification


@dataclass(kw_only=True)
class Collaborator:
    vendor_id: str
    clock: Clock
    respond_by: datetime


@dataclass(kw_only=True)
class Decision:
    decision_id: str
    ticket_id: str
    revision: int
    route: Route
    topic: str
    rule: RuleId
    owner: Owner
    component: DecisionComponent | None
    actions: tuple[Action, ...]
    catalog_version: str
    clock: Clock
    clock_start: datetime
    response_due_at: datetime
    collaborators: tuple[Collaborator, ...]
    trace: tuple[TraceStep, ...]


# --- the outputs ----------------------------------------------------------------------------


@dataclass(kw_only=True)
class RoutedTicket:
    """`queue.redhat`: the whole ticket and its decision."""

    ticket: Ticket
    decision: Decision


@dataclass(kw_only=True)
class PartnerRoutedTicket:
    """`queue.partner.<vendor_id>`: the ticket without what a partner must not learn."""

    ticket: PartnerTicket
    decision: Decision


@dataclass(kw_only=True)
class CustomerRef:
    account_id: str
    name: str


@dataclass(kw_only=True)
class SubmitterContact:
    name: str
    email: str
    phone: str | None = None


@dataclass(kw_only=True)
class CollaborationRequest:
    """Mirrors a TSANet Connect collaboration request."""

    submitter_case_number: str
    receiver_vendor_id: str
    receiver_company_id: str | None
    priority: Priority
    problem_summary: str
    problem_description: str
    respond_by: datetime
    customer: CustomerRef
    submitter_contact: SubmitterContact


@dataclass(kw_only=True)
class CollaborationRequested:
    """`collab.tsanet`."""

    collaboration: CollaborationRequest
    decision: Decision


@dataclass(kw_only=True)
class CustomerCalendar:
    """The customer's business calendar: open from `start` to `end` on weekdays in `timezone`,
    except `country`'s public holidays. With it a consumer counts business time as the router
    does."""

    timezone: TimeZoneName
    country: Country
    start: time
    end: time


@dataclass(kw_only=True)
class SlaAssigned:
    """`sla.ownership`: who owns the first response, and by when."""

    ticket_id: str
    revision: int
    decision_id: str
    severity: int
    owner: Owner
    clock: Clock
    clock_start: datetime
    response_due_at: datetime
    basis: str
    collaborators: tuple[Collaborator, ...]
    calendar: CustomerCalendar


class EnrichedTicketEvent(CloudEvent[EnrichedTicket]):
    """What the enricher publishes on `tickets.enriched`."""


class RoutedTicketEvent(CloudEvent[RoutedTicket]):
    """`queue.redhat`, type support.ticket.routed."""


class PartnerRoutedTicketEvent(CloudEvent[PartnerRoutedTicket]):
    """`queue.partner.<vendor_id>`, type support.ticket.routed."""


class CollaborationRequestedEvent(CloudEvent[CollaborationRequested]):
    """`collab.tsanet`, type support.collaboration.requested."""


class SlaAssignedEvent(CloudEvent[SlaAssigned]):
    """`sla.ownership`, type support.sla.assigned."""
