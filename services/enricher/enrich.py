"""Pure: a ticket event and the catalog in, the enriched ticket out. No I/O, no clock."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import get_args

from schemas.catalog import SEVERITIES, Catalog, CatalogComponent, SlaTarget, Vendor
from schemas.decision import (
    CatalogMatch,
    EnrichedComponent,
    EnrichedTicket,
    SourceEvent,
    VendorFacts,
)
from schemas.events import TicketEvent
from schemas.ticket import SupportLevel, TicketComponent
from schemas.views import view


@dataclass(frozen=True, eq=False)
class CatalogIndex:
    """The catalog with its look-ups prepared once, at load. Compared by identity: one index
    per catalog loaded."""

    catalog: Catalog
    by_ref: dict[str, CatalogComponent]
    vendors: dict[str, Vendor]
    redhat: dict[tuple[SupportLevel, int], tuple[SlaTarget, str]]
    """Red Hat's target and its basis by support level and severity."""

    @classmethod
    def build(cls, catalog: Catalog) -> CatalogIndex:
        by_ref = {
            key.strip(): component
            for component in catalog.components
            for key in (component.id, *component.refs)
        }
        redhat = {
            (level, severity): _redhat_terms(catalog, level, severity)
            for level in get_args(SupportLevel)
            for severity in SEVERITIES
        }
        return cls(catalog, by_ref, {v.id: v for v in catalog.vendors}, redhat)

    def match(self, ref: str, version: str, severity: int) -> CatalogMatch | None:
        """What the catalog says of `ref` for this product version and severity, if it knows it."""
        key = ref.strip()
        return _catalog_match(self, key, version, severity) if key in self.by_ref else None

    def redhat_terms(self, level: SupportLevel, severity: int) -> tuple[SlaTarget, str]:
        """Red Hat's response target for this support level and severity, and its basis,
        e.g. 'Red Hat Premium, severity 1: 1 hour, 24x7'."""
        return self.redhat[level, severity]

    def partner_vendor_ids(self) -> list[str]:
        """Vendors that ship at least one component themselves: each gets a topic."""
        return sorted({c.vendor for c in self.catalog.components if c.shipped_by == "vendor"})


def _vendor_facts(vendor: Vendor, severity: int) -> VendorFacts:
    return view(VendorFacts, vendor, target=vendor.sla[severity])


def _redhat_terms(catalog: Catalog, level: SupportLevel, severity: int) -> tuple[SlaTarget, str]:
    target = catalog.redhat.sla.target(level, severity)
    return target, f"Red Hat {level.capitalize()}, severity {severity}: {target.describe()}"


# Remembered: the catalog facts are the same for every ticket naming the same component,
# product version and severity, and tickets name few versions. Bounded: versions are the
# tickets' own.
@lru_cache(maxsize=10_000)
def _catalog_match(index: CatalogIndex, key: str, version: str, severity: int) -> CatalogMatch:
    found = index.by_ref[key]
    vendor = index.vendors.get(found.vendor)
    return view(
        CatalogMatch,
        found,
        vendor_id=found.vendor,
        certified=found.certified(version),
        vendor=_vendor_facts(vendor, severity) if vendor is not None else None,
    )


def forget_matches() -> None:
    """Drop the remembered look-ups, e.g. of a catalog just replaced, so it can be freed."""
    _catalog_match.cache_clear()


def _match(
    component: TicketComponent, index: CatalogIndex, version: str, severity: int
) -> EnrichedComponent:
    return EnrichedComponent(
        ref=component.ref,
        suspected=component.suspected,
        removable=component.removable,
        catalog=index.match(component.ref, version, severity),
    )


def certification(component: EnrichedComponent) -> str:
    if component.catalog is None:
        return "unknown"
    return "certified" if component.catalog.certified else "uncertified"


def enrich(event: TicketEvent, index: CatalogIndex) -> EnrichedTicket:
    ticket = event.data
    catalog = index.catalog
    redhat_target, redhat_basis = index.redhat_terms(ticket.customer.support_level, ticket.severity)
    return EnrichedTicket(
        event=SourceEvent(id=event.id, type=event.type, time=event.time, source=event.source),
        ticket=ticket,
        catalog_version=catalog.version,
        business_hours=catalog.calendars.for_country(ticket.customer.country),
        redhat_target=redhat_target,
        redhat_basis=redhat_basis,
        components=[
            _match(c, index, ticket.product.version, ticket.severity) for c in ticket.components
        ],
    )
