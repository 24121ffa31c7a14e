"""Both services as real processes against the embedded Tansu broker, as in production:
started with `python -m`, configured by environment, killed and restarted by signals; a
producer of input and a consumer of every output beside them."""

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
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.runtime.embedded import EmbeddedBroker, free_port

ROOT = Path(__file__).resolve().parents[2]
ALL_OUTPUTS_PATTERN = (
    r"^(queue\..*|collab\.tsanet|sla\.ownership|tickets\.deadletter|tickets\.enriched)$"
)
# Large enough for the 1 MiB-description fuzz case on the test's own clients.
BIG_MESSAGE = 4 * 1024 * 1024


def http_get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def poll(port: int, path: str) -> int | None:
    """The HTTP status of an endpoint, None when nothing answers."""
    try:
        return http_get(port, path)[0]
    except OSError:
        return None


class ServiceProcess:
    """One service process. Its stdout (the structlog JSON lines) and stderr (libraries) go to
    separate files under the test's tmp dir, so a test can check that every stdout line is
    exactly one JSON object."""

    def __init__(self, module: str, env: dict[str, str], log: Path) -> None:
        self.module = module
        self.port = free_port()
        self.env = {**os.environ, **env, "METRICS_PORT": str(self.port)}
        self.log = log
        self.err = log.with_suffix(".stderr")
        self.starts = 0
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        self.starts += 1
        with self.log.open("ab") as out, self.err.open("ab") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module],
                env=self.env,
                stdout=out,
                stderr=err,
                cwd=ROOT,
            )
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            assert self.process.poll() is None, self.logs()
            if poll(self.port, "/readyz") == 200:
                return
            time.sleep(0.1)
        raise AssertionError(f"{self.module} not ready in {timeout}s:\n{self.logs()}")

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.wait()

    def wait(self, timeout: float = 30.0) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        if self.alive:
            self.signal(signal.SIGTERM)
            try:
                self.wait()
            except subprocess.TimeoutExpired:
                assert self.process is not None
                self.process.kill()
                self.process.wait()

    def stdout_lines(self) -> list[bytes]:
        raw = self.log.read_bytes() if self.log.exists() else b""
        return [line for line in raw.split(b"\n") if line]

    def json_logs(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout_lines()]

    def events(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.json_logs() if e.get("event") == name]

    def logs(self) -> str:
        out = self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""
        err = self.err.read_text(errors="replace")[-2000:] if self.err.exists() else ""
        return out + ("\n--- stderr:\n" + err if err else "")


@dataclass
class System:
    """The embedded broker, both services, a producer and a consumer of every output."""

    broker: EmbeddedBroker
    enricher: ServiceProcess
    router: ServiceProcess
    producer: AIOKafkaProducer
    outputs: dict[str, list[Any]] = field(default_factory=lambda: defaultdict(list))

    async def send(self, value: bytes, key: bytes, partition: int | None = None) -> None:
        await self.producer.send_and_wait("tickets.incoming", value, key=key, partition=partition)

    async def send_event(self, event: dict[str, Any]) -> None:
        tid = event["data"]["ticket_id"]
        await self.send(json.dumps(event).encode(), tid.encode())

    def decisions(self) -> list[dict[str, Any]]:
        return [json.loads(r.value)["data"] for r in self.outputs["sla.ownership"]]

    async def wait_until(
        self, condition: Callable[[], bool], timeout: float = 60.0, what: str = ""
    ) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out waiting for {what}\n--- enricher:\n{self.enricher.logs()}"
                    f"\n--- router:\n{self.router.logs()}"
                )
            await asyncio.sleep(0.1)


def service_env(bootstrap: str, run: str) -> dict[str, str]:
    """Settings for a test: this run's own consumer groups, and timeouts short enough that a
    consumer group (re)join on the embedded broker takes seconds."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "ENRICHER_GROUP_ID": f"enricher-{run}",
        "ROUTER_GROUP_ID": f"router-{run}",
        "SESSION_TIMEOUT_MS": "6000",
        "HEARTBEAT_INTERVAL_MS": "2000",
        "BATCH_TIMEOUT_MS": "20",
        "SHUTDOWN_GRACE_SECONDS": "10",
        "RETRY_BACKOFF_MAX_SECONDS": "2",
        "LOG_LEVEL": "INFO",
    }


def make_producer(bootstrap: str) -> AIOKafkaProducer:
    # Not idempotent: Tansu rejects idempotent producers.
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=5,
        max_request_size=BIG_MESSAGE,
        request_timeout_ms=60_000,
    )


def consumer_from_start(bootstrap: str, *topics: str) -> AIOKafkaConsumer:
    """A consumer of `topics` from their first record, in no group; not started yet."""
    return AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, auto_offset_reset="earliest")


async def collect_outputs(consumer: AIOKafkaConsumer, system: System) -> None:
    while True:
        batches = await consumer.getmany(timeout_ms=100)
        for records in batches.values():
            for record in records:
                system.outputs[record.topic].append(record)


@contextlib.asynccontextmanager
async def running_system(
    broker: EmbeddedBroker,
    tmp_path: Path,
    *,
    start: Iterable[str] = ("enricher", "router"),
    pattern: str = ALL_OUTPUTS_PATTERN,
    **env: str,
) -> AsyncIterator[System]:
    """Both services (those named in `start` started and ready), a producer, a collector of
    the topics matching `pattern`; `env` overrides the services' settings."""
    base = service_env(broker.bootstrap_servers, uuid.uuid4().hex[:8])
    base.update(env)
    enricher = ServiceProcess("services.enricher", base, tmp_path / "enricher.log")
    router = ServiceProcess("services.router", base, tmp_path / "router.log")
    chosen = {"enricher": enricher, "router": router}
    for name in start:
        chosen[name].start()
    producer = make_producer(broker.bootstrap_servers)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=broker.bootstrap_servers,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=BIG_MESSAGE,
        fetch_max_bytes=4 * BIG_MESSAGE,
        metadata_max_age_ms=2000,  # partner topics appear after the start
    )
    collector: asyncio.Task[None] | None = None
    try:
        for name in start:
            chosen[name].wait_ready()
        await producer.start()
        await consumer.start()
        consumer.subscribe(pattern=pattern)
        system = System(broker, enricher, router, producer)
        collector = asyncio.create_task(collect_outputs(consumer, system))
        yield system
    finally:
        if collector:
            collector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await collector
        await consumer.stop()
        await producer.stop()
        enricher.stop()
        router.stop()


@contextlib.asynccontextmanager
async def system_on_own_broker(tmp_path: Path) -> AsyncIterator[System]:
    """A fresh embedded broker with both services on it, for a whole module or package."""
    with EmbeddedBroker(log_path=tmp_path / "tansu.log") as broker:
        async with running_system(broker, tmp_path) as system:
            yield system


async def send_all(
    producer: AIOKafkaProducer, events: Iterable[dict[str, Any]], topic: str = "tickets.incoming"
) -> None:
    """Send without waiting for each acknowledgement, then wait for all of them."""
    futures = [
        await producer.send(topic, json.dumps(e).encode(), key=e["data"]["ticket_id"].encode())
        for e in events
    ]
    await asyncio.gather(*futures)


async def send_paced(
    producer: AIOKafkaProducer,
    events: list[dict[str, Any]],
    *,
    chunk: int,
    pause: float,
) -> None:
    for i in range(0, len(events), chunk):
        await send_all(producer, events[i : i + chunk])
        await asyncio.sleep(pause)
