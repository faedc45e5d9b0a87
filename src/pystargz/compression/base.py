"""What every backend shares: the status codes, their meaning, the span type, the gzip framing.

The native module and the pure-Python path report failures with the same
numeric statuses, and this one table turns a status into an exception, so the
two backends cannot drift apart in what they report.  They also write the same
member header, so a blob's bytes depend on the level and the backend's deflate
only.
"""

from __future__ import annotations

import enum
import struct
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import NamedTuple, Protocol

from pystargz.errors import CorruptDataError, InternalError, LimitError

Buffer = bytes | bytearray | memoryview

MIN_LEVEL = 0  # stored blocks only
ZLIB_MAX_LEVEL = 9
# Written members: magic, CM 8 (deflate), no flags, MTIME 0; then XFL and OS 255 (unknown).
GZIP_HEADER_START = b"\x1f\x8b\x08\x00\x00\x00\x00\x00"
GZIP_OS_UNKNOWN = 255
XFL_SLOWEST, XFL_FASTEST = 2, 4


class Status(enum.IntEnum):
    """Mirrors the PSGZ_* codes of ``src/_inflate.h`` (checked when the native module loads)."""

    OK = 0
    HEADER = -1
    DATA = -2
    CRC = -3
    LENGTH = -4
    OUTPUT_TOO_SMALL = -5
    TRUNCATED = -6
    SHORT = -7
    ARGS = -8
    NOMEM = -9


STATUS_MESSAGES: dict[Status, str] = {
    Status.HEADER: "not a gzip member header",
    Status.DATA: "corrupt or truncated deflate data",
    Status.CRC: "gzip trailer CRC32 does not match the data",
    Status.LENGTH: "gzip trailer ISIZE does not match the data length",
    Status.TRUNCATED: "input ends inside a gzip member header or trailer",
    Status.SHORT: "gzip members end before the requested bytes",
}


class Codec(NamedTuple):
    """How errors name a codec's compressed pieces: gzip members, zstd frames."""

    unit: str
    messages: Mapping[Status, str]


GZIP = Codec("gzip member", STATUS_MESSAGES)


class Span(NamedTuple):
    """Bytes ``[skip, skip + length)`` of the members in ``data[start:end]``."""

    start: int
    end: int
    skip: int
    length: int


class SpanFailure(Exception):
    """A backend's report that span ``index`` failed; the reader turns it into an error.

    Backends know offsets inside the buffer they were given, the reader knows
    blob offsets and entry names, so the exception users see is built there
    (by :func:`error_for`) and this one never leaves the package.
    """

    def __init__(self, index: int, status: int, offset: int) -> None:
        super().__init__(index, status, offset)
        self.index = index
        self.status = status
        self.offset = offset


class MemberFailure(Exception):
    """One status at one offset inside a span, raised deep in a Python decoder and caught once."""

    def __init__(self, status: Status, offset: int) -> None:
        super().__init__(status, offset)
        self.status = status
        self.offset = offset


class MemberWalker(ABC):
    """The span plumbing of a backend that decodes one member (or frame) at a time in Python.

    Walking members, keeping the requested slice and numbering failures are the
    same for every such codec; only how one member decodes differs, so the pure
    gzip and the zstd backends each supply :meth:`_member` and share the rest.
    """

    def extract(self, data: Buffer, span: Span, limit: int) -> bytes:
        return self.extract_batch(data, (span,), limit)[0]

    def extract_batch(self, data: Buffer, spans: Sequence[Span], limit: int) -> list[bytes]:
        view = memoryview(data).cast("B")
        results = []
        for index, span in enumerate(spans):
            if not 0 <= span.start <= span.end <= len(view) or span.skip < 0 or span.length < 0:
                raise SpanFailure(index, Status.ARGS, span.start)
            try:
                results.append(self._extract(view[span.start : span.end], span, limit))
            except MemberFailure as failure:
                raise SpanFailure(index, failure.status, span.start + failure.offset) from None
        return results

    def _extract(self, src: memoryview, span: Span, limit: int) -> bytes:
        want_end = span.skip + span.length
        pos = produced = 0
        pieces: list[bytes] = []
        while produced < want_end:
            if pos == len(src):
                raise MemberFailure(Status.SHORT, pos)
            try:
                output, next_pos = self._member(src, pos, limit)
            except MemberFailure as failure:
                raise MemberFailure(failure.status, pos) from None
            lo, hi = max(produced, span.skip), min(produced + len(output), want_end)
            if lo < hi:
                pieces.append(output[lo - produced : hi - produced])
            produced += len(output)
            pos = next_pos
        return b"".join(pieces)

    @abstractmethod
    def _member(self, src: memoryview, pos: int, limit: int) -> tuple[bytes, int]:
        """The output of the member at ``pos`` and where the next one starts.

        Raises MemberFailure; the walker reports it at ``pos``, where the member starts.
        """


