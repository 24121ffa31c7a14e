"""What the outputs of a running `System` say about a set of ticket revisions: every one
routed and assigned, none decided twice differently (duplicates carry the same `decision_id`
and are allowed: delivery is at least once, README "Delivery, duplicates and order")."""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from tests.support.processes import System


def values(system: System, topic: str) -> list[dict[str, Any]]:
    return [json.loads(r.value) for r in system.outputs[topic]]


def route_messages(system: System) -> list[tuple[str, dict[str, Any]]]:
    """(topic, decision) of every message on a route topic."""
    found = []
    for name, records in list(system.outputs.items()):
        if name.startswith(("queue.", "collab.")):
            found += [(name, json.loads(r.value)["data"]["decision"]) for r in records]
    return found


@dataclass
class Audit:
    """What the outputs say about a set of expected (ticket_id, revision) pairs."""

    expected: set[tuple[str, int]]
    routed: set[tuple[str, int]]
    sla: set[tuple[str, int]]
    conflicts: dict[tuple[str, int], set[str]]
    duplicate_deliveries: int

    @property
    def lost(self) -> set[tuple[str, int]]:
        return self.expected - (self.routed & self.sla)

    def ok(self) -> bool:
        return not self.lost and not self.conflicts


def _signature(d: dict[str, Any], keys: tuple[str, ...]) -> str:
    return json.dumps({k: d.get(k) for k in keys}, sort_keys=True)


_ROUTE_KEYS = ("decision_id", "route", "topic", "rule", "owner", "response_due_at", "clock_start")
_SLA_KEYS = ("decision_id", "owner", "clock", "clock_start", "response_due_at", "basis")


def audit(system: System, expected: set[tuple[str, int]]) -> Audit:
    """One decision per ticket revision once duplicates (same decision_id) are dropped; no
    revision with two different decisions; every expected revision on a route topic and on
    sla.ownership."""
    tickets = {tid for tid, _ in expected}
    route_sigs: dict[tuple[str, int], set[str]] = defaultdict(set)
    sla_sigs: dict[tuple[str, int], set[str]] = defaultdict(set)
    deliveries = 0
    for name, decision in route_messages(system):
        if decision["ticket_id"] not in tickets:
            continue
        assert decision["topic"] == name, (decision["topic"], name)
        route_sigs[(decision["ticket_id"], decision["revision"])].add(
            _signature(decision, _ROUTE_KEYS)
        )
        deliveries += 1
    for event in values(system, "sla.ownership"):
        data = event["data"]
        if data["ticket_id"] in tickets:
            sla_sigs[(data["ticket_id"], data["revision"])].add(_signature(data, _SLA_KEYS))
    conflicts = {
        rev: route_sigs.get(rev, set()) | sla_sigs.get(rev, set())
        for rev in set(route_sigs) | set(sla_sigs)
        if len(route_sigs.get(rev, ())) > 1
        or len(sla_sigs.get(rev, ())) > 1
        or len({json.loads(sig)["decision_id"] for sig in route_sigs[rev] | sla_sigs[rev]}) > 1
    }
    routed = set(route_sigs)
    return Audit(expected, routed, set(sla_sigs), conflicts, deliveries - len(routed))


async def wait_all_routed(
    system: System, expected: set[tuple[str, int]], timeout: float, what: str
) -> Audit:
    deadline = time.monotonic() + timeout
    while True:
        result = audit(system, expected)
        if not result.lost:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{what}: {len(result.lost)} of {len(expected)} ticket revisions not routed "
                f"within {timeout}s, e.g. {sorted(result.lost)[:5]}\n"
                f"--- enricher:\n{system.enricher.logs()}\n--- router:\n{system.router.logs()}"
            )
        await asyncio.sleep(0.25)
