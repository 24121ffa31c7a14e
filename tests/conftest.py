"""Fixtures every harness may use. The helpers behind them live in tests/support/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from services.runtime.embedded import EmbeddedBroker


@pytest.fixture
def embedded_broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    """A fresh embedded Tansu broker for one test; a test using it is marked integration."""
    with EmbeddedBroker(log_path=tmp_path / "tansu.log") as broker:
        yield broker


_running = {"integration": False}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _running["integration"] = item.get_closest_marker("integration") is not None


@pytest.fixture(scope="session", autouse=True)
def _broker_only_in_integration_tests() -> Iterator[None]:
    """Keeps `pytest -m "not integration"` a fast loop: a test (or a fixture of any scope set
    up for it) that starts the embedded broker without the integration mark fails, saying so."""
    start = EmbeddedBroker.start

    def guarded(self: EmbeddedBroker) -> EmbeddedBroker:
        if not _running["integration"]:
            raise AssertionError("starts the embedded broker: mark the test integration")
        return start(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(EmbeddedBroker, "start", guarded)
        yield
