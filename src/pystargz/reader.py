"""Reading stargz / eStargz blobs: find the TOC, index it, serve files chunk by chunk.

:class:`StargzReader` mirrors :class:`tarfile.TarFile` for reading (members,
``extractfile``, ``extractall`` with tarfile's filters) and adds the format's
own verbs (``toc``, ``toc_digest``, ``prefetch_range``, ``prefetch``).  It
touches only the bytes it needs: the tail of the blob for the footer and TOC,
then the gzip members of the chunks read, through :mod:`pystargz.fetch`
(coalesced ranges, multi-range requests, counters) and a shared
:class:`~pystargz.cache.ChunkCache` of inflated chunks.
"""

from __future__ import annotations

import bisect
import copy
import hashlib
import io
import operator
import os
import tarfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Literal

from pystargz.cache import DEFAULT_CACHE_SIZE, ChunkCache
from pystargz.compression import (
    Backend,
    Span,
    SpanFailure,
    error_for,
    extract_parallel,
    get_backend,
    inflate_member,
)
from pystargz.compression.base import GZIP, Codec
from pystargz.compression.zstd import ZSTD, ZstdBackend
from pystargz.errors import CorruptDataError, FooterError, LimitError, SourceError, StargzError, TOCError
from pystargz.fetch import Fetcher, ReadStats, fetch_chunks, plan_requests
from pystargz.footer import MAX_FOOTER_SIZE, MIN_FOOTER_SIZE, Footer, Layout, parse_footer
from pystargz.members import Chunk, StargzInfo, clean_name, implicit_dir, member_from_entry
from pystargz.sources import BytesSource, FileObjectSource, FileSource, RangeSource, SourceLike, as_source
from pystargz.toc import (
    NO_PREFETCH_LANDMARK,
    PREFETCH_LANDMARK,
    TOC,
    TOC_TAR_NAME,
    TOCEntry,
    count_entries,
)
from pystargz.verify import ChunkVerifier, Verification, check_toc_digest, verify_reader
from pystargz.zstdchunked import toc_json_from_frame

# Opening reads this much of the blob's end: the footer and, for most layers, the whole TOC.
TAIL_WINDOW = 64 << 10
# Sources read without a round trip: no chunk cache by default.
LOCAL_SOURCES = (FileSource, FileObjectSource, BytesSource)
# Deflate cannot expand input by more than about 1032:1, zstd by 32768:1 (a 4-byte RLE block makes
# at most 128 KiB); larger claims are lies, refused at open.
MAX_DEFLATE_RATIO = 1032
MAX_ZSTD_RATIO = 32768

FilterArg = Literal["data", "tar", "fully_trusted"] | Callable[[tarfile.TarInfo, str], tarfile.TarInfo | None]
Whiteouts = Literal["keep", "apply"]


@dataclass(frozen=True)
class Limits:
    """Bounds on what an untrusted blob may make the reader do; a blob past one is refused at open.

    The defaults let through every layer a real builder writes and stop what
    only a crafted blob asks for.  Sizes: the TOC gzip member and the TOC
    JSON (containers/storage caps both at 150 MiB); ``max_entries`` TOC
    entries; names and link targets of ``max_name_length`` characters and
    ``max_path_depth`` components; ``max_inflate_ratio`` uncompressed bytes
    per compressed byte, for each chunk against the compressed bytes its
    offset leaves it and for all chunks against the payload (by default the
    codec's own bound: deflate cannot do better than 1032:1, zstd than
    32768:1); ``max_total_size`` uncompressed bytes of file
    data in all; hardlink chains of ``max_link_depth`` hops.
    ``member_slack`` is how much more than a chunk one gzip member may
    inflate to (the member also holds tar padding and the headers of the
    entries after the chunk): no member inflates past it.
    """

    max_toc_compressed_size: int = 150 << 20
    max_toc_size: int = 150 << 20
    max_entries: int = 1 << 20
    max_name_length: int = 4096
    max_path_depth: int = 1024
    max_inflate_ratio: int | None = None
    max_total_size: int = 1 << 40
    max_link_depth: int = 64
    member_slack: int = 64 << 20


