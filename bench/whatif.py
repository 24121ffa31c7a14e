"""`ticketroute whatif`'s throughput: generated ticket events replayed under the sample catalog
and a changed one, on one core, without any broker.

    .venv/bin/python -m bench.whatif [--tickets 100000]

The events are generated first (bench/generate.py; not timed), then handed to whatif's own
comparison as the bytes a topic would hold. Prints tickets a second, wall clock and CPU.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from bench.generate import TicketGenerator
from schemas.catalog import Catalog
from services.enricher.catalog import load_catalog
from services.enricher.enrich import CatalogIndex
from services.runtime.settings import SAMPLE_CATALOG, RouterSettings
from ticketroute.whatif import compare, router_terms


def changed_catalog(catalog: Catalog) -> Catalog:
    """A month's worth of certification news: a partner certifies its driver for 17.1, a vendor
    joins TSANet, a component is withdrawn."""
    data: dict[str, Any] = catalog.model_dump(mode="json")
    data["version"] = catalog.version + "-next"
    for component in data["components"]:
        if component["id"] == "infinidat-infinibox-cinder":
            component["certified_for"] = ["17.1"]
    for vendor in data["vendors"]:
        if vendor["id"] == "huawei":
            vendor["tsanet_member"] = True
    data["components"] = [c for c in data["components"] if c["id"] != "dell-vnx-cinder"]
    return Catalog.model_validate(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tickets", type=int, default=100_000)
    args = parser.parse_args()
    values = [e.value for e in TicketGenerator(seed=7).events(args.tickets)]
    current = load_catalog(SAMPLE_CATALOG)
    new = changed_catalog(current)
    terms = router_terms(RouterSettings())
    wall, cpu = time.perf_counter(), time.process_time()
    result = compare(CatalogIndex.build(current), CatalogIndex.build(new), values, terms)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(
        f"whatif: {result.tickets:,} ticket events ({len(result.changed):,} changed, "
        f"{result.skipped} skipped) in {wall:.1f} s wall, {cpu:.1f} s CPU: "
        f"{result.tickets / wall:,.0f} tickets/s ({result.tickets / cpu:,.0f} per CPU second; "
        "the two differ when other work shares the core)"
    )


if __name__ == "__main__":
    main()
