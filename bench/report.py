"""The markdown report: the machine and commit measured, the throughput and latency tables,
the rounds."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import os
import platform
import statistics
import subprocess
from collections.abc import Sequence
from pathlib import Path

from bench.results import ROOT, Config, Results, Round, Row


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


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True
    ).stdout.strip()


def code_version() -> str:
    """The commit measured, and whether the working tree differs from it (read-only git)."""
    try:
        head = _git("rev-parse", "--short", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no", "services", "schemas")
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
    if results.tracker:
        out += ["", "Tracker (restore, memory, timer lag):", ""]
        out += [f"- {line}" for line in results.tracker]
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
