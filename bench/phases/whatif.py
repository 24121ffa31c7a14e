"""Settings experiments on unchanged service code (`--phases whatif`, not in the default
run)."""

from __future__ import annotations

from bench.phases.latency import LatencyPhases
from bench.results import BASELINE_1TO2


class WhatIfPhase(LatencyPhases):
    async def whatif(self) -> None:
        """Settings experiments on unchanged service code (not part of the default run)."""
        row = await self.measure_routers(
            "what if: router alone, LOG_LEVEL=WARNING",
            self.topics("wi"),
            ["wi-router"],
            "bench-wi-router",
            {"LOG_LEVEL": "WARNING"},
        )
        self._ratios(row, BASELINE_1TO2)
        t = self.topics("wilat")
        extra = {
            "ENRICHER_GROUP_ID": "bench-wilat-enricher",
            "ROUTER_GROUP_ID": "bench-wilat-router",
            "FETCH_MAX_WAIT_MS": "10",
            "BATCH_TIMEOUT_MS": "10",
        }
        steady = self.steady_events[: int(self.cfg.rate * self.cfg.steady_seconds)]
        await self._latency_run(
            "what if: services, FETCH_MAX_WAIT_MS=10, BATCH_TIMEOUT_MS=10",
            t,
            lambda: [
                self.service("wilat-enricher", "services.enricher", t, extra),
                self.service("wilat-router", "services.router", t, extra),
            ],
            steady,
        )
