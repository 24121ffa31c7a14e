"""`ticketroute whatif` on files: what a new catalog would change, through the services' own
enrichment, rules and SLA, with nothing published."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.tickets import SAMPLES, Ref, component, sample_catalog, ticket_event
from ticketroute.cli import main

SAMPLE_TICKETS = SAMPLES / "tickets.json"


def entry(items: list[dict[str, Any]], entry_id: str) -> dict[str, Any]:
    return next(i for i in items if i["id"] == entry_id)


def next_catalog(path: Path) -> Path:
    """The sample catalog a month on: Infinidat certifies InfiniBox for 17.1, Huawei joins
    TSANet, Dell's VNX driver is withdrawn."""
    data: dict[str, Any] = sample_catalog().model_dump(mode="json")
    data["version"] = "2026-12-01"
    entry(data["components"], "infinidat-infinibox-cinder")["certified_for"] = ["17.1"]
    entry(data["vendors"], "huawei")["tsanet_member"] = True
    data["components"] = [c for c in data["components"] if c["id"] != "dell-vnx-cinder"]
    path.write_text(yaml.safe_dump(data))
    return path


def whatif(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["whatif", *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_json_lists_counts_and_only_the_tickets_that_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = next_catalog(tmp_path / "next.yaml")
    status, out, _ = whatif(capsys, str(new), str(SAMPLE_TICKETS), "--json")
    assert status == 0
    result = json.loads(out)
    assert result["current_version"] == "2026-11-24"
    assert result["new_version"] == "2026-12-01"
    assert result["tickets"] == 15
    counts = {(c["from"], c["to"]): c["tickets"] for c in result["counts"]}
    assert sum(counts.values()) == 15
    assert counts["uncertified-collaborate", "partner-shipped"] == 1
    assert counts["uncertified-no-collaboration", "partner-shipped"] == 1
    assert counts["uncertified-no-collaboration", "uncertified-collaborate"] == 1
    assert counts["uncertified-replace", "partner-shipped"] == 1
    # VNX withdrawn: a different rule, but Red Hat's queue, owner and due time stay the same,
    # so the ticket is counted and not listed.
    assert counts["uncertified-replace", "unknown-component"] == 1
    assert counts["partner-shipped", "partner-shipped"] == 3
    assert [c["ticket_id"] for c in result["changed"]] == [
        "04013655",
        "04013790",
        "04013811",
        "04013904",
    ]

    infinibox = result["changed"][1]
    assert infinibox["revision"] == 1
    assert infinibox["before"] == {
        "rule": "uncertified-collaborate",
        "route": "tsanet",
        "topic": "collab.tsanet",
        "owner": {"party": "redhat", "vendor_id": None},
        "response_due_at": infinibox["before"]["response_due_at"],
        "reason": "infinidat-infinibox-cinder is not certified for 17.1 and cannot be removed; "
        "infinidat is a TSANet member and the customer has an agreement with it: "
        "Red Hat collaborates via TSANet",
        "actions": [],
        "catalog_version": "2026-11-24",
        "decision_id": infinibox["before"]["decision_id"],
    }
    assert infinibox["after"]["rule"] == "partner-shipped"
    assert infinibox["after"]["route"] == "partner"
    assert infinibox["after"]["topic"] == "queue.partner.infinidat"
    assert infinibox["after"]["owner"] == {"party": "vendor", "vendor_id": "infinidat"}
    assert infinibox["after"]["reason"] == (
        "infinidat-infinibox-cinder is certified for 17.1 and shipped by infinidat: "
        "infinidat is the primary contact"
    )
    assert infinibox["after"]["catalog_version"] == "2026-12-01"
    assert infinibox["before"]["decision_id"] != infinibox["after"]["decision_id"]

    # A vendor-owned ticket's due time comes from the vendor's table: it moves.
    no_collaboration = result["changed"][2]
    assert no_collaboration["before"]["response_due_at"] == "2026-11-25T13:30:00Z"
    assert no_collaboration["after"]["response_due_at"] == "2026-11-24T19:30:00Z"

    huawei = result["changed"][3]
    assert (huawei["before"]["route"], huawei["after"]["route"]) == ("redhat", "tsanet")
    assert huawei["before"]["owner"] == huawei["after"]["owner"]
    assert huawei["before"]["response_due_at"] == huawei["after"]["response_due_at"]

    assert result["catalog_diff"]["components"]["removed"] == ["dell-vnx-cinder"]
    assert result["skipped_invalid"] == 0


def test_text_report_for_people(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = next_catalog(tmp_path / "next.yaml")
    status, out, _ = whatif(capsys, str(new), str(SAMPLE_TICKETS))
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == "Catalog 2026-11-24 -> 2026-12-01"
    assert "  component removed  dell-vnx-cinder" in lines
    assert "15 ticket event(s) replayed; 4 would change route, owner or due time." in lines
    assert any(
        line.split() == ["uncertified-collaborate", "partner-shipped", "1", "*"] for line in lines
    )
    at = lines.index("04013790 revision 1")
    assert lines[at + 1].startswith("  now  uncertified-collaborate: tsanet -> collab.tsanet")
    assert lines[at + 3].startswith(
        "  new  partner-shipped: partner -> queue.partner.infinidat, owner infinidat, due "
    )


def test_nothing_changes_exit_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    same = SAMPLES / "catalog.yaml"
    status, out, _ = whatif(capsys, str(same), str(SAMPLE_TICKETS), "--json")
    assert status == 0
    result = json.loads(out)
    assert result["changed"] == []
    assert all(c["from"] == c["to"] for c in result["counts"])


def test_current_catalog_from_option_then_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    new = next_catalog(tmp_path / "next.yaml")
    monkeypatch.setenv("CATALOG_PATH", str(new))
    status, out, _ = whatif(capsys, str(new), str(SAMPLE_TICKETS), "--json")
    assert status == 0
    assert json.loads(out)["current_version"] == "2026-12-01"
    assert json.loads(out)["changed"] == []
    sample = str(SAMPLES / "catalog.yaml")
    status, out, _ = whatif(capsys, str(new), str(SAMPLE_TICKETS), "--catalog", sample, "--json")
    assert json.loads(out)["current_version"] == "2026-11-24"


def test_duplicates_count_once_and_invalid_events_are_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event = ticket_event("T-1", components=[component(Ref.INFINIBOX, True, removable=False)])
    invalid = ticket_event("T-2", severity=9)
    tickets = tmp_path / "tickets.json"
    tickets.write_text(json.dumps([event, event, invalid]))
    status, out, _ = whatif(capsys, str(next_catalog(tmp_path / "n.yaml")), str(tickets), "--json")
    assert status == 0
    result = json.loads(out)
    assert result["tickets"] == 1
    assert result["skipped_invalid"] == 1
    assert [c["ticket_id"] for c in result["changed"]] == ["T-1"]


def test_invalid_catalog_fails_with_the_services_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    data: dict[str, Any] = sample_catalog().model_dump(mode="json")
    data["components"][0]["vendor"] = "nobody"
    bad.write_text(yaml.safe_dump(data))
    status, out, err = whatif(capsys, str(bad), str(SAMPLE_TICKETS))
    assert status == 2
    assert out == ""
    assert err.startswith(f"ticketroute whatif: new catalog: {bad}: 1 problem(s) in the catalog")
    assert "names unknown vendor 'nobody'" in err


def test_unreadable_ticket_file_fails_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.json"
    status, out, err = whatif(capsys, str(SAMPLES / "catalog.yaml"), str(missing))
    assert status == 2
    assert out == ""
    assert err.startswith(f"ticketroute whatif: cannot read {missing}: ")


def test_a_source_of_events_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["whatif", str(SAMPLES / "catalog.yaml")])
    assert exit_info.value.code == 2
    assert "--from-topic" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["whatif", str(SAMPLES / "catalog.yaml"), "--from-topic", "t"])
    assert "--since" in capsys.readouterr().err
