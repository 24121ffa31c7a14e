"""Both services as processes on the embedded broker: what only real processes can show."""

from __future__ import annotations

import json
import signal
import uuid

import pytest

from tests.support.processes import System, http_get
from tests.support.tickets import Ref, component, ticket_event

pytestmark = pytest.mark.integration  # every test here runs on the embedded broker


async def test_bad_message_does_not_block_its_partition(system: System) -> None:
    # Same key, same partition: the bad message sits right in front of the good one.
    tid = f"T-{uuid.uuid4().hex[:10]}"
    await system.send(b'{"specversion": "1.0", "id": "x", "data": {', tid.encode(), partition=0)
    good = ticket_event(tid, components=[component(Ref.NETAPP, True)])
    await system.send(json.dumps(good).encode(), tid.encode(), partition=0)
    await system.wait_until(
        lambda: any(d["ticket_id"] == tid for d in system.decisions()), what="the good ticket"
    )
    (dead,) = [r for r in system.outputs["tickets.deadletter"] if r.key == tid.encode()]
    assert dict(dead.headers)["error.type"] == b"invalid_json"
    assert dict(dead.headers)["source.partition"] == b"0"
    assert dead.value.startswith(b'{"specversion"')


async def test_service_endpoints(system: System) -> None:
    for service in (system.enricher, system.router):
        assert http_get(service.port, "/healthz") == (200, "ok\n")
        assert http_get(service.port, "/readyz") == (200, "ready\n")
        status, body = http_get(service.port, "/metrics")
        assert status == 200
        assert "ticketroute_ready 1.0" in body
        assert http_get(service.port, "/nope")[0] == 404
    event = ticket_event(components=[component(Ref.PURE, True)])
    await system.send_event(event)
    tid = event["data"]["ticket_id"]
    await system.wait_until(lambda: any(d["ticket_id"] == tid for d in system.decisions()))
    _, metrics = http_get(system.router.port, "/metrics")
    assert 'ticketroute_tickets_routed_total{route="partner",rule="partner-shipped"} 1.0' in metrics
    assert 'ticketroute_partner_tickets_total{vendor="pure-storage"} 1.0' in metrics
    _, metrics = http_get(system.enricher.port, "/metrics")
    assert 'ticketroute_components_enriched_total{certification="certified"} 1.0' in metrics


async def test_services_killed_and_restarted_mid_stream_lose_nothing(system: System) -> None:
    events = [ticket_event(components=[component(Ref.NETAPP, True)]) for _ in range(600)]
    expected = {e["data"]["ticket_id"] for e in events}
    for i, event in enumerate(events):
        await system.send_event(event)
        if i == 200:
            system.router.kill()  # SIGKILL: no chance to commit or flush
            system.router.start()
        if i == 400:
            system.enricher.kill()
            system.enricher.start()
    await system.wait_until(
        lambda: expected <= {d["ticket_id"] for d in system.decisions()},
        timeout=120,
        what="every ticket routed after the kills",
    )
    decisions = [d for d in system.decisions() if d["ticket_id"] in expected]
    # Redelivery after a kill may repeat a decision, never change it.
    by_ticket: dict[str, set[str]] = {}
    for d in decisions:
        by_ticket.setdefault(d["ticket_id"], set()).add(d["decision_id"])
    assert all(len(ids) == 1 for ids in by_ticket.values())
    assert set(by_ticket) == expected


async def test_sigterm_stops_cleanly(system: System) -> None:
    for service in (system.router, system.enricher):
        service.signal(signal.SIGTERM)
        assert service.wait(timeout=15) == 0
        assert "service_stopped" in service.logs()
