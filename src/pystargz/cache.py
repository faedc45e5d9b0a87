"""A bounded cache of inflated chunks, shared by threads, that fetches each chunk once.

Remote reads cost a round trip each, so a reader keeps the chunks it inflated
(least recently used first out, bounded by their bytes) and makes threads that
want the same chunk at the same time wait for one fetch instead of issuing
their own: the first caller *claims* the chunks it lacks, later callers wait
for that claim to finish.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence

DEFAULT_CACHE_SIZE = 64 << 20

Loader = Callable[[list[int]], Sequence[bytes]]


class _Flight:
    """One caller's fetch of the keys it claimed; waiters read its results once it is done.

    ``results`` stays empty when the fetch failed: the waiters then claim
    the keys again, and one of them fetches (and reports its own error).  A lock held until the fetch ends
    is what waiters block on (cheaper to make than an Event, and every read
    makes one).
    """

    __slots__ = ("_running", "results")

    def __init__(self) -> None:
        self._running = threading.Lock()
        self._running.acquire()
        self.results: dict[Hashable, bytes] = {}

    def finish(self) -> None:
        self._running.release()

    def wait(self) -> None:
        with self._running:
            pass


class ChunkCache:
    """Inflated chunks by key, least recently used evicted first once ``max_bytes`` is exceeded.

    ``max_bytes=0`` keeps nothing but still merges concurrent fetches of the
    same chunk.  One cache may serve several readers (their keys differ).
    ``hits`` counts chunks served from the cache or from another thread's
    fetch, ``misses`` the chunks a caller had to fetch.
    """

    def __init__(self, max_bytes: int = DEFAULT_CACHE_SIZE) -> None:
        if max_bytes < 0:
            raise ValueError(f"cache size must be at least 0 bytes, not {max_bytes}")
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[Hashable, bytes] = OrderedDict()
        self._bytes = 0
        self._flights: dict[Hashable, _Flight] = {}
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        """Bytes held now."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def get_many(self, keys: Sequence[Hashable], load: Loader, *, keep: bool = True) -> list[bytes]:
        """The bytes for each key, calling ``load(indexes)`` once for the keys nobody has or fetches.

        ``load`` gets the indexes (into ``keys``) it must produce, in order,
        and returns their bytes in that order.  ``keep=False`` hands the
        loaded bytes to the caller (and to threads waiting for them) without
        storing them, for batch reads that would only flush the cache.
        """
        results: list[bytes | None] = [None] * len(keys)
        flight = _Flight()
        mine, waits = self._claim(keys, results, flight)
        if mine:
            self._load_claimed(keys, mine, results, flight, load, keep)
        retry = []
        for index, other in waits:
            other.wait()
            data = other.results.get(keys[index])
            if data is None:
                retry.append(index)
            else:
                results[index] = data
        if retry:
            # The fetch we waited for failed: claim these again (other waiters may share ours).
            with self._lock:
                self.hits -= len(retry)
            again = self.get_many(
                [keys[i] for i in retry], lambda indexes: load([retry[i] for i in indexes]), keep=keep
            )
            for index, data in zip(retry, again, strict=True):
                results[index] = data
        return results  # type: ignore[return-value]  # every slot was filled above

    def _claim(
        self, keys: Sequence[Hashable], results: list[bytes | None], flight: _Flight
    ) -> tuple[list[int], list[tuple[int, _Flight]]]:
        """Fills what the cache has; claims for ``flight`` what nobody fetches; lists the rest to wait for."""
        mine: list[int] = []
        waits: list[tuple[int, _Flight]] = []
        entries, flights = self._entries, self._flights
        with self._lock:
            for index, key in enumerate(keys):
                data = entries.get(key)
                if data is not None:
                    entries.move_to_end(key)
                    results[index] = data
                    continue
                other = flights.get(key)
                if other is None:
                    flights[key] = flight
                    mine.append(index)
                else:
                    # Possibly our own flight, for a key listed twice: it is done before we wait.
                    waits.append((index, other))
            self.misses += len(mine)
            self.hits += len(keys) - len(mine)
        return mine, waits

    def _load_claimed(
        self,
        keys: Sequence[Hashable],
        mine: list[int],
        results: list[bytes | None],
        flight: _Flight,
        load: Loader,
        keep: bool,
    ) -> None:
        try:
            loaded = load(mine)
            for index, data in zip(mine, loaded, strict=True):
                results[index] = data
                flight.results[keys[index]] = data
        finally:
            with self._lock:
                for index in mine:
                    key = keys[index]
                    if self._flights.get(key) is flight:
                        del self._flights[key]
                    value = flight.results.get(key)
                    if keep and value is not None:
                        self._store(key, value)
            flight.finish()

    def _store(self, key: Hashable, data: bytes) -> None:
        """Adds one entry and evicts the least recently used ones beyond the bound (lock held)."""
        if len(data) > self.max_bytes:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= len(old)
        self._entries[key] = data
        self._bytes += len(data)
        while self._bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= len(evicted)

    def __repr__(self) -> str:
        return f"<ChunkCache {self._bytes}/{self.max_bytes} bytes, {len(self._entries)} chunks>"
