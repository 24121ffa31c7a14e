"""Prometheus metrics of both services. Names and labels are part of the contract with
dashboards: add, never rename. Label values are bounded (rule ids, routes, reasons)."""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from itertools import accumulate

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.utils import floatToGoString

PREFIX = "ticketroute"
# How prometheus_client writes a bucket's bound (`10.0`, `+Inf`), so ours read the same.
_bound_label: Callable[[float], str] = floatToGoString
# A batch's time and the part of it spent waiting for the broker: the same buckets, so that
# one can be read against the other.
BATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class BatchHistogram:
    """A Prometheus histogram that takes a whole batch's observations in one call: each bucket
    a batch touches is incremented once, where `Histogram.observe` per record scans the buckets
    and takes two locks per record. Exposed through prometheus_client's public collector API,
    with the same samples `Histogram` exposes (tests/unit/test_metrics.py compares them)."""

    def __init__(
        self,
        name: str,
        documentation: str,
        buckets: Sequence[float],
        registry: CollectorRegistry | None = REGISTRY,
    ) -> None:
        self._name = name
        self._documentation = documentation
        self._bounds = (*sorted(float(b) for b in buckets), math.inf)
        self._counts = [0] * len(self._bounds)
        self._sum = 0.0
        if registry is not None:
            registry.register(self)

    def observe_each(self, amounts: Sequence[float]) -> None:
        """`observe(a)` for every amount (numbers, not NaN), in one pass."""
        counts = self._counts
        bounds = self._bounds
        for amount in amounts:
            counts[bisect_left(bounds, amount)] += 1  # the first bucket with amount <= bound
        self._sum += sum(amounts)

    def observe(self, amount: float) -> None:
        self.observe_each((amount,))

    def collect(self) -> Iterator[HistogramMetricFamily]:
        cumulative = list(accumulate(self._counts))
        yield HistogramMetricFamily(
            self._name,
            self._documentation,
            buckets=[
                (_bound_label(bound), count)
                for bound, count in zip(self._bounds, cumulative, strict=True)
            ],
            sum_value=self._sum,
        )


MESSAGES_CONSUMED = Counter(
    f"{PREFIX}_messages_consumed", "Input messages consumed, by topic.", ["topic"]
)
TICKETS_ENRICHED = Counter(f"{PREFIX}_tickets_enriched", "Tickets published by the enricher.", [])
COMPONENTS_ENRICHED = Counter(
    f"{PREFIX}_components_enriched",
    "Ticket components looked up in the catalog, by certification status.",
    ["certification"],
)
TICKETS_ROUTED = Counter(
    f"{PREFIX}_tickets_routed", "Tickets routed, by route and rule id.", ["route", "rule"]
)
PARTNER_TICKETS = Counter(
    f"{PREFIX}_partner_tickets", "Tickets routed to a partner topic, by vendor.", ["vendor"]
)
DEADLETTERED = Counter(
    f"{PREFIX}_deadlettered", "Messages sent to the dead-letter topic, by reason.", ["reason"]
)
DUPLICATES_DROPPED = Counter(
    f"{PREFIX}_duplicates_dropped", "Events not routed again because their id was seen.", []
)
STALE_DROPPED = Counter(
    f"{PREFIX}_stale_revisions_dropped",
    "Updates not routed because a higher revision of the ticket was already routed.",
    [],
)
BATCH_SECONDS = Histogram(
    f"{PREFIX}_batch_seconds",
    "Time to handle one batch: process, publish, wait for the broker's acknowledgements.",
    buckets=BATCH_BUCKETS,
)
ACK_WAIT_SECONDS = Histogram(
    f"{PREFIX}_ack_wait_seconds",
    "The part of a batch's time spent waiting, after its last output was sent, until the "
    "broker acknowledged them all; the rest of ticketroute_batch_seconds is the service's work.",
    buckets=BATCH_BUCKETS,
)
LATENCY_SECONDS = BatchHistogram(
    f"{PREFIX}_processing_latency_seconds",
    "From an input message's broker timestamp to its outputs being acknowledged.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
IN_FLIGHT = Gauge(
    f"{PREFIX}_messages_in_flight", "Messages consumed whose outputs are not yet acknowledged."
)
PUBLISH_FAILURES = Counter(
    f"{PREFIX}_publish_failures",
    "Batches whose outputs the broker did not acknowledge; the batch is retried.",
    [],
)
READY = Gauge(f"{PREFIX}_ready", "1 while connected and consuming, 0 otherwise.")
CONSUMER_ERRORS = Counter(
    f"{PREFIX}_consumer_errors",
    "Errors the consumer reported while fetching or decoding input records, by error class.",
    ["error"],
)
PARTITIONS_STALLED = Gauge(
    f"{PREFIX}_partitions_stalled",
    "Assigned input partitions that have records to read but whose position has not moved "
    "for STALL_TIMEOUT_SECONDS.",
)
PARTITION_STALLS = Counter(
    f"{PREFIX}_partition_stalls", "Times an input partition was found stalled.", []
)
CATALOG_INFO = Gauge(
    f"{PREFIX}_catalog_info",
    "1 for the version of the certification catalog the enricher is using; no other is 1.",
    ["version"],
)
CATALOG_RELOADS = Counter(
    f"{PREFIX}_catalog_reloads",
    "New catalogs seen at CATALOG_PATH while running: applied, or refused (the old one serves).",
    ["result"],
)
STATE_RESTORE_SECONDS = Histogram(
    f"{PREFIX}_state_restore_seconds",
    "Time to restore the state of newly assigned partitions from the changelog topic.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
STATE_RESTORED_RECORDS = Counter(
    f"{PREFIX}_state_restored_records", "Changelog records read while restoring state.", []
)
SLA_EVENTS = Counter(
    f"{PREFIX}_sla_events", "SLA lifecycle events published by the tracker, by type.", ["type"]
)
SLA_BREACHES = Counter(
    f"{PREFIX}_sla_breaches",
    "SLA clocks breached (no response by the due time), by party and vendor (empty: Red Hat).",
    ["party", "vendor"],
)
SLA_AT_RISK = Counter(
    f"{PREFIX}_sla_at_risk",
    "SLA clocks found at risk (AT_RISK_FRACTION of the target gone), by party and vendor.",
    ["party", "vendor"],
)
SLA_RESPONSES_IGNORED = Counter(
    f"{PREFIX}_sla_responses_ignored",
    "Valid responses that answered no open clock, by reason.",
    ["reason"],
)
SLA_TIMER_LAG = Histogram(
    f"{PREFIX}_sla_timer_lag_seconds",
    "How late an at-risk or breach event was published after its moment.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