class StargzReader:
    """An open stargz / eStargz blob.  Use :func:`pystargz.open` to make one.

    Thread safety: after construction the reader's index is read-only and
    its cache locks itself, so its methods may be called from several
    threads at once (each file object from ``extractfile`` belongs to one
    thread at a time).  Threads reading the same chunk share one fetch.

    With ``toc_digest`` the TOC must have that digest, and every chunk is
    checked against its TOC digest as it is inflated, before any of its
    bytes are returned or cached (:mod:`pystargz.verify`).

    ``cache_size`` bounds the bytes of inflated chunks kept for
    ``extractfile``, ``read_chunk`` and ``prefetch``; by default 64 MiB for
    remote sources and none for local ones (a file, bytes, a file object),
    where a read costs less than the bookkeeping.  ``cache_size=0`` turns the
    cache, and the merging of concurrent fetches, off.  Pass a ``cache`` to
    share one bound between readers instead.
    """

    def __init__(
        self,
        source: RangeSource,
        *,
        limits: Limits | None = None,
        backend: Backend | None = None,
        close_source: bool = False,
        toc: bytes | None = None,
        toc_digest: str | None = None,
        cache_size: int | None = None,
        cache: ChunkCache | None = None,
    ) -> None:
        self.source = source
        self.limits = limits or Limits()
        self._close_source = close_source
        self._fetcher = Fetcher(source)
        self._cache = cache if cache is not None else _default_cache(source, cache_size)
        # Keys of this reader's chunks in a cache that other readers may share.
        self._cache_space = object()
        self.footer, toc_json = _read_toc(self._fetcher, self.limits, toc)
        if toc_digest is not None:
            check_toc_digest(toc_json, toc_digest, self.footer.toc_offset)
        # The footer says how the payload is compressed; ``backend`` chooses among the gzip backends.
        self._backend: Backend
        self._codec: Codec
        if self.footer.layout.compression == "zstd":
            self._backend, self._codec = ZstdBackend(), ZSTD
        else:
            self._backend, self._codec = backend or get_backend(), GZIP
        self.toc_json = toc_json
        self.toc_digest = "sha256:" + hashlib.sha256(toc_json).hexdigest()
        _check_entry_count(toc_json, self.limits)
        self.toc = TOC.from_json(toc_json)
        codec_ratio = MAX_ZSTD_RATIO if self._codec is ZSTD else MAX_DEFLATE_RATIO
        self._members, self._by_name = _index(self.toc, self.footer.payload_end, self.limits, codec_ratio)
        self._verifier = (
            None
            if toc_digest is None
            else ChunkVerifier(self._members, self._inflate_unchecked, whole_files=True)
        )

    @property
    def verifying(self) -> bool:
        """Whether every chunk is checked against its digest as it is read (opened with ``toc_digest``)."""
        return self._verifier is not None

    # ---- context manager ----

    def __enter__(self) -> StargzReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Closes the source when the reader opened it."""
        close = getattr(self.source, "close", None)
        if self._close_source and callable(close):
            close()

    # ---- format facts ----

    @property
    def format(self) -> str:
        """The layout from the footer: ``"estargz"``, ``"stargz"`` (legacy), ``"estargz-externaltoc"``,
        ``"zstdchunked"`` (Go's variant) or ``"zstdchunked-storage"`` (containers/storage's)."""
        return self.footer.layout.value

    @property
    def toc_offset(self) -> int:
        return self.footer.toc_offset

    @property
    def prefetch_range(self) -> tuple[int, int] | None:
        """Blob bytes ``[0, end)`` a runtime should fetch first, from the landmark files.

        None when the blob has no ``.prefetch.landmark`` (or says
        ``.no.prefetch.landmark``): nothing was prioritized.
        """
        landmark = self._by_name.get(PREFETCH_LANDMARK)
        if landmark is None or NO_PREFETCH_LANDMARK in self._by_name or not landmark.chunks:
            return None
        return (0, landmark.chunks[0].offset)

    @property
    def prefetch_size(self) -> int:
        prefetch = self.prefetch_range
        return prefetch[1] - prefetch[0] if prefetch else 0

    # ---- remote reads: prefetch, cache, counters ----

    @property
    def cache(self) -> ChunkCache | None:
        """The cache of inflated chunks; None when the reader keeps none."""
        return self._cache

    @property
    def stats(self) -> ReadStats:
        """Requests and bytes this blob's source has cost so far, and the cache's hits and misses."""
        source = self._fetcher.source_stats()
        hits, misses = (self._cache.hits, self._cache.misses) if self._cache is not None else (0, 0)
        return ReadStats(source.requests, source.bytes_fetched, source.retries, hits, misses)

    def prefetch(self) -> int:
        """Fetches the prioritized files' bytes in one request and keeps them inflated in the cache.

        That is ``prefetch_range``, which a runtime reads before starting a
        container; chunks already cached are not fetched again.  Returns the
        compressed bytes fetched: 0 without a ``.prefetch.landmark`` or
        without a cache to keep the chunks in.  Chunks beyond the cache's
        bound push out the least recently used ones.
        """
        prefetch = self.prefetch_range
        if prefetch is None or self._cache is None:
            return 0
        end = prefetch[1]
        chunks = sorted({c for m in self._members for c in m.chunks if c.end <= end})
        fetched = 0

        def load(indexes: list[int]) -> list[bytes]:
            nonlocal fetched
            wanted = [chunks[i] for i in indexes]
            start = 0 if indexes[0] == 0 else wanted[0].offset
            fetched = wanted[-1].end - start
            return self._fetch_inflate(wanted, [(start, wanted[-1].end)])

        self._cache.get_many([self._cache_key(c) for c in chunks], load, keep=True)
        return fetched

    # ---- tarfile-like members ----

    def getmembers(self) -> list[StargzInfo]:
        """Members in TOC order, one per TOC entry but chunks (duplicates kept, as tarfile does)."""
        return list(self._members)

    def getnames(self) -> list[str]:
        return [member.name for member in self._members]

    def getmember(self, name: str) -> StargzInfo:
        """The last member called ``name`` (normalized), or an implicit parent directory.

        Raises KeyError when there is none, as tarfile does.
        """
        member = self._by_name.get(clean_name(name))
        if member is None:
            raise KeyError(f"{name!r} not found in the blob")
        return member

    def __iter__(self) -> Iterator[StargzInfo]:
        return iter(self._members)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and clean_name(name) in self._by_name

    def __len__(self) -> int:
        return len(self._members)

    # ---- reading ----

    def extractfile(self, member: str | StargzInfo) -> io.BufferedReader | None:
        """A seekable binary file over a regular file's contents; None for other types.

        Only the chunks a read touches are fetched and inflated; the last
        chunk is kept so that small sequential reads cost one inflate per chunk.
        """
        target = self._regular_target(member)
        if target is None:
            return None
        return io.BufferedReader(ChunkedFile(self, target), buffer_size=io.DEFAULT_BUFFER_SIZE)

    def read_files(self, names: Iterable[str | StargzInfo]) -> dict[str, bytes]:
        """Contents of many regular files (hardlinks resolved), inflated on all cores.

        Keys are the normalized names asked for; non-regular members are skipped.
        """
        wanted: list[tuple[str, StargzInfo]] = []
        for item in names:
            info = item if isinstance(item, StargzInfo) else self.getmember(item)
            target = self._regular_target(info)
            if target is not None:
                wanted.append((info.name, target))
        contents = {id(member): data for member, data in self.iter_contents(target for _, target in wanted)}
        return {name: contents[id(target)] for name, target in wanted}

    def _regular_target(self, member: str | StargzInfo) -> StargzInfo | None:
        info = self.getmember(member) if isinstance(member, str) else member
        if info.islnk():
            info = self._link_target(info)
        return info if info.isreg() else None

    def _link_target(self, link: StargzInfo) -> StargzInfo:
        """Follows hardlink chains; the index already refused missing targets, cycles and long chains."""
        info = link
        while info.islnk():
            info = self._by_name[clean_name(info.linkname)]
        return info

    def iter_contents(self, files: Iterable[StargzInfo]) -> Iterator[tuple[StargzInfo, bytes]]:
        """Yields (member, contents) for regular members, as their chunks are inflated.

        Files come in blob order, a window of compressed bytes at a time, each
        window inflated on all cores; memory stays near one window.
        """
        unique = {id(f): f for f in files}
        pairs = sorted(
            ((chunk, f) for f in unique.values() for chunk in f.chunks), key=operator.itemgetter(0)
        )
        for f in unique.values():
            if not f.chunks:
                yield f, b""
        pending: dict[int, list[tuple[int, bytes]]] = {}
        for first, stop in plan_requests([chunk for chunk, _ in pairs]):
            window = pairs[first:stop]
            for (chunk, f), data in zip(window, self._inflate_window([c for c, _ in window]), strict=True):
                if len(f.chunks) == 1:
                    yield f, data
                    continue
                pieces = pending.setdefault(id(f), [])
                pieces.append((chunk.chunk_offset, data))
                if len(pieces) == len(f.chunks):
                    del pending[id(f)]
                    yield f, b"".join(data for _, data in sorted(pieces))

    def iter_chunks(self, member: str | StargzInfo) -> Iterator[bytes]:
        """A regular file's bytes, chunk by chunk in file order (hardlinks resolved; nothing for other types).

        For files too large to hold in memory: a window of chunks at a time is
        inflated on all cores, and checked when the reader verifies.
        """
        target = self._regular_target(member)
        if target is None:
            return
        chunks = list(target.chunks)
        for first, stop in plan_requests(chunks):
            yield from self._inflate_window(chunks[first:stop])

    def _inflate_window(self, chunks: list[Chunk]) -> list[bytes]:
        """Chunks (in blob order) of a batch read: cached ones reused, the rest fetched in one request.

        What a batch fetches is handed on, not cached: reading a whole layer
        would only push the cache's useful entries out.
        """
        return self._chunk_contents(chunks, keep=False)

    def read_chunk(self, chunk: Chunk) -> bytes:
        """The uncompressed bytes of one chunk, from the cache or fetched and inflated (then cached)."""
        return self._chunk_contents([chunk], keep=True)[0]

    def _chunk_contents(self, chunks: list[Chunk], *, keep: bool) -> list[bytes]:
        if not chunks:
            return []
        if self._cache is None:
            return self._fetch_inflate(chunks)
        return self._cache.get_many(
            [self._cache_key(c) for c in chunks],
            lambda indexes: self._fetch_inflate([chunks[i] for i in indexes]),
            keep=keep,
        )

    def _cache_key(self, chunk: Chunk) -> tuple[object, int, int, int]:
        return (self._cache_space, chunk.offset, chunk.inner_offset, chunk.size)

    def _fetch_inflate(self, chunks: list[Chunk], ranges: list[tuple[int, int]] | None = None) -> list[bytes]:
        """Fetches and inflates the chunks (see _inflate_unchecked), checked when verifying.

        The check comes before the cache sees the bytes, so a verifying
        reader never caches, nor returns, an unchecked chunk.
        """
        data = self._inflate_unchecked(chunks, ranges)
        return data if self._verifier is None else self._verifier.check(chunks, data)

    def _inflate_unchecked(
        self, chunks: list[Chunk], ranges: list[tuple[int, int]] | None = None
    ) -> list[bytes]:
        """Fetches the chunks' members (in blob order) in one request and inflates them on all cores.

        ``ranges`` are what to fetch; by default the chunks' own, coalesced.
        """
        if ranges is None and len(chunks) == 1:
            return [self._inflate_one(chunks[0])]
        data, spans = fetch_chunks(self._fetcher, chunks, ranges)
        limit = max(c.inner_offset + c.size for c in chunks) + self.limits.member_slack
        try:
            return extract_parallel(self._backend, data, spans, limit)
        except SpanFailure as failure:
            chunk = chunks[failure.index]
            offset = chunk.offset + failure.offset - spans[failure.index].start
            raise error_for(failure.status, offset, limit, chunk.name, self._codec) from None
        except MemoryError:
            raise _no_memory(chunks) from None

    def _inflate_one(self, chunk: Chunk) -> bytes:
        """One chunk on its own: the common read of a small file, kept short."""
        data = self._fetcher.read_one(chunk.offset, chunk.end - chunk.offset)
        limit = chunk.inner_offset + chunk.size + self.limits.member_slack
        try:
            return self._backend.extract(data, Span(0, len(data), chunk.inner_offset, chunk.size), limit)
        except SpanFailure as failure:
            raise error_for(
                failure.status, chunk.offset + failure.offset, limit, chunk.name, self._codec
            ) from None
        except MemoryError:
            raise _no_memory([chunk]) from None

    # ---- verification ----

    def verify(self, toc_digest: str | None = None) -> Verification:
        """Checks the TOC digest (when given), every chunk's digest and every regular file's digest.

        Raises :class:`~pystargz.errors.VerificationError` at the first
        mismatch, naming the entry, its blob offset and both digests, and
        CorruptDataError for damaged gzip (the members holding only tar
        headers are inflated too).  Legacy stargz blobs have no chunk
        digests; their files are checked whole.  Inflates and hashes on all cores.
        """
        checked = copy.copy(self)
        # Cached chunks may never have been checked: the checking copy fetches everything itself.
        checked._cache = None
        checked._verifier = ChunkVerifier(self._members, self._inflate_unchecked, whole_files=False)
        return verify_reader(self, checked, toc_digest)

    # ---- extraction ----

    def extract(
        self,
        member: str | StargzInfo,
        path: str | os.PathLike[str] = "",
        *,
        filter: FilterArg = "data",
        whiteouts: Whiteouts = "keep",
    ) -> None:
        """Extracts one member under ``path`` (default: the current directory)."""
        self.extractall(path, [member], filter=filter, whiteouts=whiteouts)

    def extractall(
        self,
        path: str | os.PathLike[str] = ".",
        members: Iterable[str | StargzInfo] | None = None,
        *,
        filter: FilterArg = "data",
        whiteouts: Whiteouts = "keep",
    ) -> None:
        """Extracts members under ``path`` through one of tarfile's extraction filters.

        ``filter`` is what :meth:`tarfile.TarFile.extractall` takes: "data"
        (the default: refuses absolute paths, ``..``, links leaving ``path``,
        device files; strips setuid bits), "tar", "fully_trusted" or a callable.
        A refusal raises a subclass of :class:`~pystargz.errors.ExtractionFilterError`
        that is also tarfile's matching ``FilterError``.  ``whiteouts``: "keep"
        writes ``.wh.*`` files as they are; "apply" treats them as overlay
        whiteouts and removes what they hide from ``path`` instead.
        File contents are inflated on all cores before they are written.
        """
        from pystargz.extract import extract_members

        chosen = (
            self._members
            if members is None
            else [m if isinstance(m, StargzInfo) else self.getmember(m) for m in members]
        )
        extract_members(self, chosen, os.fspath(path), filter, whiteouts)

    def __repr__(self) -> str:
        return f"<StargzReader {self.format} {len(self._members)} members toc_digest={self.toc_digest}>"


class ChunkedFile(io.RawIOBase):
    """Raw, seekable reads over one regular file's chunks (wrapped in a BufferedReader)."""

    def __init__(self, reader: StargzReader, member: StargzInfo) -> None:
        super().__init__()
        self.name = member.name
        self._reader = reader
        self._chunks = member.chunks
        self._starts = [chunk.chunk_offset for chunk in member.chunks]
        self._size = member.size
        self._pos = 0
        self._cached: tuple[int, bytes] | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}.get(whence)
        if base is None:
            raise ValueError(f"invalid whence {whence}")
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        filled = 0
        while filled < len(view) and self._pos < self._size:
            index = bisect.bisect_right(self._starts, self._pos) - 1
            data = self._chunk(index)
            inside = self._pos - self._starts[index]
            take = min(len(view) - filled, len(data) - inside)
            view[filled : filled + take] = data[inside : inside + take]
            filled += take
            self._pos += take
        return filled

    def readall(self) -> bytes:
        """The rest of the file, its chunks fetched together; whole chunks are passed on without a copy."""
        if self._pos >= self._size:
            return b""
        index = bisect.bisect_right(self._starts, self._pos) - 1
        have = self._cached is not None and self._cached[0] == index
        pieces = self._reader._chunk_contents(list(self._chunks[index + have :]), keep=True)
        if have:
            pieces.insert(0, self._chunk(index))
        pieces[0] = pieces[0][self._pos - self._starts[index] :]
        self._pos = self._size
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def _chunk(self, index: int) -> bytes:
        if self._cached is None or self._cached[0] != index:
            self._cached = (index, self._reader.read_chunk(self._chunks[index]))
        return self._cached[1]


