"""The running platform's shared parts: settings, database, blob store, and caches of opened
editions and computed leaderboards."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dataperf.challenge import Challenge
from dataperf.editions import Edition
from dataperf.exceptions import EditionError
from dataperf.registry import get_challenge
from dataperf.server.db import Database
from dataperf.server.jobs import open_edition
from dataperf.server.models import ChallengeRow
from dataperf.server.settings import Settings
from dataperf.server.storage import BlobStore


class LRU:
    """A small thread-safe least-recently-used cache. Concurrent misses of one key compute it
    once: the others wait for that result instead of repeating the work."""

    def __init__(self, size: int):
        self.size = size
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._making: dict[Any, threading.Lock] = {}

    def _lookup(self, key: Any) -> tuple[bool, Any]:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return True, self._items[key]
            return False, None

    def get(self, key: Any, make: Callable[[], Any]) -> Any:
        found, value = self._lookup(key)
        if found:
            return value
        with self._lock:
            making = self._making.setdefault(key, threading.Lock())
        with making:
            found, value = self._lookup(key)
            if not found:
                value = make()
                with self._lock:
                    self._items[key] = value
                    while len(self._items) > self.size:
                        self._items.popitem(last=False)
        with self._lock:
            self._making.pop(key, None)
        return value


@dataclass
class Platform:
    settings: Settings
    db: Database
    store: BlobStore = field(init=False)
    boards: LRU = field(default_factory=lambda: LRU(256))
    _editions: LRU = field(default_factory=lambda: LRU(32))

    def __post_init__(self) -> None:
        self.store = BlobStore(self.settings.blobs_dir)

    def challenge(self, row: ChallengeRow) -> Challenge:
        return get_challenge(row.challenge)

    def edition(self, row: ChallengeRow) -> Edition:
        """The challenge's edition, opened and verified once, checked against its recorded hash."""

        def open_() -> Edition:
            edition = open_edition(self.challenge(row), row.edition_path)
            if edition.content_hash != row.edition_hash:
                raise EditionError(
                    f"the edition of {row.name} at {edition.path} changed (content hash "
                    f"{edition.content_hash}, registered {row.edition_hash}); restore it or "
                    "register the new edition as a new challenge")
            return edition

        return self._editions.get((row.name, row.edition_path, row.edition_hash), open_)
