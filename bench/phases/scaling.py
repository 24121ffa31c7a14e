"""Scale-out: two routers in one consumer group on the enriched tickets."""

from __future__ import annotations

from bench.phases.base import PhaseRunner
from bench.results import Row


class ScalingPhase(PhaseRunner):
    async def scaleout(self) -> Row:
        row = await self.measure_routers(
            "router x2, one group", self.topics("so"), ["router-a", "router-b"], "bench-router-x2"
        )
        single = self.results.by_name("router alone")
        if single and single.rate and row.rate:
            row.ratio = f"{row.rate / single.rate:.2f}x of 1"
        return row
