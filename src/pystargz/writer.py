"""Writing eStargz and legacy stargz blobs.

:class:`StargzWriter` turns tar entries into a blob the way the Go reference's
``Writer`` does: every regular file's data (every chunk of it) starts a new
gzip member, its tar header ending the member before; the TOC is the last
member and the footer follows.  :func:`build` is the Go ``Build``: it reads a
whole tar layer, keeps the last entry of each name, puts prioritized files
first and adds the landmark file.

Members are independent, so they are compressed on all cores, in batches
several at once (memory stays O(max(chunk size, batch) x workers)); the bytes
written do not depend on the number of workers, unlike Go's Build, which
splits the layer by CPU count.  A plain tar file is memory-mapped and its
headers read and written by :mod:`pystargz.tarformat` (tarfile's results,
without its per-member cost).

With ``min_chunk_size`` small files share members (``innerOffset``), as in
Go's ``WithMinChunkSize``; :mod:`pystargz.packing` compresses those
sequentially, because where a member ends depends on its compressed size.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import hashlib
import io
import mmap
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import BinaryIO, Literal, TypeAlias, cast

from pystargz import tarformat
from pystargz.compression import Backend, compress_parallel, get_backend
from pystargz.compression.base import check_level
from pystargz.compression.zstd import ZstdBackend
from pystargz.errors import CompressionError, StargzError
from pystargz.footer import Layout, build_footer
from pystargz.lossless import RawTar
from pystargz.members import TAR_TYPES, clean_name
from pystargz.packing import PackedMembers
from pystargz.tarformat import Scanned
from pystargz.toc import (
    LANDMARK_CONTENTS,
    NO_PREFETCH_LANDMARK,
    PREFETCH_LANDMARK,
    TOC,
    TOC_TAR_NAME,
    EntryType,
    TOCEntry,
    format_modtime,
)
from pystargz.zstdchunked import write_toc_and_footer

DEFAULT_CHUNK_SIZE = 4 << 20
# libdeflate level 6 makes blobs no larger than Go's gzip level 9, several times faster.
DEFAULT_LEVEL = 6
# Members are compressed in batches of about this many bytes (or of one larger chunk): small
# enough that compression starts early and ends soon after the last entry, big enough that
# handing a batch to a thread costs nothing.
BATCH_BYTES = 2 << 20
ANNOTATION_TOC_DIGEST = "containerd.io/snapshot/stargz/toc.digest"
ANNOTATION_UNCOMPRESSED_SIZE = "io.containers.estargz.uncompressed-size"
BLOCK = tarfile.BLOCKSIZE
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
XATTR_PREFIX = "SCHILY.xattr."
Format = Literal["estargz", "stargz", "zstdchunked"]
_LAYOUTS = {"estargz": Layout.ESTARGZ, "stargz": Layout.LEGACY, "zstdchunked": Layout.ZSTD_CHUNKED}
EMPTY_DIGEST = "sha256:" + hashlib.sha256(b"").hexdigest()
# The zero bytes that pad a file's data to a whole tar block, by count.
_PADDING = [bytes(count) for count in range(BLOCK)]
# Where a regular file's data comes from: a file positioned at it, or its bytes.
_Content: TypeAlias = "BinaryIO | memoryview"


class BuildError(StargzError):
    """The input cannot be turned into a blob (unsupported entry, missing prioritized file...)."""


@dataclasses.dataclass(frozen=True)
class BuildResult:
    """What a finished blob is, in the terms registries and runtimes use."""

    toc_digest: str
    diff_id: str
    digest: str
    size: int
    uncompressed_size: int
    annotations: dict[str, str]
    toc_blob: bytes | None = None
    """The separate TOC blob of an external-TOC build (``toc_digest`` is its JSON's digest)."""

    @property
    def toc_blob_digest(self) -> str | None:
        """The digest of ``toc_blob`` itself, to store or push it under; None without one."""
        return None if self.toc_blob is None else _sha256(self.toc_blob)


# ---- the member pipeline ----


class _Members:
    """Gzip members in blob order: collects their uncompressed bytes, compresses them in batches.

    Each batch (about ``batch_bytes`` of members) is compressed whole by one of
    ``workers`` threads, several batches at once, while the caller prepares the
    next; a "stage" thread takes the batches in order, hashes them (DiffID),
    waits for their members and writes them.  A compressing thread never waits
    for the others before taking the next batch, and at most ``workers + 2``
    batches are in memory.  Offsets of members are known only once their
    batch is written, so TOC entries refer to members by index until the
    writer resolves them at close (after :meth:`flush` with ``wait``).
    """

    def __init__(self, out: BinaryIO, backend: Backend, level: int, workers: int, batch_bytes: int) -> None:
        self._out = out
        self._backend = backend
        self._level = level
        self._batch_bytes = batch_bytes
        self._current = bytearray()
        self._queued: list[bytearray] = []
        self._queued_bytes = 0
        self.offsets: list[int] = []  # compressed start of each member, as batches complete
        self.count = 0  # members closed so far
        self.size = 0  # compressed bytes written
        self.uncompressed_size = 0
        self.diff_hash = hashlib.sha256()
        self.blob_hash = hashlib.sha256()
        self._deflaters = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pystargz-deflate")
        self._stage = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pystargz-writer")
        self._in_flight: collections.deque[Future[None]] = collections.deque()
        self._max_in_flight = workers + 1

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Appends uncompressed bytes to the member being built."""
        self._current += data

    def close_member(self) -> None:
        """Ends the current member (an empty one is not written)."""
        if not self._current:
            return
        piece, self._current = self._current, bytearray()
        self._queued.append(piece)
        self._queued_bytes += len(piece)
        self.count += 1
        if self._queued_bytes >= self._batch_bytes:
            self.flush()

    def start_chunk(self, new_member: bool) -> tuple[int, int]:
        """Every chunk starts a member here: ``(its index, innerOffset 0)`` (see :class:`PackedMembers`)."""
        self.close_member()
        return self.count, 0

    def flush(self, *, wait: bool = False) -> None:
        """Starts compressing the queued members; with ``wait``, returns once every batch is written."""
        if self._queued:
            pieces = self._queued
            members = self._deflaters.submit(self._backend.compress_batch, pieces, self._level)
            self._in_flight.append(self._stage.submit(self._hash_and_write, pieces, members))
            self._queued = []
            self._queued_bytes = 0
        while len(self._in_flight) > (0 if wait else self._max_in_flight):
            self._in_flight.popleft().result()

    def _hash_and_write(self, pieces: list[bytearray], compressed: Future[list[bytes]]) -> None:
        """The stage's work for one batch; batches run one after another, so order holds."""
        for piece in pieces:
            self.diff_hash.update(piece)
            self.uncompressed_size += len(piece)
        members = compressed.result()
        position = self.size
        for member in members:
            self.offsets.append(position)
            position += len(member)
        self.write_raw(b"".join(members))

    def shutdown(self) -> None:
        """Stops the threads (after an error, without waiting for batches not started)."""
        self._stage.shutdown(wait=True, cancel_futures=True)
        self._deflaters.shutdown(wait=True, cancel_futures=True)

    def write_raw(self, data: bytes) -> None:
        """Writes already compressed bytes (the footer) straight to the blob."""
        self._out.write(data)
        self.blob_hash.update(data)
        self.size += len(data)


class StargzWriter:
    """Writes a blob entry by entry, like the Go ``estargz.Writer``: use :func:`pystargz.open` with "w".

    Entries keep the order and duplicates they are given; no landmark is added
    (:func:`build` adds one).  ``close()`` writes the TOC and footer and returns
    the :class:`BuildResult`.  With ``min_chunk_size`` > 0 a chunk stays in the
    current gzip member (at an ``innerOffset``) until that member holds
    ``min_chunk_size`` compressed bytes.  Members are then compressed one after
    the other with zlib (levels 0-9); ``workers`` and ``backend`` only matter
    for the TOC member.  Legacy stargz readers know no ``innerOffset``, so
    ``format="stargz"`` refuses it.  ``format="zstdchunked"`` writes Go's
    zstd:chunked variant (one zstd frame per member, ``compression_level`` is
    the zstd level).  ``external_toc`` (eStargz only) leaves the TOC out of the
    blob; :attr:`BuildResult.toc_blob` holds it.
    """

    def __init__(
        self,
        dst: str | os.PathLike[str] | BinaryIO,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        compression_level: int = DEFAULT_LEVEL,
        format: Format = "estargz",
        workers: int | None = None,
        backend: str | None = None,
        min_chunk_size: int = 0,
        external_toc: bool = False,
    ) -> None:
        if chunk_size <= 0:
            raise ValueError(f"chunk_size must be positive, not {chunk_size}")
        if min_chunk_size < 0:
            raise ValueError(f"min_chunk_size must not be negative, not {min_chunk_size}")
        if format not in _LAYOUTS:
            raise ValueError(f"format must be one of {', '.join(map(repr, _LAYOUTS))}, not {format!r}")
        if min_chunk_size and format != "estargz":
            raise ValueError("min_chunk_size needs format 'estargz' (no other reader knows innerOffset)")
        if external_toc and format != "estargz":
            raise ValueError("external_toc needs format 'estargz'")
        self._backend = ZstdBackend() if format == "zstdchunked" else get_backend(backend)
        self._owns_dst = isinstance(dst, (str, os.PathLike))
        self._dst: BinaryIO = open(dst, "wb") if isinstance(dst, (str, os.PathLike)) else dst  # noqa: SIM115
        self.chunk_size = chunk_size
        self.compression_level = compression_level
        self.layout = Layout.EXTERNAL_TOC if external_toc else _LAYOUTS[format]
        self.min_chunk_size = min_chunk_size
        self._members: _Members | PackedMembers
        try:
            if min_chunk_size > 0:
                self._members = PackedMembers(self._dst, compression_level, min_chunk_size)
            else:
                check_level(compression_level, self._backend.max_level)
                threads = max(1, workers or os.cpu_count() or 1)
                self._members = _Members(self._dst, self._backend, compression_level, threads, BATCH_BYTES)
        except ValueError:
            if self._owns_dst:
                self._dst.close()
            raise
        # TOC entries, and for each the index of the member its data starts in (-1: no data):
        # its offset is known once that member is compressed.
        self._entries: list[TOCEntry] = []
        self._entry_members: list[int] = []
        self._last_uname: dict[int, str] = {}
        self._last_gname: dict[int, str] = {}
        self._result: BuildResult | None = None

    # ---- context manager ----

    def __enter__(self) -> StargzWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
            return
        self._members.shutdown()
        if self._owns_dst:
            self._dst.close()

    # ---- adding entries ----

    def addfile(
        self, tarinfo: tarfile.TarInfo, fileobj: BinaryIO | None = None, *, toc_name: str | None = None
    ) -> None:
        """Adds one entry; a regular file's ``tarinfo.size`` bytes are read from ``fileobj``.

        ``toc_name`` is the name recorded in the TOC when it differs from what
        tarfile keeps in ``tarinfo.name`` (tarfile drops a directory's
        trailing "/", which the Go writer keeps).
        """
        self._add_entry(tarinfo, fileobj, toc_name, landmark=False)

    def _add_entry(
        self,
        tarinfo: tarfile.TarInfo,
        fileobj: _Content | None,
        toc_name: str | None,
        *,
        landmark: bool,
        raw_header: bytes | None = None,
    ) -> None:
        """Adds one entry; a ``landmark``'s data always opens a new member (Go's Build does so).

        The data comes from a file or, when the input tar is mapped, is the
        entry's bytes in the mapping (no read, no copy until its member is built).
        ``raw_header`` is the input's own bytes before the data (lossless
        mode): written instead of a new header, and the padding after the data
        comes with the next entry's raw bytes.
        """
        if self._result is not None:
            raise ValueError("the writer is closed")
        kind = _entry_type(tarinfo)
        if clean_name(toc_name or tarinfo.name) == TOC_TAR_NAME:
            return  # a blob converted twice must not carry two TOCs (Go drops it too)
        entry = self._toc_entry(tarinfo, kind, toc_name or tarinfo.name)
        self._members.write(_header_bytes(tarinfo) if raw_header is None else raw_header)
        if kind != "reg" or tarinfo.size == 0:
            if kind == "reg":
                entry.digest = EMPTY_DIGEST
            self._entries.append(entry)
            self._entry_members.append(-1)
            return
        if fileobj is None:
            raise ValueError(f"{tarinfo.name!r}: a regular file of {tarinfo.size} bytes needs a fileobj")
        self._add_data(entry, fileobj, tarinfo.size, landmark=landmark, pad=raw_header is None)

    def add(
        self, name: str | os.PathLike[str], arcname: str | None = None, *, recursive: bool = True
    ) -> None:
        """Adds a file or directory tree of the local file system, as :meth:`tarfile.TarFile.add` does."""
        path = os.fspath(name)
        with tarfile.open(fileobj=io.BytesIO(), mode="w") as scratch:
            info = scratch.gettarinfo(path, arcname if arcname is not None else path)
        if info is None:
            return  # sockets and the like cannot be archived
        if info.isreg():
            with open(path, "rb") as content:
                self.addfile(info, content)
        else:
            self.addfile(info)
        if recursive and info.isdir():
            for child in sorted(os.listdir(path)):
                self.add(os.path.join(path, child), f"{info.name}/{child}", recursive=True)

    def append_tar(self, src: str | os.PathLike[str] | BinaryIO, *, lossless: bool = False) -> None:
        """Appends every entry of a tar (plain, gzip or zstd) in order, duplicates kept (Go ``AppendTar``).

        ``lossless`` (Go ``AppendTarLossLess``) copies the tar's own bytes,
        headers, padding and end-of-archive included, instead of writing new
        headers: the payload then decompresses to the input tar byte for byte
        (:func:`pystargz.unpack` gives it back).  An input that holds a TOC
        entry is refused then, since dropping it would lose bytes.
        """
        with _tar_input(src) as layer:
            raw = RawTar(layer.plain) if lossless else None
            for info, name in layer.members:
                header = None
                if raw is not None:
                    if clean_name(name) == TOC_TAR_NAME:
                        raise BuildError(f"{name!r}: the input holds a TOC already; unpack it first")
                    header = raw.before_data(info)
                self._add_entry(info, layer.content(info), name, landmark=False, raw_header=header)
            if raw is not None:
                self._members.write(raw.rest())

    def add_landmark(self, name: str) -> None:
        """Adds a landmark file (one byte 0x0f, no mode, owner or time), as Go's Build does."""
        info = tarfile.TarInfo(name)
        info.size = len(LANDMARK_CONTENTS)
        info.mtime = 0
        info.mode = 0
        self._add_entry(info, io.BytesIO(LANDMARK_CONTENTS), None, landmark=True)

    # ---- internals ----

    def _toc_entry(self, info: tarfile.TarInfo, kind: EntryType, name: str) -> TOCEntry:
        try:
            modtime = _modtime(info.mtime)
        except ValueError as exc:
            raise BuildError(f"{name!r}: {exc}") from None
        entry = TOCEntry(
            name=name,
            type=kind,
            modtime=modtime,
            mode=info.mode,
            uid=info.uid,
            gid=info.gid,
            user_name=_name_if_changed(self._last_uname, info.uid, info.uname),
            group_name=_name_if_changed(self._last_gname, info.gid, info.gname),
            xattrs=_xattrs(info),
        )
        if kind in ("symlink", "hardlink"):
            entry.link_name = info.linkname
        elif kind in ("char", "block"):
            entry.dev_major, entry.dev_minor = info.devmajor, info.devminor
        elif kind == "reg":
            entry.size = info.size
        return entry

    def _add_data(
        self, entry: TOCEntry, fileobj: _Content, size: int, *, landmark: bool, pad: bool = True
    ) -> None:
        """Each chunk starts a member (or packs into one); tar padding stays in the last chunk's member."""
        if size <= self.chunk_size:
            self._add_one_chunk(entry, fileobj, size, landmark=landmark, pad=pad)
            return
        whole = hashlib.sha256()  # the file's digest, chunk by chunk
        first = entry
        written = 0
        while written < size:
            step = min(self.chunk_size, size - written)
            if isinstance(fileobj, memoryview):
                data: bytes | memoryview = fileobj[written : written + step]
            else:
                data = _read_exactly(fileobj, step, entry.name)
            member, entry.inner_offset = self._members.start_chunk(new_member=landmark)
            self._members.write(data)
            whole.update(data)
            # Go records chunkSize on every full-size chunk, the last one included.
            entry.chunk_size = step if step == self.chunk_size else 0
            entry.chunk_offset = written
            if self.layout is not Layout.LEGACY:
                entry.chunk_digest = _sha256(data)
            self._entries.append(entry)
            self._entry_members.append(member)
            written += step
            entry = TOCEntry(name=first.name, type="chunk")
        first.digest = "sha256:" + whole.hexdigest()
        if pad:
            self._members.write(_PADDING[-size % BLOCK])

    def _add_one_chunk(
        self, entry: TOCEntry, fileobj: _Content, size: int, *, landmark: bool, pad: bool
    ) -> None:
        """The usual file: one chunk, whose digest is the file's."""
        if isinstance(fileobj, memoryview):
            data: bytes | memoryview = fileobj[:size]
        else:
            data = _read_exactly(fileobj, size, entry.name)
        members = self._members
        member, entry.inner_offset = members.start_chunk(new_member=landmark)
        members.write(data)
        entry.digest = _sha256(data)  # one hash pass: the chunk's digest is the file's
        if self.layout is not Layout.LEGACY:
            entry.chunk_digest = entry.digest
        if size == self.chunk_size:
            entry.chunk_size = size
        self._entries.append(entry)
        self._entry_members.append(member)
        if pad:
            members.write(_PADDING[-size % BLOCK])

    def close(self) -> BuildResult:
        """Writes the TOC member and the footer; returns what the blob is."""
        if self._result is not None:
            return self._result
        members = self._members
        members.close_member()
        members.flush(wait=True)
        members.shutdown()
        offsets = members.offsets
        for entry, member in zip(self._entries, self._entry_members, strict=True):
            if member >= 0:
                entry.offset = offsets[member]
        toc = TOC(entries=self._entries, entries_null=not self._entries)
        toc_json = toc.to_json()
        layout_annotations, toc_blob = self._write_toc(toc_json)
        self._dst.flush()
        if self._owns_dst:
            self._dst.close()
        toc_digest = _sha256(toc_json)
        self._result = BuildResult(
            toc_digest=toc_digest,
            diff_id="sha256:" + members.diff_hash.hexdigest(),
            digest="sha256:" + members.blob_hash.hexdigest(),
            size=members.size,
            uncompressed_size=members.uncompressed_size,
            annotations={
                ANNOTATION_TOC_DIGEST: toc_digest,
                ANNOTATION_UNCOMPRESSED_SIZE: str(members.uncompressed_size),
                **layout_annotations,
            },
            toc_blob=toc_blob,
        )
        return self._result

    def _write_toc(self, toc_json: bytes) -> tuple[dict[str, str], bytes | None]:
        """Ends the blob with the layout's TOC and footer; returns its extra annotations and any TOC blob.

        The gzip TOC member counts in the DiffID (it decompresses with the
        blob); zstd:chunked's skippable TOC frame and a separate TOC blob do not.
        """
        members = self._members
        if self.layout is Layout.ZSTD_CHUNKED:
            return write_toc_and_footer(members, toc_json, self._backend, self.compression_level), None
        toc_tar = _toc_tar(toc_json)
        (toc_member,) = compress_parallel(self._backend, [toc_tar], self.compression_level)
        if self.layout is Layout.EXTERNAL_TOC:
            members.write_raw(build_footer(0, self.layout))
            return {}, toc_member
        members.diff_hash.update(toc_tar)
        members.uncompressed_size += len(toc_tar)
        toc_offset = members.size
        members.write_raw(toc_member)
        members.write_raw(build_footer(toc_offset, self.layout))
        return {}, None


# ---- build ----


def build(
    src: str | os.PathLike[str] | BinaryIO,
    dst: str | os.PathLike[str] | BinaryIO,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    compression_level: int = DEFAULT_LEVEL,
    prioritized_files: Sequence[str] = (),
    allow_missing_prioritized: bool = False,
    format: Format = "estargz",
    workers: int | None = None,
    backend: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    min_chunk_size: int = 0,
    external_toc: bool = False,
) -> BuildResult:
    """Converts a tar layer (plain, gzip or zstd) into an eStargz blob, as Go's ``estargz.Build``.

    The last entry of each name wins; ``prioritized_files`` come first (each
    after its parent directories, hardlink targets along), then
    ``.prefetch.landmark``; without them ``.no.prefetch.landmark`` comes
    first.  A prioritized file that is missing is an error unless
    ``allow_missing_prioritized``; so is one whose parent directory has no
    entry.  Global PAX headers are applied to the entries after them (POSIX
    semantics; Go refuses them).  ``format="stargz"`` writes legacy stargz:
    47-byte footer, no chunk digests, no landmark; ``format="zstdchunked"``
    Go's zstd:chunked.  ``external_toc`` returns the TOC in
    :attr:`BuildResult.toc_blob` instead of writing it.  ``progress(done, total)``
    is called after each entry with the entries written so far.
    ``min_chunk_size`` packs small files into shared members (see
    :class:`StargzWriter`); the landmark always opens a new member, so the
    files after it pack into the landmark's member.
    """
    with _tar_input(src) as layer:
        entries = _last_of_each_name(layer.members)
        ordered, missing = _prioritize(entries, prioritized_files)
        if missing and not allow_missing_prioritized:
            raise BuildError(f"prioritized file {missing[0]!r} is not in the layer")
        with StargzWriter(
            dst,
            chunk_size=chunk_size,
            compression_level=compression_level,
            format=format,
            workers=workers,
            backend=backend,
            min_chunk_size=min_chunk_size,
            external_toc=external_toc,
        ) as writer:
            first = [item for item in ordered if item.prioritized]
            rest = [item for item in ordered if not item.prioritized]
            if format != "stargz" and not prioritized_files:
                writer.add_landmark(NO_PREFETCH_LANDMARK)
            for done, item in enumerate(first, 1):
                writer._add_entry(item.info, layer.content(item.info), item.raw_name, landmark=False)
                if progress is not None:
                    progress(done, len(ordered))
            if format != "stargz" and prioritized_files:
                writer.add_landmark(PREFETCH_LANDMARK)
            for done, item in enumerate(rest, len(first) + 1):
                writer._add_entry(item.info, layer.content(item.info), item.raw_name, landmark=False)
                if progress is not None:
                    progress(done, len(ordered))
            return writer.close()


@dataclasses.dataclass
class _Item:
    info: tarfile.TarInfo
    raw_name: str
    prioritized: bool = False


def _last_of_each_name(members: Iterable[Scanned]) -> dict[str, _Item]:
    """Entries by cleaned name, the last one winning at its own position; landmarks dropped."""
    entries: dict[str, _Item] = {}
    for info, raw in members:
        key = clean_name(raw.rstrip("/"))  # the same name, but clean_name's fast path takes it
        if key in (PREFETCH_LANDMARK, NO_PREFETCH_LANDMARK):
            continue
        entries.pop(key, None)
        entries[key] = _Item(info, raw)
    return entries


def _prioritize(entries: dict[str, _Item], prioritized: Sequence[str]) -> tuple[list[_Item], list[str]]:
    """Moves prioritized files first, each after its parents and with its hardlink target."""
    moved: dict[str, _Item] = {}
    missing: list[str] = []

    def move(name: str) -> None:
        key = clean_name(name)
        if key == "":
            if "" in entries:
                moved[""] = entries.pop("")
                moved[""].prioritized = True
            return
        if key not in entries and key not in moved:
            raise KeyError(key)
        move(key.rpartition("/")[0])
        item = entries.get(key)
        if item is not None and item.info.islnk():
            move(item.info.linkname)
        item = entries.pop(key, None)
        if item is not None:
            item.prioritized = True
            moved[key] = item

    for name in prioritized:
        try:
            move(name)
        except KeyError as exc:
            if clean_name(name) == exc.args[0]:
                missing.append(name)
                continue
            raise BuildError(
                f"prioritized file {name!r}: its parent {exc.args[0]!r} is not in the layer"
            ) from None
    return [*moved.values(), *entries.values()], missing


# ---- tar input ----


@contextlib.contextmanager
def _plain_tar(src: str | os.PathLike[str] | BinaryIO) -> Iterator[BinaryIO]:
    """A seekable plain tar for any input: plain tars as they are, compressed ones spooled decompressed."""
    with contextlib.ExitStack() as stack:
        if isinstance(src, (str, os.PathLike)):
            raw: BinaryIO = stack.enter_context(open(src, "rb"))
        else:
            raw = src
        head = _peek(raw, 4)
        if head.startswith(GZIP_MAGIC):
            yield _spool(stack, _gzip_reader(raw))
        elif head == ZSTD_MAGIC:
            yield _spool(stack, _zstd_reader(raw))
        elif not raw.seekable():
            yield _spool(stack, raw)
        else:
            yield raw


def _spool(stack: contextlib.ExitStack, stream: BinaryIO) -> BinaryIO:
    spool = stack.enter_context(tempfile.TemporaryFile())  # noqa: SIM115 - the stack closes it
    shutil.copyfileobj(stream, spool, 1 << 20)
    spool.seek(0)
    return cast(BinaryIO, spool)


def _peek(raw: BinaryIO, count: int) -> bytes:
    if raw.seekable():
        position = raw.tell()
        head = raw.read(count)
        raw.seek(position)
        return head
    if isinstance(raw, io.BufferedReader):
        return raw.peek(count)[:count]
    raise BuildError("a non-seekable input must be a buffered binary stream")


def _gzip_reader(raw: BinaryIO) -> BinaryIO:
    try:
        from isal import igzip
    except ImportError:
        import gzip

        return cast(BinaryIO, gzip.GzipFile(fileobj=raw, mode="rb"))
    return cast(BinaryIO, igzip.IGzipFile(fileobj=raw, mode="rb"))  # type: ignore[no-untyped-call]


def _zstd_reader(raw: BinaryIO) -> BinaryIO:
    try:
        import zstandard
    except ImportError:
        raise CompressionError("the input is zstd-compressed; install pystargz[zstd] (zstandard)") from None
    return cast(BinaryIO, zstandard.ZstdDecompressor().stream_reader(raw))


class _TarInput:
    """A plain tar's members, in order, each with its name as spelled, and their data.

    Mapped tars (files, in-memory buffers) are scanned by :mod:`pystargz.tarformat`
    and their data served as views into the mapping; others, and tars the
    scanner leaves to tarfile, are read with tarfile and file reads.
    """

    def __init__(self, members: list[Scanned], plain: BinaryIO, mapped: _Mapped | None) -> None:
        self.members = members
        self._plain = plain
        self._mapped = mapped

    @property
    def plain(self) -> BinaryIO:
        """The plain tar itself (lossless appends copy its bytes around the data)."""
        return self._plain

    def content(self, info: tarfile.TarInfo) -> _Content | None:
        """A regular file's data: its bytes in the mapping, or the input positioned at them."""
        if not info.isreg():
            return None
        if self._mapped is not None:
            self._mapped.let_go(info.offset_data)
            return self._mapped.view[info.offset_data : info.offset_data + info.size]
        self._plain.seek(info.offset_data)
        return self._plain


@contextlib.contextmanager
def _tar_input(src: str | os.PathLike[str] | BinaryIO) -> Iterator[_TarInput]:
    with _plain_tar(src) as plain, _mapped(plain) as mapped:
        start = plain.tell()
        members = tarformat.scan(mapped.view, start, mapped.let_go) if mapped is not None else None
        if members is not None:
            yield _TarInput(members, plain, mapped)
            return
        with tarfile.open(fileobj=plain, mode="r:") as tar:
            infos = list(_members(tar))
        yield _TarInput([Scanned(info, _raw_name(plain, info)) for info in infos], plain, None)


# Plain tars that are these (files on disk, spooled or not) can be mapped; fileno() of other
# file objects may be that of something else (a GzipFile's is its compressed file's).
_MAPPABLE = (io.FileIO, io.BufferedReader, io.BufferedRandom)
# A mapping lets go of the pages it has read once reading is this far past them.
LET_GO_BYTES = 16 << 20


class _Mapped:
    """A plain tar as a read-only view, without copying it.

    A mapped file's pages count in the process's memory until let go: the
    reader lets go of those behind it as it moves on (they stay in the page
    cache), so that memory does not grow with the layer.
    """

    def __init__(self, view: memoryview, mapping: mmap.mmap | None) -> None:
        self.view = view
        self._mapping = mapping if hasattr(mmap, "MADV_DONTNEED") else None
        self._let_go_at = 0

    def let_go(self, position: int) -> None:
        """Reading has moved to ``position``: the pages before it may go (every LET_GO_BYTES)."""
        if self._mapping is None or abs(position - self._let_go_at) < LET_GO_BYTES:
            return
        self._mapping.madvise(mmap.MADV_DONTNEED, 0, position - position % mmap.PAGESIZE)
        self._let_go_at = position


@contextlib.contextmanager
def _mapped(plain: BinaryIO) -> Iterator[_Mapped | None]:
    """The whole input as a read-only view without copying it: an mmap, or a BytesIO's buffer."""
    if isinstance(plain, io.BytesIO):
        # getvalue() shares the BytesIO's bytes without a copy; unlike getbuffer(), views of them
        # that outlive the build (in a traceback, say) do not keep the BytesIO from closing.
        yield _Mapped(memoryview(plain.getvalue()), None)
        return
    if not isinstance(plain, _MAPPABLE):
        yield None
        return
    try:
        mapping = mmap.mmap(plain.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):  # an empty file, a device...
        yield None
        return
    view = memoryview(mapping)
    try:
        yield _Mapped(view, mapping)
    finally:
        view.release()
        with contextlib.suppress(BufferError):
            # A view still held (by a traceback's frames) keeps the mapping open; it is
            # unmapped when the last one goes.
            mapping.close()


def _members(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    try:
        yield from tar
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BuildError(f"cannot read the input tar: {exc}") from exc


def _entry_type(info: tarfile.TarInfo) -> EntryType:
    """The TOC type of a tar entry; what Go's writer refuses is refused here too."""
    if info.issparse():
        raise BuildError(f"{info.name!r}: sparse files are not supported (Go refuses them too)")
    kind = _KIND_OF_TAR_TYPE.get(info.type)
    if kind is None:
        raise BuildError(f"{info.name!r}: unsupported tar entry type {info.type!r}")
    return kind


# tarfile counts the old-style "\0", contiguous "7" and GNU sparse types as regular too (isreg).
_KIND_OF_TAR_TYPE: dict[bytes, EntryType] = {
    **{flag: kind for kind, flag in TAR_TYPES.items()},
    **dict.fromkeys((tarfile.AREGTYPE, tarfile.CONTTYPE, tarfile.GNUTYPE_SPARSE), "reg"),
}


def _raw_name(plain: BinaryIO, info: tarfile.TarInfo) -> str:
    """The name as the tar spells it (tarfile drops a directory's trailing "/"; the TOC keeps it)."""
    if "path" in info.pax_headers:
        return info.pax_headers["path"]
    header_at = info.offset_data - BLOCK
    plain.seek(header_at)
    block = plain.read(BLOCK)
    name = _nts(block[0:100])
    if block[257:263] == tarformat.USTAR_MAGIC:
        prefix = _nts(block[345:500])
        name = f"{prefix}/{name}" if prefix else name
    return tarformat.raw_name_of(name, info)


def _nts(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _read_exactly(fileobj: BinaryIO, size: int, name: str) -> bytes:
    data = fileobj.read(size)
    if len(data) != size:
        raise BuildError(f"{name!r}: the input ended {size - len(data)} bytes early")
    return data


def _header_bytes(info: tarfile.TarInfo) -> bytes:
    try:
        return tarformat.header_bytes(info)
    except (ValueError, OverflowError) as exc:
        raise BuildError(f"{info.name!r}: cannot write its tar header: {exc}") from exc


def _xattrs(info: tarfile.TarInfo) -> dict[str, bytes]:
    if not info.pax_headers:
        return {}
    return {
        key[len(XATTR_PREFIX) :]: value.encode("utf-8", "surrogateescape")
        for key, value in info.pax_headers.items()
        if key.startswith(XATTR_PREFIX)
    }


def _name_if_changed(last: dict[int, str], owner: int, name: str) -> str:
    """Go writes an owner name only when it differs from the last one written for that id."""
    if not name or last.get(owner) == name:
        return ""
    last[owner] = name
    return name


def _toc_tar(toc_json: bytes) -> bytes:
    """The tar inside the TOC member: ``stargz.index.json`` and the end-of-archive blocks."""
    info = tarfile.TarInfo(TOC_TAR_NAME)
    info.size = len(toc_json)
    info.mode = 0
    info.mtime = 0
    header = info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "strict")
    return header + toc_json + bytes(-len(toc_json) % BLOCK) + bytes(2 * BLOCK)


# A layer's files share few modification times: format each once.
_modtime = functools.lru_cache(maxsize=4096)(format_modtime)


def _sha256(data: bytes | memoryview) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()
