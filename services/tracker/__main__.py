"""`python -m services.tracker`: read settings, then serve."""

from __future__ import annotations

import asyncio

from services.runtime.kafka import run_service
from services.runtime.logs import configure_logging
from services.runtime.settings import TrackerSettings, load_settings
from services.tracker.app import tracker_spec


def main() -> None:
    settings = load_settings(TrackerSettings)
    configure_logging(settings.log_level, settings.log_format)
    raise SystemExit(asyncio.run(run_service(tracker_spec(settings), settings.metrics_port)))


if __name__ == "__main__":
    main()
