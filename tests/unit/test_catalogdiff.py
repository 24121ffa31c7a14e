"""The catalog diff says which entries and fields a new catalog changes, in one log line and
in full."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from schemas.catalog import Catalog
from services.enricher.catalogdiff import FieldChange, diff_catalogs
from tests.support.tickets import sample_catalog


def edited(edit: Callable[[dict[str, Any]], None]) -> Catalog:
    """The sample catalog, new version, with one edit to its JSON form."""
    data: dict[str, Any] = sample_catalog().model_dump(mode="json")
    data["version"] = "2026-12-01"
    edit(data)
    return Catalog.model_validate(data)


def entry(items: list[dict[str, Any]], entry_id: str) -> dict[str, Any]:
    return next(i for i in items if i["id"] == entry_id)


def test_same_catalog_new_version_changes_nothing() -> None:
    diff = diff_catalogs(sample_catalog(), edited(lambda d: None))
    assert diff.unchanged
    assert (diff.old_version, diff.new_version) == ("2026-11-24", "2026-12-01")
    assert diff.summary() == "no change to vendors, components, SLA or calendars"
    assert diff.lines() == [
        "Catalog 2026-11-24 -> 2026-12-01",
        "  no change to vendors, components, SLA or calendars",
    ]


def test_certification_shipping_and_vendor_of_a_component() -> None:
    def edit(d: dict[str, Any]) -> None:
        infinibox = entry(d["components"], "infinidat-infinibox-cinder")
        infinibox["certified_for"] = ["17.1"]
        unity = entry(d["components"], "dell-unity-cinder")
        unity["certified_for"] = ["17.1", "18.0"]  # 16.2 dropped, 18.0 added
        unity["shipped_by"] = "redhat"

    diff = diff_catalogs(sample_catalog(), edited(edit))
    assert not diff.unchanged
    assert diff.components.added == diff.components.removed == ()
    assert [c.id for c in diff.components.changed] == [
        "dell-unity-cinder",
        "infinidat-infinibox-cinder",
    ]
    unity, infinibox = diff.components.changed
    assert unity.changes == (
        FieldChange("certified_for", ["16.2", "17.1"], ["17.1", "18.0"]),
        FieldChange("shipped_by", "vendor", "redhat"),
    )
    assert infinibox.changes == (FieldChange("certified_for", [], ["17.1"]),)
    assert diff.summary() == (
        "components changed: dell-unity-cinder (certified_for +18.0 -16.2, "
        "shipped_by vendor->redhat), infinidat-infinibox-cinder (certified_for +17.1)"
    )
    assert "  component changed  dell-unity-cinder: shipped_by vendor -> redhat" in diff.lines()
    assert not diff.vendors
    assert diff.redhat_sla == diff.calendars == ()


def test_components_and_vendors_added_and_removed() -> None:
    def edit(d: dict[str, Any]) -> None:
        d["components"] = [c for c in d["components"] if c["id"] != "dell-vnx-cinder"]
        d["vendors"].append(
            {
                "id": "synology",
                "name": "Synology",
                "tsanet_member": False,
                "sla": {str(s): {"within": "P1D", "clock": "business"} for s in (1, 2, 3, 4)},
            }
        )
        d["components"].append(
            {
                "id": "synology-iscsi-cinder",
                "name": "Synology iSCSI driver",
                "vendor": "synology",
                "kind": "cinder-volume-driver",
                "shipped_by": "vendor",
                "certified_for": ["17.1"],
            }
        )

    diff = diff_catalogs(sample_catalog(), edited(edit))
    assert diff.components.added == ("synology-iscsi-cinder",)
    assert diff.components.removed == ("dell-vnx-cinder",)
    assert diff.vendors.added == ("synology",)
    assert diff.vendors.removed == ()
    assert diff.summary() == (
        "components added: synology-iscsi-cinder; components removed: dell-vnx-cinder; "
        "vendors added: synology"
    )
    assert (
        "  component added    synology-iscsi-cinder: Synology iSCSI driver, by synology, "
        "shipped by vendor, certified for 17.1"
    ) in diff.lines()
    assert "  vendor added       synology: Synology, not a TSANet member" in diff.lines()
    assert diff.as_json()["components"] == {
        "added": ["synology-iscsi-cinder"],
        "removed": ["dell-vnx-cinder"],
        "changed": [],
    }


def test_vendor_facts_red_hat_sla_and_calendars() -> None:
    def edit(d: dict[str, Any]) -> None:
        huawei = entry(d["vendors"], "huawei")
        huawei["tsanet_member"] = True
        huawei["tsanet_company_id"] = "1533"
        entry(d["vendors"], "netapp")["sla"]["2"] = {"within": "PT2H", "clock": "24x7"}
        d["redhat"]["sla"]["premium"]["3"]["within"] = "PT2H"
        d["calendars"]["by_country"]["US"]["start"] = "08:00:00"

    diff = diff_catalogs(sample_catalog(), edited(edit))
    assert [(c.id, c.changes) for c in diff.vendors.changed] == [
        (
            "huawei",
            (
                FieldChange("tsanet_company_id", None, "1533"),
                FieldChange("tsanet_member", False, True),
            ),
        ),
        ("netapp", (FieldChange("sla.2.within", "PT4H", "PT2H"),)),
    ]
    assert diff.redhat_sla == (FieldChange("premium.3.within", "PT4H", "PT2H"),)
    assert diff.calendars == (FieldChange("by_country.US.start", "09:00:00", "08:00:00"),)
    assert diff.summary() == (
        "vendors changed: huawei (tsanet_company_id (none)->1533, tsanet_member false->true), "
        "netapp (sla.2.within PT4H->PT2H); Red Hat SLA changed: premium.3.within PT4H->PT2H; "
        "calendars changed: by_country.US.start 09:00:00->08:00:00"
    )
    as_json = diff.as_json()
    assert as_json["redhat_sla"] == [
        {"field": "premium.3.within", "before": "PT4H", "after": "PT2H"}
    ]
    assert as_json["vendors"]["changed"][0] == {
        "id": "huawei",
        "changes": [
            {"field": "tsanet_company_id", "before": None, "after": "1533"},
            {"field": "tsanet_member", "before": False, "after": True},
        ],
    }


def test_summary_names_a_few_entries_then_counts() -> None:
    def edit(d: dict[str, Any]) -> None:
        for c in d["components"]:
            c["name"] += " (renamed)"

    diff = diff_catalogs(sample_catalog(), edited(edit))
    total = len(sample_catalog().components)
    assert len(diff.components.changed) == total
    assert diff.summary().endswith(f" and {total - 5} more")
    assert len(diff.lines()) == 1 + total  # the full form names every one
