"""The raw aiokafka baselines: the fastest honest at-least-once loop, no framework.

    getmany (a batch) -> for each record: JSON parse, build the output(s), JSON encode,
    producer.send without awaiting the ack -> gather every ack -> commit -> next batch

`--mode 1to1` is shaped like the enricher (one output per input: the ticket re-wrapped in a
new envelope with a few added facts); `--mode 1to2` like the router (one route message that
carries the input ticket and a small decision, and one small SLA message). Same producer and
consumer settings as the services (acks=all, linger 2 ms, 256 KiB batches, no idempotence,
batches of up to 1000 records). Run as its own process, like a service, so the bench measures
it the same way: `python -m bench.baseline --bootstrap HOST:PORT --input T --mode 1to1 ...`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import time
import uuid
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

HEADERS = [("content-type", b"application/cloudevents+json")]
NAMESPACE = uuid.UUID("0b5e3f7a-9d64-5c2e-8a1b-3f4c6d7e8f90")


def _envelope(event_id: str, event_type: str, subject: str, data: Any) -> bytes:
    return orjson.dumps(
        {
            "specversion": "1.0",
            "id": event_id,
            "source": "/bench/baseline",
            "type": event_type,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "subject": subject,
            "datacontenttype": "application/json",
            "data": data,
        }
    )


def one_to_one(value: bytes) -> list[tuple[str, bytes]]:
    """Like the enricher: the ticket plus what a look-up adds, in a new envelope."""
    event = orjson.loads(value)
    ticket = event["data"]
    out = {
        "event": {"id": event["id"], "type": event["type"], "time": event["time"]},
        "ticket": ticket,
        "catalog_version": "bench",
        "components": [{"ref": c["ref"], "catalog": None} for c in ticket["components"]],
    }
    event_id = str(uuid.uuid5(NAMESPACE, event["id"]))
    return [("out", _envelope(event_id, "bench.enriched", ticket["ticket_id"], out))]


def one_to_two(value: bytes) -> list[tuple[str, bytes]]:
    """Like the router: a route message carrying the ticket, and a small SLA message."""
    event = orjson.loads(value)
    data = event["data"]
    ticket = data.get("ticket", data)
    ticket_id = ticket["ticket_id"]
    decision = {
        "decision_id": str(uuid.uuid5(NAMESPACE, f"{ticket_id}\n{ticket['revision']}")),
        "ticket_id": ticket_id,
        "revision": ticket["revision"],
        "route": "redhat",
        "rule": "bench",
    }
    sla = {
        "ticket_id": ticket_id,
        "revision": ticket["revision"],
        "decision_id": decision["decision_id"],
        "severity": ticket["severity"],
        "owner": {"party": "redhat", "vendor_id": None},
    }
    return [
        ("route", _envelope(event["id"] + "-r", "bench.routed", ticket_id, {**data, **decision})),
        ("sla", _envelope(event["id"] + "-s", "bench.sla", ticket_id, sla)),
    ]


async def run(args: argparse.Namespace) -> None:
    transform = one_to_one if args.mode == "1to1" else one_to_two
    topics = {"out": args.output, "route": args.output, "sla": args.sla_output or args.output}
    consumer = AIOKafkaConsumer(
        args.input,
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=args.batch,
        session_timeout_ms=6000,
        heartbeat_interval_ms=2000,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=args.bootstrap,
        acks="all",
        linger_ms=2,
        max_batch_size=256 * 1024,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await producer.start()
    await consumer.start()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=100, max_records=args.batch)
            pending = []
            for records in batch.values():
                for record in records:
                    for kind, value in transform(record.value):
                        pending.append(
                            await producer.send(
                                topics[kind], value, key=record.key, headers=HEADERS
                            )
                        )
            if pending:
                await asyncio.gather(*pending)
                await consumer.commit()
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()
        with contextlib.suppress(Exception):
            await producer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--sla-output")
    parser.add_argument("--group", required=True)
    parser.add_argument("--mode", choices=("1to1", "1to2"), required=True)
    parser.add_argument("--batch", type=int, default=1000)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
