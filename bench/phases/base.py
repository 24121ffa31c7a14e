"""The state and helpers every phase shares (see bench/run.py for the phases in order)."""

from __future__ import annotations

import signal
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bench import procs
from bench.generate import Event, TicketGenerator, partner_vendors, rule_mix, verify
from bench.kafka import OutputCounter, create_topics, preload
from bench.load import Noise, pid_cpu
from bench.procs import Child
from bench.profile import hot_spots, record, report
from bench.results import RECORD_BATCHES, STALL_SECONDS, VALIDATED, Config, Results, Row
from bench.servicemetrics import ack_wait_share, mib, services_fetch_max_wait_ms
from bench.topics import Topics
from services.runtime.embedded import EmbeddedBroker, free_port

SERVICE_ENV = {
    # A (re)join waits about half the session timeout on Tansu: keep it short in the bench.
    "SESSION_TIMEOUT_MS": "6000",
    "HEARTBEAT_INTERVAL_MS": "2000",
    "TOPIC_PARTITIONS": "6",
    # As in the Containerfile: every log line is written (one write per line) as it happens.
    "PYTHONUNBUFFERED": "1",
}


class PhaseRunner:
    """What every phase uses: the broker, the generated events, the children it starts (a
    service or a raw baseline) and `measure`, which times one of them on preloaded input."""

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
        # A stateful service's changelog belongs to its consumer group: the instances of one
        # group share it, and a later run of the same tickets under another group starts from
        # nothing (it would otherwise drop every ticket as already routed).
        for group, changelog in (
            ("ROUTER_GROUP_ID", "TOPIC_ROUTER_MEMORY"),
            ("TRACKER_GROUP_ID", "TOPIC_TRACKER_STATE"),
        ):
            if group in env:
                env.setdefault(changelog, f"{topics.prefix}.state.{env[group]}")
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
                pid_cpu(self.broker.pid) or 0.0,
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
            broker_cores = ((pid_cpu(self.broker.pid) or 0.0) - window[2]) / span
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
        known_hwm = [h for h in hwm if h is not None]
        row = Row(
            name=label,
            tickets=tickets,
            outputs=outputs_counted,
            expected=expected,
            seconds=seconds,
            rate=timed / per_ticket / seconds if seconds > 0 and timed > 0 else 0.0,
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

    # --- shared by the phases --------------------------------------------------------------

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
        if cfg.phases - {"latency", "rawlatency", "tracker"}:
            seconds = await preload(self.bootstrap, self.topics("pre").incoming, self.events)
            self.log(f"preloaded {total:,} tickets in {seconds:.1f}s")

    async def measure_routers(
        self,
        label: str,
        out: Topics,
        names: Sequence[str],
        group: str,
        extra: dict[str, str] | None = None,
        profile_name: str | None = None,
        keep: bool = True,
    ) -> Row:
        """Router instances `names`, in the consumer group `group`, on the enriched tickets: a
        route and an SLA message a ticket."""
        n = self.cfg.tickets
        source = self.topics("enr").enriched
        env = {"TOPIC_ENRICHED": source, "ROUTER_GROUP_ID": group, **(extra or {})}
        return await self.measure(
            label,
            lambda: [self.service(name, "services.router", out, env) for name in names],
            [*out.routes, out.sla],
            out.deadletter,
            2 * n,
            n,
            profile_name=profile_name,
            keep=keep,
        )

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