def _no_memory(chunks: list[Chunk]) -> LimitError:
    """The declared sizes passed the limits but this machine cannot hold them."""
    size = sum(chunk.size for chunk in chunks)
    return LimitError(
        f"cannot allocate {size} bytes for {chunks[0].name!r} (blob offset {chunks[0].offset}"
        + (f" and {len(chunks) - 1} more chunks" if len(chunks) > 1 else "")
        + "); lower Limits.max_inflate_ratio or max_total_size to refuse such blobs at open"
    )


def _default_cache(source: RangeSource, cache_size: int | None) -> ChunkCache | None:
    """A cache of ``cache_size`` bytes; by default one for remote sources only (see StargzReader)."""
    if cache_size is None:
        cache_size = 0 if isinstance(source, LOCAL_SOURCES) else DEFAULT_CACHE_SIZE
    return ChunkCache(cache_size) if cache_size else None


# ---- opening: footer and TOC ----


def _read_toc(fetcher: Fetcher, limits: Limits, toc_blob: bytes | None) -> tuple[Footer, bytes]:
    """Locates and decompresses the TOC: one read of the blob's tail, one more for the rest of a large TOC.

    An external-TOC blob has none: its TOC is ``toc_blob``, which the caller fetched.
    """
    tail_start, tail = fetcher.tail(TAIL_WINDOW)
    size = tail_start + len(tail)
    if size < MIN_FOOTER_SIZE:
        raise FooterError(f"blob of {size} bytes is too small to be a stargz blob")
    footer = parse_footer(tail[-MAX_FOOTER_SIZE:], size)
    if (footer.layout is Layout.EXTERNAL_TOC) != (toc_blob is not None):
        raise FooterError(
            "this blob keeps its TOC in a separate blob (external TOC): pass that blob as toc="
            if toc_blob is None
            else f"toc= was given but this {footer.layout.value} blob carries its own TOC"
        )
    if toc_blob is not None:
        return footer, _toc_json_from_member(toc_blob, 0, limits, "TOC blob")
    compressed_size = footer.toc_size
    toc_end = footer.toc_offset + compressed_size
    if compressed_size > limits.max_toc_compressed_size:
        raise LimitError(
            f"compressed TOC of {compressed_size} bytes at offset {footer.toc_offset} exceeds "
            f"the limit of {limits.max_toc_compressed_size}"
        )
    if footer.toc_offset >= tail_start:
        member = tail[footer.toc_offset - tail_start : toc_end - tail_start]
    else:
        head = fetcher.read_one(footer.toc_offset, tail_start - footer.toc_offset)
        member = head + tail[: toc_end - tail_start]
    if footer.layout.compression == "zstd":
        return footer, toc_json_from_frame(member, footer, limits.max_toc_size)
    return footer, _toc_json_from_member(member, footer.toc_offset, limits)


