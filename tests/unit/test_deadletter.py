"""A replayed dead letter carries the original message's headers, none of the dead letter's."""

from __future__ import annotations

from aiokafka import ConsumerRecord

from schemas import deadletter
from services.runtime.pipeline import dead_letter
from tests.support.inprocess import consumer_record
from ticketroute.deadletter import REPLAYED_FROM, DeadLetter, replay_headers


def letter_for(
    record: ConsumerRecord[bytes, bytes], *, max_request_size: int = 1 << 20
) -> DeadLetter:
    """The dead letter the services write for `record`, as `ticketroute deadletter` reads it
    back from partition 2, offset 7 of tickets.deadletter."""
    out = dead_letter(record, "invalid_event", "bad zone", "tickets.deadletter", max_request_size)
    headers = tuple((k, v.encode()) for k, v in out.headers.items())
    return DeadLetter(out.topic, 2, 7, 0, out.key, out.value, headers)


def test_replay_forwards_no_dead_letter_header_of_a_truncated_letter() -> None:
    record = consumer_record(
        b"x" * 200_000, b"T-1", [("x-origin", b"crm-7")], partition=1, offset=41
    )
    letter = letter_for(record, max_request_size=100_000)
    written = {k for k, _ in letter.headers}
    assert {deadletter.VALUE_TRUNCATED, deadletter.VALUE_SIZE, deadletter.SOURCE_TOPIC} <= written

    replayed = replay_headers(letter)

    assert replayed == [
        ("x-origin", b"crm-7"),
        (REPLAYED_FROM, b"tickets.deadletter:2:7"),
    ]


def test_replay_drops_every_error_and_source_header_and_an_earlier_replay_mark() -> None:
    letter = DeadLetter(
        "tickets.deadletter",
        0,
        3,
        0,
        b"T-2",
        b"{}",
        (
            ("error.type", b"invalid_json"),
            ("error.added_later", b"1"),
            ("source.offset", b"9"),
            ("source.cluster", b"eu"),
            (REPLAYED_FROM, b"tickets.deadletter:0:1"),
            ("trace", None),
            ("errors", b"kept: not under error."),
        ),
    )
    assert replay_headers(letter) == [
        ("trace", b""),
        ("errors", b"kept: not under error."),
        (REPLAYED_FROM, b"tickets.deadletter:0:3"),
    ]


def test_services_do_not_copy_an_input_header_under_the_dead_letter_names() -> None:
    record = consumer_record(
        b"{",
        b"T-3",
        [("error.type", b"spoofed"), ("source.cluster", b"evil"), ("trace", b"t")],
        offset=5,
    )
    letter = letter_for(record)
    assert dict(letter.headers) == {
        "trace": b"t",
        deadletter.ERROR_TYPE: b"invalid_event",
        deadletter.ERROR_MESSAGE: b"bad zone",
        deadletter.SOURCE_TOPIC: b"tickets.incoming",
        deadletter.SOURCE_PARTITION: b"0",
        deadletter.SOURCE_OFFSET: b"5",
    }
