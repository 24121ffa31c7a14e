"""The enricher: tickets.incoming -> catalog look-up -> tickets.enriched. Wiring only."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from schemas.events import TICKET_ENRICHED, TicketEvent
from services.enricher.enrich import CatalogIndex, certification, enrich
from services.enricher.reload import LiveCatalog, partner_topics
from services.runtime import events
from services.runtime.metrics import COMPONENTS_ENRICHED, TICKETS_ENRICHED
from services.runtime.pipeline import Clock, Outgoing, Record, utc_now
from services.runtime.service import ServiceSpec
from services.runtime.settings import EnricherSettings


class EnricherProcessor:
    def __init__(
        self,
        catalog: CatalogIndex | LiveCatalog,
        settings: EnricherSettings,
        clock: Clock = utc_now,
    ) -> None:
        self._live = catalog if isinstance(catalog, LiveCatalog) else LiveCatalog(catalog)
        # The catalog of the batch in hand: taken at its first record, kept to its end, so a
        # reload between two records never enriches one batch with two catalogs.
        self._batch_index: CatalogIndex | None = None
        self._settings = settings
        self._clock = clock
        self._counts: Counter[str] = Counter()
        self._tickets = 0

    def process(self, record: Record) -> Sequence[Outgoing]:
        index = self._batch_index
        if index is None:
            index = self._batch_index = self._live.index
        event = events.parse_record(TicketEvent, record)
        enriched = enrich(event, index)
        for component in enriched.components:
            self._counts[certification(component)] += 1
        self._tickets += 1
        return [
            events.encode(
                topic=self._settings.topic_enriched,
                event_id=events.derived_id(event.id, TICKET_ENRICHED),
                source=self._settings.event_source,
                event_type=TICKET_ENRICHED,
                time=self._clock(),
                subject=event.data.ticket_id,
                data=enriched,
            )
        ]

    def changes(self) -> Sequence[Outgoing]:
        return ()  # stateless: nothing to keep in Kafka

    def batch_done(self) -> None:
        for status, count in self._counts.items():
            COMPONENTS_ENRICHED.labels(status).inc(count)
        TICKETS_ENRICHED.inc(self._tickets)
        self.batch_failed()

    def batch_failed(self) -> None:
        self._counts.clear()
        self._tickets = 0
        self._batch_index = None


def enricher_spec(settings: EnricherSettings, catalog: CatalogIndex | LiveCatalog) -> ServiceSpec:
    s = settings
    live = catalog if isinstance(catalog, LiveCatalog) else LiveCatalog(catalog)
    # Each partner's queue and its response topic (which the tracker follows by pattern).
    prefixes = (s.topic_partner_prefix, s.topic_responses_partner_prefix)
    partners = partner_topics(live.index, prefixes)
    return ServiceSpec(
        name="enricher",
        settings=s,
        input_topic=s.topic_incoming,
        group_id=s.enricher_group_id,
        # The enricher knows the catalog, so it creates the partner topics the router and
        # the tracker will use.
        output_topics=[s.topic_enriched, s.topic_deadletter, *partners],
        processor=EnricherProcessor(live, s),
        metrics_port=s.metrics_port,
    )
