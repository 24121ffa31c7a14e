"""Reload phase (opt-in, `--phases reload`): the enricher alone on the preloaded tickets with a
static catalog, and with its catalog replaced every second the way the kubelet replaces a
mounted ConfigMap (a `..data` symlink swapped to a new folder; docs/catalog-changes.md), in
alternation over `--rounds`. Reports each one's tickets a second and their ratio."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from dataclasses import dataclass

import yaml

from bench import procs
from bench.kafka import create_topics, delete_topics
from bench.phases.base import PhaseRunner
from bench.procs import Child
from bench.results import Row
from bench.topics import round_suffix
from bench.whatif import changed_catalog
from services.enricher.catalog import load_catalog
from services.runtime.settings import SAMPLE_CATALOG
from tests.support.configmap import ConfigMapVolume

SWAP_SECONDS = 1.0
# Poll five times between swaps, so that every swap is seen well within its second (the
# setting accepts down to 0.1 s).
RELOAD_POLL_SECONDS = "0.2"
TARGET_RATIO = 0.9
# How long the idle enrichers of the cost probe are watched (a reload each second).
IDLE_SECONDS = 15.0
APPLIED = 'ticketroute_catalog_reloads_total{result="applied"}'
REFUSED = 'ticketroute_catalog_reloads_total{result="refused"}'
CONSUMED = "ticketroute_messages_consumed_total"


@dataclass(frozen=True)
class ReloadEvidence:
    """Catalogs applied while the enricher was consuming the preloaded tickets: between the
    first and the last sample taken with some, but not all, of them consumed (so a lower
    bound: reloads just before the first or after the last such sample are not counted)."""

    applied: int
    refused: int
    consumed_from: int
    consumed_to: int


@dataclass(frozen=True)
class Sample:
    """The enricher's own counters, read once after a swap."""

    consumed: float
    applied: float
    refused: float


def evidence(samples: list[Sample], tickets: int) -> ReloadEvidence | None:
    """None when fewer than two samples fell inside the work (too short a window to tell)."""
    inside = [s for s in samples if 0 < s.consumed < tickets]
    if len(inside) < 2:
        return None
    first, last = inside[0], inside[-1]
    return ReloadEvidence(
        applied=round(last.applied - first.applied),
        refused=round(last.refused - first.refused),
        consumed_from=round(first.consumed),
        consumed_to=round(last.consumed),
    )


def evidence_note(found: ReloadEvidence | None) -> str:
    if found is None:
        return "RELOADS NOT CONFIRMED: too few metric samples while it consumed (more --tickets)"
    refused = f", {found.refused} REFUSED" if found.refused else ""
    confirmed = "" if found.applied > 0 else "NO RELOAD APPLIED while consuming: "
    return (
        f"{confirmed}{found.applied} catalogs applied (`{APPLIED}`) while it consumed tickets "
        f"{found.consumed_from:,} to {found.consumed_to:,}{refused}"
    )


def variants_in_order(rnd: int) -> tuple[bool, bool]:
    """Which runs first (True: the swapped catalog): the order alternates from round to round,
    so that a drift of the machine's or the broker's speed over the phase (the broker slows as
    its in-memory log grows) falls on both alike."""
    return (False, True) if rnd % 2 else (True, False)


def ratio_summary(pairs: list[tuple[Row, Row]]) -> str:
    """Each round's ratio of swapping to static and their median, against the target; and the
    same from CPU a ticket, which other work on a shared machine disturbs less than the rate."""
    ratios = [swapped.rate / static.rate for static, swapped in pairs if static.rate]
    if not ratios:
        return "Catalog reload every second: no ratio (a run produced nothing)"
    median = statistics.median(ratios)
    verdict = "met" if median >= TARGET_RATIO else "NOT MET"
    summary = (
        "Catalog reload every second, tickets/s with it over tickets/s without, by round: "
        + ", ".join(f"{r:.2f}x" for r in ratios)
        + f"; median **{median:.2f}x** (target {TARGET_RATIO:.2f}x: {verdict})"
    )
    cpu = [
        (static.cpu_us, swapped.cpu_us)
        for static, swapped in pairs
        if static.cpu_us and swapped.cpu_us
    ]
    if cpu:
        summary += (
            ". CPU a ticket, static → swapped: "
            + ", ".join(f"{a:.0f} → {b:.0f} µs" for a, b in cpu)
            + f"; the median ratio {statistics.median(a / b for a, b in cpu):.2f}x is the rate"
            " an enricher bound by its own core would keep"
        )
    return summary


def idle_cost_note(static_cpu: float, swapped_cpu: float, applied: float, seconds: float) -> str:
    """CPU a reload costs, from two idle enrichers watched side by side, one with its catalog
    swapped: CPU time, so what other work on the machine does to wall clock matters little."""
    if applied <= 0:
        return f"Idle enrichers: NO RELOAD APPLIED in {seconds:.0f} s of swaps"
    per_reload = (swapped_cpu - static_cpu) / applied
    return (
        f"Idle enrichers over {seconds:.0f} s: {static_cpu:.2f} s of CPU with a static catalog, "
        f"{swapped_cpu:.2f} s with {applied:.0f} catalogs applied: **{1000 * per_reload:.0f} ms "
        f"of CPU a reload**, so at one a second an enricher bound by its core keeps about "
        f"{1 - per_reload / SWAP_SECONDS:.2f}x of its rate"
    )


