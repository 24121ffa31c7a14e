"""`python -m services.enricher`: read settings and the catalog, then serve."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from dataclasses import replace

import structlog

from services.enricher.app import enricher_spec
from services.enricher.catalog import CatalogError, load_catalog
from services.enricher.enrich import CatalogIndex
from services.enricher.reload import CatalogWatcher, FileIdentity, LiveCatalog, file_identity
from services.runtime.kafka import create_topics, run_service
from services.runtime.logs import configure_logging
from services.runtime.settings import SAMPLE_CATALOG, EnricherSettings, load_settings


def main() -> None:
    settings = load_settings(EnricherSettings)
    configure_logging(settings.log_level, settings.log_format)
    loaded_from = file_identity(settings.catalog_path)
    try:
        catalog = load_catalog(settings.catalog_path)
    except CatalogError as error:
        structlog.get_logger().error("catalog_invalid", error=str(error))
        print(f"ticketroute enricher: {error}", file=sys.stderr)  # noqa: T201
        raise SystemExit(2) from None
    if settings.catalog_path == SAMPLE_CATALOG:
        structlog.get_logger().warning(
            "sample_catalog_in_use", hint="set CATALOG_PATH to your certification catalog"
        )
    structlog.get_logger().info(
        "catalog_loaded",
        path=str(settings.catalog_path),
        version=catalog.version,
        vendors=len(catalog.vendors),
        components=len(catalog.components),
    )
    live = LiveCatalog(CatalogIndex.build(catalog))
    watcher = catalog_watcher(settings, live, loaded_from)
    spec = replace(
        enricher_spec(settings, live), background=lambda _pipeline, stop: watcher.run(stop)
    )
    raise SystemExit(asyncio.run(run_service(spec, settings.metrics_port)))


def catalog_watcher(
    settings: EnricherSettings, live: LiveCatalog, loaded_from: FileIdentity | None
) -> CatalogWatcher:
    async def create(names: Sequence[str]) -> None:
        await create_topics(settings, names)

    return CatalogWatcher(
        settings.catalog_path,
        live,
        create_topics=create if settings.topic_create else None,
        topic_prefixes=(settings.topic_partner_prefix, settings.topic_responses_partner_prefix),
        poll_seconds=settings.catalog_poll_seconds,
        seen=loaded_from,
    )


if __name__ == "__main__":
    main()
