"""`make run`: the whole system on one machine. Starts the embedded broker (unless
KAFKA_BOOTSTRAP_SERVERS points at one), both services, publishes the bundled sample tickets,
prints each decision as it arrives, and keeps serving until Ctrl-C."""

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
from collections.abc import Iterator, Mapping
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.runtime.embedded import EmbeddedBroker, free_port

SAMPLE_TICKETS = Path(__file__).resolve().parent.parent / "services" / "samples" / "tickets.json"
LOG_DIR = Path(os.environ.get("TICKETROUTE_RUN_DIR", ".run"))


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


def _line(topic: str, event: dict[str, object]) -> str:
    data = event["data"]
    assert isinstance(data, dict)
    d = data["decision"]
    owner = d["owner"]["vendor_id"] or d["owner"]["party"]
    comp = (d["component"] or {}).get("id") or (d["component"] or {}).get("ref") or "-"
    return (
        f"{d['ticket_id']:>10} r{d['revision']:<2} {d['rule']:<29} -> {topic:<26} "
        f"owner={owner:<12} due={d['response_due_at']}  [{comp}]"
    )


async def publish_samples_and_show(
    bootstrap: str, count: int, stop: asyncio.Event, ports: str
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await producer.start()
    await consumer.start()
    try:
        consumer.subscribe(pattern=r"^(queue\..*|collab\.tsanet)$")
        events = json.loads(SAMPLE_TICKETS.read_text())
        for event in events:
            await producer.send_and_wait(
                "tickets.incoming",
                json.dumps(event).encode(),
                key=event["data"]["ticket_id"].encode(),
                headers=[("content-type", b"application/cloudevents+json")],
            )
        print(f"published {len(events)} sample tickets to tickets.incoming; decisions:\n")
        shown = 0
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    print(_line(record.topic, json.loads(record.value)))
                    shown += 1
            if shown == count:
                print(
                    f"\nall {count} routed. Serving until Ctrl-C "
                    f"(logs in {LOG_DIR}/, metrics on {ports})."
                )
                shown += 1
    finally:
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
        ports = {"services.enricher": 9101, "services.router": 9102}
        if os.environ.get("METRICS_PORT_AUTO"):  # free ports, when 9101/9102 are taken
            ports = {m: free_port() for m in ports}
        for module, port in ports.items():
            env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "METRICS_PORT": str(port)}
            name = module.split(".")[-1]
            stack.enter_context(service(module, env, LOG_DIR / f"{name}.log"))
        for module, port in ports.items():
            wait_ready(port)
            print(f"{module.split('.')[-1]} ready on :{port}")
        count = len(json.loads(SAMPLE_TICKETS.read_text()))

        async def serve() -> None:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            port_list = " and ".join(f":{port}" for port in ports.values())
            await publish_samples_and_show(bootstrap, count, stop, port_list)

        asyncio.run(serve())
        print("\nstopping: services finish their batch and commit, then the broker stops")


if __name__ == "__main__":
    main()
