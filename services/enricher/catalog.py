"""Loading the certification catalog: all of it valid, or the service does not start."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from schemas.catalog import Catalog


class CatalogError(Exception):
    """The catalog file cannot be used; the message says where and what to fix."""


def _entry(data: Any, loc: tuple[int | str, ...]) -> str:
    """`vendors[3] (id 'acme').sla` rather than `vendors.3.sla`: name the entry."""
    parts: list[str] = []
    node = data
    for key in loc:
        if isinstance(key, int):
            label = f"[{key}]"
            if isinstance(node, list) and key < len(node):
                node = node[key]
                if isinstance(node, dict) and "id" in node:
                    label += f" (id {node['id']!r})"
            else:
                node = None
            parts.append(label)
        else:
            parts.append(("." if parts else "") + key)
            node = node.get(key) if isinstance(node, dict) else None
    return "".join(parts) or "(top level)"


# libyaml's loader when PyYAML was built with it (the wheels are): the same data, parsed an
# order of magnitude faster, which matters when a catalog is reloaded while tickets flow.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_catalog(text: str, source: str = "catalog") -> Catalog:
    try:
        data = json.loads(text) if source.endswith(".json") else yaml.load(text, _YAML_LOADER)  # noqa: S506 - a safe loader
    except (yaml.YAMLError, json.JSONDecodeError) as error:
        raise CatalogError(f"{source}: not valid YAML/JSON: {error}") from None
    if not isinstance(data, dict):
        raise CatalogError(f"{source}: expected a mapping with version, vendors, components")
    try:
        return Catalog.model_validate(data)
    except ValidationError as error:
        problems = [f"  {_entry(data, tuple(e['loc']))}: {e['msg']}" for e in error.errors()]
        raise CatalogError(
            f"{source}: {len(problems)} problem(s) in the catalog:\n" + "\n".join(problems)
        ) from None


def load_catalog(path: Path) -> Catalog:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise CatalogError(
            f"cannot read catalog {path}: {error.strerror}; set CATALOG_PATH to the catalog file"
        ) from None
    return parse_catalog(text, str(path))
