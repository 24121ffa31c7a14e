"""Prometheus metrics of both services. Names and labels are part of the contract with
dashboards: add, never rename. Label values are bounded (rule ids, routes, reasons)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

from prometheus_client import Counter, Gauge, Histogram

PREFIX = "ticketroute"
# A batch's time and the part of it spent waiting for the broker: the same buckets, so that
# one can be read against the other.
BATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class BatchHistogram(Histogram):
    """A Histogram that also takes a whole batch's observations in one call.

    `observe` costs about 2 µs (a Python scan of the buckets and two locked increments), and
    the batch loop observes every record's latency. Here each bucket a batch touches is
    incremented once. It uses prometheus_client's own bucket and sum values, so the exposition
    is the same as `observe` per amount; tests/unit/test_metrics.py checks that."""

    def observe_each(self, amounts: Sequence[float]) -> None:
        """`observe(a)` for every amount (numbers, not NaN), in one pass; on a histogram
        without labels, or a labelled one's child (`.labels(...)`), as `observe`."""
        counts: dict[int, int] = {}
        bounds = self._upper_bounds  # ascending, ending with +Inf
        for amount in amounts:
            i = bisect_left(bounds, amount)  # the first bucket with amount <= bound
            counts[i] = counts.get(i, 0) + 1
        for i, count in counts.items():
            self._buckets[i].inc(count)
        self._sum.inc(sum(amounts))


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
