"""Packing small files into shared gzip members: the writer's ``min_chunk_size`` mode.

Newer Go estargz writers (>= 0.13, ``WithMinChunkSize``) let several small
files, or chunks, share one gzip member, each located by ``offset`` (the
member) and ``innerOffset`` (uncompressed bytes into it): fewer members,
better compression, fewer range requests for a lazy reader.

Whether a chunk opens a new member depends on how many *compressed* bytes the
current member holds so far, so members cannot be compressed independently
in parallel batches as :class:`pystargz.writer._Members` does: here one
streaming deflate runs per member, sync-flushed before every chunk so that the
compressed size so far is exact.  The rule is the one observed in the Go
writer's output (``tests/data/README.md``, the ``up_*`` notes): before each
chunk, if the member's compressed bytes since it began (gzip header included)
reach ``min_chunk_size``, or the chunk is a landmark file's, the member is
closed and the chunk opens a new one; otherwise the chunk goes on in the
current member at ``innerOffset`` = the member's uncompressed bytes so far.
A chunk never continues into the next member, since members close only
before a chunk.
"""

from __future__ import annotations

import hashlib
import zlib
from typing import BinaryIO

from pystargz.compression.base import ZLIB_MAX_LEVEL, check_level, gzip_header, gzip_trailer

# Raw deflate, 32 KiB window, zlib's default memory level: what the batch compressors use too.
RAW_DEFLATE_WBITS = -zlib.MAX_WBITS
MEM_LEVEL = 8


class PackedMembers:
    """Gzip members written one after the other, each chunk packed or opening a new member.

    Same interface as the writer's batch pipeline (``write``, ``start_chunk``,
    ``close_member``, ``flush``, ``write_raw``, the offsets and hashes), so the
    writer does not care which one it drives.  Offsets are known as soon as a
    member starts; TOC entries still refer to members by index for uniformity.
    """

    def __init__(self, out: BinaryIO, level: int, min_chunk_size: int) -> None:
        # The streaming compressor is the standard zlib's, whatever the backend: it has sync flush.
        check_level(level, ZLIB_MAX_LEVEL)
        if min_chunk_size <= 0:
            raise ValueError(f"min_chunk_size must be positive to pack members, not {min_chunk_size}")
        self._out = out
        self._level = level
        self._min_chunk_size = min_chunk_size
        self._deflater: zlib._Compress | None = None  # the open member's compressor, None between members
        self._crc = 0
        self._member_in = 0  # uncompressed bytes of the open member
        self._member_out = 0  # compressed bytes of the open member written so far, gzip header included
        self.offsets: list[int] = []  # compressed start of each member, appended when it opens
        self.size = 0  # compressed bytes written
        self.uncompressed_size = 0
        self.diff_hash = hashlib.sha256()
        self.blob_hash = hashlib.sha256()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Compresses bytes into the open member, opening one if none is open."""
        if not len(data):
            return
        if self._deflater is None:
            self._open_member()
        assert self._deflater is not None
        self._crc = zlib.crc32(data, self._crc)
        self._member_in += len(data)
        self.diff_hash.update(data)
        self.uncompressed_size += len(data)
        self._emit(self._deflater.compress(data))

    def start_chunk(self, new_member: bool) -> tuple[int, int]:
        """Where the chunk written next starts: ``(member index, innerOffset)``.

        The sync flush makes every byte written so far count in the compressed
        size, as in Go; ``new_member`` forces a new member (landmark files).
        """
        if self._deflater is not None:
            if not new_member:
                self._emit(self._deflater.flush(zlib.Z_SYNC_FLUSH))
                if self._member_out < self._min_chunk_size:
                    return len(self.offsets) - 1, self._member_in
            self.close_member()
        return len(self.offsets), 0  # the chunk's first byte opens this member

    def close_member(self) -> None:
        """Finishes the open member with its deflate end and gzip trailer (no member open: nothing)."""
        if self._deflater is None:
            return
        self._emit(self._deflater.flush(zlib.Z_FINISH))
        self._emit(gzip_trailer(self._crc, self._member_in))
        self._deflater = None

    def flush(self, *, wait: bool = False) -> None:
        """Nothing is queued: members are written as they are compressed."""

    def shutdown(self) -> None:
        """No compression stage to stop."""

    def write_raw(self, data: bytes) -> None:
        """Writes already compressed bytes (members, the TOC, the footer) straight to the blob."""
        self._out.write(data)
        self.blob_hash.update(data)
        self.size += len(data)

    def _open_member(self) -> None:
        self.offsets.append(self.size)
        self._deflater = zlib.compressobj(self._level, zlib.DEFLATED, RAW_DEFLATE_WBITS, MEM_LEVEL)
        self._crc = 0
        self._member_in = 0
        self._member_out = 0
        self._emit(gzip_header(self._level))

    def _emit(self, data: bytes) -> None:
        """Writes compressed bytes of the open member, counting them toward ``min_chunk_size``."""
        self._member_out += len(data)
        self.write_raw(data)
