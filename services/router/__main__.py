"""`python -m services.router`: read settings, then serve."""

from __future__ import annotations

import asyncio

from services.router.app import router_spec
from services.runtime.kafka import run_service
from services.runtime.logs import configure_logging
from services.runtime.settings import RouterSettings, load_settings


def main() -> None:
    settings = load_settings(RouterSettings)
    configure_logging(settings.log_level, settings.log_format)
    raise SystemExit(asyncio.run(run_service(router_spec(settings), settings.metrics_port)))


if __name__ == "__main__":
    main()
