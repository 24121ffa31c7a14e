"""A new catalog without a restart: the enricher follows CATALOG_PATH through a ConfigMap's
symlink swap, applies a valid catalog between batches, refuses an invalid one and keeps
serving the old."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from services.enricher.app import EnricherProcessor
from services.enricher.catalog import CatalogError, load_catalog
from services.enricher.enrich import CatalogIndex
from services.enricher.reload import CatalogWatcher, LiveCatalog
from services.runtime.settings import EnricherSettings
from tests.support.configmap import ConfigMapVolume, add_synology, catalog_text
from tests.support.tickets import Ref, component, encode, ticket_event

PREFIXES = ("queue.partner.", "responses.partner.")


class Topics:
    """A create_topics that records what it was asked, and what catalog was in use then."""

    def __init__(self, live: LiveCatalog, fail: bool = False) -> None:
        self.live = live
        self.fail = fail
        self.calls: list[tuple[list[str], str]] = []

    async def __call__(self, names: Sequence[str]) -> None:
        self.calls.append((list(names), self.live.index.catalog.version))
        if self.fail:
            raise ConnectionError("no broker")


@pytest.fixture
def volume(tmp_path: Path) -> ConfigMapVolume:
    v = ConfigMapVolume(tmp_path)
    v.publish(catalog_text("2026-11-24"))
    return v


def start(
    volume: ConfigMapVolume, fail: bool = False
) -> tuple[LiveCatalog, CatalogWatcher, Topics]:
    live = LiveCatalog(CatalogIndex.build(load_catalog(volume.path)))
    topics = Topics(live, fail)
    watcher = CatalogWatcher(
        volume.path, live, create_topics=topics, topic_prefixes=PREFIXES, poll_seconds=0.05
    )
    return live, watcher, topics


def info(version: str) -> float | None:
    return REGISTRY.get_sample_value("ticketroute_catalog_info", {"version": version})


def reloads(result: str) -> float:
    return REGISTRY.get_sample_value("ticketroute_catalog_reloads_total", {"result": result}) or 0


class Record:
    def __init__(self, value: bytes) -> None:
        self.topic, self.partition, self.offset, self.timestamp = "tickets.incoming", 0, 0, 0
        self.key: bytes | None = b"k"
        self.value: bytes | None = value
        self.headers: list[tuple[str, bytes]] = []


def enriched_version(processor: EnricherProcessor, ref: str = Ref.UNKNOWN) -> str:
    event = ticket_event(components=[component(ref, True)])
    (out,) = processor.process(Record(encode(event)))
    version: str = json.loads(out.value)["data"]["catalog_version"]
    return version


async def test_symlink_swap_is_seen_and_applied(volume: ConfigMapVolume) -> None:
    live, watcher, _ = start(volume)
    assert await watcher.check() is None  # the same file: nothing to do
    applied = reloads("applied")
    volume.publish(catalog_text("2026-12-01", add_synology))
    with capture_logs() as logs:
        assert await watcher.check() == "applied"
    assert live.index.catalog.version == "2026-12-01"
    assert info("2026-12-01") == 1
    assert info("2026-11-24") is None  # only the version in use is exposed
    assert reloads("applied") == applied + 1
    (line,) = [entry for entry in logs if entry["event"] == "catalog_reloaded"]
    assert line["old_version"] == "2026-11-24"
    assert line["new_version"] == "2026-12-01"
    assert line["changes"] == ("components added: synology-iscsi-cinder; vendors added: synology")
    assert line["topics_created"] == ["queue.partner.synology", "responses.partner.synology"]
    assert await watcher.check() is None


async def test_new_partner_topics_exist_before_the_catalog_is_used(
    volume: ConfigMapVolume,
) -> None:
    live, watcher, topics = start(volume)
    volume.publish(catalog_text("2026-12-01", add_synology))
    assert await watcher.check() == "applied"
    assert live.index.catalog.version == "2026-12-01"
    # Asked while the old catalog still served: no ticket could reach the topics before.
    assert topics.calls == [
        (["queue.partner.synology", "responses.partner.synology"], "2026-11-24")
    ]


async def test_catalog_waits_while_its_topics_cannot_be_created(volume: ConfigMapVolume) -> None:
    live, watcher, topics = start(volume, fail=True)
    volume.publish(catalog_text("2026-12-01", add_synology))
    with capture_logs() as logs:
        assert await watcher.check() == "deferred"
    assert live.index.catalog.version == "2026-11-24"
    assert [e["event"] for e in logs] == ["catalog_reload_deferred"]
    topics.fail = False
    assert await watcher.check() == "applied"  # tried again though the file is the same
    assert live.index.catalog.version == "2026-12-01"
    assert len(topics.calls) == 2


async def test_invalid_catalog_is_refused_and_tickets_keep_flowing(
    volume: ConfigMapVolume,
) -> None:
    live, watcher, _ = start(volume)
    processor = EnricherProcessor(live, EnricherSettings())
    refused = reloads("refused")
    broken = catalog_text("2026-12-01").replace("tsanet_member: true", "tsanet_member: maybe")
    volume.publish(broken)
    with pytest.raises(CatalogError) as at_start:
        load_catalog(volume.path)
    with capture_logs() as logs:
        assert await watcher.check() == "refused"
    (line,) = logs
    assert line["event"] == "catalog_refused"
    assert line["log_level"] == "error"
    assert line["error"] == str(at_start.value)  # the message the service gives at start
    assert line["version_in_use"] == "2026-11-24"
    assert reloads("refused") == refused + 1
    assert info("2026-11-24") == 1
    assert enriched_version(processor) == "2026-11-24"
    processor.batch_done()
    assert enriched_version(processor) == "2026-11-24"
    assert await watcher.check() is None  # refused once, not at every poll
    volume.publish(catalog_text("2026-12-02"))  # fixed
    assert await watcher.check() == "applied"
    processor.batch_done()
    assert enriched_version(processor) == "2026-12-02"


async def test_changed_content_under_the_same_version_is_refused(
    volume: ConfigMapVolume,
) -> None:
    live, watcher, _ = start(volume)
    volume.publish(catalog_text("2026-11-24"))  # a new file, the same catalog
    assert await watcher.check() == "unchanged"

    def certify(data: dict[str, Any]) -> None:
        infinibox = next(c for c in data["components"] if c["id"] == "infinidat-infinibox-cinder")
        infinibox["certified_for"] = ["17.1"]

    volume.publish(catalog_text("2026-11-24", certify))
    with capture_logs() as logs:
        assert await watcher.check() == "refused"
    assert "its version is still '2026-11-24'" in logs[0]["error"]
    assert "infinidat-infinibox-cinder (certified_for +17.1)" in logs[0]["error"]
    assert live.index.by_ref[Ref.INFINIBOX].certified_for == []


async def test_a_batch_is_never_enriched_with_two_catalogs(volume: ConfigMapVolume) -> None:
    live, watcher, _ = start(volume)
    processor = EnricherProcessor(live, EnricherSettings())
    assert enriched_version(processor) == "2026-11-24"  # a batch begins
    volume.publish(catalog_text("2026-12-01", add_synology))
    assert await watcher.check() == "applied"
    # The rest of the batch: still the catalog it began with, even for the new vendor's driver.
    assert enriched_version(processor) == "2026-11-24"
    assert enriched_version(processor, Ref.PURE) == "2026-11-24"
    processor.batch_done()
    assert enriched_version(processor) == "2026-12-01"
    volume.publish(catalog_text("2026-12-02", add_synology))
    assert await watcher.check() == "applied"
    processor.batch_failed()  # a failed batch is redelivered whole, under the catalog of now
    assert enriched_version(processor) == "2026-12-02"


async def test_watching_applies_within_a_few_polls(volume: ConfigMapVolume) -> None:
    live, watcher, _ = start(volume)
    stop = asyncio.Event()
    task = asyncio.create_task(watcher.run(stop))
    volume.publish(catalog_text("2026-12-01"))
    for _ in range(100):
        if live.index.catalog.version == "2026-12-01":
            break
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, 1)
    assert live.index.catalog.version == "2026-12-01"
