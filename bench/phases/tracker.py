"""The tracker with many open clocks (`--phases tracker`): its state restore against a raw read
of the same changelog, its peak RSS, and its timer lag while assignments keep arriving.

1. N assignments due hours ahead (100,000; 20,000 with --quick) are preloaded on the tracker's
   `sla.ownership` and read by a real tracker: its changelog then holds one state record per
   ticket, written by the tracker itself (the throughput row of the main table).
2. A raw aiokafka consumer reads that changelog from beginning to end; a second tracker, in the
   same group, restores it (its `state_restored` log line, and the wall clock from its start
   until the line is written and until `/readyz` answers 200); the raw read again.
3. On the restored tracker, assignments whose at-risk and breach moments fall during the run
   arrive at 500 a second (`--rate`) for 30 s (10 s with --quick): timer lag from the tracker's
   own histogram and, independently, from a consumer of `sla.events` (received minus
   `occurred_at`).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as day_time
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from bench import procs
from bench.generate import Event
from bench.kafka import PARTITIONS, OutputCounter, create_topics, preload, producer
from bench.phases.latency import LatencyPhases
from bench.procs import Child
from bench.results import STALL_SECONDS, percentile
from bench.servicemetrics import mib
from bench.topics import Topics
from schemas.decision import CustomerCalendar, Owner, SlaAssigned
from schemas.events import SLA_ASSIGNED
from services.runtime import events
from services.runtime.kafka import create_topics as create_service_topics
from services.runtime.settings import TrackerSettings

LAG_HISTOGRAM = "ticketroute_sla_timer_lag_seconds"
# The router's wording of a 24x7 target; the tracker only stores it.
BASIS = "Red Hat Premium, severity 1: 1 hour, 24x7"
CALENDAR = CustomerCalendar(
    timezone="Europe/Berlin", country="DE", start=day_time(9), end=day_time(17)
)
# Lag run: each assignment's clock started a second before it is sent and is due 5 to 20 s
# after it is sent, so its at-risk moment (three quarters of the way) is at least 3.5 s away.
STARTED_BEFORE_SEND = 1.0
DUE_AFTER_SEND = (5.0, 20.0)
# Time to build the lag run's assignments before the first is due to be sent.
BUILD_MARGIN_SECONDS = 3.0


def assignment(ticket_id: str, start: datetime, due: datetime) -> Event:
    """`support.sla.assigned` as the router writes it (its own encoder): Red Hat owns a 24x7
    clock from `start`, due at `due`."""
    data = SlaAssigned(
        ticket_id=ticket_id,
        revision=1,
        decision_id=str(uuid.uuid4()),
        severity=1,
        owner=Owner(party="redhat", vendor_id=None),
        clock="24x7",
        clock_start=start,
        response_due_at=due,
        basis=BASIS,
        collaborators=(),
        calendar=CALENDAR,
    )
    out = events.encode(
        topic="",
        event_id=str(uuid.uuid4()),
        source="/ticketroute/router",
        event_type=SLA_ASSIGNED,
        time=start,
        subject=ticket_id,
        data=data,
    )
    return Event(out.key, out.value, ticket_id, 1, "")


def bucket_bound(before: dict[str, float], after: dict[str, float], q: float) -> str:
    """The upper bound of the histogram bucket that holds the q-quantile of what was observed
    between two snapshots."""
    count = after.get("count", 0.0) - before.get("count", 0.0)
    if count <= 0:
        return "no observations"
    cumulative = sorted(
        (float(le), n - before.get(le, 0.0)) for le, n in after.items() if le[0].isdigit()
    )
    within = next((bound for bound, n in cumulative if n >= q * count), None)
    return f"<= {within:g} s" if within is not None else "over the last bucket"


@dataclass
class RawRead:
    records: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


async def raw_read(bootstrap: str, topic: str) -> RawRead:
    """Every partition of `topic` from its beginning to the high-water mark its fetches report,
    with a plain aiokafka consumer (its defaults, as the restore's), timed from its creation as
    the restore is; nothing is done with the records."""
    started = time.perf_counter()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        count = 0
        while True:
            batches = await consumer.getmany(*tps, timeout_ms=200, max_records=10_000)
            count += sum(len(records) for records in batches.values())
            if batches:
                continue
            ends = [consumer.highwater(tp) for tp in tps]
            positions = [await consumer.position(tp) for tp in tps]
            if all(end is not None and at >= end for end, at in zip(ends, positions, strict=True)):
                return RawRead(count, time.perf_counter() - started)
    finally:
        await consumer.stop()


def log_event(log: Path, name: str) -> dict[str, Any] | None:
    """The last JSON log line of a service whose event is `name`."""
    try:
        lines = log.read_bytes().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if name.encode() in line:
            try:
                entry = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(entry, dict) and entry.get("event") == name:
                return entry
    return None


class TrackerPhase(LatencyPhases):
    """The tracker's restore, memory and timer lag with many open clocks."""

    def _tracker_topics(self) -> tuple[Topics, dict[str, str]]:
        t = self.topics("trk")
        env = {
            "TOPIC_SLA_EVENTS": t.name("sla.events"),
            "TOPIC_RESPONSES_REDHAT": t.name("responses.redhat"),
            "TOPIC_RESPONSES_TSANET": t.name("responses.tsanet"),
            "TOPIC_RESPONSES_PARTNER_PREFIX": t.name("responses.partner."),
            "TOPIC_TRACKER_STATE": t.name("tracker.state"),
            "TRACKER_GROUP_ID": "bench-tracker",
        }
        return t, env

    async def tracker(self) -> None:
        cfg = self.cfg
        t, env = self._tracker_topics()
        state = env["TOPIC_TRACKER_STATE"]
        clocks = 20_000 if cfg.quick else 100_000
        await create_topics(
            self.bootstrap,
            [t.sla, t.deadletter, *(env[k] for k in env if k.startswith("TOPIC_") and k != state)],
        )
        # The changelog as the tracker creates it (compacted, the input's partitions), created
        # first so the bench can count the state records the tracker writes from the start.
        await create_service_topics(
            TrackerSettings(kafka_bootstrap_servers=self.bootstrap),
            [state],
            partitions=PARTITIONS,
            compacted=True,
        )
        lines = self.results.tracker
        await self._fill(t, env, clocks)
        first = await raw_read(self.bootstrap, state)
        self.log(f"raw read of the changelog: {first.records:,} in {first.seconds:.2f}s")
        restored = self.service("tracker-restored", "services.tracker", t, env)
        try:
            restore = await self._restore(restored)
            second = await raw_read(self.bootstrap, state)
            self.log(f"raw read of the changelog: {second.records:,} in {second.seconds:.2f}s")
            best = max(first, second, key=lambda r: r.rate)
            ratio = restore["rate"] / best.rate if best.rate else 0.0
            lines += [
                f"Restore of {restore['records']:,.0f} state records ({clocks:,} open clocks, one "
                f"a ticket): **{restore['rate']:,.0f} records/s** ({restore['seconds']:.2f} s, "
                "the tracker's `state_restored` line) against a raw aiokafka read of the same "
                f"changelog at {first.rate:,.0f} and {second.rate:,.0f} records/s "
                f"({first.records:,} in {first.seconds:.2f} s before the restore, "
                f"{second.records:,} in {second.seconds:.2f} s after it): "
                f"**{ratio:.2f}x** of the faster (target 0.5x). Wall clock from the second "
                f"tracker's start: {restore['logged']:.1f} s until the line was written, "
                f"{restore['ready']:.1f} s until `/readyz` answered 200 after it (process "
                "start, imports, group join and restore).",
            ]
            restored_hwm = mib(restored.status_kib("VmHWM"))
            await self._lag(t, env, restored)
            hwm = mib(restored.status_kib("VmHWM"))
            if hwm is not None and restored_hwm is not None:
                lines.append(
                    f"Peak RSS (VmHWM) of the restored tracker: {restored_hwm:.0f} MiB once "
                    f"restored ({clocks:,} clocks, their states kept as read), **{hwm:.0f} MiB** "
                    f"after the lag run (target 150 MB = {150e6 / 2**20:.0f} MiB)."
                )
        finally:
            await procs.stop(restored)

    async def _fill(self, t: Topics, env: dict[str, str], clocks: int) -> None:
        """Preload the assignments and let a first tracker open every clock: its changelog
        then holds one state record per ticket."""
        now = datetime.now(UTC)
        rng = random.Random(self.cfg.seed)
        started = time.perf_counter()
        batch = [
            assignment(
                f"TRK-{i:07d}",
                now - timedelta(minutes=5),
                now + timedelta(hours=2, seconds=rng.uniform(0, 4 * 3600)),
            )
            for i in range(clocks)
        ]
        seconds = await preload(self.bootstrap, t.sla, batch)
        self.log(
            f"built {clocks:,} assignments in {time.perf_counter() - started - seconds:.1f}s,"
            f" preloaded in {seconds:.1f}s"
        )
        row = await self.measure(
            f"tracker alone: {clocks:,} assignments due hours ahead → state records",
            lambda: [self.service("tracker-fill", "services.tracker", t, env)],
            [env["TOPIC_TRACKER_STATE"]],
            t.deadletter,
            clocks,
            clocks,
        )
        if row.peak_rss_mib is not None:
            self.results.tracker.append(
                f"Peak RSS (VmHWM) of the tracker that opened the {clocks:,} clocks (every "
                f"state decoded in memory): **{row.peak_rss_mib:.0f} MiB**; it read them at "
                f"{row.rate:,.0f} assignments/s (the main table)."
            )

    async def _restore(self, child: Child) -> dict[str, float]:
        """Start to `state_restored` (written once the restore ends) and to ready."""
        started = time.perf_counter()
        deadline = started + 300
        entry = None
        while entry is None:
            if not child.alive():
                raise RuntimeError(f"{child.name} exited:\n{child.tail()}")
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{child.name}: no state_restored:\n{child.tail()}")
            await asyncio.sleep(0.05)
            entry = log_event(child.log, "state_restored")
        logged = time.perf_counter() - started
        await procs.wait_ready(child)
        ready = time.perf_counter() - started
        records, seconds = float(entry["records"]), float(entry["seconds"])
        self.log(f"restored {records:,.0f} records in {seconds:.2f}s; ready after {ready:.1f}s")
        return {
            "records": records,
            "seconds": seconds,
            "rate": records / seconds if seconds > 0 else 0.0,
            "logged": logged,
            "ready": ready,
        }

    async def _lag(self, t: Topics, env: dict[str, str], child: Child) -> None:
        """Assignments due within seconds at `--rate` a second: how late at-risk and breach
        events are, by the tracker's histogram and by a consumer of sla.events."""
        cfg = self.cfg
        seconds = 10.0 if cfg.quick else cfg.steady_seconds
        count = int(cfg.rate * seconds)
        rng = random.Random(cfg.seed + 1)
        base = time.time() + BUILD_MARGIN_SECONDS
        lags: list[float] = []
        kinds: Counter[str] = Counter()
        ids: Counter[str] = Counter()
        offset = time.time() - time.perf_counter()  # perf_counter -> wall clock

        def on_event(record: ConsumerRecord[Any, Any], now: float) -> None:
            event = orjson.loads(record.value)
            kind = event["type"].rsplit(".", 1)[-1]
            kinds[kind] += 1
            ids[event["id"]] += 1
            if kind in ("at_risk", "breached"):
                moment = datetime.fromisoformat(event["data"]["occurred_at"]).timestamp()
                lags.append(max(0.0, now + offset - moment))

        planned = []
        for i in range(count):
            send_at = base + i / cfg.rate
            start = datetime.fromtimestamp(send_at - STARTED_BEFORE_SEND, UTC)
            due = datetime.fromtimestamp(send_at + rng.uniform(*DUE_AFTER_SEND), UTC)
            planned.append(assignment(f"TRK-LAG-{i:06d}", start, due))
        counter = OutputCounter(self.bootstrap, [env["TOPIC_SLA_EVENTS"]], on_event, 5)
        await counter.start()
        p = producer(self.bootstrap)
        await p.start()
        try:
            before = await procs.histogram(child, LAG_HISTOGRAM)
            cpu0 = child.cpu_seconds() or 0.0
            await asyncio.sleep(max(0.0, base - time.time()))
            self.log(f"tracker: {count:,} assignments at {cfg.rate:.0f}/s, due within 20 s")
            sent_from = time.perf_counter()
            acked: dict[tuple[str, int], float] = {}
            await self._send(p, t.sla, planned, cfg.rate, acked)
            behind = time.perf_counter() - sent_from - count / cfg.rate
            expected = 2 * count
            await counter.wait_for(expected, STALL_SECONDS, DUE_AFTER_SEND[1] + 60)
            elapsed = time.perf_counter() - sent_from
            cpu = (child.cpu_seconds() or 0.0) - cpu0
            after = await procs.histogram(child, LAG_HISTOGRAM)
        finally:
            await p.stop()
            await counter.stop()
        lags.sort()
        repeated = sum(n - 1 for n in ids.values() if n > 1)
        received = kinds["at_risk"] + kinds["breached"]
        self.results.tracker += [
            f"Timer lag, {count:,} assignments at {cfg.rate:.0f}/s for {seconds:.0f} s on the "
            f"restored tracker (each at risk and breached 3.5 to 20 s after it was sent; "
            f"sending ended {behind:.2f} s behind schedule): {received:,} of {expected:,} "
            f"at-risk and breach events received, {repeated} repeated; by a consumer of "
            f"`sla.events` (received minus `occurred_at`): p50 "
            f"{percentile(lags, 0.5):.0f} ms, p95 {percentile(lags, 0.95):.0f} ms, "
            f"**p99 {percentile(lags, 0.99):.0f} ms**, max "
            f"{1000 * lags[-1] if lags else float('nan'):.0f} ms (target p99 1 s); "
            f"by the tracker's `{LAG_HISTOGRAM}`: p50 {bucket_bound(before, after, 0.5)}, "
            f"p99 {bucket_bound(before, after, 0.99)}. The tracker used "
            f"{100 * cpu / elapsed:.0f}% of a core over the {elapsed:.0f} s.",
        ]
