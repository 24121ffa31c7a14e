"""Pure: a ticket event and the catalog in, the enriched ticket out. No I/O, no clock."""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.catalog import Catalog, CatalogComponent, SlaTarget, Vendor
from schemas.decision import (
    CatalogMatch,
    EnrichedComponent,
    EnrichedTicket,
    SourceEvent,
    VendorFacts,
)
from schemas.events import TicketEvent
from schemas.ticket import SupportLevel, TicketComponent

# Distinct (component, product version, severity) matches kept; tickets name few versions.
_MAX_MATCHES = 10_000


@dataclass(frozen=True)
class CatalogIndex:
    """The catalog with its look-ups prepared once, at load."""

    catalog: Catalog
    by_ref: dict[str, CatalogComponent]
    vendors: dict[str, Vendor]
    # Catalog facts are the same for every ticket naming the same component, version and
    # severity: built once (a memo of a pure function, bounded), shared by every such ticket.
    _matches: dict[tuple[str, str, int], CatalogMatch] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    # Red Hat's target and its wording per support level and severity: eight at most.
    _redhat_terms: dict[tuple[SupportLevel, int], tuple[SlaTarget, str]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @classmethod
    def build(cls, catalog: Catalog) -> CatalogIndex:
        by_ref = {
            key.strip(): component
            for component in catalog.components
            for key in (component.id, *component.refs)
        }
        return cls(catalog, by_ref, {v.id: v for v in catalog.vendors})

    def match(self, ref: str, version: str, severity: int) -> CatalogMatch | None:
        """What the catalog says of `ref` for this product version and severity, if it knows it."""
        found = self.by_ref.get(ref.strip())
        if found is None:
            return None
        key = (found.id, version, severity)
        match = self._matches.get(key)
        if match is None:
            if len(self._matches) >= _MAX_MATCHES:
                self._matches.clear()
            match = self._matches[key] = _catalog_match(found, self.vendors, version, severity)
        return match

    def redhat_terms(self, level: SupportLevel, severity: int) -> tuple[SlaTarget, str]:
        """Red Hat's response target for this support level and severity, and its basis,
        e.g. 'Red Hat Premium, severity 1: 1 hour, 24x7'."""
        terms = self._redhat_terms.get((level, severity))
        if terms is None:
            target = self.catalog.redhat.sla.target(level, severity)
            basis = f"Red Hat {level.capitalize()}, severity {severity}: {target.describe()}"
            terms = self._redhat_terms[level, severity] = (target, basis)
        return terms

    def partner_vendor_ids(self) -> list[str]:
        """Vendors that ship at least one component themselves: each gets a topic."""
        return sorted({c.vendor for c in self.catalog.components if c.shipped_by == "vendor"})


def _vendor_facts(vendor: Vendor, severity: int) -> VendorFacts:
    return VendorFacts(
        id=vendor.id,
        name=vendor.name,
        tsanet_member=vendor.tsanet_member,
        tsanet_company_id=vendor.tsanet_company_id,
        engineering_relationship=vendor.engineering_relationship,
        target=vendor.sla[severity],
    )


def _catalog_match(
    found: CatalogComponent, vendors: dict[str, Vendor], version: str, severity: int
) -> CatalogMatch:
    vendor = vendors.get(found.vendor)
    return CatalogMatch(
        id=found.id,
        name=found.name,
        kind=found.kind,
        vendor_id=found.vendor,
        shipped_by=found.shipped_by,
        certified=found.certified(version),
        vendor=_vendor_facts(vendor, severity) if vendor is not None else None,
    )


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
