"""`python -m services.enricher`: read settings and the catalog, then serve."""

from __future__ import annotations

import asyncio
import sys

import structlog

from services.enricher.app import enricher_spec
from services.enricher.catalog import CatalogError, load_catalog
from services.enricher.enrich import CatalogIndex
from services.runtime.kafka import run_service
from services.runtime.logs import configure_logging
from services.runtime.settings import SAMPLE_CATALOG, EnricherSettings, load_settings


def main() -> None:
    settings = load_settings(EnricherSettings)
    configure_logging(settings.log_level, settings.log_format)
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
    spec = enricher_spec(settings, CatalogIndex.build(catalog))
    raise SystemExit(asyncio.run(run_service(spec, settings.metrics_port)))


if __name__ == "__main__":
    main()
