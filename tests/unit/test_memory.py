"""Duplicate and stale-revision memory: bounded, and nothing learnt from a failed batch."""

from __future__ import annotations

from services.router.memory import RoutingMemory


def test_duplicate_stale_and_equal_revision() -> None:
    m = RoutingMemory(duplicate_window=10, revision_memory=10)
    assert m.judge("e1", "T", 2) == "new"
    m.remember("e1", "T", 2)
    assert m.judge("e1", "T", 2) == "duplicate"  # within the same batch already
    m.commit()
    assert m.judge("e1", "T", 2) == "duplicate"
    assert m.judge("e2", "T", 1) == "stale"
    assert m.judge("e3", "T", 2) == "new"  # equal revision: routed again
    assert m.judge("e4", "T", 3) == "new"
    assert m.judge("e5", "OTHER", 1) == "new"


def test_rollback_forgets_the_failed_batch() -> None:
    m = RoutingMemory(duplicate_window=10, revision_memory=10)
    m.remember("e1", "T", 5)
    m.rollback()
    assert m.judge("e1", "T", 5) == "new"
    assert m.judge("e2", "T", 1) == "new"
    assert len(m) == 0


def test_bounded_oldest_forgotten_first() -> None:
    m = RoutingMemory(duplicate_window=3, revision_memory=2)
    for i in range(5):
        m.remember(f"e{i}", f"T{i}", 2)
    m.commit()
    assert len(m) == 3
    assert m.judge("e0", "X", 1) == "new"  # evicted
    assert m.judge("e4", "X", 1) == "duplicate"
    assert m.judge("x", "T0", 1) == "new"  # T0's revision evicted
    assert m.judge("x", "T4", 1) == "stale"
