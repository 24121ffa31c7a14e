"""`make run`: the whole system on one machine. Starts the embedded broker (unless
KAFKA_BOOTSTRAP_SERVERS points at one) and the three services, publishes the bundled sample
tickets and a few whose SLA clocks run out while you watch, then first responses from Red Hat,
a partner and TSANet; prints each decision and each SLA lifecycle event as it arrives (README,
"The two commands"), and keeps serving until Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.runtime.embedded import EmbeddedBroker, free_port
from services.runtime.settings import SERVICES

SAMPLE_TICKETS = Path(__file__).resolve().parent.parent / "services" / "samples" / "tickets.json"
LOG_DIR = Path(os.environ.get("TICKETROUTE_RUN_DIR", ".run"))
# Each service's module and default metrics port, in the order they start: the enricher
# creates the partner topics, which the tracker then finds by pattern when it subscribes.
PORTS = {
    f"services.{name}": cls.model_fields["metrics_port"].default for name, cls in SERVICES.items()
}
TOPIC_WIDTH = len("responses.partner.pure-storage")  # the longest topic the samples use
ROUTED_TOPICS = r"^(queue\..*|collab\.tsanet|sla\.events)$"


# --- live samples: clocks that run out while `make run` is watched ----------------------------
#
# The bundled tickets were opened in November 2026, so their clocks ran out long ago: each
# assignment publishes its past moments at once (at risk, then breached). These copies of
# three of them are opened relative to the moment they are published, so that their moments
# come a few seconds later. All three Red Hat targets are 24x7, so the arithmetic is plain:
#
# - 04020001 copies 04013502 (premium, severity 1: PT1H, at risk at 0.75 of it, 45 min).
#   Opened 44 min 45 s ago: at risk 15 s after publishing, due in 15 min 15 s. Red Hat
#   answers 25 s after publishing: completed, met, elapsed PT45M10S.
# - 04020002 copies 04013502 too. Opened 59 min 25 s ago: at risk 14 min 25 s ago (published
#   at once), breached 35 s after publishing.
# - 04020003 copies 04014016, partner-shipped: Pure Storage owns it (severity 1: PT30M).
#   Opened 5 min ago; Pure Storage answers on its own topic 5 s after publishing: met,
#   elapsed PT5M5S.
# - 04020004 copies 04013790, Red Hat with Infinidat collaborating through TSANet
#   (Infinidat's severity 2: PT2H). Opened 20 min ago; TSANet reports Infinidat accepted
#   5 s after publishing: the collaborator clock completes, met, elapsed PT20M5S. Red Hat's
#   own clock stays open (at risk after 90 min).


@dataclass(frozen=True)
class LiveTicket:
    ticket_id: str
    like: str
    """The bundled sample it copies, with its own id and opening time."""
    opened_ago: timedelta


LIVE_TICKETS = (
    LiveTicket("04020001", like="04013502", opened_ago=timedelta(minutes=44, seconds=45)),
    LiveTicket("04020002", like="04013502", opened_ago=timedelta(minutes=59, seconds=25)),
    LiveTicket("04020003", like="04014016", opened_ago=timedelta(minutes=5)),
    LiveTicket("04020004", like="04013790", opened_ago=timedelta(minutes=20)),
)


@dataclass(frozen=True)
class LiveResponse:
    topic: str
    ticket_id: str
    after: float
    """When it is given and published: seconds after the tickets' publication."""
    kind: str
    vendor_id: str | None
    responder: dict[str, str]


