"""`python -m services.enricher`: read settings and the catalog, then serve."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import replace

import structlog

from services.enricher.app import enricher_spec
from services.enricher.catalog import CatalogError, load_catalog
from services.enricher.enrich import CatalogIndex
from services.enricher.reload import CatalogWatcher, FileIdentity, LiveCatalog, file_identity
from services.runtime.kafka import create_topics
from services.runtime.service import ServiceSpec, serve
from services.runtime.settings import SAMPLE_CATALOG, EnricherSettings


def live_enricher(settings: EnricherSettings) -> ServiceSpec:
    """The enricher on the catalog at CATALOG_PATH, watched for changes; a catalog that does
    not load stops the start with what to fix."""
    log = structlog.get_logger()
    loaded_from = file_identity(settings.catalog_path)
    try:
        catalog = load_catalog(settings.catalog_path)
    except CatalogError as error:
        log.error("catalog_invalid", error=str(error))  # noqa: TRY400 - the message says it all
        print(f"ticketroute enricher: {error}", file=sys.stderr)  # noqa: T201
        raise SystemExit(2) from None
    if settings.catalog_path == SAMPLE_CATALOG:
        log.warning("sample_catalog_in_use", hint="set CATALOG_PATH to your certification catalog")
    log.info(
        "catalog_loaded",
        path=str(settings.catalog_path),
        version=catalog.version,
        vendors=len(catalog.vendors),
        components=len(catalog.components),
    )
    live = LiveCatalog(CatalogIndex.build(catalog))
    watcher = catalog_watcher(settings, live, loaded_from)
    return replace(
        enricher_spec(settings, live), background=lambda _pipeline, stop: watcher.run(stop)
    )


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
    serve(EnricherSettings, live_enricher)