def _toc_json_from_member(member: bytes, offset: int, limits: Limits, what: str = "TOC member") -> bytes:
    """The TOC member is gzip(tar(stargz.index.json)); returns that file's bytes.

    ``what`` names it in errors: the TOC member of a blob, or a separate TOC blob.
    """
    tar_limit = limits.max_toc_size + (64 << 10)
    try:
        tar_bytes, _ = inflate_member(member, tar_limit)
    except SpanFailure as failure:
        raise TOCError(
            f"cannot inflate the {what} at offset {offset}: "
            f"{error_for(failure.status, offset + failure.offset, tar_limit)}"
        ) from None
    try:
        with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as tar:
            info = tar.next()
            if info is None or info.name != TOC_TAR_NAME or not info.isreg():
                found = "nothing" if info is None else repr(info.name)
                raise TOCError(f"{what} at offset {offset} holds {found}, not {TOC_TAR_NAME!r}")
            if info.size > limits.max_toc_size:
                raise LimitError(f"TOC of {info.size} bytes exceeds the limit of {limits.max_toc_size}")
            extracted = tar.extractfile(info)
            data = extracted.read() if extracted is not None else b""
    except (tarfile.TarError, EOFError, ValueError) as exc:
        raise TOCError(f"{what} at offset {offset} is not a valid tar: {exc}") from None
    if len(data) != info.size:
        raise TOCError(f"{what} at offset {offset} holds {len(data)} of {info.size} TOC bytes")
    return data


