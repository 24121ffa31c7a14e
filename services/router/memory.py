"""What the router remembers to drop duplicates and stale revisions: bounded, in memory.

Plain object, no I/O. Two generations per table: lookups see both, writes go to the current
one, and when it is full it becomes the previous one and the oldest generation is dropped. So
at least the last `limit` entries are always remembered (at most twice that), eviction costs
nothing per message, and keys are 64-bit hashes rather than strings, to keep the memory small
and flat (100,000 event ids take a few MB).

What a batch teaches is pending until its outputs are acknowledged, so a batch that fails and
is delivered again is not mistaken for a duplicate of itself.
"""

from __future__ import annotations

from typing import Literal

Verdict = Literal["new", "duplicate", "stale"]


class _Generations:
    """A bounded map of key hash -> int with two generations (see the module docstring)."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._current: dict[int, int] = {}
        self._previous: dict[int, int] = {}

    def get(self, key: int) -> int | None:
        value = self._current.get(key)
        return self._previous.get(key) if value is None else value

    def put(self, key: int, value: int) -> None:
        if len(self._current) >= self._limit:
            self._previous, self._current = self._current, {}
        self._current[key] = value

    def __len__(self) -> int:
        return len(self._current) + len(self._previous)


class RoutingMemory:
    def __init__(self, duplicate_window: int, revision_memory: int) -> None:
        self._event_ids = _Generations(duplicate_window)
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
        self._pending_ids.add(hash(event_id))
        ticket = hash(ticket_id)
        self._pending_revisions[ticket] = max(self._latest(ticket), revision)

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
