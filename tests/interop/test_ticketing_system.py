"""The ticketing system as it may really be configured: a librdkafka producer with any codec
Kafka defines, its events built by the CloudEvents SDK in either mode of the Kafka binding.
Every event is routed; a broken binary-mode event is dead-lettered with its bytes and headers
(README, "Topics and events")."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.interop.conftest import (
    CODECS,
    MODES,
    TicketingProducer,
    cloudevent_message,
    schema_problems,
)
from tests.support.checks import audit, wait_all_routed
from tests.support.processes import System
from tests.support.tickets import Ref, component, ticket_event, updated

pytestmark = pytest.mark.integration

# One ticket of each route, by its suspected component in the sample catalog.
ROUTES = [
    ([component(Ref.NETAPP, True)], "queue.redhat"),
    ([component(Ref.PURE, True)], "queue.partner.pure-storage"),
    ([component(Ref.INFINIBOX, True, False)], "collab.tsanet"),
]
# librdkafka sends a batch uncompressed when compressing does not make it smaller: repetitive
# text makes sure every codec really is on the wire.
COMPRESSIBLE = "The volume stays in 'attaching' after the update; the log repeats. " * 40

RUN = uuid.uuid4().hex[:6]
CASES = [(codec, mode) for codec in CODECS for mode in MODES]
OUTCOMES: dict[tuple[str, str, str], str] = {}


@pytest.fixture(scope="module", autouse=True)
def outcome_table() -> Iterator[None]:
    """The producer settings against what became of the event, printed after the module
    (`pytest -s` shows it)."""
    yield
    lines = [
        "| client | codec | CloudEvents mode | outcome |",
        "|---|---|---|---|",
        *(
            f"| {client} | {codec} | {mode} | {outcome} |"
            for (client, codec, mode), outcome in OUTCOMES.items()
        ),
    ]
    print("\n" + "\n".join(lines))


def _dead(system: System, tid: str) -> list[Any]:
    return [r for r in system.outputs["tickets.deadletter"] if r.key == tid.encode()]


async def outcome(system: System, tid: str, revision: int, timeout: float) -> str:
    """`routed` (on a route topic and on sla.ownership), `dead-lettered (reason)`, or
    `nothing` when neither happened within `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not audit(system, {(tid, revision)}).lost:
            return "routed"
        if dead := _dead(system, tid):
            return f"dead-lettered ({dict(dead[0].headers)['error.type'].decode()})"
        await asyncio.sleep(0.1)
    return f"nothing within {timeout:.0f} s"


@pytest.mark.parametrize(("codec", "mode"), CASES, ids=[f"{c}-{m}" for c, m in CASES])
async def test_every_codec_and_mode_is_routed(
    interop: System, ticketing: dict[str, TicketingProducer], codec: str, mode: str
) -> None:
    components, topic = ROUTES[CASES.index((codec, mode)) % len(ROUTES)]
    tid = f"T-{RUN}-{codec}-{mode}"
    event = ticket_event(tid, components=components, description=COMPRESSIBLE)
    # As a careful ticketing system would: valid against the published schema before it goes.
    assert not schema_problems("tickets.incoming", event)
    ticketing[codec].send(tid, *cloudevent_message(event, mode))
    result = await outcome(interop, tid, 1, timeout=20)
    OUTCOMES["confluent-kafka (librdkafka)", codec, mode] = result
    assert result == "routed", (
        f"{result}: {[dict(r.headers) for r in _dead(interop, tid)]}\n"
        f"--- enricher:\n{interop.enricher.logs()}"
    )
    on_route = [r for r in interop.outputs[topic] if r.key == tid.encode()]
    assert len(on_route) == 1, {t: len(rs) for t, rs in interop.outputs.items()}


async def test_lz4_ticket_then_plain_ticket_same_key_both_routed(
    interop: System, ticketing: dict[str, TicketingProducer]
) -> None:
    tid = f"T-{RUN}-lz4-then-plain"
    first = ticket_event(tid, components=[component(Ref.PURE, True)], description=COMPRESSIBLE)
    second = updated(first, 2, "2026-11-25T10:00:00+00:00")
    ticketing["lz4"].send(tid, *cloudevent_message(first, "structured"))
    ticketing["none"].send(tid, *cloudevent_message(second, "structured"))
    await wait_all_routed(interop, {(tid, 1), (tid, 2)}, 20, "an lz4 ticket and one behind it")
    assert not _dead(interop, tid)
    OUTCOMES["confluent-kafka (librdkafka)", "lz4, then none, same key", "structured"] = (
        "both routed"
    )


async def test_broken_binary_event_is_dead_lettered_with_its_bytes_and_headers(
    interop: System, ticketing: dict[str, TicketingProducer]
) -> None:
    tid = f"T-{RUN}-binary-broken"
    broken = ticket_event(tid, components=[component(Ref.NETAPP, True)], severity=7)
    value, headers = cloudevent_message(broken, "binary")
    headers.append(("x-origin", b"crm-7"))
    assert any(name == "ce_id" for name, _ in headers)
    ticketing["none"].send(tid, value, headers)
    fixed = updated(broken, 2, "2026-11-25T10:00:00+00:00")
    fixed["data"]["severity"] = 2
    ticketing["none"].send(tid, *cloudevent_message(fixed, "binary"))

    await wait_all_routed(interop, {(tid, 2)}, 20, "the fixed ticket behind a broken one")
    await interop.wait_until(lambda: _dead(interop, tid), timeout=10, what="the dead letter")
    (dead,) = _dead(interop, tid)
    assert dead.value == value
    kept = dict(dead.headers)
    for name, original in headers:
        assert kept.get(name) == original, (name, kept)
    assert kept["error.type"] == b"invalid_event"
    # The data's own fault is named: the event was read as a binary-mode CloudEvent.
    assert b"severity" in kept["error.message"], kept["error.message"]
    assert kept["source.topic"] == b"tickets.incoming"
    OUTCOMES["confluent-kafka (librdkafka)", "none", "binary, severity 7"] = (
        f"dead-lettered ({kept['error.type'].decode()})"
    )
