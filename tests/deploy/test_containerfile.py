"""The Containerfile is reviewed, not built, here (no container engine): these checks keep it
consistent with the chart and the services it packages."""

from __future__ import annotations

import re
import tomllib

import yaml

from services.runtime.settings import EnricherSettings, RouterSettings
from tests.deploy.conftest import CHART, REPO

CONTAINERFILE = REPO / "Containerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", CONTAINERFILE.read_text())
    result = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            word, _, rest = stripped.partition(" ")
            result.append((word.upper(), " ".join(rest.split())))
    return result


def test_multi_stage_slim_python_base() -> None:
    steps = instructions()
    assert ("ARG", "PYTHON_IMAGE=python:3.11-slim") in steps
    froms = [args for word, args in steps if word == "FROM"]
    assert froms == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE}"]
    runtime = steps[[i for i, (w, _) in enumerate(steps) if w == "FROM"][-1] :]
    assert ("COPY", "--from=build /opt/venv /opt/venv") in runtime
    # Nothing from the build context reaches the runtime stage but the built virtualenv.
    assert [a for w, a in runtime if w == "COPY"] == ["--from=build /opt/venv /opt/venv"]


def test_runs_as_the_chart_non_root_uid() -> None:
    steps = instructions()
    users = [args for word, args in steps if word == "USER"]
    assert len(users) == 1
    assert re.fullmatch(r"\d+:0", users[0]), "numeric UID, group 0 for arbitrary UIDs"
    uid = int(users[0].split(":")[0])
    assert uid != 0
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["podSecurityContext"]["runAsUser"] == uid


def test_sample_catalog_and_ports_inside() -> None:
    steps = instructions()
    assert ("COPY", "services/ services/") in steps
    assert any(w == "RUN" and "SAMPLE_CATALOG" in a and "is_file()" in a for w, a in steps)
    package_data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "**/*.yaml" in package_data["package-data"]["services"]
    exposed = {int(p) for w, a in steps if w == "EXPOSE" for p in a.split()}
    defaults = {
        cls.model_fields["metrics_port"].default for cls in (EnricherSettings, RouterSettings)
    }
    assert exposed == defaults
    env = " ".join(a for w, a in steps if w == "ENV")
    assert "PATH=/opt/venv/bin:$PATH" in env, "the chart's command `python` must be the venv's"
    assert "PYTHONDONTWRITEBYTECODE=1" in env, "the root filesystem is read-only"


def test_containerignore_sends_only_the_sources() -> None:
    lines = [
        line.strip()
        for line in (REPO / ".containerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "deny by default: no .venv, .tools or .git in the build context"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "schemas", "services", "ticketroute"}
    copied = {
        source.rstrip("/")
        for w, a in instructions()
        if w == "COPY" and not a.startswith("--from")
        for source in a.split()[:-1]
    }
    assert copied == allowed
