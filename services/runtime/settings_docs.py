"""The settings' documentation, generated from the settings classes (services/runtime/settings.py).

Each setting's docstring, default and accepted values are written once, in its class; `make
docs` (`python -m services.runtime.settings_docs`) renders them into

- the settings tables of docs/settings.md (between the two `settings tables` comment markers);
- the chart's values.yaml: a value that feeds a setting has a comment starting
  `# -- VARIABLE:`, whose first paragraph is generated (the chart's own notes follow a bare `#`
  line and are kept as written);
- the chart's values.schema.json: the `description` of each of those values.

tests/unit/test_docs.py fails when a file differs from what this renders, and checks what the
chart accepts against what the services accept.
"""

from __future__ import annotations

import json
import re
import textwrap
import types
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic.types import PathType

from services.runtime.settings import SERVICES, ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_PAGE = ROOT / "docs" / "settings.md"
CHART = ROOT / "deploy" / "helm" / "ticketroute"
VALUES = CHART / "values.yaml"
SCHEMA = CHART / "values.schema.json"

BEGIN = "<!-- settings tables: generated from services/runtime/settings.py by `make docs` -->"
END = "<!-- end of the settings tables -->"
WIDTH = 100


# --- one setting ---------------------------------------------------------------------------


def env_name(field: str) -> str:
    return field.upper()


def doc(info: FieldInfo) -> str:
    """The field's docstring on one line."""
    return " ".join((info.description or "").split())


def _members(info: FieldInfo) -> list[Any]:
    """The field's types, None left out (Annotated ones still wrapped)."""
    annotation = info.annotation
    union = get_origin(annotation) in (Union, types.UnionType)
    return [t for t in (get_args(annotation) if union else (annotation,)) if t is not type(None)]


def _kind(info: FieldInfo) -> Any:
    """The field's type: the first of its union, None left out, Annotated unwrapped."""
    kind = _members(info)[0]
    return get_args(kind)[0] if hasattr(kind, "__metadata__") else kind


def _metadata(info: FieldInfo) -> list[Any]:
    """The field's constraints, those of an Annotated member of its union included."""
    found = list(info.metadata)
    for member in _members(info):
        found += getattr(member, "__metadata__", ())
    return found


def choices(info: FieldInfo) -> tuple[str, ...]:
    """The values a Literal field takes, in order; empty for any other field."""
    kind = _kind(info)
    return tuple(str(v) for v in get_args(kind)) if get_origin(kind) is Literal else ()


def _number(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


_IN_WORDS = {bool: "`true` or `false`", Path: "file path", SecretStr: "text, kept secret"}


def _range(kind: type, metadata: Sequence[Any]) -> str:
    """`an integer from 1 to 10`, `a number above 0, at most 300`, `a number above 0, below 1`."""
    text, high = "an integer" if kind is int else "a number", None
    for m in metadata:
        if isinstance(m, annotated_types.Ge):
            text += f" from {_number(m.ge)}"
        elif isinstance(m, annotated_types.Gt):
            text += f" above {_number(m.gt)},"
        elif isinstance(m, annotated_types.Le):
            high = f"at most {_number(m.le)}"
        elif isinstance(m, annotated_types.Lt):
            high = f"below {_number(m.lt)}"
    if high is None:
        return text.rstrip(",")
    if text[-1].isdigit() and high.startswith("at most "):
        return f"{text} to {high.removeprefix('at most ')}"
    return f"{text} {high}"


def accepted(info: FieldInfo) -> str:
    """What the field accepts, in words (Markdown)."""
    if values := choices(info):
        return _join([f"`{v}`" for v in values])
    kind, metadata = _kind(info), _metadata(info)
    if any(isinstance(m, PathType) and m.path_type == "file" for m in metadata):
        return "path of an existing file"
    if kind in (int, float):
        return _range(kind, metadata)
    if any(isinstance(m, annotated_types.MinLen) for m in metadata):
        return "non-empty text"
    return _IN_WORDS.get(kind, "text")


def default(info: FieldInfo) -> str:
    """The default as Markdown; empty when the setting is unset by default."""
    value = info.default
    if value is None:
        return ""
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, Path):
        try:
            return f"`{value.relative_to(ROOT)}`"
        except ValueError:
            return f"`{value}`"
    return f"`{_number(value)}`"


# --- the settings tables ---------------------------------------------------------------------


def _table(fields: dict[str, FieldInfo]) -> list[str]:
    rows = ["| variable | default | accepted | meaning |", "|---|---|---|---|"]
    for name, info in fields.items():
        cells = [f"`{env_name(name)}`", default(info), accepted(info), doc(info)]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return rows


