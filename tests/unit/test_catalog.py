"""A catalog loads whole and valid, or stops the service with a message that says what to fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from services.enricher.catalog import CatalogError, load_catalog, parse_catalog
from tests.support.tickets import SAMPLES, sample_catalog, sample_index

SAMPLE_TEXT = (SAMPLES / "catalog.yaml").read_text()


def broken(change: str) -> str:
    """The sample catalog with one edit applied to its parsed form, as YAML again."""
    data = yaml.safe_load(SAMPLE_TEXT)
    exec(change, {"data": data})
    return yaml.safe_dump(data)


def test_sample_catalog_is_realistic() -> None:
    catalog = sample_catalog()
    vendors = {v.id for v in catalog.vendors}
    assert len(catalog.components) >= 20
    assert len(vendors) >= 12
    assert any(c.vendor == "redhat" for c in catalog.components)
    assert any(not c.certified_for for c in catalog.components)
    assert any(c.certified_for and not c.certified("17.1") for c in catalog.components)
    assert catalog.redhat.sla.target("premium", 1).describe() == "1 hour, 24x7"
    assert catalog.redhat.sla.target("standard", 4).describe() == "2 days, business hours"
    assert catalog.calendars.for_country("US").length.total_seconds() == 9 * 3600
    assert catalog.calendars.for_country("DE").length.total_seconds() == 8 * 3600


def test_partner_topics_for_vendors_that_ship() -> None:
    ids = sample_index().partner_vendor_ids()
    assert "pure-storage" in ids
    assert "netapp" not in ids  # NetApp's drivers here are all shipped by Red Hat
    assert "redhat" not in ids


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            "data['vendors'][0]['id'] = 'Net App'",
            "vendors[0] (id 'Net App').id: String should match",
        ),
        ("data['vendors'][1]['id'] = 'redhat'", "'redhat' is reserved"),
        ("data['components'][0]['vendor'] = 'nobody'", "names unknown vendor 'nobody'"),
        (
            "del data['vendors'][2]['sla'][3]",
            "vendors[2] (id 'pure-storage').sla: Value error, severity 3 missing",
        ),
        ("del data['redhat']['sla']['premium'][1]", "redhat.sla.premium: Value error, severity 1"),
        (
            "data['redhat']['sla']['standard'][5] = data['redhat']['sla']['standard'][1]",
            "severity 5 is not a severity",
        ),
        ("data['vendors'][0]['sla'][1]['within'] = '2 hours'", "is not an ISO 8601 duration"),
        ("data['vendors'][0]['sla'][1]['clock'] = 'weekdays'", "Input should be '24x7' or"),
        ("data['calendars']['default']['end'] = 1020", "write times as quoted strings"),
        ("data['calendars']['default']['end'] = '08:00'", "must be after start"),
        ("data['components'].append(dict(data['components'][0]))", "listed twice"),
        ("data['components'][1]['refs'] = data['components'][0]['refs']", "names two components"),
        ("data['components'][0]['certified_for'] = ['17.x']", "String should match pattern"),
        ("data['components'][0]['shipped_by'] = 'vendor'", "is Red Hat's own but not shipped_by"),
    ],
)
def test_invalid_catalog_says_where_and_what(change: str, expected: str) -> None:
    with pytest.raises(CatalogError) as error:
        parse_catalog(broken(change), "/etc/catalog.yaml")
    message = str(error.value)
    assert message.startswith("/etc/catalog.yaml: ")
    assert expected in message


def test_unquoted_yaml_time_is_refused_not_misread() -> None:
    text = SAMPLE_TEXT.replace('end: "17:00"', "end: 17:00", 1)
    assert text != SAMPLE_TEXT
    with pytest.raises(CatalogError, match="quoted strings"):
        parse_catalog(text, "c.yaml")


def test_bad_yaml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="not valid YAML"):
        parse_catalog("vendors: [", "c.yaml")
    with pytest.raises(CatalogError, match="expected a mapping"):
        parse_catalog("- just a list", "c.yaml")
    with pytest.raises(CatalogError, match="set CATALOG_PATH"):
        load_catalog(tmp_path / "absent.yaml")


def test_json_catalog(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    path.write_text(sample_catalog().model_dump_json())
    assert load_catalog(path) == sample_catalog()
