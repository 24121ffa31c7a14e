"""The README documents every setting the services read."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.runtime.settings import EnricherSettings, RouterSettings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


@pytest.mark.parametrize("settings", [EnricherSettings, RouterSettings])
def test_every_setting_is_documented(settings: type) -> None:
    missing = [n.upper() for n in settings.model_fields if f"`{n.upper()}`" not in README]
    assert not missing
