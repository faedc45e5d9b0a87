"""The pure-Python path: isal (else the standard zlib) to inflate, the standard zlib to deflate.

It exists so that pystargz works where the native module could not be built,
and so that a property test can hold the native module to an independent
implementation: same bytes, same statuses, same offsets.

Compression never uses isal: isal's levels 0..3 are its own algorithms, not
zlib's levels, so ``level=6`` would mean something else depending on what is
installed.  With the standard zlib every level means what it means to zlib,
gzip(1) and Go, and a native module built against the same zlib writes the
same bytes.
"""

from __future__ import annotations

import struct
import sys
import zlib
from collections.abc import Sequence
from types import ModuleType

from pystargz.compression.base import (
    ZLIB_MAX_LEVEL,
    Buffer,
    MemberFailure,
    MemberWalker,
    SpanFailure,
    Status,
    check_level,
    gzip_header,
    gzip_trailer,
)

GZIP_MAGIC = b"\x1f\x8b\x08"
HEADER_MIN = 10
TRAILER = 8
FHCRC, FEXTRA, FNAME, FCOMMENT, FRESERVED = 0x02, 0x04, 0x08, 0x10, 0xE0
MAX_LENGTH = sys.maxsize  # decompress() takes a C ssize_t
# What the C module's zlib build passes to deflateInit2: raw deflate, 32 KiB window.
MEM_LEVEL = 8
STORED_MAX = 0xFFFF  # the most bytes one stored deflate block holds


def _pick_zlib() -> tuple[str, ModuleType]:
    try:
        from isal import isal_zlib
    except ImportError:
        return "python-zlib", zlib
    return "python-isal", isal_zlib


def header_length(member: memoryview) -> int:
    """Length of the RFC 1952 header at the start of ``member``; same rules as the C code."""
    if len(member) < HEADER_MIN:
        raise MemberFailure(Status.TRUNCATED, 0)
    if member[:3] != GZIP_MAGIC or member[3] & FRESERVED:
        raise MemberFailure(Status.HEADER, 0)
    flags = member[3]
    pos = HEADER_MIN
    if flags & FEXTRA:
        if len(member) - pos < 2:
            raise MemberFailure(Status.TRUNCATED, 0)
        xlen = member[pos] | member[pos + 1] << 8
        pos += 2 + xlen
        if pos > len(member):
            raise MemberFailure(Status.TRUNCATED, 0)
    for field in (FNAME, FCOMMENT):
        if flags & field:
            nul = bytes(member[pos:]).find(b"\0")
            if nul < 0:
                raise MemberFailure(Status.TRUNCATED, 0)
            pos += nul + 1
    if flags & FHCRC:
        if len(member) - pos < 2:
            raise MemberFailure(Status.TRUNCATED, 0)
        if zlib.crc32(member[:pos]) & 0xFFFF != member[pos] | member[pos + 1] << 8:
            raise MemberFailure(Status.HEADER, 0)
        pos += 2
    return pos


def inflate_member(data: Buffer, limit: int) -> tuple[bytes, int]:
    """Inflates the single member at the start of ``data`` without knowing its size.

    For the TOC member, whose uncompressed size no TOC records.  Returns the
    output and the bytes the member took; raises SpanFailure (index 0).
    """
    try:
        return _PURE._member(memoryview(data).cast("B"), 0, limit)
    except MemberFailure as failure:
        raise SpanFailure(0, failure.status, failure.offset) from None


def stored_blocks(piece: Buffer) -> bytes:
    """Level 0 as libdeflate and zlib (given room for all of it) write it: full stored blocks, the last final.

    Python's zlib objects cut stored blocks wherever their own output buffer
    grows, which differs between Python versions; these bytes do not.
    """
    view = memoryview(piece).cast("B")
    parts: list[Buffer] = []
    for start in range(0, max(len(view), 1), STORED_MAX):  # an empty piece is one empty final block
        block = view[start : start + STORED_MAX]
        final = start + STORED_MAX >= len(view)
        parts += (struct.pack("<BHH", final, len(block), len(block) ^ 0xFFFF), block)
    return b"".join(parts)


def gzip_member(piece: Buffer, level: int) -> bytes:
    """One gzip member of ``piece``, framed byte for byte as the C code frames it."""
    if level == 0:
        body = stored_blocks(piece)
    else:
        deflater = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS, MEM_LEVEL, zlib.Z_DEFAULT_STRATEGY)
        body = deflater.compress(piece) + deflater.flush()
    return b"".join((gzip_header(level), body, gzip_trailer(zlib.crc32(piece), memoryview(piece).nbytes)))


class PureBackend(MemberWalker):
    """Inflates member by member with a deflate object from isal or zlib; deflates with zlib."""

    max_level = ZLIB_MAX_LEVEL

    def __init__(self) -> None:
        self.name, self._zlib = _pick_zlib()

    def compress_batch(self, pieces: Sequence[Buffer], level: int) -> list[bytes]:
        check_level(level, self.max_level)
        return [gzip_member(piece, level) for piece in pieces]

    def _member(self, src: memoryview, pos: int, limit: int) -> tuple[bytes, int]:
        """Inflates the member at ``pos``; returns its output and where the next one starts."""
        body = pos + header_length(src[pos:])
        inflater = self._zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            output: bytes = inflater.decompress(src[body:], min(limit, MAX_LENGTH - 1) + 1)
        except self._zlib.error:
            raise MemberFailure(Status.DATA, 0) from None
        if len(output) > limit:
            raise MemberFailure(Status.OUTPUT_TOO_SMALL, 0)
        if not inflater.eof:
            raise MemberFailure(Status.DATA, 0)
        trailer = len(src) - len(inflater.unused_data)
        if len(src) - trailer < TRAILER:
            raise MemberFailure(Status.TRUNCATED, 0)
        crc = int.from_bytes(src[trailer : trailer + 4], "little")
        isize = int.from_bytes(src[trailer + 4 : trailer + 8], "little")
        if crc != zlib.crc32(output):
            raise MemberFailure(Status.CRC, 0)
        if isize != len(output) & 0xFFFFFFFF:
            raise MemberFailure(Status.LENGTH, 0)
        return output, trailer + TRAILER


_PURE = PureBackend()
