from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from schemas.ids import Uuid5Namespace


@given(st.uuids(), st.text())
def test_same_as_the_standard_library(namespace: uuid.UUID, name: str) -> None:
    assert Uuid5Namespace(namespace).id(name) == str(uuid.uuid5(namespace, name))