LIVE_RESPONSES = (
    LiveResponse(
        "responses.partner.pure-storage",
        "04020003",
        5,
        "first_response",
        "pure-storage",
        {"name": "Pure Storage Support", "email": "support@purestorage.example"},
    ),
    LiveResponse(
        "responses.tsanet",
        "04020004",
        5,
        "accepted",
        "infinidat",
        {"name": "Infinidat Support", "email": "support@infinidat.example"},
    ),
    LiveResponse(
        "responses.redhat",
        "04020001",
        25,
        "first_response",
        None,
        {"name": "Priya Raman", "email": "praman@redhat.example"},
    ),
)
_LIVE_IDS = uuid.UUID("5b0e6f1c-7d1a-4c55-9a55-2f7d3c1e8a01")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def live_tickets(samples: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """The live sample tickets, opened relative to `now`."""
    by_id = {event["data"]["ticket_id"]: event for event in samples}
    events = []
    for live in LIVE_TICKETS:
        like = by_id[live.like]
        opened = _iso(now - live.opened_ago)
        data = {**like["data"], "ticket_id": live.ticket_id, "revision": 1, "opened_at": opened}
        event_id = uuid.uuid5(_LIVE_IDS, f"{live.ticket_id}\n{opened}")
        events.append(
            {**like, "id": str(event_id), "time": opened, "subject": live.ticket_id, "data": data}
        )
    return events


def live_response(response: LiveResponse, now: datetime) -> dict[str, Any]:
    """A first response given `response.after` seconds after the tickets' publication at
    `now`."""
    at = _iso(now + timedelta(seconds=response.after))
    data: dict[str, Any] = {
        "ticket_id": response.ticket_id,
        "revision": 1,
        "responded_at": at,
        "kind": response.kind,
        "responder": response.responder,
    }
    if response.vendor_id is not None:
        data["vendor_id"] = response.vendor_id
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid5(_LIVE_IDS, f"{response.topic}\n{response.ticket_id}\n{at}")),
        "source": "/ticketing/sample",
        "type": "support.response.recorded",
        "time": at,
        "subject": response.ticket_id,
        "datacontenttype": "application/json",
        "data": data,
    }


