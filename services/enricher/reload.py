"""A new catalog without a restart (docs/catalog-changes.md): the enricher watches
CATALOG_PATH and swaps a valid new catalog in between batches.

Kubernetes replaces a mounted ConfigMap by swapping the `..data` symlink of the volume to a
new timestamped folder; the file itself is never written (an inotify watch on it sees
nothing, and a subPath mount is never updated). So the watcher polls the file's identity
through its symlinks (real path, inode, modification time, size) every CATALOG_POLL_SECONDS,
and loads it again whenever that changes.

A new catalog is refused, and the one in use keeps serving, when it does not load (with the
message the service gives at start) or when its content changed under the same version
(decisions carry the version, and their ids derive from it). A valid one is applied after
the partner topics it adds exist, so that no ticket is routed to a topic not yet created.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import structlog

from services.enricher.catalog import CatalogError, load_catalog
from services.enricher.catalogdiff import diff_catalogs
from services.enricher.enrich import CatalogIndex, forget_matches
from services.runtime.metrics import CATALOG_INFO, CATALOG_RELOADS

log = structlog.get_logger()

CreateTopics = Callable[[Sequence[str]], Awaitable[None]]
Outcome = Literal["applied", "refused", "unchanged", "deferred"]


class LiveCatalog:
    """The catalog index in use. The watcher replaces it whole; the enricher's processor takes
    it once at the first record of a batch and keeps that one to the batch's end."""

    def __init__(self, index: CatalogIndex) -> None:
        self.index = index
        show_version(None, index.catalog.version)
        for result in ("applied", "refused"):
            CATALOG_RELOADS.labels(result)  # both series from the start, at 0


def show_version(old: str | None, new: str) -> None:
    """`ticketroute_catalog_info{version=...}` is 1 for the version in use and for no other."""
    if old is not None and old != new:
        with contextlib.suppress(KeyError):
            CATALOG_INFO.remove(old)
    CATALOG_INFO.labels(new).set(1)


@dataclass(frozen=True, slots=True)
class FileIdentity:
    """What changes when the file behind a path (through any symlinks) is replaced."""

    real_path: str
    inode: int
    mtime_ns: int
    size: int


def file_identity(path: Path) -> FileIdentity | None:
    """None when the path does not lead to a file now."""
    try:
        real = os.path.realpath(path)
        stat = os.stat(real)
    except OSError:
        return None
    return FileIdentity(real, stat.st_ino, stat.st_mtime_ns, stat.st_size)


def partner_topics(index: CatalogIndex, prefixes: Sequence[str]) -> list[str]:
    """Each partner-shipping vendor's topics: one per prefix."""
    return [prefix + vendor for vendor in index.partner_vendor_ids() for prefix in prefixes]


class CatalogWatcher:
    """Polls CATALOG_PATH and applies or refuses each new catalog; see the module docstring."""

    def __init__(
        self,
        path: Path,
        live: LiveCatalog,
        *,
        create_topics: CreateTopics | None,
        topic_prefixes: Sequence[str],
        poll_seconds: float,
        seen: FileIdentity | None = None,
    ) -> None:
        """`create_topics` None: topics are an operator's business (TOPIC_CREATE=false).
        `seen`: the identity of the file the catalog in use was loaded from."""
        self._path = path
        self._live = live
        self._create_topics = create_topics
        self._prefixes = tuple(topic_prefixes)
        self._poll_seconds = poll_seconds
        self._seen = seen if seen is not None else file_identity(path)

    async def run(self, stop: asyncio.Event) -> None:
        """Check every poll interval until `stop` is set."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._poll_seconds)
            if stop.is_set():
                return
            try:
                await self.check()
            except Exception:
                # A bug here must not end the watching: the catalog in use keeps serving.
                log.exception("catalog_check_failed", path=str(self._path))

    async def check(self) -> Outcome | None:
        """Look once; None when the file is the same one as last time."""
        identity = file_identity(self._path)
        if identity == self._seen:
            return None
        outcome = await self._reload()
        if outcome != "deferred":
            self._seen = identity  # a deferred catalog is tried again at the next poll
        return outcome

    async def _reload(self) -> Outcome:
        old = self._live.index
        old_version = old.catalog.version
        try:
            catalog = load_catalog(self._path)
        except CatalogError as error:
            return _refuse(old_version, str(error), self._path)
        diff = diff_catalogs(old.catalog, catalog)
        if catalog.version == old_version:
            if diff.unchanged:
                return "unchanged"
            return _refuse(
                old_version,
                f"{self._path}: the catalog changed but its version is still {old_version!r}; "
                "decisions carry the version and their ids derive from it: give the changed "
                f"catalog a new version ({diff.summary()})",
                self._path,
            )
        new = CatalogIndex.build(catalog)
        added = sorted(
            set(partner_topics(new, self._prefixes)) - set(partner_topics(old, self._prefixes))
        )
        if added and self._create_topics is not None:
            try:
                await self._create_topics(added)
            except Exception as error:
                log.warning(
                    "catalog_reload_deferred",
                    reason="cannot create the new catalog's partner topics yet",
                    topics=added,
                    new_version=catalog.version,
                    error=f"{type(error).__name__}: {error}",
                )
                return "deferred"
        self._live.index = new
        forget_matches()  # the old catalog's, which would otherwise keep it alive for a while
        show_version(old_version, catalog.version)
        CATALOG_RELOADS.labels("applied").inc()
        log.info(
            "catalog_reloaded",
            old_version=old_version,
            new_version=catalog.version,
            changes=diff.summary(),
            topics_created=added,
            path=str(self._path),
        )
        return "applied"


def _refuse(version_in_use: str, error: str, path: Path) -> Outcome:
    CATALOG_RELOADS.labels("refused").inc()
    log.error("catalog_refused", error=error, version_in_use=version_in_use, path=str(path))
    return "refused"
