"""`make bench`: throughput and latency of both services on a fresh embedded broker, against
raw aiokafka baselines, printed as a markdown table (issue 3).

Phases (each on its own topics and consumer groups, all on one Tansu broker, 6 partitions):

1. preload N generated tickets (bench/generate.py) into `pre.tickets.incoming`;
2. raw baseline 1 in / 1 out on them, then the enricher alone on them (its output,
   `enr.tickets.enriched`, is the router's input from then on);
3. raw baseline 1 in / 2 out on the enriched tickets, then the router alone on them;
4. end to end: both services on N preloaded tickets (sustained throughput), then fresh
   instances at a steady rate (latency from the producer's ack to `sla.ownership`, RSS
   sampled every 10 s; `--soak` makes it a soak) followed by a burst;
5. scale-out: two router instances in one consumer group on the enriched tickets;
6. rounds 2..N (`--rounds`): phases 2 and 3 again with the one-send baselines, each round on
   its own topics, for the median of each service's ratio to its raw loop.

Throughput counts outputs with the bench's own consumer (never end offsets) and is taken
from the first output to the last, so start-up and the group join are not in it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import hashlib
import importlib.metadata
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import orjson
from aiokafka import ConsumerRecord

from bench import procs
from bench.generate import HEADERS, Event, TicketGenerator, partner_vendors, rule_mix, verify
from bench.kafka import OutputCounter, create_topics, delete_topics, preload, producer
from bench.procs import Child
from bench.profile import hot_spots, record, report
from services.runtime.embedded import EmbeddedBroker, free_port
from services.runtime.settings import ServiceSettings

ROOT = Path(__file__).resolve().parent.parent
PHASES = ("baseline", "enricher", "router", "e2e", "latency", "rawlatency", "scaleout", "whatif")
DEFAULT_PHASES = PHASES[:-1]
STALL_SECONDS = 45.0
BASELINE_1TO1 = "raw aiokafka 1 in / 1 out"
BASELINE_1TO2 = "raw aiokafka 1 in / 2 out"
RECORD_BATCHES = ", record batches"
# The record-batch loop that also validates its input with the contract's pydantic model.
VALIDATED = RECORD_BATCHES + ", contract validation"
SERVICE_ENV = {
    # A (re)join waits about half the session timeout on Tansu: keep it short in the bench.
    "SESSION_TIMEOUT_MS": "6000",
    "HEARTBEAT_INTERVAL_MS": "2000",
    "TOPIC_PARTITIONS": "6",
    # As in the Containerfile: every log line is written (one write per line) as it happens.
    "PYTHONUNBUFFERED": "1",
}


# --- configuration and results ----------------------------------------------------------------


@dataclass
class Config:
    tickets: int
    rate: float
    steady_seconds: float
    burst: int
    soak: float
    phases: set[str]
    log_level: str | None
    profile: Path | None
    run_dir: Path
    seed: int
    event_bytes: int
    quick: bool
    wait_quiet: float = 0.0
    rounds: int = 1


@dataclass
class Row:
    """One throughput measurement."""

    name: str
    tickets: int
    outputs: int
    expected: int
    seconds: float
    rate: float  # input tickets per second, first output to last
    cpu_us: float | None = None  # CPU of the measured process(es) per ticket
    cores: float | None = None  # their CPU use from first to last output, in cores
    broker_cores: float | None = None  # Tansu's, same window
    peak_rss_mib: float | None = None
    ratio: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass
class Latency:
    name: str
    tickets: int
    received: int
    p50: float
    p95: float
    p99: float
    max: float
    rate: float
    notes: list[str] = field(default_factory=list)


@dataclass
class Round:
    """One pass of the raw one-send baselines and the services alone, in alternation."""

    raw_1to1: Row
    enricher: Row
    raw_1to2: Row
    router: Row

    @staticmethod
    def ratio(service: Row, raw: Row) -> float | None:
        return service.rate / raw.rate if service.rate and raw.rate else None


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    latencies: list[Latency] = field(default_factory=list)
    rss: list[str] = field(default_factory=list)
    batch_times: list[str] = field(default_factory=list)  # each service's own time per batch
    profiles: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rounds: list[Round] = field(default_factory=list)

    def by_name(self, prefix: str) -> Row | None:
        return next((r for r in self.rows if r.name.startswith(prefix)), None)


def percentile(ordered: Sequence[float], q: float) -> float:
    """In milliseconds, from sorted seconds (nearest rank)."""
    if not ordered:
        return float("nan")
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


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


# --- noise: CPU used on the machine by anything that is not ours -------------------------------


def _busy_seconds() -> float:
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(x) for x in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class Noise:
    """Cores used during a phase by processes other than the bench, its broker and children."""

    def __init__(self, broker_pid: int) -> None:
        self._broker = broker_pid
        self._start = (time.monotonic(), _busy_seconds(), self._ours())

    def _ours(self) -> float:
        return time.process_time() + (_pid_cpu(self._broker) or 0.0)

    def foreign_cores(self, children_cpu: float) -> float:
        t0, busy0, ours0 = self._start
        elapsed = time.monotonic() - t0
        foreign = (_busy_seconds() - busy0) - (self._ours() - ours0) - children_cpu
        return max(0.0, foreign / elapsed) if elapsed > 0 else 0.0


class LoadSampler:
    """Every second: cores used by the measured children, by the broker, and by work that is
    not ours (see Noise)."""

    def __init__(self, broker_pid: int, children: Sequence[Child]) -> None:
        self._broker = broker_pid
        self._children = list(children)
        # (time, children's cores, broker's cores, other work's cores)
        self.samples: list[tuple[float, float, float, float]] = []

    def _now(self) -> tuple[float, float, float, float, float]:
        children = sum(c.cpu_seconds() or 0.0 for c in self._children)
        broker = _pid_cpu(self._broker) or 0.0
        return time.perf_counter(), _busy_seconds(), children, broker, time.process_time()

    async def run(self) -> None:
        previous = self._now()
        while True:
            await asyncio.sleep(1.0)
            now = self._now()
            span = now[0] - previous[0]
            children, broker, bench = (now[i] - previous[i] for i in (2, 3, 4))
            foreign = (now[1] - previous[1]) - children - broker - bench
            self.samples.append((now[0], children / span, broker / span, max(0.0, foreign / span)))
            previous = now

    def cores(self, begin: float, end: float) -> tuple[float, float, float]:
        """Mean (children, broker, other work) cores between `begin` and `end`."""
        inside = [s[1:] for s in self.samples if begin < s[0] <= end + 0.5]
        if not inside:
            return 0.0, 0.0, 0.0
        return (
            statistics.mean(s[0] for s in inside),
            statistics.mean(s[1] for s in inside),
            statistics.mean(s[2] for s in inside),
        )


def _pid_cpu(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- topics and service environments -----------------------------------------------------------


@dataclass(frozen=True)
class Topics:
    """The topic names of one phase: every name carries the phase's prefix."""

    prefix: str
    vendors: tuple[str, ...]

    def name(self, base: str) -> str:
        return f"{self.prefix}.{base}"

    @property
    def incoming(self) -> str:
        return self.name("tickets.incoming")

    @property
    def enriched(self) -> str:
        return self.name("tickets.enriched")

    @property
    def deadletter(self) -> str:
        return self.name("tickets.deadletter")

    @property
    def sla(self) -> str:
        return self.name("sla.ownership")

    @property
    def routes(self) -> list[str]:
        partner = [self.name("queue.partner." + v) for v in self.vendors]
        return [self.name("queue.redhat"), self.name("collab.tsanet"), *partner]

    def all(self) -> list[str]:
        return [self.incoming, self.enriched, self.deadletter, self.sla, *self.routes]

    def env(self) -> dict[str, str]:
        return {
            "TOPIC_INCOMING": self.incoming,
            "TOPIC_ENRICHED": self.enriched,
            "TOPIC_REDHAT": self.name("queue.redhat"),
            "TOPIC_PARTNER_PREFIX": self.name("queue.partner."),
            "TOPIC_TSANET": self.name("collab.tsanet"),
            "TOPIC_SLA": self.sla,
            "TOPIC_DEADLETTER": self.deadletter,
        }


