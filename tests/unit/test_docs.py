"""Each setting is documented once, in its settings class: the settings tables and the chart's
descriptions are generated from it (`make docs`), and the chart feeds, defaults and accepts
each setting as the service does."""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import ValidationError

from services.runtime import settings as settings_module
from services.runtime import settings_docs
from services.runtime.settings import SERVICES, ServiceSettings
from services.runtime.settings_docs import (
    CHART,
    SCHEMA,
    SETTINGS_PAGE,
    VALUES,
    ChartValue,
    chart_values,
    choices,
    settings_of,
)

REGENERATE = "out of date: run `make docs` (python -m services.runtime.settings_docs)"
# Settings the chart sets itself rather than from a value of the same meaning.
SET_BY_THE_CHART = {"CATALOG_PATH": "points at the catalog it mounts (catalog.*)"}
# Chart defaults that differ from the services' on purpose.
CHART_DEFAULTS = {
    "KAFKA_BOOTSTRAP_SERVERS": "none: the chart refuses to install without the brokers",
    "TOPIC_REPLICATION_FACTOR": "3: the chart deploys to a production cluster",
}
# One env entry of the chart's Deployments that passes a value straight through.
TEMPLATE_ENTRY = re.compile(r"- name: ([A-Z0-9_]+)\n\s+value: \{\{ \$(v|c)\.([\w.]+)")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Validation below sees only the values given, not this process's environment; and it
    skips loading the TLS files (the system CA store, for none), slow and not probed here."""
    for cls in SERVICES.values():
        for name in cls.model_fields:
            monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setattr(settings_module, "_check_tls_files", lambda _: None)


def declared() -> list[ChartValue]:
    return list(chart_values(VALUES.read_text()))


@functools.cache
def chart_defaults() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(VALUES.read_text())
    return loaded


def chart_default(value: ChartValue) -> Any:
    node: Any = chart_defaults()
    for key in value.path:
        node = node[key]
    return node


def schema_of(value: ChartValue) -> dict[str, Any]:
    node: dict[str, Any] = json.loads(SCHEMA.read_text())
    for key in value.path:
        node = node["properties"][key]
    return node


def service_accepts(cls: type[ServiceSettings], field: str, candidate: object) -> bool:
    """Whether the service takes `candidate` for `field` (checks across fields left out)."""
    try:
        cls.model_validate({field: candidate})
    except ValidationError as error:
        return not any(e["loc"][:1] == (field,) for e in error.errors())
    return True


# --- generated, and up to date ------------------------------------------------------------------


def test_settings_tables_are_generated() -> None:
    readme = SETTINGS_PAGE.read_text()
    assert settings_docs.BEGIN in readme
    assert readme == settings_docs.with_settings_tables(readme), (
        f"docs/settings.md settings tables {REGENERATE}"
    )


def test_chart_descriptions_are_generated() -> None:
    values = VALUES.read_text()
    assert values == settings_docs.with_values_comments(values), f"values.yaml {REGENERATE}"
    schema = SCHEMA.read_text()
    assert schema == settings_docs.with_schema_descriptions(schema, values), (
        f"values.schema.json {REGENERATE}"
    )


def test_readme_tables_name_every_setting_with_its_default_and_choices() -> None:
    """The generator itself: one row per setting of each service, in the right table."""
    tables = settings_docs.settings_tables()
    rows = [line for line in tables.splitlines() if line.startswith("| `")]
    shared = ServiceSettings.model_fields
    own = sum(len(set(cls.model_fields) - set(shared)) for cls in SERVICES.values())
    assert len(rows) == len(shared) + own
    assert "| `LOG_LEVEL` | `INFO` | `DEBUG`, `INFO`, `WARNING` or `ERROR` | " in tables
    assert "| `TOPIC_CREATE` | `true` | `true` or `false` | " in tables
    assert "| `KAFKA_SASL_MECHANISM` |  | `PLAIN`, " in tables
    assert "| `SHUTDOWN_GRACE_SECONDS` | `20` | a number above 0, at most 600 | " in tables
    assert "| `CATALOG_PATH` | `services/samples/catalog.yaml` | file path | " in tables
    for service in SERVICES:
        assert f"{service.capitalize()} only:" in tables


def test_a_stale_description_is_rewritten_and_the_chart_notes_kept() -> None:
    values = (
        "kafka:\n"
        "  # -- KAFKA_CLIENT_ID: an old text\n"
        "  # that went on.\n"
        "  #\n"
        "  # A note of the chart.\n"
        "  clientId: x\n"
    )
    assert settings_docs.with_values_comments(values) == (
        "kafka:\n"
        "  # -- KAFKA_CLIENT_ID: Client id the brokers see in their logs and quotas.\n"
        "  #\n"
        "  # A note of the chart.\n"
        "  clientId: x\n"
    )


# --- the chart feeds every setting once, as the service reads it ----------------------------


def test_every_setting_is_fed_by_one_chart_value() -> None:
    fed: Counter[tuple[str, str]] = Counter()
    for value in declared():
        section = value.path[0]
        services = [section] if section in SERVICES else list(SERVICES)
        settings_of(value.path, value.variable)  # raises for a variable nobody reads there
        for service in services:
            if value.variable.lower() in SERVICES[service].model_fields:
                fed[service, value.variable] += 1
    expected = {
        (service, name.upper())
        for service, cls in SERVICES.items()
        for name in cls.model_fields
        if name.upper() not in SET_BY_THE_CHART
    }
    assert not expected - set(fed), f"settings no chart value feeds: {sorted(expected - set(fed))}"
    assert not set(fed) - expected
    assert all(count == 1 for count in fed.values()), [k for k, n in fed.items() if n > 1]


def test_the_template_passes_each_declared_value_to_its_variable() -> None:
    """A value whose comment says `VARIABLE:` is the one the Deployments' env reads for it."""
    template = (CHART / "templates" / "_helpers.tpl").read_text()
    entries = TEMPLATE_ENTRY.findall(template)
    assert len(entries) > 20, "the env template's layout changed: update TEMPLATE_ENTRY"
    paths = {(v.variable, ".".join(v.path)) for v in declared()}
    for variable, scope, path in entries:
        wanted = {path} if scope == "v" else {f"{s}.{path}" for s in SERVICES}
        found = {p for var, p in paths if var == variable}
        assert found & wanted, f"{variable} is set from {scope}.{path}, declared at {found}"


