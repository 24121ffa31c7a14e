"""Duplicate and stale-revision memory: bounded, and nothing learnt from a failed batch."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.router.memory import RoutingMemory, _FixedTable, _Generations


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


# Keys as the router makes them: str hashes, any 64-bit value, 0 and colliding slots included.
_keys = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from([0, 1, -1, 16, 32, 2**62, -(2**63)]),  # 0; same slot in a 16-slot table
)


@given(st.lists(st.tuples(_keys, st.integers(min_value=0, max_value=2**63 - 1)), max_size=300))
def test_fixed_table_answers_like_a_dict(puts: list[tuple[int, int]]) -> None:
    table = _FixedTable(capacity=300)
    model: dict[int, int] = {}
    for drawn, value in puts:
        key = drawn or 1  # as _Generations does: 0 marks an empty slot
        table.put(key, value)
        model[key] = value
    assert table.size == len(model)
    assert all(table.get(k) == v for k, v in model.items())
    assert table.get(12345678901) == model.get(12345678901)


@given(st.lists(_keys, max_size=400), st.integers(min_value=1, max_value=40))
def test_generations_keep_at_least_the_last_limit_keys(keys: list[int], limit: int) -> None:
    generations = _Generations(limit)
    for n, key in enumerate(keys):
        generations.put(key, n)
        assert len(generations) <= 2 * limit
    last_values: dict[int, int] = {}
    for n, key in enumerate(keys):
        last_values[key or 1] = n
    recent = list(dict.fromkeys(reversed([k or 1 for k in keys])))[:limit]
    assert all(generations.get(k) == last_values[k] for k in recent)


@given(st.lists(_keys, max_size=300))
def test_fixed_table_without_values_answers_like_a_set(keys: list[int]) -> None:
    table = _FixedTable(capacity=300, values=False)
    for key in keys:
        table.put(key or 1, 12345)
    model = {k or 1 for k in keys}
    assert table.size == len(model)
    assert all(table.get(k) == 1 for k in model)
    assert table.get(98765432123) == (1 if 98765432123 in model else None)


_event = st.tuples(
    st.sampled_from([f"e{i}" for i in range(12)]),
    st.sampled_from(["T1", "T2", "T3"]),
    st.integers(min_value=1, max_value=6),
)


@given(st.lists(st.tuples(st.lists(_event, max_size=8), st.booleans()), max_size=12))
def test_verdicts_as_the_router_uses_them_match_a_plain_model(
    batches: list[tuple[list[tuple[str, str, int]], bool]],
) -> None:
    """Judge each event, remember the new ones, then commit or roll back the batch: the same
    verdicts as sets and dicts that forget nothing (the windows here are never full)."""
    m = RoutingMemory(duplicate_window=1000, revision_memory=1000)
    seen: set[str] = set()
    latest: dict[str, int] = {}
    for events, acknowledged in batches:
        batch_seen, batch_latest = set(seen), dict(latest)
        for event_id, ticket_id, revision in events:
            if event_id in batch_seen:
                expected = "duplicate"
            elif revision < batch_latest.get(ticket_id, 0):
                expected = "stale"
            else:
                expected = "new"
            assert m.judge(event_id, ticket_id, revision) == expected
            if expected == "new":
                m.remember(event_id, ticket_id, revision)
                batch_seen.add(event_id)
                batch_latest[ticket_id] = revision
        if acknowledged:
            m.commit()
            seen, latest = batch_seen, batch_latest
        else:
            m.rollback()
