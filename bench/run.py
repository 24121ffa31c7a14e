"""`make bench`: throughput and latency of both services on a fresh embedded broker, against
raw aiokafka baselines, printed as a markdown table.

Phases (each on its own topics and consumer groups, all on one Tansu broker, 6 partitions):

1. preload N generated tickets (bench/generate.py) into `pre.tickets.incoming`;
2. raw baseline 1 in / 1 out on them, then the enricher alone on them (its output,
   `enr.tickets.enriched`, is the router's input from then on);
3. raw baseline 1 in / 2 out on the enriched tickets, then the router alone on them;
4. end to end: both services on N preloaded tickets (sustained throughput), then fresh
   instances at a steady rate (latency from the producer's ack to `sla.ownership`, RSS
   sampled every 10 s; `--soak` makes it a soak) followed by a burst;
5. scale-out: two router instances in one consumer group on the enriched tickets; then the
   tracker with 100,000 open clocks: restore, peak RSS, timer lag (bench/phases/tracker.py);
6. rounds 2..N (`--rounds`): phases 2 and 3 again with the one-send baselines, each round on
   its own topics, for the median of each service's ratio to its raw loop.

Throughput counts outputs with the bench's own consumer (never end offsets) and is taken
from the first output to the last, so start-up and the group join are not in it.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import re
import shutil
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from bench import procs
from bench.kafka import create_topics
from bench.load import busy_cores, wait_quiet
from bench.phases.reload import ReloadPhase
from bench.phases.scaling import ScalingPhase
from bench.phases.throughput import ThroughputPhases
from bench.phases.tracker import TrackerPhase
from bench.phases.whatif import WhatIfPhase
from bench.report import code_fingerprint, code_version, machine, table
from bench.results import (
    BASELINE_1TO1,
    BASELINE_1TO2,
    DEFAULT_PHASES,
    PHASES,
    ROOT,
    Config,
    Results,
    Round,
)
from services.runtime.embedded import EmbeddedBroker

# Each raw baseline three ways, as (record_batches, validate): one `send` per record, one record
# batch per partition, and record batches with each input validated.
BASELINE_VARIANTS = ((False, False), (True, False), (True, True))


class Bench(ThroughputPhases, ScalingPhase, WhatIfPhase, ReloadPhase, TrackerPhase):
    """Every phase, run in the order of the module docstring."""

    async def run(self) -> Results:
        cfg = self.cfg
        phases = cfg.phases
        await self.prepare()
        needs_enriched = bool(phases & {"router", "scaleout", "baseline", "whatif"})
        if "baseline" in phases:
            for record_batches, validate in BASELINE_VARIANTS:
                await self.baseline_1to1(record_batches, validate)
        if "enricher" in phases or needs_enriched:
            await self.enricher()
        if not self.enriched_ready and needs_enriched:
            raise RuntimeError("the enricher did not produce every enriched ticket")
        if "baseline" in phases:
            for record_batches, validate in BASELINE_VARIANTS:
                await self.baseline_1to2(record_batches, validate)
        later: tuple[tuple[str, Callable[[], Awaitable[object]]], ...] = (
            ("router", self.router),
            ("e2e", self.end_to_end),
            ("latency", self.latency),
            ("rawlatency", self.raw_latency),
            ("scaleout", self.scaleout),
            ("tracker", self.tracker),
            ("whatif", self.whatif),
            ("reload", self.reload),
        )
        for phase, run in later:
            if phase in phases:
                await run()
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
        help=f"comma-separated subset of {','.join(PHASES)} (default: all but whatif, reload)",
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
