"""Deterministic ids: UUIDv5 strings, computed without building UUID objects (hot path)."""

from __future__ import annotations

import hashlib
import uuid
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=16)
def _hashed(namespace: uuid.UUID) -> Any:
    """SHA-1 with the namespace already fed in: each id copies it and adds only its name."""
    return hashlib.sha1(namespace.bytes)  # noqa: S324 - UUIDv5 is defined on SHA-1


def uuid5(namespace: uuid.UUID, name: str) -> str:
    """The same string as `str(uuid.uuid5(namespace, name))`, at a fraction of the cost."""
    sha1 = _hashed(namespace).copy()
    sha1.update(name.encode())
    digest = bytearray(sha1.digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
