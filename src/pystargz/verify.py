"""Digest checks: the TOC against the digest a manifest names, chunks and files against the TOC.

A layer's TOC digest comes from a trusted place (the image manifest's
annotation); the TOC then names the digest of every chunk and file.  Checking
the TOC once at open and every chunk as it comes out of inflation makes every
byte the reader returns one that the manifest vouches for.  Checks are per TOC
entry, never keyed by blob offset: entries packed into one gzip member
(``innerOffset``) share an offset, which is what makes Go's ``VerifyTOC``
reject such blobs.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pystargz.compression import Buffer, SpanFailure, error_for, inflate_member
from pystargz.compression import _executor as shared_pool
from pystargz.compression import _split as split_runs
from pystargz.compression.zstd import ZSTD, decompress_frames
from pystargz.errors import VerificationError
from pystargz.members import Chunk, StargzInfo
from pystargz.toc import TOC_TAR_NAME

if TYPE_CHECKING:
    from pystargz.reader import StargzReader

ALGORITHMS: dict[str, Callable[[Buffer], hashlib._Hash]] = {
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
}
# Below this many bytes a batch of hashes is not worth handing to other threads.
PARALLEL_HASH_BYTES = 1 << 20
# verify() hashes whole files in batches of about this many bytes (held in memory meanwhile).
FILE_BATCH_BYTES = 64 << 20

Inflate = Callable[[list[Chunk]], list[bytes]]


@dataclass(frozen=True)
class Verification:
    """What :meth:`StargzReader.verify` checked: all of it matched.

    ``toc_checked`` says whether a TOC digest was given and compared;
    ``files`` counts regular files (hardlinks are their targets), ``chunks``
    the chunks hashed, ``bytes`` the uncompressed bytes hashed.
    """

    toc_digest: str
    toc_checked: bool
    files: int
    chunks: int
    bytes: int


def digest_of(data: Buffer, expected: str) -> str:
    """The digest of ``data`` in the algorithm ``expected`` names ("sha256:..." if it names none we know).

    hashlib releases the GIL on buffers over 2 KiB, so threads hash in parallel.
    """
    algorithm = expected.partition(":")[0].lower()
    make = ALGORITHMS.get(algorithm, hashlib.sha256)
    return f"{algorithm if algorithm in ALGORITHMS else 'sha256'}:{make(data).hexdigest()}"


def digests_of(items: Sequence[tuple[Buffer, str]]) -> list[str]:
    """``digest_of`` for many buffers, on all cores when there is enough to hash."""
    sizes = [memoryview(data).nbytes for data, _ in items]
    workers = os.cpu_count() or 1

    def run(first: int, end: int) -> list[str]:
        return [digest_of(data, expected) for data, expected in items[first:end]]

    if workers == 1 or len(items) < 2 or sum(sizes) < PARALLEL_HASH_BYTES:
        return run(0, len(items))
    runs = split_runs(sizes, workers)
    futures = [shared_pool().submit(run, first, end) for first, end in runs[1:]]
    results = run(*runs[0])
    for future in futures:
        results.extend(future.result())
    return results


def check_toc_digest(toc_json: bytes, expected: str, toc_offset: int) -> None:
    """Raises VerificationError unless the TOC JSON, as stored, has the digest ``expected``."""
    if expected.partition(":")[0].lower() not in ALGORITHMS:
        raise VerificationError(
            f"cannot check the TOC at blob offset {toc_offset}: digest {expected!r} is not "
            f"<algorithm>:<hex> with one of {sorted(ALGORITHMS)}",
            expected=expected,
            actual="",
            entry=TOC_TAR_NAME,
            offset=toc_offset,
        )
    actual = digest_of(toc_json, expected)
    if actual != expected.lower():
        raise VerificationError(
            f"TOC at blob offset {toc_offset} has digest {actual}, expected {expected}",
            expected=expected,
            actual=actual,
            entry=TOC_TAR_NAME,
            offset=toc_offset,
        )


def _mismatch(chunk: Chunk, expected: str, actual: str) -> VerificationError:
    """The error for one chunk: everything needed to find the bad bytes is in the message."""
    what = "has no digest in the TOC" if not expected else f"has digest {actual}, the TOC says {expected}"
    return VerificationError(
        f"{chunk.name!r}: chunk of {chunk.size} bytes at file offset {chunk.chunk_offset} "
        f"(blob offset {chunk.offset}, inner offset {chunk.inner_offset}) {what}",
        expected=expected,
        actual=actual,
        entry=chunk.name,
        offset=chunk.offset,
    )


class ChunkVerifier:
    """Checks chunk bytes against the TOC where they come out of inflation.

    A chunk's digest is its ``chunkDigest``, or the file's ``digest`` when
    the chunk is the whole file (the index fills that in).  Legacy stargz has
    no chunk digests, so a chunk of a multi-chunk legacy file can only be
    trusted through its whole file: with ``whole_files`` the first read of
    such a chunk inflates and checks the whole file once and remembers each
    of its chunks' digests; without it those chunks are left to the caller,
    who checks the file digest itself (:func:`verify_reader`).
    """

    def __init__(self, members: Iterable[StargzInfo], inflate: Inflate, *, whole_files: bool) -> None:
        self._inflate = inflate
        self._whole_files = whole_files
        self._files = {chunk: m for m in members if m.isreg() for chunk in m.chunks if not chunk.digest}
        # Filled by whole-file checks; plain dict updates are atomic, a race only repeats work.
        self._learned: dict[Chunk, str] = {}

    def check(self, chunks: Sequence[Chunk], datas: list[bytes]) -> list[bytes]:
        """Returns ``datas`` if every chunk matches its digest; else raises VerificationError."""
        expected = [chunk.digest or self._learned_digest(chunk) for chunk in chunks]
        wanted = [(data, digest) for data, digest in zip(datas, expected, strict=True) if digest]
        actual = iter(digests_of(wanted))
        for chunk, digest in zip(chunks, expected, strict=True):
            if digest:
                found = next(actual)
                if found != digest.lower():
                    raise _mismatch(chunk, digest, found)
            elif self._whole_files:
                raise _mismatch(chunk, "", "")
        return datas

    def _learned_digest(self, chunk: Chunk) -> str:
        if not self._whole_files:
            return ""
        if chunk not in self._learned:
            file = self._files.get(chunk)
            if file is not None and file.digest:
                self._learn(file)
        return self._learned.get(chunk, "")

    def _learn(self, file: StargzInfo) -> None:
        """Checks the whole file against its digest, then trusts each chunk's bytes as read."""
        datas = self._inflate(list(file.chunks))
        actual = digest_of(b"".join(datas), file.digest)
        if actual != file.digest.lower():
            first = file.chunks[0]
            raise VerificationError(
                f"{file.name!r}: file of {file.size} bytes (blob offset {first.offset}) has digest "
                f"{actual}, the TOC says {file.digest}",
                expected=file.digest,
                actual=actual,
                entry=file.name,
                offset=first.offset,
            )
        for chunk, digest in zip(file.chunks, digests_of([(d, file.digest) for d in datas]), strict=True):
            self._learned[chunk] = digest


