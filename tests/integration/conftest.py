"""Both services as real processes against the embedded Tansu broker, as in production:
started with `python -m`, configured by environment, killed and restarted by signals."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.runtime.embedded import EmbeddedBroker, free_port

ROOT = Path(__file__).resolve().parents[2]
OUTPUT_TOPICS = ("queue.redhat", "collab.tsanet", "sla.ownership", "tickets.deadletter")


def http_get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class ServiceProcess:
    """One service process; its log goes to a file under the test's tmp dir."""

    def __init__(self, module: str, env: dict[str, str], log: Path) -> None:
        self.module = module
        self.port = free_port()
        self.env = {**os.environ, **env, "METRICS_PORT": str(self.port)}
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            assert self.process.poll() is None, self.logs()
            try:
                if http_get(self.port, "/readyz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{self.module} not ready in {timeout}s:\n{self.logs()}")

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
        if self.process and self.process.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


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

    async def wait_until(self, condition: Any, timeout: float = 60.0, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out waiting for {what}\n--- enricher:\n{self.enricher.logs()}"
                    f"\n--- router:\n{self.router.logs()}"
                )
            await asyncio.sleep(0.1)


def service_env(bootstrap: str, run: str) -> dict[str, str]:
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


@pytest.fixture
def embedded_broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(log_path=tmp_path / "tansu.log") as broker:
        yield broker


async def collect_outputs(consumer: AIOKafkaConsumer, system: System) -> None:
    while True:
        batches = await consumer.getmany(timeout_ms=100)
        for records in batches.values():
            for record in records:
                system.outputs[record.topic].append(record)


@pytest.fixture
async def system(embedded_broker: EmbeddedBroker, tmp_path: Path) -> AsyncIterator[System]:
    env = service_env(embedded_broker.bootstrap_servers, uuid.uuid4().hex[:8])
    enricher = ServiceProcess("services.enricher", env, tmp_path / "enricher.log").start()
    router = ServiceProcess("services.router", env, tmp_path / "router.log").start()
    producer = AIOKafkaProducer(bootstrap_servers=embedded_broker.bootstrap_servers, acks="all")
    consumer = AIOKafkaConsumer(
        bootstrap_servers=embedded_broker.bootstrap_servers, auto_offset_reset="earliest"
    )
    collector: asyncio.Task[None] | None = None
    try:
        enricher.wait_ready()
        router.wait_ready()
        await producer.start()
        await consumer.start()
        consumer.subscribe(
            pattern=r"^(queue\..*|collab\.tsanet|sla\.ownership|tickets\.deadletter)$"
        )
        system = System(embedded_broker, enricher, router, producer)
        collector = asyncio.create_task(collect_outputs(consumer, system))
        yield system
    finally:
        if collector:
            collector.cancel()
        await consumer.stop()
        await producer.stop()
        enricher.stop()
        router.stop()
