"""The router: tickets.enriched -> policy and SLA -> route topic + sla.ownership. Wiring only."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import orjson
import structlog

from schemas.decision import EnrichedTicketEvent, SubmitterContact
from schemas.events import SLA_ASSIGNED
from services.router.memory import RoutingMemory
from services.router.outputs import Topics, route
from services.runtime import events
from services.runtime.metrics import (
    DUPLICATES_DROPPED,
    PARTNER_TICKETS,
    STALE_DROPPED,
    TICKETS_ROUTED,
)
from services.runtime.pipeline import Clock, Outgoing, Record, utc_now
from services.runtime.service import ServiceSpec
from services.runtime.settings import RouterSettings


class RouterProcessor:
    def __init__(
        self,
        settings: RouterSettings,
        clock: Clock = utc_now,
    ) -> None:
        s = settings
        self._source = s.event_source
        self._topics = Topics(s.topic_redhat, s.topic_partner_prefix, s.topic_tsanet, s.topic_sla)
        self._submitter = SubmitterContact(
            name=s.tsanet_submitter_name,
            email=s.tsanet_submitter_email,
            phone=s.tsanet_submitter_phone,
        )
        self._clock = clock
        self.memory = RoutingMemory(s.duplicate_window, s.revision_memory)
        self._memory_topic = s.topic_router_memory
        self._changes: list[Outgoing] = []
        # Bound once, after logging is configured: the module-level lazy proxy would re-resolve
        # itself on every decision log line.
        self._log = structlog.get_logger().bind()
        self._routed: Counter[tuple[str, str, str | None]] = Counter()
        self._dropped: Counter[str] = Counter()

    def process(self, record: Record) -> Sequence[Outgoing]:
        enriched = events.parse_record(EnrichedTicketEvent, record).data
        ticket, event_id = enriched.ticket, enriched.event.id
        verdict = self.memory.judge(event_id, ticket.ticket_id, ticket.revision)
        if verdict != "new":
            self._dropped[verdict] += 1
            self._log.info(
                f"{verdict}_dropped",
                ticket_id=ticket.ticket_id,
                event_id=event_id,
                revision=ticket.revision,
            )
            return []
        routing = route(enriched, self._topics, self._submitter)
        decision = routing.decision
        vendor = decision.owner.vendor_id if decision.route == "partner" else None
        self._routed[(decision.route, decision.rule, vendor)] += 1
        self._log.info(
            "ticket_routed",
            ticket_id=ticket.ticket_id,
            event_id=event_id,
            revision=ticket.revision,
            rule=decision.rule,
            route=decision.route,
            topic=decision.topic,
            decision_id=decision.decision_id,
            response_due_at=decision.response_due_at,
        )
        now = self._clock()
        outputs = [
            events.encode(
                topic=routing.topic,
                event_id=events.derived_id(event_id, routing.event_type),
                event_type=routing.event_type,
                data=routing.payload,
                source=self._source,
                time=now,
                subject=ticket.ticket_id,
            ),
            events.encode(
                topic=self._topics.sla,
                event_id=events.derived_id(event_id, SLA_ASSIGNED),
                event_type=SLA_ASSIGNED,
                data=routing.sla,
                source=self._source,
                time=now,
                subject=ticket.ticket_id,
            ),
        ]
        # Last: a record that fails above is dead-lettered and must not count as routed.
        self.memory.remember(event_id, ticket.ticket_id, ticket.revision)
        self._changes.append(
            Outgoing(
                self._memory_topic,
                record.key or ticket.ticket_id.encode(),
                orjson.dumps({"event_id": event_id, "revision": ticket.revision}),
                {},
                record.partition,
            )
        )
        return outputs

    def changes(self) -> Sequence[Outgoing]:
        """What this batch taught the memory, for its changelog topic."""
        return self._changes

    def restore(self, partition: int, records: Sequence[Record]) -> None:
        """Remember what the changelog says was routed (a ticket's records in routing order)."""
        for record in records:
            if record.key and record.value:
                routed = orjson.loads(record.value)
                self.memory.remember(routed["event_id"], record.key.decode(), routed["revision"])
        self.memory.commit()

    def revoke(self, partition: int) -> None:
        """Nothing to drop: a ticket of a partition given up never comes here again unless the
        partition does, and then its changelog is read again."""

    def batch_done(self) -> None:
        self.memory.commit()
        self._changes = []
        for (route_name, rule, vendor), count in self._routed.items():
            TICKETS_ROUTED.labels(route_name, rule).inc(count)
            if vendor:
                PARTNER_TICKETS.labels(vendor).inc(count)
        DUPLICATES_DROPPED.inc(self._dropped["duplicate"])
        STALE_DROPPED.inc(self._dropped["stale"])
        self._routed.clear()
        self._dropped.clear()

    def batch_failed(self) -> None:
        self.memory.rollback()
        self._changes = []
        self._routed.clear()
        self._dropped.clear()


def router_spec(settings: RouterSettings) -> ServiceSpec:
    s = settings
    return ServiceSpec(
        name="router",
        settings=s,
        input_topic=s.topic_enriched,
        group_id=s.router_group_id,
        output_topics=[s.topic_redhat, s.topic_tsanet, s.topic_sla, s.topic_deadletter],
        processor=RouterProcessor(s),
        changelog_topic=s.topic_router_memory,
        metrics_port=s.metrics_port,
    )
