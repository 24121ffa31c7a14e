"""Crashes: both services SIGKILLed at random moments during a 10,000-ticket stream, and
restarted, several times. At least once delivery means duplicates are allowed (and dropped by
`decision_id`); a lost ticket revision, or two different decisions for one, is a failure."""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.checks import wait_all_routed
from tests.support.processes import ServiceProcess, System, send_paced
from tests.support.tickets import Ref, component, ticket_event, updated

pytestmark = pytest.mark.integration  # every test here runs on the embedded broker

TICKETS = 10_000
KILLS_PER_SERVICE = 3
SEED = int(os.environ.get("FAULTS_SEED", "20261124"))
REFS = Ref.every()


def ticket_stream(n: int, rng: random.Random) -> list[dict[str, Any]]:
    """n tickets over every rule, about 15% updated once and 5% twice. Each update follows
    its ticket's earlier revisions in the stream (same key, same partition, in order)."""
    events: list[dict[str, Any]] = []
    updates: list[tuple[int, dict[str, Any]]] = []
    for i in range(n):
        event = ticket_event(
            components=[component(rng.choice(REFS), True, rng.choice([None, False, True]))],
            severity=rng.randint(1, 4),
            needs_vendor_expertise=rng.random() < 0.3,
            customer={"support_level": rng.choice(["premium", "standard"])},
        )
        events.append(event)
        revisions = 1 + (rng.random() < 0.15) + (rng.random() < 0.05)
        position = i
        for revision in range(2, revisions + 1):
            later = updated(event, revision, f"2026-11-{24 + revision}T1{revision}:00:00+00:00")
            # Updates arrive later in the stream, a few hundred events behind, in revision
            # order (an older revision after a newer one is stale and rightly not routed).
            position += rng.randint(50, 400)
            updates.append((position, later))
    updates.sort(key=lambda pair: pair[0])
    merged: list[dict[str, Any]] = []
    u = 0
    for i, event in enumerate(events):
        merged.append(event)
        while u < len(updates) and updates[u][0] <= i:
            merged.append(updates[u][1])
            u += 1
    merged += [e for _, e in updates[u:]]
    return merged


async def _busy(count: Callable[[], int], within: float) -> bool:
    """Wait (up to `within` s) until the output count grows between two looks 50 ms apart:
    the service is publishing a batch right now."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        before = count()
        await asyncio.sleep(0.05)
        if count() > before:
            return True
    return False


async def _killer(
    targets: list[tuple[ServiceProcess, Callable[[], int]]],
    moments: list[float],
    log: list[tuple[float, str, bool]],
) -> None:
    """At each moment (seconds from now) SIGKILL the next service in turn, preferably while
    it is publishing (a kill between publishing and committing is the one that matters), and
    restart it at once as a supervisor would. A service is killed again only once ready."""
    started = time.monotonic()
    for n, moment in enumerate(moments):
        service, outputs = targets[n % len(targets)]
        await asyncio.sleep(max(0.0, started + moment - time.monotonic()))
        await asyncio.to_thread(service.wait_ready, 90)
        busy = await _busy(outputs, within=3.0)
        service.kill()
        log.append((round(time.monotonic() - started, 1), service.module, busy))
        service.start()
    for service, _ in targets:
        await asyncio.to_thread(service.wait_ready, 90)


async def test_sigkill_at_random_moments_loses_nothing(faults: System) -> None:
    rng = random.Random(SEED)
    events = ticket_stream(TICKETS, rng)
    expected = {(e["data"]["ticket_id"], e["data"]["revision"]) for e in events}
    assert len(expected) == len(events) > TICKETS
    # Paced at ~1,000 events/s: the stream lasts ~12 s. A restarted service takes ~10 s to
    # rejoin its group on Tansu, so a backlog builds and the kills (one every ~4 s, jittered,
    # alternating services; a service is only killed again once it is ready) mostly land while
    # the services work through it, often mid-batch.
    chunk, pause = 200, 0.2
    kills = KILLS_PER_SERVICE * 2
    moments = [k * 4.0 + rng.uniform(0.5, 3.0) for k in range(kills)]
    killed: list[tuple[float, str, bool]] = []
    targets = [
        (faults.router, lambda: len(faults.outputs["sla.ownership"])),
        (faults.enricher, lambda: len(faults.outputs["tickets.enriched"])),
    ]
    killer = asyncio.create_task(_killer(targets, moments, killed))
    await send_paced(faults.producer, events, chunk=chunk, pause=pause)
    await asyncio.wait_for(killer, timeout=240)
    result = await wait_all_routed(faults, expected, 180, "after SIGKILLs")

    assert len(killed) == kills, killed
    assert any(busy for _, _, busy in killed), "no kill landed while a service was publishing"
    assert faults.router.starts == faults.enricher.starts == KILLS_PER_SERVICE + 1
    assert not result.lost
    assert not result.conflicts, list(result.conflicts.items())[:3]
    assert result.routed == result.sla == expected
    mine = {tid for tid, _ in expected}
    dead = [r for r in faults.outputs["tickets.deadletter"] if r.key.decode() in mine]
    assert not dead, dead[:3]
    ids = {e["id"] for e in events}
    enriched = Counter(
        json.loads(r.value)["data"]["event"]["id"] for r in faults.outputs["tickets.enriched"]
    )
    repeats = sum(n - 1 for i, n in enriched.items() if i in ids)
    print(
        f"\ncrashes: {len(events)} events ({len(expected) - TICKETS} updates); SIGKILLs at "
        f"(s, service, while publishing) {killed}; {repeats} events enriched again after "
        f"enricher kills (the router drops those it still remembers); "
        f"{result.duplicate_deliveries} repeated route messages after router kills (same "
        "decision_id); lost 0"
    )