def wait_ready(port: int, timeout: float = 60.0) -> None:
    """Poll /readyz until the service says it is connected and consuming."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        url = f"http://127.0.0.1:{port}/readyz"
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as r:
            if r.status == 200:
                return
        time.sleep(0.2)
    raise TimeoutError(f"service on port {port} not ready after {timeout}s")


@contextlib.contextmanager
def service(module: str, env: Mapping[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """One service as a child process; SIGTERM on the way out so it commits and stops."""
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
            [sys.executable, "-m", module],
            env={**os.environ, **env},
            stdout=out,
            stderr=out,
            # Own session: Ctrl-C reaches only us, and we stop the services before the broker.
            start_new_session=True,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _row(of: dict[str, Any], label: str, topic: str, who: str, rest: str) -> str:
    """One output line about the ticket revision `of` names; decisions, SLA events and
    responses share its columns."""
    ticket = f"{of['ticket_id']:>10} r{of['revision']:<2}"
    return f"{ticket} {label:<29} -> {topic:<{TOPIC_WIDTH}} {who:<18} {rest}"


def _line(topic: str, event: dict[str, Any]) -> str:
    d = event["data"]["decision"]
    owner = d["owner"]["vendor_id"] or d["owner"]["party"]
    comp = (d["component"] or {}).get("id") or (d["component"] or {}).get("ref") or "-"
    rest = f"due={d['response_due_at']}  [{comp}]"
    return _row(d, d["rule"], topic, f"owner={owner}", rest)


def _sla_line(event: dict[str, Any]) -> str:
    """A lifecycle event: whose clock, its due time, what happened."""
    d = event["data"]
    kind = event["type"].rsplit(".", 1)[-1]
    role = "owner" if d["role"] == "owner" else "collab"
    whose = f"{role}={d['party']['vendor_id'] or d['party']['party']}"
    if kind == "at_risk":
        what = f"at risk since {d['at_risk_at']}"
    elif kind == "breached":
        what = "no response by the due time"
    elif kind == "completed":
        verdict = "met" if d["met"] else "not met"
        what = f"responded {d['responded_at']}: {verdict}, elapsed {d['elapsed']}"
    else:
        what = f"{d['reason']} by r{d['superseded_by']}"
    rest = f"due={d['response_due_at']}  {what}"
    return _row(d, f"sla {kind}", "sla.events", whose, rest)


def _response_line(topic: str, event: dict[str, Any]) -> str:
    d = event["data"]
    by = f"by={d.get('vendor_id') or 'redhat'}"
    rest = f"at={d['responded_at']}"
    return _row(d, f"response {d['kind']}", topic, by, rest)


async def _send(producer: AIOKafkaProducer, topic: str, event: dict[str, Any]) -> None:
    await producer.send_and_wait(
        topic,
        json.dumps(event).encode(),
        key=event["data"]["ticket_id"].encode(),
        headers=[("content-type", b"application/cloudevents+json")],
    )


async def respond(producer: AIOKafkaProducer, now: datetime, started: float) -> None:
    """Publish each live response at its moment (`started` is `now` on the monotonic clock)."""
    loop = asyncio.get_running_loop()
    for response in sorted(LIVE_RESPONSES, key=lambda r: r.after):
        await asyncio.sleep(max(0.0, started + response.after - loop.time()))
        event = live_response(response, now)
        await _send(producer, response.topic, event)
        print(_response_line(response.topic, event))


async def publish_samples_and_show(bootstrap: str, stop: asyncio.Event, ports: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await producer.start()
    await consumer.start()
    responding: asyncio.Task[None] | None = None
    try:
        consumer.subscribe(pattern=ROUTED_TOPICS)
        samples = json.loads(SAMPLE_TICKETS.read_text())
        # Whole seconds, so that the live clocks' elapsed times read as worked out above.
        now = datetime.now(UTC).replace(microsecond=0)
        started = asyncio.get_running_loop().time()
        events = [*samples, *live_tickets(samples, now)]
        for event in events:
            await _send(producer, "tickets.incoming", event)
        print(
            f"published {len(samples)} sample tickets and {len(LIVE_TICKETS)} whose clocks run "
            "out now to tickets.incoming; decisions and SLA events:\n"
        )
        responding = asyncio.create_task(respond(producer, now, started))
        routed = 0
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    event = json.loads(record.value or b"{}")
                    if record.topic == "sla.events":
                        print(_sla_line(event))
                        continue
                    print(_line(record.topic, event))
                    routed += 1
                    if routed == len(events):
                        print(
                            f"\nall {routed} routed; SLA events follow as their moments come. "
                            f"Serving until Ctrl-C (logs in {LOG_DIR}/, metrics on {ports})."
                        )
    finally:
        if responding is not None:
            responding.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await responding
        await consumer.stop()
        await producer.stop()


def main() -> None:
    # One line at a time even into a pipe (`make run | tee run.log`, CI logs, kubectl logs),
    # where Python would otherwise hold the output in a block buffer until it exits.
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    LOG_DIR.mkdir(exist_ok=True)
    stop = asyncio.Event()
    with contextlib.ExitStack() as stack:
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if not bootstrap:
            broker = stack.enter_context(EmbeddedBroker(log_path=LOG_DIR / "tansu.log"))
            bootstrap = broker.bootstrap_servers
            print(f"embedded Tansu broker on {bootstrap}")
        ports = dict(PORTS)
        if os.environ.get("METRICS_PORT_AUTO"):  # free ports, when the default ones are taken
            ports = {m: free_port() for m in ports}
        for module, port in ports.items():
            env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "METRICS_PORT": str(port)}
            name = module.split(".")[-1]
            if name == "tracker":
                # It reads the partners' response topics by pattern, so they must exist when it
                # subscribes; the enricher creates them at its start.
                wait_ready(ports["services.enricher"])
            stack.enter_context(service(module, env, LOG_DIR / f"{name}.log"))
        for module, port in ports.items():
            wait_ready(port)
            print(f"{module.split('.')[-1]} ready on :{port}")

        async def serve() -> None:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            port_list = ", ".join(f":{port}" for port in ports.values())
            await publish_samples_and_show(bootstrap, stop, port_list)

        asyncio.run(serve())
        print("\nstopping: services finish their batch and commit, then the broker stops")


if __name__ == "__main__":
    main()
