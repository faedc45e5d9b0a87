"""The reader's one way to its source: a tail read, coalesced ranges, multi-range requests, counters.

Over a network every request costs a round trip, so the reader asks for the
blob's tail (footer, size and usually the TOC) in one request, merges the
compressed ranges of the chunks it needs when they are close, and sends many
ranges in one request where the source can (``read_ranges``).  A local file
gets the same calls; they cost a ``pread`` each.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from pystargz.compression import Span
from pystargz.members import Chunk
from pystargz.sources.base import MultiRangeSource, RangeSource, SourceStats, read_ranges

# Chunks whose compressed bytes are at most this far apart are fetched as one range: a gap this
# small costs less than another range (or, where a server refuses multi-range, another request).
RANGE_GAP = 64 << 10
# Ranges a batch read asks for at once (network sources cut longer lists into several requests).
MAX_RANGES_PER_REQUEST = 32
# Compressed bytes fetched by one request of a batch read, so memory stays near this much.
REQUEST_BYTES = 64 << 20
# ...and inflated bytes of one batch (highly compressible data expands 1000-fold).
REQUEST_OUTPUT = 256 << 20


@dataclass(frozen=True)
class ReadStats:
    """What reading a blob has cost so far (:attr:`StargzReader.stats`).

    ``requests``, ``bytes_fetched`` and ``retries`` come from the source when
    it counts them (HTTP and registry sources count every request sent,
    redirects and retries included), else they count the reader's reads.
    ``cache_hits`` are chunks served from the cache or from another thread's
    fetch, ``cache_misses`` the chunks fetched.
    """

    requests: int
    bytes_fetched: int
    retries: int
    cache_hits: int
    cache_misses: int


class Fetcher:
    """Reads ranges of one source and counts the reads (thread-safe)."""

    def __init__(self, source: RangeSource) -> None:
        self.source = source
        self._lock = threading.Lock()
        self._requests = 0
        self._bytes = 0

    def tail(self, length: int) -> tuple[int, bytes]:
        """The last ``length`` bytes (all of a smaller blob) and their offset, in one request.

        A source with ``read_tail`` learns the blob's size from that same
        request (HTTP: a suffix range), so opening costs no extra round trip.
        """
        read_tail = getattr(self.source, "read_tail", None)
        if callable(read_tail):
            data: bytes = read_tail(length)
            self._count(1, len(data))
            return self.source.size - len(data), data
        size = self.source.size
        start = max(0, size - length)
        return start, self.read_one(start, size - start)

    def read_one(self, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset``, in one request."""
        data = self.source.read_at(offset, length)
        self._count(1, length)
        return data

    def read(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        """The bytes of each ``(offset, length)`` range: one request where the source does multi-range."""
        if len(ranges) == 1:
            return [self.read_one(*ranges[0])]
        data = read_ranges(self.source, ranges)
        requests = 1 if isinstance(self.source, MultiRangeSource) else len(ranges)
        self._count(requests, sum(map(len, data)))
        return data

    def _count(self, requests: int, nbytes: int) -> None:
        with self._lock:
            self._requests += requests
            self._bytes += nbytes

    def source_stats(self) -> SourceStats:
        """The source's own counters when it keeps them, else the reads made through here."""
        stats = getattr(self.source, "stats", None)
        if isinstance(stats, SourceStats):
            return stats
        with self._lock:
            return SourceStats(self._requests, self._bytes, 0)


def coalesce(chunks: Sequence[Chunk], gap: int) -> list[tuple[int, int]]:
    """``(start, end)`` blob ranges covering the chunks (in blob order), merged across gaps <= ``gap``."""
    ranges: list[tuple[int, int]] = []
    start, end = chunks[0].offset, chunks[0].end
    for chunk in chunks[1:]:
        if chunk.offset - end > gap:
            ranges.append((start, end))
            start, end = chunk.offset, chunk.end
        else:
            end = max(end, chunk.end)
    ranges.append((start, end))
    return ranges


def fetch_chunks(
    fetcher: Fetcher, chunks: Sequence[Chunk], ranges: list[tuple[int, int]] | None = None
) -> tuple[bytes, list[Span]]:
    """The compressed bytes of the chunks (in blob order), fetched in one go, and each chunk's span in them.

    ``ranges`` (``(start, end)``, covering the chunks) default to the
    chunks' own, coalesced.  Ranges are joined into one buffer so that one
    parallel inflate covers them; a single range is passed on without a copy.
    """
    if ranges is None:
        ranges = coalesce(chunks, RANGE_GAP)
    pieces = fetcher.read([(start, end - start) for start, end in ranges])
    spans: list[Span] = []
    base = 0
    index = 0
    for (start, end), piece in zip(ranges, pieces, strict=True):
        while index < len(chunks) and chunks[index].end <= end:
            chunk = chunks[index]
            at = base - start
            spans.append(Span(at + chunk.offset, at + chunk.end, chunk.inner_offset, chunk.size))
            index += 1
        base += len(piece)
    return (pieces[0] if len(pieces) == 1 else b"".join(pieces)), spans


def plan_requests(chunks: Sequence[Chunk], gap: int = RANGE_GAP) -> Iterator[tuple[int, int]]:
    """Cuts chunks (in blob order) into batches of one request each, as ``chunks[first:stop]`` bounds.

    A batch holds at most MAX_RANGES_PER_REQUEST ranges, REQUEST_BYTES
    compressed bytes and REQUEST_OUTPUT inflated bytes (or one chunk, when
    that chunk alone is larger).  A chunk that lies before the one listed
    before it (never in a blob the index accepted) starts a new batch, so a
    batch is always in blob order.
    """
    first = ranges = fetched = output = end = 0
    for index, chunk in enumerate(chunks):
        joins = index > first and chunk.offset - end <= gap
        grow = max(0, chunk.end - end) if joins else chunk.end - chunk.offset
        full = (
            fetched + grow > REQUEST_BYTES
            or output + chunk.size > REQUEST_OUTPUT
            or (not joins and ranges == MAX_RANGES_PER_REQUEST)
            or chunk.offset < chunks[index - 1].offset
        )
        if index > first and full:
            yield first, index
            first, ranges, joins, grow = index, 0, False, chunk.end - chunk.offset
            fetched = output = 0
        ranges += not joins
        fetched += grow
        output += chunk.size
        end = max(end, chunk.end) if joins else chunk.end
    if first < len(chunks):
        yield first, len(chunks)
