"""py-spy profiles of the services under load, and where their samples go.

`record(child, path)` attaches `py-spy record --format raw` (collapsed stacks, one line per
distinct stack with its sample count) to a running process; `hot_spots(path)` reads such a
file and gives, per function, the share of samples in which it is on the stack (inclusive) and
at the top of the stack (self). Also `python -m bench.profile FILE.txt [--top N]`.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.procs import Child, spawn

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
_SITE = ("site-packages/", "lib/python3")


def py_spy() -> str | None:
    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


def record(child: Child, path: Path, rate: int = 100) -> Child | None:
    """Start sampling `child` into `path` until the returned process gets SIGINT."""
    exe = py_spy()
    if exe is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    argv = [exe, "record", "--pid", str(child.pid), "--rate", str(rate), "--format", "raw"]
    # Blocking (py-spy pauses the process for each sample): slower, but no torn stacks.
    argv += ["--output", str(path), "--function"]
    return spawn(f"py-spy:{child.name}", argv, path.with_suffix(".log"))


def _short(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    file = match["file"]
    for marker in _SITE:
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    file = file.split("/work/main/", 1)[-1]
    return f"{match['func']} ({file})"


# Where a sample goes: the first frame, from the top of the stack down, that one of these
# recognises. Order matters within a frame only.
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "logging (structlog, stdlib logging)",
        ("structlog/", "logging/__init__", "services/runtime/logs.py"),
    ),
    ("metrics (prometheus_client)", ("prometheus_client/",)),
    (
        "parse + validate input (pydantic model_validate_json)",
        ("model_validate_json", "parse (services/runtime/events.py"),
    ),
    (
        "serialise output (events.encode: pydantic to_json + orjson)",
        ("encode (services/runtime/events.py",),
    ),
    (
        "build models (pydantic BaseModel.__init__, model_copy, ...)",
        ("pydantic/main.py", "pydantic/_internal"),
    ),
    ("ids (uuid4, uuid5)", ("schemas/ids.py", "derived_id", "decision_id")),
    (
        "publish (FastStream publish + aiokafka producer)",
        (
            "faststream/_internal/broker/pub",
            "faststream/kafka/publisher",
            "KafkaBroker.publish",
            "publisher.<locals>",
            "aiokafka/producer",
            "aiokafka/partitioner",
            "aiokafka/record",
        ),
    ),
    (
        "consume (aiokafka fetcher/consumer, FastStream parser)",
        (
            "aiokafka/consumer",
            "faststream/kafka/parser",
            "faststream/kafka/message",
            "_tolerant_parser",
            "_records_decoder",
            "aiokafka/protocol",
        ),
    ),
    (
        "SLA targets, durations, due times (sla.py, catalog.py, holidays)",
        ("services/businesstime.py", "holidays/", "zoneinfo", "schemas/catalog.py"),
    ),
    (
        "service logic (enrich, policy, outputs, app; the baselines' transform)",
        ("services/enricher/", "services/router/", "schemas/", "bench/baseline.py"),
    ),
    (
        "batch loop + framework (pipeline, FastStream, fast_depends)",
        ("services/runtime/", "faststream/", "fast_depends/"),
    ),
    (
        "network I/O (aiokafka conn, asyncio transports)",
        (
            "aiokafka/conn",
            "aiokafka/client",
            "asyncio/selector_events",
            "asyncio/streams",
            "selectors.py",
        ),
    ),
    ("asyncio scheduling", ("asyncio/",)),
)


def categorise(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, markers in CATEGORIES:
            if any(m in frame for m in markers):
                return name
    return "other"


@dataclass(frozen=True)
class HotSpots:
    samples: int
    inclusive: list[tuple[str, float]]
    own: list[tuple[str, float]]
    categories: list[tuple[str, float]]


def hot_spots(path: Path, top: int = 25) -> HotSpots:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(f) for f in stack.split(";") if "(" in f]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        categories[categorise(frames)] += count
        for frame in set(frames):
            if any(code in frame for code in ("services/", "schemas/")):
                inclusive[frame] += count
    if not total:
        return HotSpots(0, [], [], [])

    def share(c: Counter[str]) -> list[tuple[str, float]]:
        return [(f, 100.0 * n / total) for f, n in c.most_common(top)]

    return HotSpots(total, share(inclusive), share(own), share(categories))


def report(name: str, spots: HotSpots) -> str:
    lines = [f"### {name}: {spots.samples} samples", "", "| % of samples | where |", "|--:|--|"]
    lines += [f"| {pct:5.1f} | {category} |" for category, pct in spots.categories]
    lines += ["", "| inclusive % | project function |", "|--:|--|"]
    lines += [f"| {pct:5.1f} | `{func}` |" for func, pct in spots.inclusive]
    lines += ["", "| self % | function |", "|--:|--|"]
    lines += [f"| {pct:5.1f} | `{func}` |" for func, pct in spots.own]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="hot spots of a py-spy raw profile")
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    for file in args.files:
        print(report(file.stem, hot_spots(file, args.top)))
        print()


if __name__ == "__main__":
    main()
