"""The catalog index: what the enricher puts on a ticket for a component, a product version and
a severity, remembered between tickets but never across versions, severities or catalogs."""

from __future__ import annotations

import yaml

from services.enricher.catalog import parse_catalog
from services.enricher.enrich import CatalogIndex
from tests.support.tickets import SAMPLES, Ref, sample_index

VNX_ID = "dell-vnx-cinder"  # certified for 16.2 only


def test_a_match_is_the_catalogs_facts_for_that_version_and_severity() -> None:
    index = sample_index()
    on_16 = index.match(f"  {Ref.VNX}\t", "16.2.4", 1)
    on_17 = index.match(Ref.VNX, "17.1", 1)
    severity_4 = index.match(Ref.VNX, "16.2.4", 4)
    assert on_16 is not None
    assert on_17 is not None
    assert severity_4 is not None
    assert (on_16.id, on_16.certified, on_17.certified) == (VNX_ID, True, False)
    assert on_16.vendor is not None
    assert severity_4.vendor is not None
    dell = next(v for v in index.catalog.vendors if v.id == "dell")
    assert (on_16.vendor.target, severity_4.vendor.target) == (dell.sla[1], dell.sla[4])
    assert index.match(Ref.UNKNOWN, "17.1", 1) is None


def test_each_index_answers_from_its_own_catalog() -> None:
    # A reloaded catalog gets a new index; what the old one remembered does not leak into it.
    old = sample_index()
    assert old.match(Ref.VNX, "17.1", 2) is not None
    data = yaml.safe_load((SAMPLES / "catalog.yaml").read_text())
    vnx = next(c for c in data["components"] if c["id"] == VNX_ID)
    vnx["certified_for"] = ["16.2", "17.1"]
    new = CatalogIndex.build(parse_catalog(yaml.safe_dump(data)))
    old_match, new_match = old.match(Ref.VNX, "17.1", 2), new.match(Ref.VNX, "17.1", 2)
    assert old_match is not None
    assert new_match is not None
    assert (old_match.certified, new_match.certified) == (False, True)


def test_red_hat_terms_for_every_support_level_and_severity() -> None:
    index = sample_index()
    sla = index.catalog.redhat.sla
    assert index.redhat_terms("premium", 1) == (
        sla.premium[1],
        "Red Hat Premium, severity 1: 1 hour, 24x7",
    )
    assert index.redhat_terms("standard", 3)[1] == (
        "Red Hat Standard, severity 3: 1 day, business hours"
    )
    for level in ("premium", "standard"):
        for severity in (1, 2, 3, 4):
            target, basis = index.redhat_terms(level, severity)
            assert target == sla.target(level, severity)
            assert basis.startswith(f"Red Hat {level.capitalize()}, severity {severity}: ")
