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


def test_bounded_at_least_the_last_window_remembered() -> None:
    m = RoutingMemory(duplicate_window=3, revision_memory=2)
    for i in range(7):
        m.remember(f"e{i}", f"T{i}", 2)
        m.commit()
    # e4..e6 are the last three: always remembered; e0..e2 forgotten, the window is bounded.
    assert [m.judge(f"e{i}", "X", 1) for i in range(7)] == ["new"] * 3 + ["duplicate"] * 4
    assert len(m) <= 6
    assert m.judge("x", "T6", 1) == "stale"
    assert m.judge("x", "T5", 1) == "stale"
    assert m.judge("x", "T0", 1) == "new"  # forgotten


def test_memory_stays_bounded_under_a_long_stream() -> None:
    m = RoutingMemory(duplicate_window=1000, revision_memory=500)
    for i in range(10_000):
        m.remember(f"event-{i}", f"ticket-{i % 3000}", i)
        m.commit()
    assert len(m) <= 2000
    assert all(m.judge(f"event-{i}", "x", 1) == "duplicate" for i in range(9_000, 10_000))