def _round(rnd: int) -> str:
    return "" if rnd == 1 else f"-r{rnd}"


def _variant(record_batches: bool, validate: bool) -> str:
    if validate:
        assert record_batches, "the validating baseline is the record-batch one plus validation"
        return VALIDATED
    return RECORD_BATCHES if record_batches else ""


class Bench:
    def __init__(self, cfg: Config, broker: EmbeddedBroker) -> None:
        self.cfg = cfg
        self.broker = broker
        self.bootstrap = broker.bootstrap_servers
        self.vendors = tuple(partner_vendors())
        self.results = Results()
        self.events: list[Event] = []
        self.enriched_ready = False

    def topics(self, prefix: str) -> Topics:
        return Topics(prefix, self.vendors)

    def log(self, message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    # --- children ----------------------------------------------------------------------------

    def service(
        self,
        name: str,
        module: str,
        topics: Topics,
        extra: dict[str, str] | None = None,
    ) -> Child:
        port = free_port()
        env = {
            **SERVICE_ENV,
            **topics.env(),
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "METRICS_PORT": str(port),
            "METRICS_HOST": "127.0.0.1",
            **(extra or {}),
        }
        if self.cfg.log_level:
            env["LOG_LEVEL"] = self.cfg.log_level
        log = self.cfg.run_dir / f"{name}.log"
        return procs.python_module(name, module, [], log, env, port)

    def baseline(
        self,
        name: str,
        mode: str,
        source: str,
        out: Topics,
        fetch_max_wait_ms: int | None = None,
        record_batches: bool = False,
        validate: bool = False,
    ) -> Child:
        """A raw aiokafka loop as its own process (same fetch wait as the services unless
        told otherwise)."""
        wait = fetch_max_wait_ms or services_fetch_max_wait_ms()
        args = ["--bootstrap", self.bootstrap, "--input", source, "--mode", mode]
        args += ["--record-batches"] if record_batches else []
        args += ["--validate"] if validate else []
        args += ["--fetch-max-wait-ms", str(wait)]
        args += ["--group", f"bench-{name}"]
        if mode == "1to1":
            args += ["--output", out.enriched]
        else:
            args += ["--output", out.name("queue.redhat"), "--sla-output", out.sla]
        log = self.cfg.run_dir / f"{name}.log"
        return procs.python_module(name, "bench.baseline", args, log, {}, 0)

    # --- one process (or two) on preloaded input ----------------------------------------------

    async def measure(
        self,
        label: str,
        children: Callable[[], list[Child]],
        outputs: list[str],
        deadletter: str | None,
        expected: int,
        tickets: int,
        profile_name: str | None = None,
        keep: bool = True,
    ) -> Row:
        """Start the children on already preloaded input and count `expected` outputs; the
        row goes into the main table unless `keep` is false (a repeat round)."""
        topics = outputs + ([deadletter] if deadletter else [])
        counter = await OutputCounter(self.bootstrap, topics).start()
        noise = Noise(self.broker.pid)
        started: list[Child] = []
        spies: list[Child] = []
        profiles: list[Path] = []
        notes: list[str] = []
        first_count = 0
        try:
            started = children()
            for child in started:
                if child.port:
                    await procs.wait_ready(child)
            if profile_name and self.cfg.profile:
                for child in started:
                    path = self.cfg.profile / f"{profile_name}-{child.name}.txt"
                    spy = record(child, path)
                    if spy is None:
                        notes.append("py-spy not installed: no profile")
                    else:
                        spies.append(spy)
                        profiles.append(path)
            total_timeout = 120 + expected / 200
            await counter.wait_for(1, STALL_SECONDS, total_timeout)
            first_count = counter.progress.count
            window = (
                time.perf_counter(),
                sum(c.cpu_seconds() or 0.0 for c in started),
                _pid_cpu(self.broker.pid) or 0.0,
            )
            complete = await counter.wait_for(expected, STALL_SECONDS, total_timeout)
            if not complete:
                notes.append(f"INCOMPLETE: {counter.progress.count}/{expected} outputs")
                notes += [
                    f"{child.name} exited {child.process.returncode}"
                    for child in started
                    if not child.alive()
                ]
            hwm = [child.status_kib("VmHWM") for child in started]
            cpu = [child.cpu_seconds() or 0.0 for child in started]
            span = time.perf_counter() - window[0]
            cores = (sum(cpu) - window[1]) / span if span > 0 else None
            broker_cores = ((_pid_cpu(self.broker.pid) or 0.0) - window[2]) / span
            foreign = noise.foreign_cores(sum(cpu) + sum(s.cpu_seconds() or 0 for s in spies))
            consumed = []
            for child in started:
                if child.port:
                    value = await procs.metric(child, "ticketroute_messages_consumed_total")
                    consumed.append(f"{child.name} consumed {value:.0f}" if value else "")
                    waiting = await ack_wait_share(child)
                    if waiting:
                        notes.append(f"{child.name}: {waiting}")
        finally:
            for spy in spies:
                await procs.stop(spy, signal.SIGINT, within=60)
            for child in started:
                await procs.stop(child)
            await counter.stop()
        progress = counter.progress
        if foreign > 0.25:
            notes.append(f"other load on the machine: {foreign:.1f} cores")
        if deadletter and progress.per_topic.get(deadletter):
            notes.append(
                f"{progress.per_topic[deadletter]} DEAD LETTERS (see the service's log for why)"
            )
        if len(started) > 1 and any(consumed):
            notes.append("; ".join(c for c in consumed if c))
        seconds = (progress.last or 0) - (progress.first or 0)
        outputs_counted = progress.count - progress.per_topic.get(deadletter or "", 0)
        per_ticket = expected / tickets if tickets else 1.0  # outputs each ticket gives
        timed = outputs_counted - first_count  # outputs after the first batch
        rate = timed / per_ticket / seconds if seconds > 0 and timed > 0 else 0.0
        known_hwm = [h for h in hwm if h is not None]
        row = Row(
            name=label,
            tickets=tickets,
            outputs=outputs_counted,
            expected=expected,
            seconds=seconds,
            rate=rate,
            cpu_us=(1e6 * cores * span * per_ticket / timed if cores and timed > 0 else None),
            cores=cores,
            broker_cores=broker_cores,
            peak_rss_mib=mib(max(known_hwm)) if known_hwm else None,
            notes=notes,
        )
        for path in profiles:
            if path.exists():
                self.results.profiles.append(report(f"{label}: {path.name}", hot_spots(path)))
        if keep:
            self.results.rows.append(row)
        self.log(f"{label}: {row.rate:,.0f} tickets/s ({row.outputs}/{expected} outputs)")
        return row

    # --- phases --------------------------------------------------------------------------------

    async def prepare(self) -> None:
        cfg = self.cfg
        total = cfg.tickets
        gen = TicketGenerator(seed=cfg.seed, target_bytes=cfg.event_bytes)
        started = time.perf_counter()
        self.events = gen.events(total)
        # Fresh events for the latency phases (their tickets are new to those instances).
        steady = int(cfg.rate * max(cfg.steady_seconds, cfg.soak))
        self.warmup_events = gen.events(50)
        self.steady_events = gen.events(steady)
        self.burst_events = gen.events(cfg.burst)
        sizes = [len(e.value) for e in self.events]
        mix = rule_mix(self.events)
        checked, agree, problems = verify(self.events)
        self.results.notes.append(
            f"{total:,} generated tickets, {statistics.mean(sizes):.0f} bytes on average "
            f"({min(sizes)}-{max(sizes)}), {sum(e.revision > 1 for e in self.events):,} of them "
            f"updates; all {len(mix)} rule ids: "
            + ", ".join(f"{r} {n}" for r, n in sorted(mix.items(), key=lambda x: -x[1]))
            + f". Expected rules confirmed by the services' policy on {agree}/{checked} sampled."
        )
        for problem in problems:
            self.results.notes.append(f"generator check: {problem}")
        self.log(
            f"generated {total + steady + cfg.burst:,} events in "
            f"{time.perf_counter() - started:.1f}s; policy agrees on {agree}/{checked}"
        )
        names = []
        prefixes = ["pre", "enr", "rtr", "e2e", "lat"]
        prefixes += [f"base1{n}{tag}" for n in (1, 2) for tag in ("", "b", "bv")]
        for prefix in [*prefixes, "so", "wi", "wilat"]:
            names += self.topics(prefix).all()
        await create_topics(self.bootstrap, names)
        if cfg.phases - {"latency", "rawlatency"}:
            seconds = await preload(self.bootstrap, self.topics("pre").incoming, self.events)
            self.log(f"preloaded {total:,} tickets in {seconds:.1f}s")

    # Round 1 fills the main table; later rounds (`--rounds`) repeat the one-send baselines
    # and the services alone on their own topics and groups, with the suffix `-r<round>`.

    async def baseline_1to1(
        self, record_batches: bool = False, validate: bool = False, rnd: int = 1
    ) -> Row:
        tag = ("b" if record_batches else "") + ("v" if validate else "") + _round(rnd)
        source, out = self.topics("pre").incoming, self.topics(f"base11{tag}")
        return await self.measure(
            BASELINE_1TO1 + _variant(record_batches, validate),
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
        pre, enr = self.topics("pre"), self.topics(f"enr{_round(rnd)}")
        group = f"bench-enricher{_round(rnd)}"
        row = await self.measure(
            "enricher alone",
            lambda: [
                self.service(
                    f"enricher{_round(rnd)}",
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
        tag = ("b" if record_batches else "") + ("v" if validate else "") + _round(rnd)
        source, out = self.topics("enr").enriched, self.topics(f"base12{tag}")
        n = self.cfg.tickets
        return await self.measure(
            BASELINE_1TO2 + _variant(record_batches, validate),
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

    def _router(self, name: str, out: Topics, group: str) -> Child:
        source = self.topics("enr").enriched
        return self.service(
            name, "services.router", out, {"TOPIC_ENRICHED": source, "ROUTER_GROUP_ID": group}
        )

    async def router(self, rnd: int = 1) -> Row:
        out, n = self.topics(f"rtr{_round(rnd)}"), self.cfg.tickets
        row = await self.measure(
            "router alone",
            lambda: [self._router(f"router{_round(rnd)}", out, f"bench-router{_round(rnd)}")],
            [*out.routes, out.sla],
            out.deadletter,
            2 * n,
            n,
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

    def _ratios(self, row: Row, baseline: str) -> None:
        """The ratio to the issue's baseline, and in the notes to the record-batch one."""
        base = self.results.by_name(baseline)
        if base and base.rate:
            row.ratio = f"{row.rate / base.rate:.2f}x"
        batched = self.results.by_name(baseline + RECORD_BATCHES)
        if batched and batched.rate:
            row.notes.append(f"{row.rate / batched.rate:.2f}x of the record-batch baseline")
        validated = self.results.by_name(baseline + VALIDATED)
        if validated and validated.rate:
            row.notes.append(f"{row.rate / validated.rate:.2f}x of the validating one")

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

    async def whatif(self) -> None:
        """Settings experiments on unchanged service code (not part of the default run)."""
        out, n = self.topics("wi"), self.cfg.tickets
        row = await self.measure(
            "what if: router alone, LOG_LEVEL=WARNING",
            lambda: [
                self.service(
                    "wi-router",
                    "services.router",
                    out,
                    {
                        "TOPIC_ENRICHED": self.topics("enr").enriched,
                        "ROUTER_GROUP_ID": "bench-wi-router",
                        "LOG_LEVEL": "WARNING",
                    },
                )
            ],
            [*out.routes, out.sla],
            out.deadletter,
            2 * n,
            n,
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

    async def run(self) -> Results:
        cfg = self.cfg
        phases = cfg.phases
        await self.prepare()
        needs_enriched = bool(phases & {"router", "scaleout", "baseline", "whatif"})
        if "baseline" in phases:
            await self.baseline_1to1()
            await self.baseline_1to1(record_batches=True)
            await self.baseline_1to1(record_batches=True, validate=True)
        if "enricher" in phases or needs_enriched:
            await self.enricher()
        if not self.enriched_ready and needs_enriched:
            raise RuntimeError("the enricher did not produce every enriched ticket")
        if "baseline" in phases:
            await self.baseline_1to2()
            await self.baseline_1to2(record_batches=True)
            await self.baseline_1to2(record_batches=True, validate=True)
        if "router" in phases:
            await self.router()
        if "e2e" in phases:
            await self.end_to_end()
        if "latency" in phases:
            await self.latency()
        if "rawlatency" in phases:
            await self.raw_latency()
        if "scaleout" in phases:
            await self.scaleout()
        if "whatif" in phases:
            await self.whatif()
        if {"baseline", "enricher", "router"} <= phases and cfg.rounds > 1:
            # The main table's rows are round 1 (by_name finds the one-send baselines first).
            names = (BASELINE_1TO1, "enricher alone", BASELINE_1TO2, "router alone")
            first = [row for row in map(self.results.by_name, names) if row is not None]
            if len(first) == len(names):
                self.results.rounds.append(Round(*first))
                for rnd in range(2, cfg.rounds + 1):
                    await create_topics(self.bootstrap, self._round_topics(rnd))
                    self.results.rounds.append(await self.repeat(rnd))
        return self.results

    def _round_topics(self, rnd: int) -> list[str]:
        names = [f"base11{_round(rnd)}", f"enr{_round(rnd)}", f"base12{_round(rnd)}"]
        return [t for n in [*names, f"rtr{_round(rnd)}"] for t in self.topics(n).all()]


# --- the report ---------------------------------------------------------------------------------


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions = []
    for package in ("aiokafka", "faststream", "pydantic", "orjson"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions.append(f"{package} {importlib.metadata.version(package)}")
    mem = ""
    with contextlib.suppress(OSError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kib / 1024 / 1024:.0f} GiB RAM"
    return (
        f"{os.cpu_count()} cores ({model}){mem}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, {', '.join(versions)}, broker Tansu (embedded)"
    )


def code_version() -> str:
    """The commit measured, and whether the working tree differs from it (read-only git)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "services", "schemas"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "code: unknown commit"
    return f"code: commit {head}" + (" + uncommitted changes in services/schemas" if dirty else "")


def code_fingerprint() -> str:
    """A hash of the services' and schemas' sources: did they change during the run?"""
    digest = hashlib.sha1(usedforsecurity=False)
    for path in sorted([*ROOT.glob("services/**/*.py"), *ROOT.glob("schemas/**/*.py")]):
        with contextlib.suppress(OSError):
            digest.update(str(path).encode() + path.read_bytes())
    return digest.hexdigest()


def table(results: Results, cfg: Config, header: str) -> str:
    out = [header, ""]
    out += [
        "| measurement | tickets | outputs | first→last output | tickets/s | vs raw "
        "| CPU µs/ticket | CPU used (cores) | broker CPU | peak RSS | notes |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for r in results.rows:
        rss = f"{r.peak_rss_mib:.0f} MiB" if r.peak_rss_mib else "-"
        cpu = f"{r.cpu_us:,.0f}" if r.cpu_us else "-"
        cores = f"{r.cores:.2f}" if r.cores is not None else "-"
        broker = f"{r.broker_cores:.2f}" if r.broker_cores is not None else "-"
        outputs = f"{r.outputs:,}" + ("" if r.outputs >= r.expected else f" / {r.expected:,}")
        out.append(
            f"| {r.name} | {r.tickets:,} | {outputs} | {r.seconds:.1f} s | {r.rate:,.0f} "
            f"| {r.ratio or '-'} | {cpu} | {cores} | {broker} | {rss} | {'; '.join(r.notes)} |"
        )
    if results.latencies:
        out += [
            "",
            "| end to end latency (ack of the input → `sla.ownership` received) | tickets "
            "| p50 | p95 | p99 | max | tickets/s | notes |",
            "|---|--:|--:|--:|--:|--:|--:|---|",
        ]
        for lat in results.latencies:
            out.append(
                f"| {lat.name} | {lat.received:,} / {lat.tickets:,} | {lat.p50:.0f} ms "
                f"| {lat.p95:.0f} ms | {lat.p99:.0f} ms | {lat.max:.0f} ms | {lat.rate:,.0f} "
                f"| {'; '.join(lat.notes)} |"
            )
        if results.batch_times:
            out += [
                "",
                "Each service's time per batch (processing and sending, then waiting for the "
                "broker's acknowledgements; `ticketroute_batch_seconds`) and the waiting part "
                "of it (`ticketroute_ack_wait_seconds`):",
                "",
                *[f"- {line}" for line in results.batch_times],
            ]
    if results.rounds:
        out += ["", *rounds_table(results.rounds)]
    if results.rss:
        out += ["", *[f"- {line}" for line in results.rss]]
    out += ["", *[f"- {note}" for note in results.notes]]
    return "\n".join(out)


def rounds_table(rounds: Sequence[Round]) -> list[str]:
    """Each round's rates and ratios, and the median ratio: one run's ratio moves with the VM."""

    def cell(row: Row) -> str:
        incomplete = " (incomplete)" if row.outputs < row.expected else ""
        return (f"{row.rate:,.0f}" if row.rate else "-") + incomplete

    def ratio(value: float | None) -> str:
        return f"{value:.2f}x" if value is not None else "-"

    lines = [
        f"Throughput in {len(rounds)} rounds, each in the same order (raw 1 in / 1 out, enricher, "
        "raw 1 in / 2 out, router; one-`send` baselines; round 1 is the table above), and "
        "the median of each service's ratio to the raw loop of its own round:",
        "",
        "| round | raw 1 → 1 | enricher | ratio | raw 1 → 2 | router | ratio |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    enricher, router = [], []
    for number, r in enumerate(rounds, start=1):
        e, t = Round.ratio(r.enricher, r.raw_1to1), Round.ratio(r.router, r.raw_1to2)
        enricher += [e] if e is not None else []
        router += [t] if t is not None else []
        lines.append(
            f"| {number} | {cell(r.raw_1to1)} | {cell(r.enricher)} | {ratio(e)} "
            f"| {cell(r.raw_1to2)} | {cell(r.router)} | {ratio(t)} |"
        )
    median_e = statistics.median(enricher) if enricher else None
    median_r = statistics.median(router) if router else None
    lines.append(f"| median | | | **{ratio(median_e)}** | | | **{ratio(median_r)}** |")
    return lines


def parse_args(argv: Sequence[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 5,000 tickets, short")
    parser.add_argument("--tickets", type=int, help="preloaded tickets (default 50,000)")
    parser.add_argument("--rate", type=float, default=500, help="steady tickets/s (500)")
    parser.add_argument("--steady-seconds", type=float, help="steady phase length (30 s)")
    parser.add_argument("--burst", type=int, help="burst size (20,000)")
    parser.add_argument(
        "--soak",
        type=float,
        default=0,
        metavar="SECONDS",
        help="run the steady phase this long (e.g. 300) sampling both services' RSS",
    )
    parser.add_argument(
        "--phases",
        default=",".join(DEFAULT_PHASES),
        help=f"comma-separated subset of {','.join(PHASES)} (default: all but whatif)",
    )
    parser.add_argument(
        "--log-level", help="services' LOG_LEVEL (default: the services' own default)"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="py-spy the baselines, the enricher and the router alone into DIR (slower)",
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0,
        metavar="SECONDS",
        help="first wait up to this long for other work on the machine to calm down",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        metavar="N",
        help="run the one-send baselines and each service alone N times in alternation and "
        "report the median ratio (default 3; 1 with --quick)",
    )
    parser.add_argument("--run-dir", type=Path, default=ROOT / ".run" / "bench")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--event-bytes", type=int, default=850, help="target event size")
    args = parser.parse_args(argv)
    quick = args.quick
    phases = {p.strip() for p in args.phases.split(",") if p.strip()}
    unknown = phases - set(PHASES)
    if unknown:
        parser.error(f"unknown phases {sorted(unknown)}; choose from {PHASES}")
    return Config(
        tickets=args.tickets or (5_000 if quick else 50_000),
        rate=args.rate,
        steady_seconds=args.steady_seconds or (5.0 if quick else 30.0),
        burst=args.burst if args.burst is not None else (2_000 if quick else 20_000),
        soak=args.soak,
        phases=phases,
        log_level=args.log_level,
        profile=args.profile.resolve() if args.profile else None,
        run_dir=args.run_dir / dt.datetime.now().strftime("%Y%m%d-%H%M%S"),
        seed=args.seed,
        event_bytes=args.event_bytes,
        quick=quick,
        wait_quiet=args.wait_quiet,
        rounds=args.rounds or (1 if quick else 3),
    )


def busy_cores(window: float = 3.0) -> float:
    """Cores busy on the machine over `window` seconds (the bench itself is idle)."""
    t0, b0 = time.monotonic(), _busy_seconds()
    time.sleep(window)
    return (_busy_seconds() - b0) / (time.monotonic() - t0)


def wait_quiet(limit: float, threshold: float = 0.3, quiet_for: float = 20.0) -> float:
    """Wait until other work has used less than `threshold` cores for `quiet_for` seconds
    (at most `limit` seconds in all); the cores last used."""
    deadline = time.monotonic() + limit
    quiet_since: float | None = None
    while True:
        busy = busy_cores(5)
        now = time.monotonic()
        if busy > threshold:
            quiet_since = None
            print(f"machine busy ({busy:.1f} cores), waiting", file=sys.stderr, flush=True)
        elif quiet_since is None:
            quiet_since = now - 5
        if quiet_since is not None and now - quiet_since >= quiet_for:
            return busy
        if now > deadline:
            return busy


def _terminate(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def prune(run_dirs: Path, keep: int = 4) -> None:
    """Logs of the last few runs only: a full run writes a few hundred MB of service logs."""
    if not run_dirs.is_dir():
        return
    ours = re.compile(r"^\d{8}-\d{6}$")  # only the bench's own timestamped run directories
    runs = sorted(p for p in run_dirs.iterdir() if p.is_dir() and ours.match(p.name))
    for old in runs[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_args(argv)
    prune(cfg.run_dir.parent)
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        busy = wait_quiet(cfg.wait_quiet) if cfg.wait_quiet else busy_cores(1)
    except KeyboardInterrupt:
        return 1
    started = time.monotonic()
    load_before = os.getloadavg()
    fingerprint = code_fingerprint()
    bench: Bench | None = None
    failure: BaseException | None = None
    try:
        with EmbeddedBroker(log_path=cfg.run_dir / "tansu.log") as broker:
            bench = Bench(cfg, broker)
            bench.log(f"Tansu on {broker.bootstrap_servers}; logs in {cfg.run_dir}")
            try:
                asyncio.run(bench.run())
            finally:
                procs.stop_all()
    except KeyboardInterrupt as interrupt:
        failure = interrupt
        print("\ninterrupted: children and broker stopped", file=sys.stderr)
    except Exception as error:
        failure = error
        print(f"\nbench failed: {type(error).__name__}: {error}", file=sys.stderr)
    finally:
        procs.stop_all()
    elapsed = time.monotonic() - started
    if bench is None:
        return 1
    mode = "quick" if cfg.quick else "full"
    load_after = os.getloadavg()[0]
    header = (
        f"## ticketroute bench ({mode}, {dt.date.today().isoformat()}, {elapsed / 60:.1f} min)"
        f"\n\nMachine: {machine()}; {code_version()}. Before the run other work used "
        f"{busy:.1f} cores; load average before/after {load_before[0]:.2f} / {load_after:.2f}. "
        "The broker, the services and the load generator share the cores, so other work on "
        "the machine makes the numbers noisy: see the notes column."
    )
    if cfg.profile:
        header += "\n\n**Profiled run** (py-spy attached to the services alone): slower."
    results = bench.results
    if code_fingerprint() != fingerprint:
        results.notes.append(
            "WARNING: services/ or schemas/ changed during the run: later rows may have run "
            "newer code than earlier ones"
        )
    if failure is not None:
        results.notes.append(f"RUN ABORTED: {type(failure).__name__}: {failure}")
    print(table(results, cfg, header))
    if results.profiles:
        print("\n## Profiles\n")
        print("\n\n".join(results.profiles))
    return 0 if failure is None else 1