def verify_reader(reader: StargzReader, checked: StargzReader, toc_digest: str | None) -> Verification:
    """Checks the TOC digest (when given), then every chunk and every regular file of ``reader``.

    ``checked`` is a view of the same blob whose inflation runs through a
    :class:`ChunkVerifier` without whole-file checks: files are assembled
    here anyway, so their digests are checked once, after assembly, a batch
    of files at a time on all cores.
    """
    if toc_digest is not None:
        check_toc_digest(reader.toc_json, toc_digest, reader.toc_offset)
    files = {id(m): m for m in reader.getmembers() if m.isreg()}
    chunks = total = 0
    batch: list[tuple[StargzInfo, bytes]] = []
    batch_bytes = 0
    for file, data in checked.iter_contents(files.values()):
        chunks += len(file.chunks)
        total += len(data)
        if _needs_file_hash(file):
            batch.append((file, data))
            batch_bytes += len(data)
        if batch_bytes >= FILE_BATCH_BYTES:
            _check_files(batch)
            batch, batch_bytes = [], 0
    _check_files(batch)
    _check_unreferenced_members(reader)
    return Verification(reader.toc_digest, toc_digest is not None, len(files), chunks, total)


def _check_unreferenced_members(reader: StargzReader) -> None:
    """The members before the first file's data (tar headers only) must be intact gzip too.

    No chunk points into them, so no read inflates them; their CRCs are the
    only check there is (tar headers have no digest in the TOC).  Raises
    CorruptDataError as a read would.
    """
    first_data = min((c.offset for m in reader.getmembers() for c in m.chunks), default=reader.toc_offset)
    prefix = memoryview(reader.source.read_at(0, first_data))
    limit = reader.limits.member_slack
    if reader.footer.layout.compression == "zstd":
        try:
            decompress_frames(prefix, limit)
        except SpanFailure as failure:
            raise error_for(failure.status, failure.offset, limit, codec=ZSTD) from None
        return
    position = 0
    while position < len(prefix):
        try:
            _, used = inflate_member(prefix[position:], limit)
        except SpanFailure as failure:
            raise error_for(failure.status, position + failure.offset, limit) from None
        position += used


def _needs_file_hash(file: StargzInfo) -> bool:
    """False when a single chunk that carried the file's own digest was checked already."""
    return not (file.digest and len(file.chunks) == 1 and file.chunks[0].digest == file.digest)


def _check_files(batch: list[tuple[StargzInfo, bytes]]) -> None:
    """Each file against its own digest; one without a digest needs every chunk to have had one."""
    actual = digests_of([(data, file.digest) for file, data in batch])
    for (file, _), found in zip(batch, actual, strict=True):
        if file.digest and found == file.digest.lower():
            continue
        if not file.digest and all(chunk.digest for chunk in file.chunks):
            continue
        offset = file.chunks[0].offset if file.chunks else None
        where = f"{file.name!r}: file of {file.size} bytes" + (
            f" (blob offset {offset})" if offset is not None else ""
        )
        what = (
            f"has digest {found}, the TOC says {file.digest}"
            if file.digest
            else ("has neither a digest nor chunk digests to check")
        )
        raise VerificationError(
            f"{where} {what}", expected=file.digest, actual=found, entry=file.name, offset=offset
        )
