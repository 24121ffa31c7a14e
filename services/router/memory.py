"""What the router remembers to drop duplicates and stale revisions: bounded, in memory.

Plain object, no I/O. Two generations per table: lookups see both, writes go to the current
one, and when it is full it becomes the previous one and the oldest generation is dropped. So
at least the last `limit` entries are always remembered (at most twice that) and eviction
costs nothing per message. Keys are 64-bit hashes rather than strings, kept in fixed arrays
allocated at start (8 bytes a slot, 16 with a value; half the slots stay empty): the memory
is taken once and stays flat however long the router runs (100,000 event ids take 4 MB,
100,000 revisions 8 MB), where dicts of Python ints would grow with every entry until both
generations were full.

What a batch teaches is pending until its outputs are acknowledged, so a batch that fails and
is delivered again is not mistaken for a duplicate of itself.
"""

from __future__ import annotations

from array import array
from typing import Literal

Verdict = Literal["new", "duplicate", "stale"]


class _FixedTable:
    """A map of non-zero 64-bit int -> int (or a set, without `values`) for up to `capacity`
    keys, in arrays allocated once: open addressing with linear probing, at most half full.
    0 marks an empty slot."""

    __slots__ = ("_keys", "_mask", "_values", "size")

    def __init__(self, capacity: int, values: bool = True) -> None:
        slots = 1 << max(4, (2 * capacity - 1).bit_length())
        self._keys = array("q", bytes(8 * slots))
        self._values = array("q", bytes(8 * slots)) if values else None
        self._mask = slots - 1
        self.size = 0

    def _slot(self, key: int) -> int:
        keys, mask = self._keys, self._mask
        i = key & mask
        while True:
            found = keys[i]
            if found in (key, 0):
                return i
            i = (i + 1) & mask

    def get(self, key: int) -> int | None:
        i = self._slot(key)
        if not self._keys[i]:
            return None
        return 1 if self._values is None else self._values[i]

    def put(self, key: int, value: int) -> None:
        i = self._slot(key)
        if not self._keys[i]:
            self._keys[i] = key
            self.size += 1
        if self._values is not None:
            self._values[i] = value

    def clear(self) -> None:
        self._keys[:] = array("q", bytes(8 * len(self._keys)))
        self.size = 0


class _Generations:
    """A bounded map of key hash -> int with two generations (see the module docstring)."""

    def __init__(self, limit: int, values: bool = True) -> None:
        self._limit = limit
        self._current = _FixedTable(limit, values)
        self._previous = _FixedTable(limit, values)

    def get(self, key: int) -> int | None:
        key = key or 1  # 0 marks an empty slot
        value = self._current.get(key)
        return self._previous.get(key) if value is None else value

    def put(self, key: int, value: int) -> None:
        if self._current.size >= self._limit:
            self._previous, self._current = self._current, self._previous
            self._current.clear()
        self._current.put(key or 1, value)

    def __len__(self) -> int:
        return self._current.size + self._previous.size


class RoutingMemory:
    def __init__(self, duplicate_window: int, revision_memory: int) -> None:
        self._event_ids = _Generations(duplicate_window, values=False)  # a set: ids seen
        self._revisions = _Generations(revision_memory)
        self._pending_ids: set[int] = set()
        self._pending_revisions: dict[int, int] = {}

    def _latest(self, ticket: int) -> int:
        pending = self._pending_revisions.get(ticket)
        return pending if pending is not None else (self._revisions.get(ticket) or 0)

    def judge(self, event_id: str, ticket_id: str, revision: int) -> Verdict:
        key = hash(event_id)
        if key in self._pending_ids or self._event_ids.get(key) is not None:
            return "duplicate"
        return "stale" if revision < self._latest(hash(ticket_id)) else "new"

    def remember(self, event_id: str, ticket_id: str, revision: int) -> None:
        """Remember an event that `judge` found new: its revision is then at least the latest
        remembered, so only this batch's own revisions are compared (`judge` has just read the
        tables, and reading them again would double the look-ups)."""
        self._pending_ids.add(hash(event_id))
        ticket = hash(ticket_id)
        pending = self._pending_revisions.get(ticket)
        self._pending_revisions[ticket] = revision if pending is None else max(pending, revision)

    def commit(self) -> None:
        for key in self._pending_ids:
            self._event_ids.put(key, 1)
        for ticket, revision in self._pending_revisions.items():
            self._revisions.put(ticket, revision)
        self.rollback()

    def rollback(self) -> None:
        self._pending_ids.clear()
        self._pending_revisions.clear()

    def __len__(self) -> int:
        return len(self._event_ids)
