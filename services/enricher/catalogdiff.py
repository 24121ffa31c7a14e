"""Pure: what changed between two catalogs, entry by entry, so that an operator sees what a
new catalog changes and not only that its version did (the enricher's reload log line and
`ticketroute whatif`, docs/catalog-changes.md).

Every entry is compared field by field on its JSON form (the catalog file's own shape), with
nested tables flattened to dotted names: a vendor's `sla.1.within`, Red Hat's
`premium.3.clock`, a calendar's `by_country.US.end`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel

from schemas.catalog import Catalog, CatalogComponent, Vendor

# Entries named in the one-line summary before "and N more": a log line stays a line.
_SUMMARY_ENTRIES = 5

EntryT = TypeVar("EntryT", CatalogComponent, Vendor)


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field of one entry: its dotted name, and its JSON value before and after."""

    field: str
    before: Any
    after: Any

    def short(self) -> str:
        """`certified_for +18.0 -16.2`, `tsanet_member true->false`."""
        if isinstance(self.before, list) and isinstance(self.after, list):
            added = [f"+{v}" for v in self.after if v not in self.before]
            removed = [f"-{v}" for v in self.before if v not in self.after]
            return " ".join([self.field, *added, *removed])
        return f"{self.field} {_show(self.before)}->{_show(self.after)}"

    def as_json(self) -> dict[str, Any]:
        return {"field": self.field, "before": self.before, "after": self.after}


@dataclass(frozen=True, slots=True)
class EntryChange:
    """A vendor or component present in both catalogs whose fields differ."""

    id: str
    changes: tuple[FieldChange, ...]

    def short(self) -> str:
        return f"{self.id} ({', '.join(c.short() for c in self.changes)})"

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "changes": [c.as_json() for c in self.changes]}


@dataclass(frozen=True, slots=True)
class EntriesDiff:
    """Vendors or components: added and removed ids, and the changed entries."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[EntryChange, ...]
    # What each added entry is, in a few words, for the full form.
    described: Mapping[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def as_json(self) -> dict[str, Any]:
        return {
            "added": list(self.added),
            "removed": list(self.removed),
            "changed": [c.as_json() for c in self.changed],
        }


@dataclass(frozen=True, slots=True)
class CatalogDiff:
    old_version: str
    new_version: str
    components: EntriesDiff
    vendors: EntriesDiff
    redhat_sla: tuple[FieldChange, ...]
    calendars: tuple[FieldChange, ...]

    @property
    def unchanged(self) -> bool:
        """Nothing but (perhaps) the version differs."""
        return not (self.components or self.vendors or self.redhat_sla or self.calendars)

    def summary(self) -> str:
        """One line for a log: what changed, naming at most a few entries per kind."""
        parts: list[str] = []
        for kind, entries in (("components", self.components), ("vendors", self.vendors)):
            if entries.added:
                parts.append(f"{kind} added: {_few(entries.added)}")
            if entries.removed:
                parts.append(f"{kind} removed: {_few(entries.removed)}")
            if entries.changed:
                parts.append(f"{kind} changed: {_few(c.short() for c in entries.changed)}")
        if self.redhat_sla:
            parts.append(f"Red Hat SLA changed: {_few(c.short() for c in self.redhat_sla)}")
        if self.calendars:
            parts.append(f"calendars changed: {_few(c.short() for c in self.calendars)}")
        return "; ".join(parts) or "no change to vendors, components, SLA or calendars"

    def lines(self) -> list[str]:
        """The full form, one change a line, for people (`ticketroute whatif`)."""
        out = [f"Catalog {self.old_version} -> {self.new_version}"]
        if self.unchanged:
            return [*out, "  no change to vendors, components, SLA or calendars"]
        for kind, entries in (("component", self.components), ("vendor", self.vendors)):
            out += [f"  {kind + ' added':<18} {i}: {entries.described[i]}" for i in entries.added]
            out += [f"  {kind + ' removed':<18} {i}" for i in entries.removed]
            out += [
                f"  {kind + ' changed':<18} {entry.id}: {_full(c)}"
                for entry in entries.changed
                for c in entry.changes
            ]
        out += [f"  {'Red Hat SLA':<18} {_full(c)}" for c in self.redhat_sla]
        out += [f"  {'calendar':<18} {_full(c)}" for c in self.calendars]
        return out

    def as_json(self) -> dict[str, Any]:
        return {
            "old_version": self.old_version,
            "new_version": self.new_version,
            "components": self.components.as_json(),
            "vendors": self.vendors.as_json(),
            "redhat_sla": [c.as_json() for c in self.redhat_sla],
            "calendars": [c.as_json() for c in self.calendars],
        }


def diff_catalogs(old: Catalog, new: Catalog) -> CatalogDiff:
    return CatalogDiff(
        old_version=old.version,
        new_version=new.version,
        components=_entries(old.components, new.components, _describe_component),
        vendors=_entries(old.vendors, new.vendors, _describe_vendor),
        redhat_sla=_fields(old.redhat.sla, new.redhat.sla),
        calendars=_fields(old.calendars, new.calendars),
    )


def _entries(
    old: Iterable[EntryT], new: Iterable[EntryT], describe: Callable[[EntryT], str]
) -> EntriesDiff:
    before = {e.id: e for e in old}
    after = {e.id: e for e in new}
    changed = []
    for entry_id in after.keys() & before.keys():
        fields = _fields(before[entry_id], after[entry_id], skip="id")
        if fields:
            changed.append(EntryChange(entry_id, fields))
    added = tuple(sorted(after.keys() - before.keys()))
    return EntriesDiff(
        added=added,
        removed=tuple(sorted(before.keys() - after.keys())),
        changed=tuple(sorted(changed, key=lambda c: c.id)),
        described={i: describe(after[i]) for i in added},
    )


def _describe_component(c: CatalogComponent) -> str:
    certified = ", ".join(c.certified_for) or "nothing"
    return f"{c.name}, by {c.vendor}, shipped by {c.shipped_by}, certified for {certified}"


def _describe_vendor(v: Vendor) -> str:
    facts = [v.name, "TSANet member" if v.tsanet_member else "not a TSANet member"]
    if v.engineering_relationship:
        facts.append("engineering relationship")
    return ", ".join(facts)


def _fields(old: BaseModel, new: BaseModel, skip: str = "") -> tuple[FieldChange, ...]:
    before = _flat(old.model_dump(mode="json"))
    after = _flat(new.model_dump(mode="json"))
    names = sorted((before.keys() | after.keys()) - {skip})
    return tuple(
        FieldChange(name, before.get(name), after.get(name))
        for name in names
        if before.get(name) != after.get(name)
    )


def _flat(value: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted names; lists and scalars are leaves."""
    flat: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, Mapping):
            flat.update(_flat(item, name + "."))
        else:
            flat[name] = item
    return flat


def _full(change: FieldChange) -> str:
    return f"{change.field} {_show(change.before)} -> {_show(change.after)}"


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def _few(items: Iterable[str]) -> str:
    listed = list(items)
    shown = ", ".join(listed[:_SUMMARY_ENTRIES])
    more = len(listed) - _SUMMARY_ENTRIES
    return shown + (f" and {more} more" if more > 0 else "")
