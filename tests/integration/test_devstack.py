"""`make run` as a user sees it through a pipe: the three services start, every sample ticket's
decision is printed, and SLA lifecycle events are printed as their moments come, each line
when it happens rather than at exit (README, "The two commands")."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.tickets import sample_events
from ticketroute.devstack import LIVE_RESPONSES, LIVE_TICKETS

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
# ticket, revision, label ("redhat-component", "sla at_risk", "response accepted"), topic, who,
# then the rest (due time and what happened).
ROW = re.compile(
    r"^\s*(?P<ticket>\S+) r(?P<revision>\d+)\s+(?P<label>\S+(?: \S+)?)\s+-> (?P<topic>\S+)"
    r"\s+(?P<who>\S+)\s+(?P<rest>.*)$"
)
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
# The contract's 2 s from a moment to its event, plus the tracker's and our consumer's polls.
PRINTED_WITHIN = timedelta(seconds=5)


@dataclass(frozen=True)
class Line:
    read_at: datetime
    """Wall clock when the line came out of the pipe."""
    text: str

    def row(self) -> dict[str, str] | None:
        match = ROW.match(self.text)
        return match.groupdict() if match else None

    def moments(self) -> list[datetime]:
        return [datetime.fromisoformat(t) for t in TIMESTAMP.findall(self.text)]


class Devstack:
    """`python -m ticketroute.devstack` with its stdout a pipe, read line by line as it comes."""

    def __init__(self, run_dir: Path) -> None:
        env = {k: v for k, v in os.environ.items() if k not in {"KAFKA_BOOTSTRAP_SERVERS"}}
        env.pop("PYTHONUNBUFFERED", None)  # the devstack must line-buffer by itself
        env |= {"METRICS_PORT_AUTO": "1", "TICKETROUTE_RUN_DIR": str(run_dir)}
        self.stderr = run_dir / "devstack.stderr"
        with self.stderr.open("wb") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ticketroute.devstack"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        self.lines: list[Line] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for text in self.process.stdout:
            self.lines.append(Line(datetime.now(UTC), text.rstrip("\n")))

    def rows(self, label: str | None = None) -> Iterator[tuple[Line, dict[str, str]]]:
        for line in list(self.lines):
            row = line.row()
            if row is not None and (label is None or row["label"] == label):
                yield line, row

    def decisions(self) -> Iterator[dict[str, str]]:
        """Rows of routing decisions: their label is the rule."""
        for _, row in self.rows():
            if not row["label"].startswith(("sla ", "response ")):
                yield row

    def wait_for(self, what: str, done: Callable[[], bool], deadline: float) -> None:
        while not done():
            if time.monotonic() > deadline or self.process.poll() is not None:
                output = "\n".join(line.text for line in self.lines)
                raise AssertionError(
                    f"waited for {what}; output so far:\n{output}\n{self.stderr.read_text()}"
                )
            time.sleep(0.1)

    def stop(self, grace: float) -> int:
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=grace)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self._reader.join(timeout=5)


@pytest.fixture
def devstack(tmp_path: Path) -> Iterator[Devstack]:
    stack = Devstack(tmp_path)
    try:
        yield stack
    finally:
        if stack.process.poll() is None:
            stack.stop(grace=60)


def one(devstack: Devstack, ticket: str, label: str, who: str) -> Line:
    lines = [
        line for line, row in devstack.rows(label) if row["ticket"] == ticket and row["who"] == who
    ]
    assert len(lines) == 1, (ticket, label, who, [line.text for line in devstack.lines])
    return lines[0]


def test_make_run_shows_decisions_and_sla_lifecycle_as_they_happen(devstack: Devstack) -> None:
    started = time.monotonic()
    deadline = started + 80
    live_ids = {live.ticket_id for live in LIVE_TICKETS}
    routed = {(e["data"]["ticket_id"], str(e["data"]["revision"])) for e in sample_events()}
    routed |= {(ticket_id, "1") for ticket_id in live_ids}

    devstack.wait_for(
        "the three services",
        lambda: sum(" ready on :" in line.text for line in devstack.lines) == 3,
        deadline,
    )

    def decisions() -> set[tuple[str, str]]:
        return {(row["ticket"], row["revision"]) for row in devstack.decisions()}

    devstack.wait_for("every sample's decision", lambda: decisions() >= routed, deadline)
    assert decisions() == routed

    # The last live moment: 04020002 breaches 35 s after the tickets are published.
    def breached_live() -> bool:
        return any(row["ticket"] == "04020002" for _, row in devstack.rows("sla breached"))

    devstack.wait_for("the live breach", breached_live, deadline)
    devstack.wait_for(  # the last response comes 25 s after publishing, before that breach
        "every completion",
        lambda: len(list(devstack.rows("sla completed"))) == len(LIVE_RESPONSES),
        deadline,
    )
    seconds_to_last_event = time.monotonic() - started

    # Each live copy is routed by the same rule as the sample it copies.
    rules = {row["ticket"]: row["label"] for row in devstack.decisions() if row["revision"] == "1"}
    assert {live.ticket_id: rules[live.ticket_id] for live in LIVE_TICKETS} == {
        live.ticket_id: rules[live.like] for live in LIVE_TICKETS
    }

    # Live moments are printed when they come: not before, and within a few seconds.
    at_risk = one(devstack, "04020001", "sla at_risk", "owner=redhat")
    breached = one(devstack, "04020002", "sla breached", "owner=redhat")
    for line, moment in ((at_risk, at_risk.moments()[1]), (breached, breached.moments()[0])):
        assert moment <= line.read_at <= moment + PRINTED_WITHIN, line
    # 04020002's at-risk moment had passed when it was assigned: printed at once, before.
    early = one(devstack, "04020002", "sla at_risk", "owner=redhat")
    assert early.read_at < breached.read_at - timedelta(seconds=20)

    # The three responses, each printed when published, complete their clocks in time.
    responses = {
        (row["ticket"], row["topic"])
        for _, row in devstack.rows()
        if row["label"].startswith("response ")
    }
    assert responses == {(r.ticket_id, r.topic) for r in LIVE_RESPONSES}
    completed = {
        (row["ticket"], row["who"]): row["rest"].split(": ", 1)[1]
        for _, row in devstack.rows("sla completed")
    }
    assert completed == {
        ("04020001", "owner=redhat"): "met, elapsed PT45M10S",
        ("04020003", "owner=pure-storage"): "met, elapsed PT5M5S",
        ("04020004", "collab=infinidat"): "met, elapsed PT20M5S",
    }

    # The bundled samples' clocks ran out long ago: caught up at once, at risk before breached,
    # and the first revision of 04012873 cancelled by the second.
    catch_up = one(devstack, "04013502", "sla at_risk", "owner=redhat")
    assert catch_up.read_at < one(devstack, "04013502", "sla breached", "owner=redhat").read_at
    cancelled = [row for _, row in devstack.rows("sla cancelled")]
    assert [(row["ticket"], row["revision"]) for row in cancelled] == [("04012873", "1")]
    assert cancelled[0]["rest"].endswith("superseded by r2")
    # No live clock fired anything it should not have (04020001 was answered before its due).
    live_events = [
        (row["ticket"], row["label"], row["who"])
        for _, row in devstack.rows()
        if row["ticket"] in live_ids and row["label"].startswith("sla ")
    ]
    assert sorted(live_events) == sorted(
        [
            ("04020001", "sla at_risk", "owner=redhat"),
            ("04020001", "sla completed", "owner=redhat"),
            ("04020002", "sla at_risk", "owner=redhat"),
            ("04020002", "sla breached", "owner=redhat"),
            ("04020003", "sla completed", "owner=pure-storage"),
            ("04020004", "sla completed", "collab=infinidat"),
        ]
    )

    stopping = time.monotonic()
    assert devstack.stop(grace=45) == 0, devstack.stderr.read_text()
    assert devstack.lines[-1].text.startswith("stopping:")
    print(
        f"last event after {seconds_to_last_event:.1f} s, stopped in "
        f"{time.monotonic() - stopping:.1f} s"
    )