class ReloadPhase(PhaseRunner):
    """The enricher alone, its catalog static or swapped every second."""

    async def reload(self) -> None:
        current = load_catalog(SAMPLE_CATALOG)
        # Two valid versions a realistic change apart (bench/whatif.py's month of news), as
        # files an operator would write: the sample itself and the changed one as YAML.
        texts = (
            SAMPLE_CATALOG.read_text(encoding="utf-8"),
            yaml.safe_dump(changed_catalog(current).model_dump(mode="json"), sort_keys=False),
        )
        pairs: list[tuple[Row, Row]] = []
        for rnd in range(1, self.cfg.rounds + 1):
            rows: dict[bool, Row] = {}
            for swapping in variants_in_order(rnd):
                rows[swapping] = await self._enricher_on_configmap(rnd, swapping, texts)
            if rows[False].rate:
                rows[True].ratio = f"{rows[True].rate / rows[False].rate:.2f}x of static"
            pairs.append((rows[False], rows[True]))
        self.results.notes.append(ratio_summary(pairs))
        self.results.notes.append(await self._idle_cost(texts))

    async def _idle_cost(self, texts: tuple[str, str]) -> str:
        """Two enrichers with nothing to consume, one static and one swapped every second, at
        the same time: the difference in their CPU is what the reloads cost."""
        children: dict[bool, Child] = {}
        volumes: dict[bool, ConfigMapVolume] = {}
        topics: list[str] = []
        try:
            for swapping in (False, True):
                tag = "rldidle" + ("swap" if swapping else "static")
                out = self.topics(tag)
                topics += out.all()
                await create_topics(self.bootstrap, out.all())
                volumes[swapping] = ConfigMapVolume(self.cfg.run_dir / f"catalog-{tag}")
                volumes[swapping].publish(texts[0])
                extra = {
                    "ENRICHER_GROUP_ID": f"bench-{tag}",
                    "CATALOG_PATH": str(volumes[swapping].path),
                }
                if swapping:
                    extra["CATALOG_POLL_SECONDS"] = RELOAD_POLL_SECONDS
                children[swapping] = self.service(
                    f"enricher-{tag}", "services.enricher", out, extra
                )
            for child in children.values():
                await procs.wait_ready(child)
            await asyncio.sleep(5)  # past the group join and start-up work
            before = [children[k].cpu_seconds() or 0.0 for k in (False, True)]
            applied_before = await procs.metric(children[True], APPLIED) or 0.0
            started = time.monotonic()
            # Both are scraped every second alike; only one is swapped.
            watches = [
                asyncio.create_task(self._swap_and_sample([children[k]], volumes[k], texts, k, []))
                for k in (False, True)
            ]
            await asyncio.sleep(IDLE_SECONDS)
            for watch in watches:
                watch.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watch
            await asyncio.sleep(2 * float(RELOAD_POLL_SECONDS))  # the last swap's reload
            seconds = time.monotonic() - started
            after = [children[k].cpu_seconds() or 0.0 for k in (False, True)]
            applied = (await procs.metric(children[True], APPLIED) or 0.0) - applied_before
        finally:
            for child in children.values():
                await procs.stop(child)
            await delete_topics(self.bootstrap, topics)
        static_cpu, swapped_cpu = (a - b for a, b in zip(after, before, strict=True))
        note = idle_cost_note(static_cpu, swapped_cpu, applied, seconds)
        self.log(note)
        return note

    async def _enricher_on_configmap(self, rnd: int, swapping: bool, texts: tuple[str, str]) -> Row:
        kind = "swap" if swapping else "static"
        tag = f"rld{kind}{round_suffix(rnd)}"
        out, pre, n = self.topics(tag), self.topics("pre"), self.cfg.tickets
        volume = ConfigMapVolume(self.cfg.run_dir / f"catalog-{tag}")
        volume.publish(texts[0])
        extra = {
            "TOPIC_INCOMING": pre.incoming,
            "ENRICHER_GROUP_ID": f"bench-{tag}",
            "CATALOG_PATH": str(volume.path),
        }
        if swapping:
            extra["CATALOG_POLL_SECONDS"] = RELOAD_POLL_SECONDS
        await create_topics(self.bootstrap, out.all())
        started: list[Child] = []

        def enricher() -> list[Child]:
            started.append(self.service(f"enricher-{tag}", "services.enricher", out, extra))
            return started

        samples: list[Sample] = []
        # The same scrape of /metrics every second in both runs; only the swaps differ.
        watch = asyncio.create_task(
            self._swap_and_sample(started, volume, texts, swapping, samples)
        )
        try:
            label = "catalog swapped every second" if swapping else "static catalog"
            row = await self.measure(
                f"enricher, {label} (round {rnd})",
                enricher,
                [out.enriched],
                out.deadletter,
                n,
                n,
                profile_name=f"reload-{kind}" if rnd == 1 else None,
            )
        finally:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
            await delete_topics(self.bootstrap, out.all())
        if swapping:
            row.notes.insert(0, evidence_note(evidence(samples, n)))
            row.notes.insert(1, f"{volume.updates - 1} swaps in all")
        return row

    async def _swap_and_sample(
        self,
        started: list[Child],
        volume: ConfigMapVolume,
        texts: tuple[str, str],
        swapping: bool,
        samples: list[Sample],
    ) -> None:
        """Every second: swap to the other version (if swapping), then read the counters."""
        begin = time.monotonic()
        tick = 0
        while True:
            tick += 1
            await asyncio.sleep(max(0.0, begin + tick * SWAP_SECONDS - time.monotonic()))
            if swapping:
                volume.publish(texts[tick % 2])
            if started and started[0].port and started[0].alive():
                values = [await procs.metric(started[0], m) for m in (CONSUMED, APPLIED, REFUSED)]
                if None not in values:
                    samples.append(Sample(*(v or 0.0 for v in values)))
