"""The bench's configuration, its constants and what it measures: rows of the throughput
table, latency rows, rounds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PHASES = (
    "baseline",
    "enricher",
    "router",
    "e2e",
    "latency",
    "rawlatency",
    "scaleout",
    "tracker",
    "whatif",
    "reload",
)
OPT_IN_PHASES = ("whatif", "reload")
DEFAULT_PHASES = tuple(p for p in PHASES if p not in OPT_IN_PHASES)
STALL_SECONDS = 45.0
BASELINE_1TO1 = "raw aiokafka 1 in / 1 out"
BASELINE_1TO2 = "raw aiokafka 1 in / 2 out"
RECORD_BATCHES = ", record batches"
# The record-batch loop that also validates its input with the contract's pydantic model.
VALIDATED = RECORD_BATCHES + ", contract validation"


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
    tracker: list[str] = field(default_factory=list)  # the tracker phase's findings

    def by_name(self, prefix: str) -> Row | None:
        return next((r for r in self.rows if r.name.startswith(prefix)), None)


def percentile(ordered: Sequence[float], q: float) -> float:
    """In milliseconds, from sorted seconds (nearest rank)."""
    if not ordered:
        return float("nan")
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]
