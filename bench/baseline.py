"""The raw aiokafka baselines: the fastest honest at-least-once loop, no framework.

    getmany (a batch) -> for each record: JSON parse, build the output(s), JSON encode,
    producer.send without awaiting the ack -> gather every ack -> commit -> next batch

`--mode 1to1` is shaped like the enricher (one output per input: the ticket re-wrapped in a
new envelope with a few added facts); `--mode 1to2` like the router (one route message that
carries the input ticket and a small decision, and one small SLA message). Same producer and
consumer settings as the services (acks=all, linger 2 ms, 256 KiB batches, no idempotence,
batches of up to 1000 records). Run as its own process, like a service, so the bench measures
it the same way: `python -m bench.baseline --bootstrap HOST:PORT --input T --mode 1to1 ...`.

`--record-batches` sends a batch's outputs the way the services do: one aiokafka
record batch per topic and partition (`send_batch`), each record keyed and on the partition
the default partitioner picks for its key, instead of one `send` per record.

`--validate` also validates every input with the contract's pydantic model (the ticket event
for 1to1, the enriched ticket event for 1to2) before the same dict work: the least any
consumer that checks every field against the contract pays, whatever else it does. It
imports the schemas (the contract), still nothing of the services.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.partitioner import murmur2

if TYPE_CHECKING:  # the plain baselines do not import pydantic (their RSS is reported)
    from pydantic import BaseModel

# Plain YAML, not the services' catalog models: the baseline imports nothing of the services.
CATALOG_PATH = Path(__file__).resolve().parent.parent / "services" / "samples" / "catalog.yaml"
HEADERS = [("content-type", b"application/cloudevents+json")]
NAMESPACE = uuid.UUID("0b5e3f7a-9d64-5c2e-8a1b-3f4c6d7e8f90")


def uuid5(namespace: uuid.UUID, name: str) -> str:
    """`str(uuid.uuid5(namespace, name))` without UUID objects (as fast as the services')."""
    digest = bytearray(hashlib.sha1(namespace.bytes + name.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


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


def _catalog() -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Plain dicts of the sample catalog: component facts by ref, and the raw catalog."""
    data = yaml.safe_load(CATALOG_PATH.read_text(encoding="utf-8"))
    vendors = {v["id"]: v for v in data["vendors"]}
    by_ref = {}
    for c in data["components"]:
        facts = {k: c.get(k) for k in ("id", "name", "kind", "vendor", "shipped_by")}
        facts["certified_for"] = [str(v) for v in c.get("certified_for") or ()]
        facts["vendor_facts"] = vendors.get(c["vendor"])
        for ref in (c["id"], *(c.get("refs") or ())):
            by_ref[ref.strip()] = facts
    return by_ref, data


BY_REF, CATALOG = _catalog()


def _certified(certified_for: list[str], version: str) -> bool:
    parts = version.split(".")
    return any(parts[: len(c.split("."))] == c.split(".") for c in certified_for)


def _component(component: dict[str, Any], version: str, severity: int) -> dict[str, Any]:
    found = BY_REF.get(component["ref"].strip())
    match = None
    if found is not None:
        vendor = found["vendor_facts"]
        match = {
            "id": found["id"],
            "name": found["name"],
            "kind": found["kind"],
            "vendor_id": found["vendor"],
            "shipped_by": found["shipped_by"],
            "certified": _certified(found["certified_for"], version),
            "vendor": None
            if vendor is None
            else {
                "id": vendor["id"],
                "name": vendor["name"],
                "tsanet_member": vendor["tsanet_member"],
                "tsanet_company_id": vendor.get("tsanet_company_id"),
                "engineering_relationship": vendor["engineering_relationship"],
                "target": vendor["sla"][severity],
            },
        }
    return {**component, "catalog": match}


Transform = Callable[[bytes], list[tuple[str, bytes]]]


def one_to_one(value: bytes) -> list[tuple[str, bytes]]:
    """Like the enricher: the ticket plus its catalog facts (dict look-ups), re-wrapped."""
    event = orjson.loads(value)
    ticket = event["data"]
    customer, severity = ticket["customer"], ticket["severity"]
    version = ticket["product"]["version"]
    calendars = CATALOG["calendars"]
    target = CATALOG["redhat"]["sla"][customer["support_level"]][severity]
    out = {
        "event": {
            "id": event["id"],
            "type": event["type"],
            "time": event["time"],
            "source": event["source"],
        },
        "ticket": ticket,
        "catalog_version": CATALOG["version"],
        "business_hours": calendars["by_country"].get(customer["country"], calendars["default"]),
        "redhat_target": target,
        "redhat_basis": f"Red Hat {customer['support_level']}, severity {severity}: {target}",
        "components": [_component(c, version, severity) for c in ticket["components"]],
    }
    event_id = uuid5(NAMESPACE, event["id"])
    return [("out", _envelope(event_id, "bench.enriched", ticket["ticket_id"], out))]


def one_to_two(value: bytes) -> list[tuple[str, bytes]]:
    """Like the router: a route message carrying the ticket, and a small SLA message."""
    event = orjson.loads(value)
    data = event["data"]
    ticket = data.get("ticket", data)
    ticket_id = ticket["ticket_id"]
    decision = {
        "decision_id": uuid5(NAMESPACE, f"{ticket_id}\n{ticket['revision']}"),
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


async def send_record_batches(
    producer: AIOKafkaProducer, outputs: list[tuple[str, bytes, bytes]]
) -> list[asyncio.Future[Any]]:
    """(topic, key, value) records as one record batch per topic and partition."""
    partitions: dict[str, list[int]] = {}
    batches: dict[tuple[str, int], Any] = {}
    futures = []
    for topic, key, value in outputs:
        if topic not in partitions:
            partitions[topic] = sorted(await producer.partitions_for(topic))
        where = (topic, partitions[topic][(murmur2(key) & 0x7FFFFFFF) % len(partitions[topic])])
        batch = batches.get(where) or batches.setdefault(where, producer.create_batch())
        if batch.append(timestamp=None, key=key, value=value, headers=HEADERS) is None:
            futures.append(await producer.send_batch(batch, topic, partition=where[1]))
            batches[where] = batch = producer.create_batch()
            batch.append(timestamp=None, key=key, value=value, headers=HEADERS)
    for (topic, partition), batch in batches.items():
        futures.append(await producer.send_batch(batch, topic, partition=partition))
    return futures


def validating(transform: Transform, model: type[BaseModel]) -> Transform:
    validate = model.model_validate_json

    def checked(value: bytes) -> list[tuple[str, bytes]]:
        validate(value)
        return transform(value)

    return checked


async def run(args: argparse.Namespace) -> None:
    transform: Transform = one_to_one if args.mode == "1to1" else one_to_two
    if args.validate:
        from schemas.decision import EnrichedTicketEvent  # noqa: PLC0415 - only with --validate
        from schemas.events import TicketEvent  # noqa: PLC0415

        transform = validating(
            transform, TicketEvent if args.mode == "1to1" else EnrichedTicketEvent
        )
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
        fetch_max_wait_ms=args.fetch_max_wait_ms,
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
            if args.record_batches:
                outputs = [
                    (topics[kind], record.key, value)
                    for records in batch.values()
                    for record in records
                    for kind, value in transform(record.value)
                ]
                pending = await send_record_batches(producer, outputs)
            else:
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
    parser.add_argument("--record-batches", action="store_true", help="send_batch per partition")
    parser.add_argument("--validate", action="store_true", help="validate input with the contract")
    # aiokafka's default, as in the services; Tansu answers a fetch only when this runs out
    # unless data is already there, so it bounds the latency of every hop at low rates.
    parser.add_argument("--fetch-max-wait-ms", type=int, default=500)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