def _check_entry_count(toc_json: bytes, limits: Limits) -> None:
    """Refuses a TOC of too many entries before they are built (each costs a few hundred bytes).

    Every entry is a JSON object, so a TOC with no more ``{`` than the limit
    passes at the cost of one byte count; only larger ones are counted exactly.
    """
    if toc_json.count(b"{") <= limits.max_entries + 1:
        return
    count = count_entries(toc_json)
    if count is not None and count > limits.max_entries:
        raise LimitError(f"TOC has {count} entries, more than the limit of {limits.max_entries}")


# ---- the index ----


def _index(
    toc: TOC, toc_offset: int, limits: Limits, codec_ratio: int
) -> tuple[list[StargzInfo], dict[str, StargzInfo]]:
    """Members in TOC order and the name lookup (last entry wins; implicit parents added).

    Every limit that concerns entries is checked here, in the one pass that
    builds the members: opening a layer is on the hot path.  ``codec_ratio``
    is the most the payload's codec can expand a byte.
    """
    ratio = limits.max_inflate_ratio or codec_ratio
    ends = _compressed_ends(toc.entries, toc_offset)
    members: list[StargzInfo] = []
    by_name: dict[str, StargzInfo] = {}
    unames: dict[int, str] = {}
    gnames: dict[int, str] = {}
    current: StargzInfo | None = None
    pending: list[Chunk] = []
    # Names shorter than this cannot break the length or depth limits (a clean name of
    # depth d has at least 2d - 1 characters): only longer ones are looked at closely.
    long_name = min(limits.max_name_length + 1, 2 * limits.max_path_depth - 1)
    budget = _size_budget(toc_offset, ratio, limits)
    total = 0
    for index, entry in enumerate(toc.entries):
        if entry.type == "chunk":
            if current is None or not current.isreg():
                raise TOCError(f"TOC entry #{index}: chunk of {entry.name!r} does not follow a regular file")
            chunk = _chunk(entry, current, ends[index], index, ratio, codec_ratio)
            pending.append(chunk)
            total += chunk.size
            if total > budget[0]:
                raise _over_budget(chunk, index, budget)
            continue
        if current is not None:
            current.set_chunks(pending)
        name, link = entry.name, entry.link_name
        if len(name) >= long_name or len(link) > limits.max_name_length or "\x00" in name or "\x00" in link:
            _check_names(entry, index, limits)
        member = member_from_entry(entry, index, unames, gnames)
        pending = []
        if entry.is_data:
            chunk = _chunk(entry, member, ends[index], index, ratio, codec_ratio)
            pending.append(chunk)
            total += chunk.size
            if total > budget[0]:
                raise _over_budget(chunk, index, budget)
        current = member
        members.append(member)
        by_name[member.name] = member
    if current is not None:
        current.set_chunks(pending)
    _add_implicit_dirs(by_name)
    _check_hardlinks(members, by_name, limits.max_link_depth)
    return members, by_name


