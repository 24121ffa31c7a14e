"""Two tracker processes in one consumer group, on the embedded broker: the second joins while
clocks are running, the partitions are split between them (the newcomer restoring the moved
ones from the changelog), then the first stops and the second takes everything. Each clock's
at-risk and breach events are published once (docs/state.md): partitions move only between
batches and timer ticks, and a tracker forgets the clocks of a partition it gives up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from services.runtime.embedded import EmbeddedBroker
from tests.support.processes import ServiceProcess, consumer_from_start, http_get, service_env
from tests.support.tracker_stack import assignment

pytestmark = pytest.mark.integration

TICKETS = 30
PARTITIONS = 6  # the topics' default partition count (TOPIC_PARTITIONS)


def published_moments(port: int) -> int:
    """At-risk and breach events a tracker has published, from its /metrics."""
    text = http_get(port, "/metrics")[1]
    found = re.findall(
        r'^ticketroute_sla_events_total\{type="(?:at_risk|breached)"\} ([0-9.]+)$', text, re.M
    )
    return int(sum(float(count) for count in found))


@contextlib.asynccontextmanager
async def sla_events(
    bootstrap: str, into: list[tuple[dict[str, Any], datetime]]
) -> AsyncIterator[None]:
    """Everything published on sla.events, with the time the broker logged it, collected into
    `into` meanwhile."""
    consumer = consumer_from_start(bootstrap, "sla.events")
    await consumer.start()

    async def collect() -> None:
        async for record in consumer:
            logged = datetime.fromtimestamp(record.timestamp / 1000, UTC)
            into.append((json.loads(record.value or b"{}"), logged))

    collecting = asyncio.create_task(collect())
    try:
        yield
    finally:
        collecting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await collecting
        await consumer.stop()


async def until(condition: Any, timeout: float, what: str, *logs: ServiceProcess) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}\n" + "\n".join(p.logs() for p in logs))
        await asyncio.sleep(0.1)


async def test_two_trackers_in_one_group_publish_each_clock_event_once(
    embedded_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    bootstrap = embedded_broker.bootstrap_servers
    env = service_env(bootstrap, uuid.uuid4().hex[:8])
    env["TRACKER_GROUP_ID"] = f"tracker-{uuid.uuid4().hex[:8]}"
    first = ServiceProcess("services.tracker", env, tmp_path / "tracker-a.log")
    second = ServiceProcess("services.tracker", env, tmp_path / "tracker-b.log")
    events: list[tuple[dict[str, Any], datetime]] = []
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        first.start().wait_ready()
        # The first tracker owns every partition before any clock exists.
        await until(lambda: first.events("state_restored"), 30, "first assignment", first)
        assert first.events("state_restored")[0]["partitions"] == list(range(PARTITIONS))
        await producer.start()
        async with sla_events(bootstrap, events):
            now = datetime.now(UTC)
            tickets = [f"T-g{i:02d}-{uuid.uuid4().hex[:6]}" for i in range(TICKETS)]
            for i, ticket_id in enumerate(tickets):
                # Red Hat, 24x7 from now, due 8 to 20 s from now (spread evenly): at risk at
                # three quarters, 6 to 15 s from now. Five tickets on each partition.
                due = now + timedelta(seconds=8 + 12 * i / (TICKETS - 1))
                sent = assignment(ticket_id, clock_start=now, due=due)
                await producer.send_and_wait(
                    "sla.ownership",
                    json.dumps(sent).encode(),
                    key=ticket_id.encode(),
                    partition=i % PARTITIONS,
                )

            # The second joins while the clocks run: the group splits the partitions and it
            # restores the ones that moved from the changelog.
            second.start().wait_ready()
            await until(
                lambda: second.events("state_restored") and len(first.events("state_restored")) > 1,
                30,
                "the rebalance",
                first,
                second,
            )
            moved = second.events("state_restored")[0]
            assert 0 < len(moved["partitions"]) < PARTITIONS
            assert moved["records"] >= 5 * len(moved["partitions"])  # each ticket's state
            # The first kept the others: it gave up all, then restored the ones it was given.
            kept = first.events("state_restored")[-1]["partitions"]
            assert sorted(kept + moved["partitions"]) == list(range(PARTITIONS))

            # Halfway through the moments (and once the first has published some of them,
            # should the rebalance have been slow), the first stops; the second takes all.
            halfway = now + timedelta(seconds=12)
            await until(
                lambda: datetime.now(UTC) >= halfway and published_moments(first.port) > 0,
                20,
                "the first tracker's share",
                first,
            )
            by_first = published_moments(first.port)
            first.stop()
            assert first.process is not None
            assert first.process.returncode == 0, first.logs()

            await until(
                lambda: len({e["id"] for e, _ in events if e["subject"] in tickets}) >= 2 * TICKETS,
                30,
                "every at-risk and breach event",
                second,
            )
            await asyncio.sleep(3)  # anything published twice would come by now
            mine = [(e, logged) for e, logged in events if e["subject"] in tickets]

        by_second = published_moments(second.port)
        # The second restored the first's partitions once it was gone.
        assert set(kept) <= set(second.events("state_restored")[-1]["partitions"])
    finally:
        await producer.stop()
        first.stop()
        second.stop()

    ids = Counter(e["id"] for e, _ in mine)
    repeated = {event_id: n for event_id, n in ids.items() if n > 1}
    assert repeated == {}, [e for e, _ in mine if e["id"] in repeated]
    kinds = Counter((e["subject"], e["type"]) for e, _ in mine)
    assert kinds == Counter(
        {(t, f"support.sla.{kind}"): 1 for t in tickets for kind in ("at_risk", "breached")}
    )
    # None before its moment (the broker's log time has millisecond precision).
    for e, logged in mine:
        moment = datetime.fromisoformat(e["data"]["occurred_at"])
        assert logged >= moment.replace(microsecond=moment.microsecond // 1000 * 1000), e
    # Both published some. The first's count was read just before it was stopped (a tick in
    # hand then still finishes), the second's at the end: together at most one of each.
    assert by_first > 0
    assert by_second > 0
    assert by_first + by_second <= 2 * TICKETS, (by_first, by_second)
