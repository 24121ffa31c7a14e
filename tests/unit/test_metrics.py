"""The batch histogram: one call per batch exposes what prometheus_client's own Histogram
exposes when it observes each amount."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from services.runtime.metrics import BatchHistogram

BUCKETS = (0.001, 0.01, 0.1, 1, 10)
amounts = st.lists(
    st.one_of(
        st.floats(min_value=-1, max_value=100, allow_nan=False),
        st.sampled_from(BUCKETS),  # on a bound: that bucket counts it (amount <= bound)
    ),
    max_size=50,
)


def _exposed(batches: list[list[float]], *, batched: bool) -> dict[str, float]:
    registry = CollectorRegistry()
    if batched:
        ours = BatchHistogram("latency", "Latency.", buckets=BUCKETS, registry=registry)
        for batch in batches:
            ours.observe_each(batch)
    else:
        reference = Histogram("latency", "Latency.", buckets=BUCKETS, registry=registry)
        for batch in batches:
            for amount in batch:
                reference.observe(amount)
    text = generate_latest(registry).decode()
    return {
        sample.name + str(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.name.endswith("_created")  # when it was made
    }


@given(st.lists(amounts, max_size=5))
def test_a_batch_is_exposed_as_a_histogram_observing_each_amount(
    batches: list[list[float]],
) -> None:
    each = _exposed(batches, batched=False)
    batched = _exposed(batches, batched=True)
    assert batched.keys() == each.keys()
    for name, value in each.items():
        # The sum is added up in another order, so it may differ in the last bits.
        assert batched[name] == pytest.approx(value, abs=1e-9), name


def test_buckets_are_cumulative_and_bounds_inclusive() -> None:
    exposed = _exposed([[0.001, 0.005, 5.0, 50.0]], batched=True)
    assert exposed["latency_bucket[('le', '0.001')]"] == 1
    assert exposed["latency_bucket[('le', '0.01')]"] == 2
    assert exposed["latency_bucket[('le', '10.0')]"] == 3
    assert exposed["latency_bucket[('le', '+Inf')]"] == 4
    assert exposed["latency_count[]"] == 4
    assert exposed["latency_sum[]"] == pytest.approx(55.006)