def _check_names(entry: TOCEntry, index: int, limits: Limits) -> None:
    """The slow look at a suspicious entry: NUL bytes, then the name length and depth limits."""
    where = f"TOC entry #{index} ({entry.name[:200]!r}{'...' if len(entry.name) > 200 else ''})"
    if "\x00" in entry.name or "\x00" in entry.link_name:
        raise TOCError(f"{where}: a name or link target holds a NUL byte, which no tar name can")
    for what, text in (("name", entry.name), ("link target", entry.link_name)):
        if len(text) > limits.max_name_length:
            raise LimitError(
                f"{where}: {what} of {len(text)} characters exceeds the limit of {limits.max_name_length}"
            )
    depth = clean_name(entry.name).count("/") + 1
    if depth > limits.max_path_depth:
        raise LimitError(f"{where}: path of {depth} components exceeds the limit of {limits.max_path_depth}")


def _size_budget(toc_offset: int, ratio: int, limits: Limits) -> tuple[int, str]:
    """How many uncompressed bytes all chunks together may claim, and which limit says so."""
    by_ratio = toc_offset * ratio
    if by_ratio < limits.max_total_size:
        return by_ratio, f"{ratio} times the {toc_offset}-byte payload"
    return limits.max_total_size, f"the limit of {limits.max_total_size} bytes"