def test_chart_defaults_are_the_services_defaults(clean_env: None) -> None:
    template = (CHART / "templates" / "_helpers.tpl").read_text()
    passed = {variable for variable, _, _ in TEMPLATE_ENTRY.findall(template)}
    checked = 0
    for value in declared():
        if value.variable not in passed or value.variable in CHART_DEFAULTS:
            continue
        cls, field = settings_of(value.path, value.variable)
        given = chart_default(value)
        chart = cls.model_validate({field: None if given == "" else given})
        assert getattr(chart, field) == cls.model_fields[field].default, ".".join(value.path)
        checked += 1
    assert checked > 20


@pytest.mark.parametrize("value", declared(), ids=lambda v: ".".join(v.path))
def test_chart_accepts_what_the_service_accepts(value: ChartValue, clean_env: None) -> None:
    """Choices both ways (the chart may not refuse `info` where the service takes it); for
    numbers the chart may be stricter (a port below 1024), never looser."""
    cls, field = settings_of(value.path, value.variable)
    info = cls.model_fields[field]
    chart = jsonschema.Draft7Validator(schema_of(value))
    if values := choices(info):
        for v in values:
            for candidate in {v, v.lower(), v.upper(), v.capitalize(), f"NOT-{v}"}:
                assert chart.is_valid(candidate) == service_accepts(cls, field, candidate), (
                    candidate
                )
        return
    node = schema_of(value)
    limits = ("ge", "gt", "le", "lt")
    keywords = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
    bounds = [
        *(getattr(m, a) for m in info.metadata for a in limits if hasattr(m, a)),
        *(node[k] for k in keywords if k in node),
    ]
    steps = (-1, 0, 1) if node.get("type") == "integer" else (-1, -0.5, 0, 0.5, 1)
    for candidate in {b + d for b in bounds for d in steps}:
        if chart.is_valid(candidate):
            assert service_accepts(cls, field, candidate), (candidate, "chart looser")
