"""The headers of a dead letter in tickets.deadletter (README, "Topics and events").

A dead letter is the original message, bytes and key unchanged, with these headers saying why
it could not be used and where it came from. The services write them; `ticketroute deadletter`
reads them, and leaves them off when it replays a letter. The `error.` and `source.` names
belong to the dead letter: an input header under either is neither copied into a dead letter
nor replayed.
"""

from __future__ import annotations

ERROR_TYPE = "error.type"
"""Why the message could not be used: `invalid_json`, `invalid_event`, `processing_error`..."""
ERROR_MESSAGE = "error.message"
"""The reason in words, on one line."""
VALUE_TRUNCATED = "error.value_truncated"
"""`true` when the value was too large to publish again and was cut to fit."""
VALUE_SIZE = "error.value_size"
"""The original value's size in bytes, with `error.value_truncated`."""
SOURCE_TOPIC = "source.topic"
"""Topic of the message that could not be used."""
SOURCE_PARTITION = "source.partition"
"""Its partition."""
SOURCE_OFFSET = "source.offset"
"""Its offset."""

RESERVED_PREFIXES = ("error.", "source.")


def is_deadletter_header(name: str) -> bool:
    """True for a name the dead-letter headers own (`error.*`, `source.*`)."""
    return name.startswith(RESERVED_PREFIXES)
