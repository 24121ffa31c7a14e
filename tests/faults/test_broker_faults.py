"""Broker faults: the broker hangs (SIGSTOP longer than the session timeout, then SIGCONT), and
the broker is absent when the services start. Never a broker kill: Tansu comes back empty."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from pathlib import Path

import pytest

from services.runtime.embedded import EmbeddedBroker, free_port
from tests.support.checks import wait_all_routed
from tests.support.processes import (
    ServiceProcess,
    System,
    consumer_from_start,
    make_producer,
    poll,
    send_all,
    service_env,
)
from tests.support.tickets import Ref, component, ticket_event

pytestmark = pytest.mark.integration  # every test here runs on the embedded broker

SESSION_TIMEOUT_S = 6.0  # service_env's SESSION_TIMEOUT_MS
# Readiness is probed every 5 s with a 5 s ping timeout: 503 shows within ~10 s of a hang.
FREEZE_S = 14.0


class ReadyzPoller:
    """Polls /readyz of some services from a thread; records (monotonic time, status)."""

    def __init__(self, services: list[ServiceProcess], every: float = 0.2) -> None:
        self.samples: dict[str, list[tuple[float, int | None]]] = {s.module: [] for s in services}
        self._services = services
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for service in self._services:
                self.samples[service.module].append(
                    (time.monotonic(), poll(service.port, "/readyz"))
                )
            self._stop.wait(self._every)

    def __enter__(self) -> ReadyzPoller:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def between(self, module: str, start: float, end: float) -> list[int | None]:
        return [status for t, status in self.samples[module] if start <= t <= end]


def _tickets(n: int) -> list[dict]:
    return [
        ticket_event(components=[component(Ref.NETAPP if i % 2 else Ref.PURE, True)])
        for i in range(n)
    ]


async def test_frozen_broker_not_ready_then_recovers_losing_nothing(faults: System) -> None:
    before, in_hand, during = _tickets(300), _tickets(600), _tickets(300)
    expected = {(e["data"]["ticket_id"], 1) for e in before + in_hand + during}
    await send_all(faults.producer, before)
    await wait_all_routed(faults, {(e["data"]["ticket_id"], 1) for e in before}, 60, "warm-up")

    services = [faults.enricher, faults.router]
    with ReadyzPoller(services) as poller:
        # 600 tickets acknowledged by the broker, then the hang: the services are mid-stream.
        await send_all(faults.producer, in_hand)
        frozen_at = time.monotonic()
        faults.broker.freeze()
        try:
            # Produced while frozen: the producer buffers, the broker takes them after SIGCONT.
            pending = asyncio.create_task(send_all(faults.producer, during))
            await asyncio.sleep(FREEZE_S)
        finally:
            faults.broker.thaw()
        thawed_at = time.monotonic()
        await asyncio.wait_for(pending, 90)
        result = await wait_all_routed(faults, expected, 120, "after the broker thawed")
        await asyncio.to_thread(faults.enricher.wait_ready, 60)
        await asyncio.to_thread(faults.router.wait_ready, 60)
        recovered_at = time.monotonic()

    assert FREEZE_S > SESSION_TIMEOUT_S
    for service in services:
        while_frozen = poller.between(service.module, frozen_at, thawed_at)
        assert 503 in while_frozen, (service.module, while_frozen)
        assert None not in while_frozen, "the health server must answer while Kafka hangs"
        assert service.alive, "recovered by itself"
        assert service.starts == 1, "not by a restart"
        assert service.events("kafka_unreachable"), service.logs()
        assert poll(service.port, "/healthz") == 200
    assert not result.conflicts
    assert not result.lost
    print(
        f"\nfreeze: {FREEZE_S}s SIGSTOP; /readyz 503 within "
        + ", ".join(
            f"{s.module}: {_first(poller, s.module, frozen_at, 503):.1f}s" for s in services
        )
        + f"; all {len(expected)} tickets routed and ready again "
        f"{recovered_at - thawed_at:.1f}s after SIGCONT; "
        f"{result.duplicate_deliveries} duplicate deliveries"
    )


def _first(poller: ReadyzPoller, module: str, since: float, status: int) -> float:
    return next(t for t, s in poller.samples[module] if t >= since and s == status) - since


async def test_broker_absent_at_start_retries_then_becomes_ready(tmp_path: Path) -> None:
    port = free_port()  # nothing listens here yet
    env = service_env(f"127.0.0.1:{port}", uuid.uuid4().hex[:8])
    services = [
        ServiceProcess("services.enricher", env, tmp_path / "enricher.log").start(),
        ServiceProcess("services.router", env, tmp_path / "router.log").start(),
    ]
    broker = EmbeddedBroker(port=port, log_path=tmp_path / "tansu.log")
    try:
        # Retries with backoff (0.5, 1, 2, 2 s with RETRY_BACKOFF_MAX_SECONDS=2), no exit.
        deadline = time.monotonic() + 30
        while not all(len(s.events("kafka_unreachable_retrying")) >= 4 for s in services):
            assert time.monotonic() < deadline, [s.logs() for s in services]
            assert all(s.alive for s in services), [s.logs() for s in services]
            await asyncio.sleep(0.2)
        for service in services:
            retries = service.events("kafka_unreachable_retrying")
            delays = [r["retry_in_s"] for r in retries]
            assert delays[:4] == [0.5, 1.0, 2.0, 2.0], delays
            assert retries[0]["bootstrap_servers"] == f"127.0.0.1:{port}"
            assert retries[0]["error"]
            assert service.alive
            assert service.starts == 1
            assert poll(service.port, "/healthz") == 200
            assert poll(service.port, "/readyz") == 503
            assert not service.events("service_ready")

        broker.start()
        for service in services:
            await asyncio.to_thread(service.wait_ready, 60)
        # And it works: one ticket end to end.
        event = ticket_event(components=[component(Ref.PURE, True)])
        tid = event["data"]["ticket_id"]
        async with (
            make_producer(broker.bootstrap_servers) as producer,
            consumer_from_start(broker.bootstrap_servers, "sla.ownership") as consumer,
        ):
            await send_all(producer, [event])
            found = False
            deadline = time.monotonic() + 60
            while not found and time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=200)
                found = any(r.key == tid.encode() for rs in batches.values() for r in rs)
            assert found, [s.logs() for s in services]
    finally:
        for service in services:
            service.stop()
        broker.stop()
