"""One stack, two brokers: the same contract tests run against FastStream's in-memory broker
(fast, no network) and against the embedded Tansu broker (real Kafka protocol, marked
integration)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.runtime.embedded import EmbeddedBroker
from tests.support.stack import Stack, running_stack


@pytest.fixture(scope="session")
def tansu() -> AsyncIterator[EmbeddedBroker]:
    with EmbeddedBroker() as broker:
        yield broker  # type: ignore[misc]


@pytest.fixture(
    scope="session", params=["memory", pytest.param("tansu", marks=pytest.mark.integration)]
)
async def stack(request: pytest.FixtureRequest) -> AsyncIterator[Stack]:
    if request.param == "memory":
        async with running_stack("memory", "localhost:9092") as s:
            yield s
    else:
        embedded: EmbeddedBroker = request.getfixturevalue("tansu")
        async with running_stack("tansu", embedded.bootstrap_servers) as s:
            yield s
