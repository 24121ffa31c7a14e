"""One record built from another that holds the same facts under the same names: a partner's
view of a ticket, the catalog's facts as a decision carries them."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, TypeVar

ViewT = TypeVar("ViewT")


def view(cls: type[ViewT], source: object, **given: Any) -> ViewT:
    """A `cls` whose fields are `source`'s attributes of the same names, except those `given`:
    the view declares what it shows, so a field the source has and the view lacks is left out."""
    taken = {f.name: getattr(source, f.name) for f in fields(cls) if f.name not in given}  # type: ignore[arg-type]
    return cls(**taken, **given)
