"""The committed JSON Schemas and AsyncAPI document are what the code generates."""

from __future__ import annotations

import yaml

from schemas.generate import HERE, rendered


def test_committed_contracts_match_the_models() -> None:
    stale = [
        str(path)
        for path, text in rendered().items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]
    assert not stale, f"run `make schemas` and commit: {stale}"


def test_asyncapi_lists_every_contract_topic() -> None:
    doc = yaml.safe_load((HERE / "asyncapi.yaml").read_text())
    addresses = {c["address"] for c in doc["channels"].values()}
    assert addresses == {
        "tickets.incoming",
        "tickets.enriched",
        "queue.redhat",
        "queue.partner.{vendor_id}",
        "collab.tsanet",
        "sla.ownership",
        "tickets.deadletter",
        "responses.redhat",
        "responses.partner.{vendor_id}",
        "responses.tsanet",
        "sla.events",
    }
    assert doc["asyncapi"].startswith("3.")


def test_one_channel_per_topic_and_inputs_are_received() -> None:
    doc = yaml.safe_load((HERE / "asyncapi.yaml").read_text())
    by_address = {c["address"]: c for c in doc["channels"].values()}
    assert len(by_address) == len(doc["channels"])
    # sla.events carries the four lifecycle types as one topic.
    assert sorted(by_address["sla.events"]["messages"]) == [
        "slaAtRiskEvent",
        "slaBreachedEvent",
        "slaCancelledEvent",
        "slaCompletedEvent",
    ]
    received = {
        doc["channels"][op["channel"]["$ref"].rsplit("/", 1)[1]]["address"]
        for op in doc["operations"].values()
        if op["action"] == "receive"
    }
    assert received == {
        "tickets.incoming",
        "responses.redhat",
        "responses.partner.{vendor_id}",
        "responses.tsanet",
    }
