"""Catalog changes on the embedded broker: the running enricher applies a new catalog swapped
in as Kubernetes swaps a ConfigMap (creating the new partner's topics before routing to them)
and refuses an invalid one; `ticketroute whatif` reads a topic from a time on."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.runtime.embedded import EmbeddedBroker
from tests.support.configmap import ConfigMapVolume, add_synology, catalog_text
from tests.support.processes import ROOT, http_get, make_producer, running_system
from tests.support.tickets import Ref, component, sample_events, ticket_event

pytestmark = pytest.mark.integration


def metric(port: int, line_start: str) -> str | None:
    _, text = http_get(port, "/metrics")
    return next((line for line in text.splitlines() if line.startswith(line_start)), None)


async def topics(bootstrap: str) -> set[str]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        names: set[str] = await consumer.topics()
        return names
    finally:
        await consumer.stop()


async def test_new_partner_is_created_and_routed_to_and_a_bad_catalog_refused(
    embedded_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    volume = ConfigMapVolume(tmp_path / "catalog")
    volume.publish(catalog_text("2026-11-24"))
    async with running_system(
        embedded_broker, tmp_path, CATALOG_PATH=str(volume.path), CATALOG_POLL_SECONDS="0.2"
    ) as system:
        port = system.enricher.port
        assert metric(port, "ticketroute_catalog_info{") == (
            'ticketroute_catalog_info{version="2026-11-24"} 1.0'
        )
        synology = [component(Ref.UNKNOWN, True)]
        await system.send_event(ticket_event("T-before", components=synology))
        await system.wait_until(lambda: bool(system.decisions()), what="first decision")
        (first,) = [json.loads(r.value)["data"] for r in system.outputs["queue.redhat"]]
        assert first["decision"]["rule"] == "unknown-component"  # not in the old catalog

        volume.publish(catalog_text("2026-12-01", add_synology))
        await system.wait_until(
            lambda: bool(system.enricher.events("catalog_reloaded")), 20, "the reload"
        )
        (reloaded,) = system.enricher.events("catalog_reloaded")
        assert (reloaded["old_version"], reloaded["new_version"]) == ("2026-11-24", "2026-12-01")
        assert reloaded["changes"] == (
            "components added: synology-iscsi-cinder; vendors added: synology"
        )
        existing = await topics(embedded_broker.bootstrap_servers)
        assert {"queue.partner.synology", "responses.partner.synology"} <= existing
        assert metric(port, "ticketroute_catalog_info{") == (
            'ticketroute_catalog_info{version="2026-12-01"} 1.0'
        )
        assert metric(port, "ticketroute_catalog_reloads_total{") == (
            'ticketroute_catalog_reloads_total{result="applied"} 1.0'
        )

        await system.send_event(ticket_event("T-after", components=synology))
        await system.wait_until(
            lambda: bool(system.outputs["queue.partner.synology"]), what="the partner's ticket"
        )
        routed = json.loads(system.outputs["queue.partner.synology"][0].value)["data"]
        assert routed["decision"]["rule"] == "partner-shipped"
        assert routed["decision"]["catalog_version"] == "2026-12-01"

        def unsure(data: dict[str, Any]) -> None:
            data["vendors"][0]["tsanet_member"] = "maybe"

        volume.publish(catalog_text("2026-12-02", unsure))
        await system.wait_until(
            lambda: bool(system.enricher.events("catalog_refused")), 20, "the refusal"
        )
        (refused,) = system.enricher.events("catalog_refused")
        assert refused["error"].endswith(
            "1 problem(s) in the catalog:\n  vendors[0] (id 'netapp').tsanet_member: "
            "Input should be a valid boolean, unable to interpret input"
        )
        assert refused["version_in_use"] == "2026-12-01"
        await system.send_event(ticket_event("T-refused", components=synology))
        await system.wait_until(
            lambda: "T-refused" in partner_tickets(system.outputs["queue.partner.synology"]),
            what="a ticket routed after the refusal",
        )
        # The collector may see a record twice when its pattern subscription grows.
        owners = [d["owner"] for d in system.decisions() if d["ticket_id"] == "T-refused"]
        assert owners
        assert all(o == {"party": "vendor", "vendor_id": "synology"} for o in owners)
        assert http_get(port, "/readyz")[0] == 200
        assert (
            'ticketroute_catalog_reloads_total{result="refused"} 1.0'
            in http_get(port, "/metrics")[1]
        )
        assert metric(port, "ticketroute_catalog_info{") == (
            'ticketroute_catalog_info{version="2026-12-01"} 1.0'
        )


def partner_tickets(records: list[Any]) -> set[str]:
    return {json.loads(r.value)["data"]["ticket"]["ticket_id"] for r in records}


def _send_at(event: dict[str, Any]) -> tuple[bytes, bytes]:
    return json.dumps(event).encode(), event["data"]["ticket_id"].encode()


async def test_whatif_reads_a_topic_from_a_time_without_a_group(
    embedded_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    bootstrap = embedded_broker.bootstrap_servers
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic("wi.incoming", 3, 1)])
    finally:
        await admin.close()
    producer = make_producer(bootstrap)
    await producer.start()
    since_ms = int(time.time() * 1000)
    try:
        # An hour before --since: an InfiniBox ticket the new catalog would change, not read.
        early = ticket_event("T-early", components=[component(Ref.INFINIBOX, True, False)])
        value, key = _send_at(early)
        await producer.send_and_wait(
            "wi.incoming", value, key=key, timestamp_ms=since_ms - 3600_000
        )
        for event in sample_events():
            value, key = _send_at(event)
            await producer.send_and_wait(
                "wi.incoming", value, key=key, timestamp_ms=since_ms + 1000
            )
        await producer.send_and_wait(
            "wi.incoming", b"not json", key=b"x", timestamp_ms=since_ms + 2000
        )
    finally:
        await producer.stop()

    new = tmp_path / "next.yaml"

    def certify(data: dict[str, Any]) -> None:
        for c in data["components"]:
            if c["id"] == "infinidat-infinibox-cinder":
                c["certified_for"] = ["17.1"]

    new.write_text(catalog_text("2026-12-01", certify))
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(since_ms // 1000)) + "Z"
    command = [sys.executable, "-m", "ticketroute.cli", "whatif", str(new)]
    command += ["--from-topic", "wi.incoming", "--since", since, "--json", "--bootstrap", bootstrap]
    done = await asyncio.to_thread(
        subprocess.run, command, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["current_version"] == "2026-11-24"
    assert result["new_version"] == "2026-12-01"
    assert result["tickets"] == 15  # the samples; not the early one
    assert result["skipped_invalid"] == 1
    assert sum(c["tickets"] for c in result["counts"]) == 15
    # Three partitions: read in each partition's order, not the order they were sent in.
    by_ticket = {c["ticket_id"]: c for c in result["changed"]}
    assert sorted(by_ticket) == ["04013655", "04013790", "04013811"]
    changed = by_ticket["04013790"]
    assert changed["revision"] == 1
    assert changed["before"]["rule"] == "uncertified-collaborate"
    assert changed["before"]["route"] == "tsanet"
    assert changed["before"]["topic"] == "collab.tsanet"
    assert changed["before"]["owner"] == {"party": "redhat", "vendor_id": None}
    assert changed["after"]["rule"] == "partner-shipped"
    assert changed["after"]["route"] == "partner"
    assert changed["after"]["topic"] == "queue.partner.infinidat"
    assert changed["after"]["owner"] == {"party": "vendor", "vendor_id": "infinidat"}
    assert changed["after"]["reason"].startswith("infinidat-infinibox-cinder is certified for 17.1")
    assert changed["before"]["response_due_at"] == changed["after"]["response_due_at"]
