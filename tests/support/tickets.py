"""Ticket events for tests: realistic defaults, every field overridable."""

from __future__ import annotations

import copy
import json
import uuid
from functools import cache
from pathlib import Path
from typing import Any

from schemas.catalog import Catalog
from services.enricher.catalog import load_catalog
from services.enricher.enrich import CatalogIndex

SAMPLES = Path(__file__).resolve().parents[2] / "services" / "samples"


class Ref:
    """Component refs of the sample catalog, one for each situation the rules tell apart."""

    NETAPP = (
        "cinder.volume.drivers.netapp.common.NetAppDriver"  # Red Hat ships; TSANet, engineering
    )
    PURE = "cinder.volume.drivers.pure.PureISCSIDriver"  # Pure ships; certified 16.2-18.0
    VNX = "cinder.volume.drivers.dell_emc.vnx.driver.VNXDriver"  # Dell ships; 16.2 only
    INFINIBOX = "cinder.volume.drivers.infinidat.InfiniboxVolumeDriver"  # uncertified; TSANet
    OCEANSTOR = (
        "cinder.volume.drivers.huawei.huawei_driver.HuaweiISCSIDriver"  # uncertified; no TSANet
    )
    NVIDIA = "nvidia-connectx-offload"  # Red Hat ships; not TSANet; engineering relationship
    OVN = "neutron.plugins.ml2.drivers.ovn.mech_driver.mech_driver.OVNMechanismDriver"  # Red Hat's
    CEPH = "cinder.volume.drivers.rbd.RBDDriver"  # Red Hat's own
    UNKNOWN = "cinder.volume.drivers.synology.synology_iscsi.SynoISCSIDriver"  # not in catalog

    @classmethod
    def every(cls) -> list[str]:
        return [v for k, v in vars(cls).items() if k.isupper()]


@cache
def sample_catalog() -> Catalog:
    return load_catalog(SAMPLES / "catalog.yaml")


@cache
def sample_index() -> CatalogIndex:
    return CatalogIndex.build(sample_catalog())


def sample_events() -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = json.loads((SAMPLES / "tickets.json").read_text())
    return events


def component(ref: str, suspected: bool = False, removable: bool | None = None) -> dict[str, Any]:
    return {"ref": ref, "suspected": suspected, "removable": removable}


def ticket_event(
    ticket_id: str | None = None,
    *,
    components: list[dict[str, Any]] | None = None,
    event_type: str = "support.ticket.created",
    event_time: str = "2026-11-24T14:00:00+00:00",
    **data: Any,
) -> dict[str, Any]:
    """A valid ticket event: a premium US customer, severity 2, on RHOSP 17.1."""
    ticket_id = ticket_id or f"T-{uuid.uuid4().hex[:12]}"
    ticket: dict[str, Any] = {
        "ticket_id": ticket_id,
        "revision": 1,
        "opened_at": "2026-11-24T14:00:00+00:00",
        "severity": 2,
        "summary": "Volumes stuck in attaching",
        "description": "After the update, new volumes stay in 'attaching'.",
        "product": {"name": "Red Hat OpenStack Platform", "version": "17.1"},
        "customer": {
            "account_id": "ACME-001",
            "name": "Acme Corp",
            "support_level": "premium",
            "country": "US",
            "timezone": "America/New_York",
            "vendor_agreements": ["netapp", "infinidat"],
        },
        "components": components if components is not None else [component(Ref.NETAPP, True)],
        "needs_vendor_expertise": False,
        "contact": {"name": "Jane Doe", "email": "jane@acme.example"},
    }
    for key, value in data.items():
        if key == "customer":
            ticket["customer"] = {**ticket["customer"], **value}
        else:
            ticket[key] = value
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/ticketing/test",
        "type": event_type,
        "time": event_time,
        "subject": ticket_id,
        "datacontenttype": "application/json",
        "data": ticket,
    }


def updated(event: dict[str, Any], revision: int, time: str) -> dict[str, Any]:
    """The next revision of a ticket, as the ticketing system would publish it."""
    new = copy.deepcopy(event)
    new["id"] = str(uuid.uuid4())
    new["type"] = "support.ticket.updated"
    new["time"] = time
    new["data"]["revision"] = revision
    return new


def encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()
