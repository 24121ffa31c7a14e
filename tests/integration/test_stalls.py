"""Nothing stalls silently: a record the enricher cannot read shows in its log, its metrics
and /readyz within seconds, naming the topic, partition and offset."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from services.runtime.embedded import EmbeddedBroker
from tests.support.processes import http_get, running_system
from tests.support.tickets import ticket_event

pytestmark = pytest.mark.integration


async def test_a_record_the_service_cannot_read_is_reported_within_seconds(
    embedded_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    # The enricher runs without the codec library (as before the project declared it), so an
    # lz4 batch is a record it cannot decode: the very failure that once went unheard.
    hidden = tmp_path / "no-codecs"
    hidden.mkdir()
    (hidden / "cramjam.py").write_text('raise ImportError("hidden by the test")\n')
    async with running_system(
        embedded_broker,
        tmp_path,
        start=("enricher",),
        PYTHONPATH=str(hidden),
        STALL_TIMEOUT_SECONDS="2",
    ) as system:
        lz4 = AIOKafkaProducer(
            bootstrap_servers=embedded_broker.bootstrap_servers, compression_type="lz4"
        )
        await lz4.start()
        try:
            event = ticket_event()
            sent = await lz4.send_and_wait(
                "tickets.incoming",
                json.dumps(event).encode(),
                key=event["data"]["ticket_id"].encode(),
            )
        finally:
            await lz4.stop()
        enricher = system.enricher
        started = time.monotonic()
        await system.wait_until(
            lambda: bool(enricher.events("partition_stalled")), timeout=20, what="a stall log"
        )
        reported_after = time.monotonic() - started
        stall = enricher.events("partition_stalled")[0]
        assert stall["level"] == "error"
        assert (stall["topic"], stall["partition"], stall["offset"]) == (
            "tickets.incoming",
            sent.partition,
            sent.offset,
        )
        assert "UnsupportedCodecError" in stall["cause"], stall
        assert any("UnsupportedCodecError" in e["error"] for e in enricher.events("consumer_error"))
        status, body = http_get(enricher.port, "/readyz")
        assert status == 503
        assert f"partition tickets.incoming[{sent.partition}] makes no progress" in body
        metrics = http_get(enricher.port, "/metrics")[1]
        assert "ticketroute_partitions_stalled 1.0" in metrics
        assert 'ticketroute_consumer_errors_total{error="UnsupportedCodecError"}' in metrics
        assert reported_after < 15, reported_after
