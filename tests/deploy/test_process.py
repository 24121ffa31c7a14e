"""Each service started with the env block of its rendered Deployment (defaults scenario), and
nothing else, against the embedded broker: its probes and /metrics answer, and SIGTERM stops it
cleanly within the grace period the pod gets."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.runtime.embedded import EmbeddedBroker, free_port
from services.runtime.settings import SAMPLE_CATALOG
from tests.deploy.conftest import REPO, Manifest, Render, container, env_entries, scenario_file
from tests.support.processes import http_get

READY_TIMEOUT_S = 60.0


@dataclass
class Started:
    component: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    termination_grace_s: int

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def process_env(deployment: Manifest, bootstrap: str, port: int) -> dict[str, str]:
    """The Deployment's env with values resolved: the broker, the catalog and the port swapped
    for local ones, and secretKeyRef entries (none with the defaults) dropped."""
    env: dict[str, str] = {}
    for entry in env_entries(deployment):
        if "value" not in entry:
            assert "secretKeyRef" in entry["valueFrom"], entry
            continue
        env[entry["name"]] = entry["value"]
    assert env["KAFKA_BOOTSTRAP_SERVERS"], "the chart always sets the brokers"
    env["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
    if "CATALOG_PATH" in env:
        env["CATALOG_PATH"] = str(SAMPLE_CATALOG)
    assert env["METRICS_PORT"] == str(container(deployment)["ports"][0]["containerPort"])
    env["METRICS_PORT"] = str(port)
    return env


def wait_for(started: Started, path: str, deadline: float) -> tuple[int, str]:
    last: tuple[int, str] = (0, "no answer")
    while time.monotonic() < deadline:
        if started.process.poll() is not None:
            pytest.fail(
                f"{started.component} exited with {started.process.returncode}:\n{started.logs()}"
            )
        with contextlib.suppress(OSError):
            last = http_get(started.port, path)
            if last[0] == 200:
                return last
        time.sleep(0.25)
    pytest.fail(
        f"{started.component} {path} still {last} after {READY_TIMEOUT_S}s:\n{started.logs()}"
    )


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as embedded:
        yield embedded


@pytest.fixture(scope="module")
def services(
    render: Render, broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Started]]:
    logs = tmp_path_factory.mktemp("services")
    started: dict[str, Started] = {}
    try:
        for component, deployment in render(scenario_file("defaults")).deployments().items():
            port = free_port()
            log = logs / f"{component}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [sys.executable, "-m", f"services.{component}"],
                    # Exactly the Deployment's env: nothing inherited from this process.
                    env=process_env(deployment, broker.bootstrap_servers, port),
                    cwd=REPO,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
            started[component] = Started(component, process, port, log, grace)
        yield started
    finally:
        for s in started.values():
            if s.process.poll() is None:
                s.process.kill()
                s.process.wait()


@pytest.mark.integration
def test_services_answer_probes_and_metrics_then_stop_on_sigterm(
    services: dict[str, Started],
) -> None:
    assert sorted(services) == ["enricher", "router", "tracker"]
    deadline = time.monotonic() + READY_TIMEOUT_S
    for started in services.values():
        assert wait_for(started, "/healthz", deadline) == (200, "ok\n")
    for started in services.values():
        assert wait_for(started, "/readyz", deadline) == (200, "ready\n")
        status, body = http_get(started.port, "/metrics")
        assert status == 200
        assert "ticketroute_ready 1.0" in body.splitlines(), started.logs()
        assert "# TYPE ticketroute_messages_in_flight gauge" in body

    for started in services.values():
        started.process.send_signal(signal.SIGTERM)
    for started in services.values():
        begun = time.monotonic()
        try:
            code = started.process.wait(timeout=started.termination_grace_s)
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"{started.component} still running {started.termination_grace_s}s "
                f"after SIGTERM (Kubernetes would kill it):\n{started.logs()}"
            )
        assert code == 0, f"{started.component} exited {code}:\n{started.logs()}"
        assert time.monotonic() - begun < started.termination_grace_s
        assert '"event":"service_stopped"' in started.logs()
