"""Deterministic ids: UUIDv5 strings, computed without building UUID objects (hot path)."""

from __future__ import annotations

import hashlib
import uuid
from functools import lru_cache
from typing import Any

# The variant bits (10xx) applied to the 17th hex digit, by table rather than by bytes.
_VARIANT = {digit: "89ab"[int(digit, 16) & 0b11] for digit in "0123456789abcdef"}


@lru_cache(maxsize=16)
def _hashed(namespace: uuid.UUID) -> Any:
    """SHA-1 with the namespace already fed in: each id copies it and adds only its name."""
    return hashlib.sha1(namespace.bytes)  # noqa: S324 - UUIDv5 is defined on SHA-1


def uuid5(namespace: uuid.UUID, name: str) -> str:
    """The same string as `str(uuid.uuid5(namespace, name))`, at a fraction of the cost."""
    sha1 = _hashed(namespace).copy()
    sha1.update(name.encode())
    h = sha1.hexdigest()
    # RFC 9562: the version digit is 5, the variant's two high bits are 10.
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"
