"""The zstd backend: zstd:chunked blobs keep each chunk in its own zstd frame.

It follows the gzip backends' protocol (:class:`pystargz.compression.Backend`)
so the reader and the writer's member pipeline drive it unchanged: a "member"
here is a zstd frame.  Decompression is bounded the way inflate is: frame
boundaries are found by walking the frame and block headers (RFC 8878), a
frame that declares a content size above the limit is refused before anything
is allocated, and one that declares none is read through a stream reader that
stops one byte past the limit.  Skippable frames (where zstd:chunked keeps its
TOC and footer) are stepped over, as every zstd decoder does.

``zstandard`` is an optional dependency (``pystargz[zstd]``); without it every
call raises :class:`pystargz.errors.CompressionError`.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from pystargz.compression.base import (
    Buffer,
    Codec,
    MemberFailure,
    MemberWalker,
    SpanFailure,
    Status,
    check_level,
)
from pystargz.errors import CompressionError

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# Skippable frames: magic 0x184D2A50..0x184D2A5F (little endian), then a 4-byte LE payload size.
SKIPPABLE_MAGIC = b"\x50\x2a\x4d\x18"
SKIPPABLE_HEADER_SIZE = 8
ZSTD_MAX_LEVEL = 22
BLOCK_HEADER_SIZE = 3
CHECKSUM_SIZE = 4
_RESERVED_BIT = 0x08
_DICT_ID_SIZES = (0, 1, 2, 4)
_CONTENT_SIZE_SIZES = (0, 2, 4, 8)  # by FCS flag; flag 0 means 1 byte when single-segment
_BLOCK_RLE, _BLOCK_RESERVED = 1, 3
STREAM_PIECE = 1 << 20  # output read at a time from a frame that does not declare its size

#: What each failure status means for a zstd frame (the gzip table names gzip parts).
ZSTD_STATUS_MESSAGES: dict[Status, str] = {
    Status.HEADER: "not a zstd frame header",
    Status.DATA: "corrupt zstd data or checksum",
    Status.LENGTH: "zstd frame content size does not match its data",
    Status.TRUNCATED: "input ends inside a zstd frame",
    Status.SHORT: "zstd frames end before the requested bytes",
}
ZSTD = Codec("zstd frame", ZSTD_STATUS_MESSAGES)


def load_zstandard() -> ModuleType:
    """The ``zstandard`` module, or a CompressionError that says how to get it."""
    try:
        import zstandard
    except ImportError:
        raise CompressionError(
            "this blob (or output format) needs zstd; install pystargz[zstd] (the zstandard package)"
        ) from None
    return zstandard


def is_skippable(header: Buffer) -> bool:
    """Whether these bytes start a skippable frame (any of the 16 magics)."""
    view = memoryview(header).cast("B")
    return len(view) >= 4 and view[0] & 0xF0 == 0x50 and bytes(view[1:4]) == SKIPPABLE_MAGIC[1:]


def skippable_frame(payload: bytes) -> bytes:
    """``payload`` wrapped in a skippable frame (magic 0x184D2A50), which zstd decoders ignore."""
    return SKIPPABLE_MAGIC + struct.pack("<I", len(payload)) + payload


def frame_extent(src: memoryview, pos: int) -> tuple[int, int | None]:
    """Where the zstd frame at ``pos`` ends, and the content size its header declares (or None).

    Raises MemberFailure (offset relative to ``pos``) on a bad header or a frame
    cut short.  Skippable frames return their end and a content size of 0.
    """
    if len(src) - pos < 4:
        raise MemberFailure(Status.TRUNCATED, 0)
    magic = bytes(src[pos : pos + 4])
    if is_skippable(magic):
        if len(src) - pos < SKIPPABLE_HEADER_SIZE:
            raise MemberFailure(Status.TRUNCATED, 0)
        end = pos + SKIPPABLE_HEADER_SIZE + int.from_bytes(src[pos + 4 : pos + 8], "little")
        if end > len(src):
            raise MemberFailure(Status.TRUNCATED, 0)
        return end, 0
    if magic != ZSTD_MAGIC:
        raise MemberFailure(Status.HEADER, 0)
    at = pos + 4
    if at >= len(src):
        raise MemberFailure(Status.TRUNCATED, 0)
    descriptor = src[at]
    if descriptor & _RESERVED_BIT:
        raise MemberFailure(Status.HEADER, 0)
    single_segment = bool(descriptor & 0x20)
    fcs_flag = descriptor >> 6
    fcs_size = _CONTENT_SIZE_SIZES[fcs_flag] or (1 if single_segment else 0)
    at += 1 + (0 if single_segment else 1) + _DICT_ID_SIZES[descriptor & 0x03]
    if at + fcs_size > len(src):
        raise MemberFailure(Status.TRUNCATED, 0)
    content_size: int | None = None
    if fcs_size:
        content_size = int.from_bytes(src[at : at + fcs_size], "little") + (256 if fcs_size == 2 else 0)
    at += fcs_size
    while True:
        if at + BLOCK_HEADER_SIZE > len(src):
            raise MemberFailure(Status.TRUNCATED, 0)
        header = int.from_bytes(src[at : at + BLOCK_HEADER_SIZE], "little")
        kind, size = (header >> 1) & 0x03, header >> 3
        if kind == _BLOCK_RESERVED:
            raise MemberFailure(Status.DATA, 0)
        at += BLOCK_HEADER_SIZE + (1 if kind == _BLOCK_RLE else size)
        if header & 1:
            break
    if descriptor & 0x04:
        at += CHECKSUM_SIZE
    if at > len(src):
        raise MemberFailure(Status.TRUNCATED, 0)
    return at, content_size


def _decompress_frame(zstandard: ModuleType, frame: memoryview, declared: int | None, limit: int) -> bytes:
    """One whole frame's content, never more than ``limit`` bytes (checksum checked by zstd).

    A frame that declares its size is decompressed in one call into a buffer of
    that size; one that does not (Go's streaming encoder writes those) is read
    a piece at a time, so that the limit, not the buffer, bounds memory.
    """
    if declared is not None and declared > limit:
        raise MemberFailure(Status.OUTPUT_TOO_SMALL, 0)
    decompressor = _decompressor(zstandard)
    try:
        if declared is not None:
            output: bytes = decompressor.decompress(frame)
        else:
            output = _read_stream(decompressor, frame, limit)
    except zstandard.ZstdError:
        raise MemberFailure(Status.DATA, 0) from None
    if len(output) > limit:
        raise MemberFailure(Status.OUTPUT_TOO_SMALL, 0)
    if declared is not None and declared != len(output):
        raise MemberFailure(Status.LENGTH, 0)
    return output


def _read_stream(decompressor: Any, frame: memoryview, limit: int) -> bytes:
    """A frame without a declared size, read until it ends or passes ``limit``."""
    pieces: list[bytes] = []
    produced = 0
    with decompressor.stream_reader(frame, read_across_frames=False) as reader:
        while produced <= limit:
            piece = reader.read(min(limit + 1 - produced, STREAM_PIECE))
            if not piece:
                break
            pieces.append(piece)
            produced += len(piece)
    return b"".join(pieces)


_thread_state = threading.local()


def _decompressor(zstandard: ModuleType) -> Any:
    """This thread's decompression context: contexts are not thread-safe, but reusable."""
    decompressor = getattr(_thread_state, "decompressor", None)
    if decompressor is None:
        decompressor = _thread_state.decompressor = zstandard.ZstdDecompressor()
    return decompressor


def decompress_frames(data: Buffer, limit: int) -> bytes:
    """Every frame of ``data`` (skippable ones skipped), each at most ``limit`` bytes.

    For the zstd:chunked TOC, whose compressed extent the footer records.
    Raises SpanFailure (index 0) with the offset of the failing frame.
    """
    zstandard = load_zstandard()
    src = memoryview(data).cast("B")
    pieces: list[bytes] = []
    pos = 0
    while pos < len(src):
        try:
            end, declared = frame_extent(src, pos)
            if not is_skippable(src[pos : pos + 4]):
                pieces.append(_decompress_frame(zstandard, src[pos:end], declared, limit))
        except MemberFailure as failure:
            raise SpanFailure(0, failure.status, pos + failure.offset) from None
        pos = end
    return b"".join(pieces)


class ZstdBackend(MemberWalker):
    """zstd frames in, exact bytes out; pieces in, one frame each out (the Backend protocol)."""

    name = "zstd"
    max_level = ZSTD_MAX_LEVEL

    def __init__(self) -> None:
        self._zstandard = load_zstandard()

    def compress_batch(self, pieces: Sequence[Buffer], level: int) -> list[bytes]:
        """One frame per piece, with its content size and checksum; level 0 is zstd's default (3)."""
        check_level(level, self.max_level)
        compressor = self._zstandard.ZstdCompressor(level=level, write_checksum=True, write_content_size=True)
        return [compressor.compress(piece) for piece in pieces]

    def _member(self, src: memoryview, pos: int, limit: int) -> tuple[bytes, int]:
        """The content of the frame at ``pos`` (none for a skippable one) and where it ends."""
        end, declared = frame_extent(src, pos)
        if is_skippable(src[pos : pos + 4]):
            return b"", end
        return _decompress_frame(self._zstandard, src[pos:end], declared, limit), end
