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
    }
    assert doc["asyncapi"].startswith("3.")
