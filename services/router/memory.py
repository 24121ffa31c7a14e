"""What the router remembers to drop duplicates and stale revisions: bounded, in memory.

Plain object, no I/O. What a batch teaches is pending until its outputs are acknowledged,
so a batch that fails and is delivered again is not mistaken for a duplicate of itself.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Literal

Verdict = Literal["new", "duplicate", "stale"]


def _bounded_put(store: OrderedDict[str, int], key: str, value: int, limit: int) -> None:
    store[key] = value
    store.move_to_end(key)
    while len(store) > limit:
        store.popitem(last=False)  # least recently seen goes first


class RoutingMemory:
    def __init__(self, duplicate_window: int, revision_memory: int) -> None:
        self._window = duplicate_window
        self._revision_limit = revision_memory
        self._event_ids: OrderedDict[str, int] = OrderedDict()
        self._revisions: OrderedDict[str, int] = OrderedDict()
        self._pending_ids: dict[str, int] = {}
        self._pending_revisions: dict[str, int] = {}

    def judge(self, event_id: str, ticket_id: str, revision: int) -> Verdict:
        if event_id in self._pending_ids or event_id in self._event_ids:
            return "duplicate"
        latest = self._pending_revisions.get(ticket_id, self._revisions.get(ticket_id, 0))
        return "stale" if revision < latest else "new"

    def remember(self, event_id: str, ticket_id: str, revision: int) -> None:
        self._pending_ids[event_id] = revision
        latest = self._pending_revisions.get(ticket_id, self._revisions.get(ticket_id, 0))
        self._pending_revisions[ticket_id] = max(latest, revision)

    def commit(self) -> None:
        for event_id, revision in self._pending_ids.items():
            _bounded_put(self._event_ids, event_id, revision, self._window)
        for ticket_id, revision in self._pending_revisions.items():
            _bounded_put(self._revisions, ticket_id, revision, self._revision_limit)
        self.rollback()

    def rollback(self) -> None:
        self._pending_ids.clear()
        self._pending_revisions.clear()

    def __len__(self) -> int:
        return len(self._event_ids)
