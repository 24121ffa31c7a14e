"""Fault injection on both services as real processes against the embedded Tansu broker, and
on their parser, pipeline and processors in process. The helpers are in tests/support/."""

from __future__ import annotations

import io
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import structlog

from services.runtime.embedded import EmbeddedBroker
from services.runtime.logs import configure_logging
from tests.support.processes import System, running_system


@pytest.fixture
async def faults(embedded_broker: EmbeddedBroker, tmp_path: Path) -> AsyncIterator[System]:
    async with running_system(embedded_broker, tmp_path) as system:
        yield system


@pytest.fixture
def json_logs() -> Iterator[io.BytesIO]:
    """The services' own structlog set-up (JSON via orjson), writing into a buffer, so a log
    call that cannot be rendered fails here as it would in the service."""
    buffer = io.BytesIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "stdout", SimpleNamespace(buffer=buffer))
        configure_logging("INFO", "json")
    # Not cached: other tests configure structlog their own way afterwards.
    structlog.configure(cache_logger_on_first_use=False)
    yield buffer
    structlog.reset_defaults()
