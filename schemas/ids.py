"""Deterministic ids: UUIDv5 strings, computed without building UUID objects (hot path)."""

from __future__ import annotations

import hashlib
import uuid

# The variant bits (10xx) applied to the 17th hex digit, by table rather than by bytes.
_VARIANT = {digit: "89ab"[int(digit, 16) & 0b11] for digit in "0123456789abcdef"}


class Uuid5Namespace:
    """Names of one UUIDv5 namespace: `ns.id(name) == str(uuid.uuid5(namespace, name))`.

    SHA-1 is fed the namespace once, and each id copies that state and adds only its name:
    cheaper than `uuid.uuid5`, which hashes the namespace again and builds a UUID object per
    id, and a router works out three ids a ticket."""

    __slots__ = ("_sha1",)

    def __init__(self, namespace: uuid.UUID) -> None:
        self._sha1 = hashlib.sha1(namespace.bytes)  # noqa: S324 - UUIDv5 is defined on SHA-1

    def id(self, name: str) -> str:
        sha1 = self._sha1.copy()
        sha1.update(name.encode())
        h = sha1.hexdigest()
        # RFC 9562: the version digit is 5, the variant's two high bits are 10.
        return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"