def error_for(
    status: int, offset: int, limit: int, entry: str | None = None, codec: Codec = GZIP
) -> Exception:
    """The exception for a failed status: one table for every backend of a codec.

    ``offset`` is the blob offset of the member (frame) that failed.
    """
    code = Status(status)
    where = f"{codec.unit} at offset {offset}" + (f" (entry {entry!r})" if entry else "")
    if code is Status.OUTPUT_TOO_SMALL:
        return LimitError(f"{where} inflates to more than {limit} bytes")
    if code in codec.messages:
        return CorruptDataError(f"{codec.messages[code]}: {where}", offset=offset, entry=entry)
    if code is Status.NOMEM:
        return MemoryError("the inflate backend could not allocate its state")
    return InternalError(f"inflate backend returned status {code.name} ({status}) for {where}")


def check_level(level: int, max_level: int) -> None:
    """Raises ValueError unless ``level`` is a compression level in ``MIN_LEVEL..max_level``."""
    if isinstance(level, bool) or not isinstance(level, int) or not MIN_LEVEL <= level <= max_level:
        valid = f"an integer from {MIN_LEVEL} to {max_level}"
        raise ValueError(f"compression level must be {valid}, not {level!r}")


def gzip_header(level: int) -> bytes:
    """The 10-byte header of every member pystargz writes; the C code writes the same bytes.

    XFL says "slowest" from level 9 and "fastest" up to level 1, as zlib's gzip writer does
    (Go's compress/gzip agrees except at level 0, where it writes 0).
    """
    xfl = XFL_SLOWEST if level >= ZLIB_MAX_LEVEL else XFL_FASTEST if level <= 1 else 0
    return GZIP_HEADER_START + bytes((xfl, GZIP_OS_UNKNOWN))


def gzip_trailer(crc: int, length: int) -> bytes:
    """The 8-byte member trailer: CRC32 of the data and its length modulo 2**32, little endian."""
    return struct.pack("<II", crc, length & 0xFFFFFFFF)


def compress_error_for(status: int, index: int) -> Exception:
    """The exception for a piece that failed to compress: allocation, else a bug of ours."""
    code = Status(status)
    if code is Status.NOMEM:
        return MemoryError("the deflate backend could not allocate its state")
    return InternalError(f"deflate backend returned status {code.name} ({status}) for piece {index}")


class Backend(Protocol):
    """A gzip implementation: windows of members in, exact bytes out; pieces in, members out."""

    name: str
    max_level: int
    """The highest compression level :meth:`compress_batch` accepts (the lowest is 0)."""

    def extract(self, data: Buffer, span: Span, limit: int) -> bytes:
        """Bytes of one span; ``limit`` caps how large one member may inflate.

        Raises :class:`SpanFailure` with index 0 on failure.
        """
        ...

    def extract_batch(self, data: Buffer, spans: Sequence[Span], limit: int) -> list[bytes]:
        """Bytes of many spans of one buffer, in order.

        Raises :class:`SpanFailure` naming the first span that failed.
        """
        ...

    def compress_batch(self, pieces: Sequence[Buffer], level: int) -> list[bytes]:
        """Each piece as one complete gzip member (header of :func:`gzip_header`), in order.

        Deterministic: the same pieces and level give the same bytes, however
        they are batched.  Raises ValueError for a level outside ``0..max_level``.
        """
        ...