def _over_budget(chunk: Chunk, index: int, budget: tuple[int, str]) -> LimitError:
    return LimitError(
        f"TOC entry #{index} ({chunk.name!r}, blob offset {chunk.offset}): file data declared so far "
        f"exceeds {budget[1]}"
    )


def _chunk(
    entry: TOCEntry, file: StargzInfo, end: int, index: int, ratio: int, codec_ratio: int
) -> Chunk:
    """The chunk an entry describes; the parser already refused negative numbers.

    A chunk that is its whole file takes the file's digest when the entry has
    no ``chunkDigest`` (legacy stargz), so that it can be verified on its own.
    """
    size = entry.chunk_size or file.size - entry.chunk_offset
    if entry.offset == 0 and entry.inner_offset == 0:
        raise TOCError(f"TOC entry #{index} ({file.name!r}): data chunk has no offset")
    if size <= 0:
        raise TOCError(
            f"TOC entry #{index} ({file.name!r}): chunk at file offset {entry.chunk_offset} "
            f"is empty or past the end of the {file.size}-byte file"
        )
    if entry.inner_offset + size > (end - entry.offset) * ratio:
        impossible = entry.inner_offset + size > (end - entry.offset) * codec_ratio
        raise (TOCError if impossible else LimitError)(
            f"TOC entry #{index} ({file.name!r}): {entry.inner_offset + size} bytes cannot come out of "
            f"the {end - entry.offset} compressed bytes at offset {entry.offset} "
            f"(at most {ratio}:1)"
        )
    digest = entry.chunk_digest or (entry.digest if entry.type == "reg" and size == file.size else "")
    return Chunk(entry.offset, entry.inner_offset, end, entry.chunk_offset, size, digest, file.name)


