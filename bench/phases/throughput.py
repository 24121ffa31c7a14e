"""Throughput phases: the raw aiokafka baselines, each service alone, both services end to
end, and the repeat rounds."""

from __future__ import annotations

from bench.kafka import delete_topics, preload
from bench.phases.base import PhaseRunner
from bench.results import BASELINE_1TO1, BASELINE_1TO2, Round, Row
from bench.topics import round_suffix, variant


class ThroughputPhases(PhaseRunner):
    """Each raw baseline and each service alone on preloaded input, end to end, and the
    rounds that repeat them."""

    # Round 1 fills the main table; later rounds (`--rounds`) repeat the one-send baselines
    # and the services alone on their own topics and groups, with the suffix `-r<round>`.

    async def baseline_1to1(
        self, record_batches: bool = False, validate: bool = False, rnd: int = 1
    ) -> Row:
        tag = ("b" if record_batches else "") + ("v" if validate else "") + round_suffix(rnd)
        source, out = self.topics("pre").incoming, self.topics(f"base11{tag}")
        return await self.measure(
            BASELINE_1TO1 + variant(record_batches, validate),
            lambda: [
                self.baseline(
                    f"baseline-1to1{tag}", "1to1", source, out, None, record_batches, validate
                )
            ],
            [out.enriched],
            None,
            self.cfg.tickets,
            self.cfg.tickets,
            profile_name="raw" if rnd == 1 else None,
            keep=rnd == 1,
        )

    async def enricher(self, rnd: int = 1) -> Row:
        pre, enr = self.topics("pre"), self.topics(f"enr{round_suffix(rnd)}")
        group = f"bench-enricher{round_suffix(rnd)}"
        row = await self.measure(
            "enricher alone",
            lambda: [
                self.service(
                    f"enricher{round_suffix(rnd)}",
                    "services.enricher",
                    enr,
                    {"TOPIC_INCOMING": pre.incoming, "ENRICHER_GROUP_ID": group},
                )
            ],
            [enr.enriched],
            enr.deadletter,
            self.cfg.tickets,
            self.cfg.tickets,
            profile_name="enricher" if rnd == 1 else None,
            keep=rnd == 1,
        )
        if rnd == 1:
            self.enriched_ready = row.outputs >= self.cfg.tickets
            self._ratios(row, BASELINE_1TO1)
        return row

    async def baseline_1to2(
        self, record_batches: bool = False, validate: bool = False, rnd: int = 1
    ) -> Row:
        tag = ("b" if record_batches else "") + ("v" if validate else "") + round_suffix(rnd)
        source, out = self.topics("enr").enriched, self.topics(f"base12{tag}")
        n = self.cfg.tickets
        return await self.measure(
            BASELINE_1TO2 + variant(record_batches, validate),
            lambda: [
                self.baseline(
                    f"baseline-1to2{tag}", "1to2", source, out, None, record_batches, validate
                )
            ],
            [out.name("queue.redhat"), out.sla],
            None,
            2 * n,
            n,
            profile_name="raw" if rnd == 1 else None,
            keep=rnd == 1,
        )

    async def router(self, rnd: int = 1) -> Row:
        out = self.topics(f"rtr{round_suffix(rnd)}")
        row = await self.measure_routers(
            "router alone",
            out,
            [f"router{round_suffix(rnd)}"],
            f"bench-router{round_suffix(rnd)}",
            profile_name="router" if rnd == 1 else None,
            keep=rnd == 1,
        )
        if rnd == 1:
            self._ratios(row, BASELINE_1TO2)
        return row

    async def repeat(self, rnd: int) -> Round:
        """One more round, in the same alternation as the first: raw, enricher, raw, router.
        Its output topics are deleted afterwards (Tansu keeps every topic in memory)."""
        self.log(f"round {rnd} of {self.cfg.rounds}")
        result = Round(
            raw_1to1=await self.baseline_1to1(rnd=rnd),
            enricher=await self.enricher(rnd=rnd),
            raw_1to2=await self.baseline_1to2(rnd=rnd),
            router=await self.router(rnd=rnd),
        )
        await delete_topics(self.bootstrap, self._round_topics(rnd))
        return result

    async def end_to_end(self) -> Row:
        t, n = self.topics("e2e"), self.cfg.tickets
        await preload(self.bootstrap, t.incoming, self.events)
        extra = {"ENRICHER_GROUP_ID": "bench-e2e-enricher", "ROUTER_GROUP_ID": "bench-e2e-router"}
        return await self.measure(
            "end to end (both services)",
            lambda: [
                self.service("e2e-enricher", "services.enricher", t, extra),
                self.service("e2e-router", "services.router", t, extra),
            ],
            [t.sla],
            t.deadletter,
            n,
            n,
        )

    def _round_topics(self, rnd: int) -> list[str]:
        names = [
            f"base11{round_suffix(rnd)}",
            f"enr{round_suffix(rnd)}",
            f"base12{round_suffix(rnd)}",
        ]
        return [t for n in [*names, f"rtr{round_suffix(rnd)}"] for t in self.topics(n).all()]
