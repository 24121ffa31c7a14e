"""What the bench reads from the services' own /metrics: batch and acknowledgement-wait
histograms, dropped duplicates and stale revisions, and their settings' defaults."""

from __future__ import annotations

from collections.abc import Sequence

from bench import procs
from bench.procs import Child
from services.runtime.settings import ServiceSettings

# A service's time per batch (processing and sending, then waiting for the broker's
# acknowledgements), and the waiting part of it: the difference is the service's own work.
BATCH_HISTOGRAMS = ("ticketroute_batch_seconds", "ticketroute_ack_wait_seconds")


def batch_times(before: dict[str, float], after: dict[str, float]) -> str:
    """Batches and their time between two snapshots of one of those histograms. Percentiles are
    the upper bound of the bucket that holds them."""
    count = after.get("count", 0.0) - before.get("count", 0.0)
    if count <= 0:
        return "no batches"
    mean = (after["sum"] - before.get("sum", 0.0)) / count
    cumulative = sorted(
        (float(le), n - before.get(le, 0.0)) for le, n in after.items() if le[0].isdigit()
    )

    def bound(q: float) -> str:
        within = next((b for b, n in cumulative if n >= q * count), None)
        return f"<= {1000 * within:g} ms" if within is not None else "over the last bucket"

    return f"{count:,.0f} batches, mean {1000 * mean:.1f} ms, p50 {bound(0.5)}, p99 {bound(0.99)}"


# What the router drops on purpose; an SLA message the bench misses may be one of these.
DROPPED = ("ticketroute_stale_revisions_dropped_total", "ticketroute_duplicates_dropped_total")


async def dropped(children: Sequence[Child]) -> list[float]:
    """The services' stale and duplicate drops so far (0 where a service has none)."""
    return [
        sum([await procs.metric(c, name) or 0.0 for c in children if c.port]) for name in DROPPED
    ]


def dropped_note(before: list[float], after: list[float]) -> str | None:
    stale, duplicates = (a - b for a, b in zip(after, before, strict=True))
    if not stale and not duplicates:
        return None
    return (
        f"the router dropped {stale:.0f} as stale (a newer revision of the ticket came first) "
        f"and {duplicates:.0f} as duplicates"
    )


async def ack_wait_share(child: Child) -> str | None:
    """How much of a service's batch time went to waiting for the broker's acknowledgements
    (the process idle), over its whole run."""
    batch, wait = [await procs.histogram(child, name) for name in BATCH_HISTOGRAMS]
    if not batch.get("count") or not wait.get("count"):
        return None
    share = wait["sum"] / batch["sum"] if batch["sum"] else 0.0
    return (
        f"{100 * share:.0f}% of batch time waiting for acknowledgements "
        f"({1000 * wait['sum'] / wait['count']:.1f} of "
        f"{1000 * batch['sum'] / batch['count']:.1f} ms a batch, {batch['count']:,.0f} batches)"
    )


def services_fetch_max_wait_ms() -> int:
    """The services' default (aiokafka's 500 ms before they had a setting for it)."""
    field_info = ServiceSettings.model_fields.get("fetch_max_wait_ms")
    default = field_info.default if field_info is not None else None
    return default if isinstance(default, int) else 500


def mib(kib: int | None) -> float | None:
    return None if kib is None else kib / 1024
