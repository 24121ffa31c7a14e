"""Scale-out: two routers in one consumer group on the enriched tickets."""

from __future__ import annotations

from bench.phases.base import PhaseRunner
from bench.results import (
    Row,
)


class ScalingPhase(PhaseRunner):
    async def scaleout(self) -> Row:
        out, n = self.topics("so"), self.cfg.tickets
        row = await self.measure(
            "router x2, one group",
            lambda: [
                self._router("router-a", out, "bench-router-x2"),
                self._router("router-b", out, "bench-router-x2"),
            ],
            [*out.routes, out.sla],
            out.deadletter,
            2 * n,
            n,
        )
        single = self.results.by_name("router alone")
        if single and single.rate and row.rate:
            row.ratio = f"{row.rate / single.rate:.2f}x of 1"
        return row
