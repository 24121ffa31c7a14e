"""Latency phases: fresh instances at a steady rate, RSS sampled (a soak with `--soak`),
then a burst; the same load through the raw chain."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import orjson
from aiokafka import ConsumerRecord

from bench import procs
from bench.generate import HEADERS, Event
from bench.kafka import OutputCounter, create_topics, producer
from bench.load import LoadSampler, Noise
from bench.phases.base import PhaseRunner
from bench.procs import Child
from bench.results import STALL_SECONDS, Latency, percentile
from bench.servicemetrics import (
    BATCH_HISTOGRAMS,
    batch_times,
    dropped,
    dropped_note,
    mib,
    services_fetch_max_wait_ms,
)
from bench.topics import Topics


def windows(
    pairs: Sequence[tuple[float, float]], width: float, load: LoadSampler | None = None
) -> str:
    """p50 / p99 per window of `width` seconds of (acked at, latency) pairs, with the cores
    the services, the broker and other work used meanwhile."""
    start = min(t for t, _ in pairs)
    buckets: dict[int, list[float]] = {}
    for t, latency in pairs:
        buckets.setdefault(int((t - start) // width), []).append(latency)
    parts = []
    for index, values in sorted(buckets.items()):
        values.sort()
        part = f"{percentile(values, 0.5):.0f} / {percentile(values, 0.99):.0f}"
        if load is not None:
            begin = start + index * width
            part += " ({:.2f} / {:.2f} / {:.2f})".format(*load.cores(begin, begin + width))
        parts.append(part)
    return ", ".join(parts)


class LatencyPhases(PhaseRunner):
    """End-to-end latency at a steady rate (a soak with `--soak`) and in a burst, through the
    services and through a chain of the raw baselines."""

    async def latency(self) -> None:
        """Both services, fresh: warm-up, a steady rate (RSS sampled), then a burst."""
        t = self.topics("lat")
        extra = {"ENRICHER_GROUP_ID": "bench-lat-enricher", "ROUTER_GROUP_ID": "bench-lat-router"}
        await self._latency_run(
            "services",
            t,
            lambda: [
                self.service("lat-enricher", "services.enricher", t, extra),
                self.service("lat-router", "services.router", t, extra),
            ],
            self.steady_events,
            self.burst_events,
        )

    async def raw_latency(self) -> None:
        """The same steady load through a chain of the two raw baselines, with the services'
        fetch_max_wait_ms and with a short one."""
        steady = self.steady_events[: int(self.cfg.rate * self.cfg.steady_seconds)]
        for wait in sorted({services_fetch_max_wait_ms(), 10}, reverse=True):
            t = self.topics(f"rawlat{wait}")
            await create_topics(self.bootstrap, t.all())

            def chain(t: Topics = t, wait: int = wait) -> list[Child]:
                return [
                    self.baseline(f"rawlat{wait}-1to1", "1to1", t.incoming, t, wait),
                    self.baseline(f"rawlat{wait}-1to2", "1to2", t.enriched, t, wait),
                ]

            await self._latency_run(f"raw chain, fetch_max_wait_ms={wait}", t, chain, steady)

    async def _latency_run(
        self,
        label: str,
        t: Topics,
        start_children: Callable[[], list[Child]],
        steady_events: Sequence[Event],
        burst_events: Sequence[Event] = (),
    ) -> None:
        cfg = self.cfg
        acked: dict[tuple[str, int], float] = {}
        received: dict[tuple[str, int], float] = {}

        def on_sla(record: ConsumerRecord[Any, Any], now: float) -> None:
            data = orjson.loads(record.value)["data"]
            received.setdefault((data["ticket_id"], data["revision"]), now)

        counter = OutputCounter(self.bootstrap, [t.sla], on_sla, fetch_max_wait_ms=5)
        await counter.start()
        children: list[Child] = []
        p = producer(self.bootstrap)
        await p.start()
        sampler: asyncio.Task[None] | None = None
        load_task: asyncio.Task[None] | None = None
        try:
            children = start_children()
            for child in children:
                if child.port:
                    await procs.wait_ready(child)
            # Warm-up: every group joined and every partition assigned before timing.
            await self._send(p, t.incoming, self.warmup_events, 50.0, acked)
            if not await counter.wait_for(len(self.warmup_events), 90, 120):
                raise RuntimeError(f"{label}: warm-up not routed:\n{children[-1].tail()}")
            await asyncio.sleep(1)
            sampler = asyncio.create_task(self._sample_rss(children, 10.0))
            load = LoadSampler(self.broker.pid, children)
            load_task = asyncio.create_task(load.run())
            seconds = len(steady_events) / cfg.rate
            self.log(f"{label}: steady {cfg.rate:.0f} tickets/s for {seconds:.0f}s")
            noise = Noise(self.broker.pid)
            services = [child for child in children if child.port]
            batches = [
                [await procs.histogram(child, name) for name in BATCH_HISTOGRAMS]
                for child in services
            ]
            drops = await dropped(children)
            cpu0 = sum(c.cpu_seconds() or 0 for c in children)
            start = time.perf_counter()
            await self._send(p, t.incoming, steady_events, cfg.rate, acked)
            expected = len(self.warmup_events) + len(steady_events)
            await counter.wait_for(expected, STALL_SECONDS, 120)
            elapsed = time.perf_counter() - start
            cpu = sum(c.cpu_seconds() or 0 for c in children) - cpu0
            for child, (batch, wait) in zip(services, batches, strict=True):
                after = [await procs.histogram(child, name) for name in BATCH_HISTOGRAMS]
                self.results.batch_times.append(
                    f"{child.name}, steady {cfg.rate:.0f}/s: {batch_times(batch, after[0])}; "
                    f"waiting for acknowledgements: {batch_times(wait, after[1])}"
                )
            foreign = noise.foreign_cores(cpu)
            sampler.cancel()
            load_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
            lat = self._latency(
                f"{label}: steady {cfg.rate:.0f}/s, {seconds:.0f} s",
                steady_events,
                acked,
                received,
                elapsed,
                load,
            )
            lat.notes.append(f"CPU {100 * cpu / elapsed:.0f}% of one core")
            if foreign > 0.25:
                lat.notes.append(f"other load on the machine: {foreign:.1f} cores")
            drops_after = await dropped(children)
            if note := dropped_note(drops, drops_after):
                lat.notes.append(note)
            self.results.latencies.append(lat)
            if children and children[0].port:
                self._rss_summary(children)
            if burst_events:
                await self._burst(
                    label, t, p, children, counter, burst_events, expected, (acked, received)
                )
            for child in children:
                hwm = mib(child.status_kib("VmHWM"))
                if child.port:
                    self.results.rss.append(
                        f"{child.name}: peak RSS {hwm:.0f} MiB after warm-up, steady and burst"
                        if hwm
                        else f"{child.name}: gone ({child.process.returncode})"
                    )
        finally:
            for task in (sampler, load_task):
                if task:
                    task.cancel()
            for child in children:
                await procs.stop(child)
            await p.stop()
            await counter.stop()

    async def _burst(
        self,
        label: str,
        t: Topics,
        p: Any,
        children: list[Child],
        counter: OutputCounter,
        events: Sequence[Event],
        already: int,
        times: tuple[dict[tuple[str, int], float], dict[tuple[str, int], float]],
    ) -> None:
        """Everything at once, on the same warm instances; latency and drain rate."""
        self.log(f"{label}: burst of {len(events):,}")
        acked, received = times
        noise = Noise(self.broker.pid)
        drops = await dropped(children)
        cpu0 = sum(c.cpu_seconds() or 0 for c in children)
        start = time.perf_counter()
        await self._send(p, t.incoming, events, 0.0, acked)
        await counter.wait_for(already + len(events), STALL_SECONDS, 120 + len(events) / 200)
        cpu = sum(c.cpu_seconds() or 0 for c in children) - cpu0
        foreign = noise.foreign_cores(cpu)
        last = counter.progress.last or time.perf_counter()
        lat = self._latency(
            f"{label}: burst of {len(events):,}", events, acked, received, last - start
        )
        if foreign > 0.25:
            lat.notes.append(f"other load on the machine: {foreign:.1f} cores")
        if note := dropped_note(drops, await dropped(children)):
            lat.notes.append(note)
        self.results.latencies.append(lat)

    async def _send(
        self,
        p: Any,
        topic: str,
        events: Sequence[Event],
        rate: float,
        acked: dict[tuple[str, int], float],
    ) -> None:
        """Publish at `rate` per second (0: as fast as possible); note when each is acked."""

        def on_ack(key: tuple[str, int], future: asyncio.Future[Any]) -> None:
            if not future.cancelled() and future.exception() is None:
                acked[key] = time.perf_counter()

        t0 = time.perf_counter()
        futures = []
        for i, e in enumerate(events):
            if rate:
                delay = t0 + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            key = (e.ticket_id, e.revision)
            future = await p.send(topic, e.value, key=e.key, headers=HEADERS)
            future.add_done_callback(partial(on_ack, key))
            futures.append(future)
        await asyncio.wait_for(asyncio.gather(*futures), 60)

    def _latency(
        self,
        name: str,
        events: Sequence[Event],
        acked: dict[tuple[str, int], float],
        received: dict[tuple[str, int], float],
        elapsed: float,
        load: LoadSampler | None = None,
    ) -> Latency:
        pairs = [
            (acked[k], max(0.0, received[k] - acked[k]))
            for k in ((e.ticket_id, e.revision) for e in events)
            if k in received and k in acked
        ]
        values = sorted(v for _, v in pairs)
        notes = []
        if len(values) < len(events):
            notes.append(f"MISSING {len(events) - len(values)} SLA messages")
        if load is not None and pairs:  # does latency drift, does it follow other work?
            width = 30.0 if elapsed >= 150 else 5.0
            self.results.notes.append(
                f"{name}, by {width:.0f} s window, p50 / p99 ms (cores used by the measured "
                "processes / the broker / other work): " + windows(pairs, width, load)
            )
        return Latency(
            name=name,
            tickets=len(events),
            received=len(values),
            p50=percentile(values, 0.50),
            p95=percentile(values, 0.95),
            p99=percentile(values, 0.99),
            max=1000 * values[-1] if values else float("nan"),
            rate=len(values) / elapsed if elapsed > 0 else 0.0,
            notes=notes,
        )

    @staticmethod
    def _sample(children: list[Child], since: float) -> None:
        for child in children:
            rss = child.status_kib("VmRSS")
            if rss is not None:
                child.rss_samples.append((time.monotonic() - since, rss))

    async def _sample_rss(self, children: list[Child], every: float) -> None:
        since = time.monotonic()
        try:
            while True:
                self._sample(children, since)
                await asyncio.sleep(every)
        except asyncio.CancelledError:
            self._sample(children, since)  # and one at the end
            raise

    def _rss_summary(self, children: list[Child]) -> None:
        for child in children:
            samples = [kib for _, kib in child.rss_samples]
            if not samples:
                continue
            span = child.rss_samples[-1][0]
            if span >= 90:
                timeline = [kib for _, kib in child.rss_samples[::3]]
                self.results.rss.append(
                    f"{child.name}: RSS every 30 s (MiB): "
                    + ", ".join(f"{kib / 1024:.0f}" for kib in timeline)
                )
            self.results.rss.append(
                f"{child.name}: RSS over {span:.0f}s at {self.cfg.rate:.0f}/s "
                f"({len(samples)} samples, every 10 s and at the end): "
                f"first {samples[0] / 1024:.0f} MiB, last {samples[-1] / 1024:.0f} MiB, "
                f"max {max(samples) / 1024:.0f} MiB"
            )
