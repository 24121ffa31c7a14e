"""Pure: an enriched ticket in, everything the router publishes out: the decision, the message
for the route topic (with the partner's minimised view) and the SLA assignment. No I/O; due
times come from the sla module, the clock start from the event itself."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from schemas.decision import (
    CollaborationRequest,
    CollaborationRequested,
    Collaborator,
    CustomerCalendar,
    CustomerRef,
    Decision,
    DecisionComponent,
    EnrichedComponent,
    EnrichedTicket,
    Owner,
    PartnerRoutedTicket,
    Priority,
    RoutedTicket,
    SlaAssigned,
    SubmitterContact,
)
from schemas.events import COLLABORATION_REQUESTED, TICKET_CREATED, TICKET_ROUTED
from schemas.ids import Uuid5Namespace
from schemas.ticket import PartnerCustomer, PartnerTicket, Ticket
from schemas.views import view
from services.businesstime import calendar_for, due_at
from services.router.policy import Verdict, decide

# Fixed namespace: decision ids are the same in every process and after every restart.
DECISION_IDS = Uuid5Namespace(uuid.UUID("6f1c2a9e-4b7d-5e3a-9c1f-0d2b8a7e6c54"))
_PRIORITY: dict[int, Priority] = {1: "HIGH", 2: "HIGH", 3: "MEDIUM", 4: "LOW"}


@dataclass(frozen=True, slots=True)
class Topics:
    redhat: str
    partner_prefix: str
    tsanet: str
    sla: str


Payload = RoutedTicket | PartnerRoutedTicket | CollaborationRequested


@dataclass(slots=True)  # not frozen: built per ticket and never shared (schemas/decision.py)
class Routing:
    """Everything one routed ticket produces."""

    decision: Decision
    topic: str
    event_type: str
    payload: Payload
    sla: SlaAssigned


def decision_id(ticket_id: str, revision: int, catalog_version: str) -> str:
    """The same ticket revision and catalog version always give the same id."""
    return DECISION_IDS.id(f"{ticket_id}\n{revision}\n{catalog_version}")


def clock_start(enriched: EnrichedTicket) -> datetime:
    """A new ticket's clock starts when it was opened; an update's when it was made."""
    if enriched.event.type == TICKET_CREATED:
        return enriched.ticket.opened_at.astimezone(UTC)
    return enriched.event.time.astimezone(UTC)


def partner_view(ticket: Ticket) -> PartnerTicket:
    """The ticket without the customer's other vendors and Red Hat contract: only what the
    partner's view declares."""
    return view(PartnerTicket, ticket, customer=view(PartnerCustomer, ticket.customer))


def _decision_component(component: EnrichedComponent | None) -> DecisionComponent | None:
    if component is None:
        return None
    match = component.catalog
    if match is None:
        return DecisionComponent(ref=component.ref, certification="unknown")
    return DecisionComponent(
        ref=component.ref,
        id=match.id,
        vendor_id=match.vendor_id,
        shipped_by=match.shipped_by,
        certification="certified" if match.certified else "uncertified",
    )


def _topic(verdict: Verdict, topics: Topics) -> str:
    if verdict.route == "partner":
        return topics.partner_prefix + str(verdict.vendor_id)
    return topics.tsanet if verdict.route == "tsanet" else topics.redhat


def route(enriched: EnrichedTicket, topics: Topics, submitter: SubmitterContact) -> Routing:
    """Decide, work out the SLA, and build the messages."""
    verdict = decide(enriched)
    ticket = enriched.ticket
    customer = ticket.customer
    calendar = calendar_for(customer.country, customer.timezone, enriched.business_hours)
    start = clock_start(enriched)
    vendor = (
        verdict.component.catalog.vendor
        if verdict.component and verdict.component.catalog
        else None
    )

    if verdict.owner == "vendor":
        assert vendor is not None  # partner-shipped components always have a vendor
        target, basis = vendor.target, f"{vendor.name}, severity {ticket.severity}: "
        basis += vendor.target.describe()
        owner = Owner(party="vendor", vendor_id=vendor.id)
    else:
        target, basis = enriched.redhat_target, enriched.redhat_basis
        owner = Owner(party="redhat", vendor_id=None)

    collaborators: tuple[Collaborator, ...] = ()
    if verdict.route == "tsanet":
        assert vendor is not None  # TSANet rules need a vendor that is a member
        collaborators = (
            Collaborator(
                vendor_id=vendor.id,
                clock=vendor.target.clock,
                respond_by=due_at(start, vendor.target, calendar),
            ),
        )

    topic = _topic(verdict, topics)
    decision = Decision(
        decision_id=decision_id(ticket.ticket_id, ticket.revision, enriched.catalog_version),
        ticket_id=ticket.ticket_id,
        revision=ticket.revision,
        route=verdict.route,
        topic=topic,
        rule=verdict.rule,
        owner=owner,
        component=_decision_component(verdict.component),
        actions=verdict.actions,
        catalog_version=enriched.catalog_version,
        clock=target.clock,
        clock_start=start,
        response_due_at=due_at(start, target, calendar),
        collaborators=collaborators,
        trace=verdict.trace,
    )

    payload: Payload
    event_type = TICKET_ROUTED
    if verdict.route == "partner":
        payload = PartnerRoutedTicket(ticket=partner_view(ticket), decision=decision)
    elif verdict.route == "tsanet":
        assert vendor is not None
        event_type = COLLABORATION_REQUESTED
        payload = CollaborationRequested(
            collaboration=CollaborationRequest(
                submitter_case_number=ticket.ticket_id,
                receiver_vendor_id=vendor.id,
                receiver_company_id=vendor.tsanet_company_id,
                priority=_PRIORITY[ticket.severity],
                problem_summary=ticket.summary,
                problem_description=ticket.description,
                respond_by=collaborators[0].respond_by,
                customer=CustomerRef(account_id=customer.account_id, name=customer.name),
                submitter_contact=submitter,
            ),
            decision=decision,
        )
    else:
        payload = RoutedTicket(ticket=ticket, decision=decision)

    # The assignment restates the decision's SLA, with what a clock's follower needs besides.
    sla = view(
        SlaAssigned,
        decision,
        severity=ticket.severity,
        basis=basis,
        calendar=view(
            CustomerCalendar,
            customer,
            start=enriched.business_hours.start,
            end=enriched.business_hours.end,
        ),
    )
    return Routing(decision, topic, event_type, payload, sla)