def settings_tables() -> str:
    """The settings tables: the shared settings, then each service's own."""
    shared = ServiceSettings.model_fields
    lines = ["Every service:", "", *_table(dict(shared))]
    for service, cls in SERVICES.items():
        own = {n: f for n, f in cls.model_fields.items() if n not in shared}
        lines += ["", f"{service.capitalize()} only:", "", *_table(own)]
    return "\n".join(lines)


def with_settings_tables(readme: str) -> str:
    """`readme` with the text between the markers replaced by the generated tables."""
    start, end = readme.find(BEGIN), readme.find(END)
    if start < 0 or end < start:
        raise ValueError(f"{SETTINGS_PAGE.name} has no {BEGIN!r} ... {END!r} region")
    return f"{readme[: start + len(BEGIN)]}\n\n{settings_tables()}\n\n{readme[end:]}"


# --- the chart's values.yaml and values.schema.json --------------------------------------------

_KEY = re.compile(r"^(\s*)([A-Za-z_][\w-]*):")
_DECLARED = re.compile(r"^# -- ([A-Z][A-Z0-9_]*): ")


@dataclass(frozen=True)
class ChartValue:
    """A value of values.yaml that feeds a setting, as its comment declares."""

    path: tuple[str, ...]
    variable: str
    indent: str
    first: int  # first line of the generated part of its comment
    end: int  # line after it


def settings_of(path: Sequence[str], variable: str) -> tuple[type[ServiceSettings], str]:
    """The settings class (and field) a chart value at `path` feeds: a value under a service's
    own section feeds that service; any other, the shared settings or the one service that
    reads it."""
    field = variable.lower()
    if path[0] in SERVICES:
        cls = SERVICES[path[0]]
        if field in cls.model_fields:
            return cls, field
    elif field in ServiceSettings.model_fields:
        return ServiceSettings, field
    else:
        readers = [cls for cls in SERVICES.values() if field in cls.model_fields]
        if len(readers) == 1:
            return readers[0], field
    raise ValueError(f"{'.'.join(path)} declares {variable}, which no settings class reads there")


def chart_text(path: Sequence[str], variable: str) -> str:
    """The generated description of a chart value: the variable, the docstring, the choices."""
    cls, field = settings_of(path, variable)
    info = cls.model_fields[field]
    text = f"{variable}: {doc(info)}"
    if values := choices(info):
        text += f" One of: {', '.join(values)}."
    return text


def chart_values(values_yaml: str) -> Iterator[ChartValue]:
    """The values whose comment declares `# -- VARIABLE:`, in file order."""
    lines = values_yaml.splitlines()
    stack: list[tuple[int, str]] = []
    for index, line in enumerate(lines):
        match = _KEY.match(line)
        if not match:
            continue
        indent, key = match.groups()
        while stack and stack[-1][0] >= len(indent):
            stack.pop()
        stack.append((len(indent), key))
        first = index
        while first > 0 and lines[first - 1].startswith(f"{indent}#"):
            first -= 1
        declared = _DECLARED.match(lines[first].strip()) if first < index else None
        if declared:
            end = first
            while end < index and lines[end].strip() != "#":
                end += 1
            path = tuple(k for _, k in stack)
            yield ChartValue(path, declared.group(1), indent, first, end)


def with_values_comments(values_yaml: str) -> str:
    """values.yaml with the generated part of each declared value's comment rewritten."""
    lines = values_yaml.splitlines()
    for value in reversed(list(chart_values(values_yaml))):
        prefix = f"{value.indent}# "
        wrapped = textwrap.wrap(
            f"-- {chart_text(value.path, value.variable)}",
            width=WIDTH,
            initial_indent=prefix,
            subsequent_indent=prefix,
            break_long_words=False,
            break_on_hyphens=False,
        )
        lines[value.first : value.end] = wrapped
    return "\n".join(lines) + "\n"


def with_schema_descriptions(schema_json: str, values_yaml: str) -> str:
    """values.schema.json with each declared value's description set to its generated text."""
    schema = json.loads(schema_json)
    for value in chart_values(values_yaml):
        node = schema
        for key in value.path:
            node = node["properties"][key]
        node["description"] = chart_text(value.path, value.variable)
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    """Rewrite the settings tables and the chart's descriptions from the settings classes."""
    values_yaml = with_values_comments(VALUES.read_text())
    schema = with_schema_descriptions(SCHEMA.read_text(), values_yaml)
    readme = with_settings_tables(SETTINGS_PAGE.read_text())
    VALUES.write_text(values_yaml)
    SCHEMA.write_text(schema)
    SETTINGS_PAGE.write_text(readme)


if __name__ == "__main__":
    main()
