"""Both services as real processes against the embedded Tansu broker, with a producer and a
consumer of every output (tests/support/processes.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.runtime.embedded import EmbeddedBroker
from tests.support.processes import System, running_system


@pytest.fixture
async def system(embedded_broker: EmbeddedBroker, tmp_path: Path) -> AsyncIterator[System]:
    async with running_system(embedded_broker, tmp_path) as system:
        yield system
