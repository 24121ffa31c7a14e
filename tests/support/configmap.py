"""A catalog mounted as Kubernetes mounts a ConfigMap, and sample catalogs a change away."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tests.support.tickets import Ref, sample_catalog


class ConfigMapVolume:
    """A ConfigMap volume laid out as the kubelet lays it out: `catalog.yaml` is a symlink to
    `..data/catalog.yaml`, `..data` a symlink to a timestamped folder, swapped atomically
    (a new symlink renamed over the old) when the ConfigMap changes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.updates = 0

    @property
    def path(self) -> Path:
        return self.root / "catalog.yaml"

    def publish(self, text: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.updates += 1
        folder = f"..2026_11_30_10_{self.updates:02d}_00.{self.updates:09d}"
        (self.root / folder).mkdir()
        (self.root / folder / "catalog.yaml").write_text(text)
        (self.root / "..data_tmp").symlink_to(folder)
        os.replace(self.root / "..data_tmp", self.root / "..data")
        if not self.path.is_symlink():
            self.path.symlink_to("..data/catalog.yaml")


def catalog_text(version: str, edit: Callable[[dict[str, Any]], None] | None = None) -> str:
    """The sample catalog as YAML under another version, with `edit` applied to its JSON form."""
    data: dict[str, Any] = sample_catalog().model_dump(mode="json")
    data["version"] = version
    if edit:
        edit(data)
    return yaml.safe_dump(data)


def add_synology(data: dict[str, Any]) -> None:
    """A new partner that ships its own driver, certified for 17.1 (`Ref.UNKNOWN` in the
    sample catalog)."""
    data["vendors"].append(
        {
            "id": "synology",
            "name": "Synology",
            "tsanet_member": False,
            "sla": {str(s): {"within": "P1D", "clock": "business"} for s in (1, 2, 3, 4)},
        }
    )
    data["components"].append(
        {
            "id": "synology-iscsi-cinder",
            "name": "Synology iSCSI driver",
            "vendor": "synology",
            "kind": "cinder-volume-driver",
            "refs": [Ref.UNKNOWN],
            "shipped_by": "vendor",
            "certified_for": ["17.1"],
        }
    )
