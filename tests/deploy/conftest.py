"""Helm chart checks without a cluster: helm renders, kubernetes-validate checks the schemas.

helm comes from tools/install-helm.sh (`make test` runs it first) at .tools/bin/helm, or from
the HELM environment variable. Nothing here is skipped: a missing tool fails the run and says
how to get it.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "ticketroute"
SCENARIO_DIR = CHART / "ci"
SCENARIOS = sorted(p.name.removesuffix("-values.yaml") for p in SCENARIO_DIR.glob("*-values.yaml"))
RELEASE = "tr"
NAMESPACE = "support"
# One Kubernetes version kubernetes-validate ships schemas for; the chart's kubeVersion admits it.
KUBERNETES_VERSION = "1.31"
SCHEMA_ERROR = "values don't meet the specifications of the schema"

Manifest = dict[str, Any]


def scenario_file(name: str) -> Path:
    return SCENARIO_DIR / f"{name}-values.yaml"


@dataclass(frozen=True)
class Rendered:
    """The manifests `helm template` printed for one set of values."""

    docs: list[Manifest]

    def kinds(self, kind: str) -> list[Manifest]:
        return [d for d in self.docs if d["kind"] == kind]

    def component(self, kind: str, component: str) -> Manifest:
        found = [
            d
            for d in self.kinds(kind)
            if d["metadata"]["labels"].get("app.kubernetes.io/component") == component
        ]
        assert len(found) == 1, f"expected one {kind} of the {component}, got {len(found)}"
        return found[0]

    def named(self, kind: str, name: str) -> Manifest:
        found = [d for d in self.kinds(kind) if d["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} named {name}, got {len(found)}"
        return found[0]

    def deployments(self) -> dict[str, Manifest]:
        return {
            d["metadata"]["labels"]["app.kubernetes.io/component"]: d
            for d in self.kinds("Deployment")
        }


def container(deployment: Manifest) -> Manifest:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def env_entries(deployment: Manifest) -> list[Manifest]:
    return list(container(deployment).get("env", []))


def env_values(deployment: Manifest) -> dict[str, str]:
    """The literal env of a Deployment (entries with `value`; secretKeyRef ones left out)."""
    return {e["name"]: e["value"] for e in env_entries(deployment) if "value" in e}


@pytest.fixture(scope="session")
def helm() -> str:
    candidate = os.environ.get("HELM") or str(REPO / ".tools" / "bin" / "helm")
    if not Path(candidate).is_file() or not os.access(candidate, os.X_OK):
        pytest.fail(
            f"helm not found at {candidate}: run `bash tools/install-helm.sh` "
            "(`make test` runs it first), or point HELM at a helm 3 binary",
            pytrace=False,
        )
    return candidate


HelmRun = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def run_helm(helm: str) -> HelmRun:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [helm, *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            # helm keeps caches and config under HOME; keep them out of the user's.
            env={
                **os.environ,
                "HELM_CACHE_HOME": str(REPO / ".tools" / "helm-cache"),
                "HELM_CONFIG_HOME": str(REPO / ".tools" / "helm-config"),
                "HELM_DATA_HOME": str(REPO / ".tools" / "helm-data"),
            },
        )

    return run


def template_args(values: Sequence[Path], sets: Sequence[str]) -> list[str]:
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE]
    for path in values:
        args += ["--values", str(path)]
    for item in sets:
        args += ["--set", item]
    return args


Render = Callable[..., Rendered]


@pytest.fixture(scope="session")
def render(run_helm: HelmRun) -> Render:
    """`helm template` with values files and --set items; fails the test on a helm error."""
    cache: dict[tuple[tuple[Path, ...], tuple[str, ...]], Rendered] = {}

    def _render(*values: Path, sets: Sequence[str] = ()) -> Rendered:
        key = (tuple(values), tuple(sets))
        if key not in cache:
            result = run_helm(*template_args(values, sets))
            assert result.returncode == 0, f"helm template failed:\n{result.stderr}"
            docs = [d for d in yaml.safe_load_all(result.stdout) if d]
            cache[key] = Rendered(docs)
        return cache[key]

    return _render


@pytest.fixture(params=SCENARIOS)
def scenario(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def rendered(scenario: str, render: Render) -> Rendered:
    return render(scenario_file(scenario))
