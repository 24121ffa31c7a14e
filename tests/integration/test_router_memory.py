"""The router's duplicate and revision memory lives in Kafka: a router restarted, or killed,
reads it back before it routes again, so it neither routes an event id it already routed nor
a stale revision (docs/state.md)."""

from __future__ import annotations

import json
import signal

import pytest

from tests.support.processes import System, http_get
from tests.support.tickets import Ref, component, ticket_event

pytestmark = pytest.mark.integration


def _sla_ids(system: System) -> list[str]:
    return [json.loads(r.value)["id"] for r in system.outputs["sla.ownership"]]


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["restart", "crash"])
async def test_a_restarted_router_routes_no_event_twice_and_no_stale_revision(
    system: System, stop: signal.Signals
) -> None:
    first = [ticket_event(components=[component(Ref.NETAPP, True)]) for _ in range(40)]
    newer = [
        ticket_event(e["data"]["ticket_id"], event_type="support.ticket.updated", revision=3)
        for e in first[:10]
    ]
    for event in [*first, *newer]:
        await system.send_event(event)
    await system.wait_until(lambda: len(_sla_ids(system)) == 50, what="50 routed")
    # Counted once the batch's changes are acknowledged too, just before its commit: a kill
    # after this point must find the 50 in the changelog.
    await system.wait_until(
        lambda: (
            'ticketroute_messages_consumed_total{topic="tickets.enriched"} 50.0'
            in http_get(system.router.port, "/metrics")[1]
        ),
        what="the batches done",
    )
    system.router.signal(stop)
    system.router.wait()
    system.router.start().wait_ready()
    assert system.router.events("state_restored")[-1]["records"] >= 50

    # The same events again (a producer's retry, a replay), and revision 2 of tickets already
    # at revision 3: none is routed. A new ticket behind them is, so they have been read.
    stale = [
        ticket_event(e["data"]["ticket_id"], event_type="support.ticket.updated", revision=2)
        for e in first[:10]
    ]
    last = ticket_event(components=[component(Ref.PURE, True)])
    for event in [*first, *newer, *stale, last]:
        await system.send_event(event)
    last_id = last["data"]["ticket_id"]
    await system.wait_until(
        lambda: any(d["ticket_id"] == last_id for d in system.decisions()), what="the last ticket"
    )
    ids = _sla_ids(system)
    assert len(ids) == len(set(ids)) == 51
    _, metrics = http_get(system.router.port, "/metrics")
    assert "ticketroute_duplicates_dropped_total 50.0" in metrics
    assert "ticketroute_stale_revisions_dropped_total 10.0" in metrics
