"""CPU used on the machine during a measurement: by the measured processes, by the broker,
and by work that is not the bench's (which makes the numbers noisy)."""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench.procs import Child


def busy_seconds() -> float:
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(x) for x in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class Noise:
    """Cores used during a phase by processes other than the bench, its broker and children."""

    def __init__(self, broker_pid: int) -> None:
        self._broker = broker_pid
        self._start = (time.monotonic(), busy_seconds(), self._ours())

    def _ours(self) -> float:
        return time.process_time() + (pid_cpu(self._broker) or 0.0)

    def foreign_cores(self, children_cpu: float) -> float:
        t0, busy0, ours0 = self._start
        elapsed = time.monotonic() - t0
        foreign = (busy_seconds() - busy0) - (self._ours() - ours0) - children_cpu
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
        broker = pid_cpu(self._broker) or 0.0
        return time.perf_counter(), busy_seconds(), children, broker, time.process_time()

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


def pid_cpu(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def busy_cores(window: float = 3.0) -> float:
    """Cores busy on the machine over `window` seconds (the bench itself is idle)."""
    t0, b0 = time.monotonic(), busy_seconds()
    time.sleep(window)
    return (busy_seconds() - b0) / (time.monotonic() - t0)


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