def _compressed_ends(entries: list[TOCEntry], toc_offset: int) -> list[int]:
    """For each data entry, where its member run ends: the next larger data offset, or the TOC.

    Entries packed into one member (``innerOffset``) share an offset, so the
    end is the next *different* offset.  Offsets must not go backwards.
    """
    ends = [0] * len(entries)
    group_offset, group_end = -1, toc_offset
    for index in range(len(entries) - 1, -1, -1):
        entry = entries[index]
        if not entry.is_data:
            continue
        if entry.offset != group_offset:
            if group_offset >= 0:
                if entry.offset > group_offset:
                    raise TOCError(
                        f"TOC entry #{index} ({entry.name!r}): offset {entry.offset} comes after "
                        f"a later entry's offset {group_offset}"
                    )
                group_end = group_offset
            group_offset = entry.offset
        if not 0 <= entry.offset < group_end:
            raise TOCError(
                f"TOC entry #{index} ({entry.name!r}): offset {entry.offset} is outside the "
                f"payload [0, {toc_offset})"
            )
        ends[index] = group_end
    return ends


def _add_implicit_dirs(by_name: dict[str, StargzInfo]) -> None:
    """Parents that have no entry of their own exist as directories, as in the Go reader."""
    for name in list(by_name):
        parent = name.rpartition("/")[0]
        while parent and parent not in by_name:
            by_name[parent] = implicit_dir(parent)
            parent = parent.rpartition("/")[0]


def _check_hardlinks(members: list[StargzInfo], by_name: dict[str, StargzInfo], max_depth: int) -> None:
    """Every hardlink must lead to an existing non-link entry in at most ``max_depth`` hops.

    All members, not only the last of each name: an earlier duplicate is still listed and extracted.
    ``hops`` remembers how far each name is from a non-link, so a blob of long chains costs one
    walk per name, not one per link and hop.
    """
    hops: dict[str, int] = {}
    for member in members:
        if not member.islnk():
            continue
        walked: list[str] = []
        name = clean_name(member.linkname)
        while name not in hops:
            target = by_name.get(name)
            if target is None:
                raise TOCError(f"hardlink {member.name!r} leads to {name!r}, which is not in the blob")
            if not target.islnk():
                hops[name] = 0
                break
            walked.append(name)
            if len(walked) >= max_depth:
                raise _long_chain(member, by_name, max_depth)
            name = clean_name(target.linkname)
        distance = hops[name]
        for name in reversed(walked):
            distance += 1
            hops[name] = distance
        if hops[clean_name(member.linkname)] + 1 > max_depth:
            raise _long_chain(member, by_name, max_depth)


def _long_chain(link: StargzInfo, by_name: dict[str, StargzInfo], max_depth: int) -> StargzError:
    """A cycle is a broken TOC (TOCError); a long but finite chain only breaks the limit."""
    seen: set[str] = set()
    info = link
    while info.islnk() and info.name not in seen:
        seen.add(info.name)
        info = by_name[clean_name(info.linkname)]
    if info.islnk():
        return TOCError(f"hardlink {link.name!r} is part of a cycle of hardlinks through {info.name!r}")
    return LimitError(f"hardlink {link.name!r}: chain of {len(seen)} links exceeds the limit of {max_depth}")


def open_reader(
    source: SourceLike,
    *,
    limits: Limits | None = None,
    backend: str | None = None,
    toc: bytes | str | os.PathLike[str] | None = None,
    toc_digest: str | None = None,
    cache_size: int | None = None,
    cache: ChunkCache | None = None,
) -> StargzReader:
    """Opens a blob for reading; see :func:`pystargz.open`."""
    toc_blob = toc if isinstance(toc, bytes) or toc is None else _read_toc_blob(toc)
    src = as_source(source)
    owns = src is not source
    try:
        return StargzReader(
            src,
            limits=limits,
            backend=get_backend(backend),
            close_source=owns,
            toc=toc_blob,
            toc_digest=toc_digest,
            cache_size=cache_size,
            cache=cache,
        )
    except StargzError:
        if owns and hasattr(src, "close"):
            src.close()
        raise
    except RecursionError as exc:
        raise CorruptDataError(f"blob is too deeply nested to parse: {exc}") from None


def _read_toc_blob(path: str | os.PathLike[str]) -> bytes:
    """The bytes of an external TOC blob given by path."""
    try:
        with open(path, "rb") as blob:
            return blob.read()
    except OSError as exc:
        raise SourceError(f"cannot read the TOC blob {os.fspath(path)!r}: {exc}") from exc
