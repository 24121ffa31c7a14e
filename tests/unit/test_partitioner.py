"""Our murmur2 places every key where Kafka's default partitioner (aiokafka's) would."""

from __future__ import annotations

import pytest
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from services.runtime.kafka import murmur2


@given(st.binary(max_size=600))
def test_same_hash_as_aiokafka(key: bytes) -> None:
    assert murmur2(key) == aiokafka_murmur2(key)


@pytest.mark.parametrize(
    ("key", "partition"),
    [(b"", 681), (b"a", 524), (b"ab", 434), (b"abc", 107), (b"123456789", 566), (b"\x00 ", 742)],
)
def test_partitions_of_the_java_client(key: bytes, partition: int) -> None:
    # Where the Java client's default partitioner puts these keys among 1,000 partitions (the
    # vectors kafka-python and aiokafka test against).
    assert (murmur2(key) & 0x7FFFFFFF) % 1000 == partition
