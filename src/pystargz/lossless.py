"""Lossless layers: a tar appended byte for byte, and the payload unpacked back to it.

eStargz normally re-encodes every tar header (Go's ``AppendTar`` writes them
with its own tar writer), so the blob's payload is *a* tar of the same files,
not the input tar.  Go's ``AppendTarLossLess`` instead copies the input's own
bytes (headers, extension headers, padding, the end-of-archive blocks and
whatever follows them) and only cuts members at data boundaries; then the
decompressed payload before the TOC is the input tar exactly, and
``Unpack`` gives it back, so the layer's DiffID survives conversion.

:class:`RawTar` hands the writer those raw bytes; :func:`unpack` streams the
payload of any layout (gzip or zstd, internal or external TOC) out again.
"""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import zlib
from typing import BinaryIO

from pystargz.compression.zstd import load_zstandard
from pystargz.errors import CorruptDataError, FooterError
from pystargz.footer import MAX_FOOTER_SIZE, MIN_FOOTER_SIZE, Footer, parse_footer
from pystargz.sources import RangeSource, SourceLike, as_source

UNPACK_READ_SIZE = 1 << 20


class RawTar:
    """The bytes of a seekable plain tar that surround its members' data, in order.

    For each member, :meth:`before_data` returns everything from the end of
    the previous member's data to the start of this one's (padding, extension
    headers, the header); :meth:`rest` returns what follows the last member's
    data: padding, the end-of-archive blocks and any trailing bytes.
    """

    def __init__(self, plain: BinaryIO) -> None:
        self._plain = plain
        self._position = 0

    def before_data(self, info: tarfile.TarInfo) -> bytes:
        data = self._read(self._position, info.offset_data - self._position)
        # tarfile skips data only for regular (and unknown) types; the others' size field carries none.
        self._position = info.offset_data + (info.size if info.isreg() else 0)
        return data

    @property
    def position(self) -> int:
        """Where the bytes not yet returned start: the end of the last member's data."""
        return self._position

    def rest(self) -> bytes:
        self._plain.seek(self._position)
        return self._plain.read()

    def _read(self, offset: int, length: int) -> bytes:
        self._plain.seek(offset)
        return self._plain.read(length)


class _PayloadReader(io.RawIOBase):
    """The blob's bytes ``[0, end)`` as a stream, read from the source a window at a time."""

    def __init__(self, source: RangeSource, end: int) -> None:
        super().__init__()
        self._source = source
        self._end = end
        self._position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        length = min(len(buffer), self._end - self._position)
        if length <= 0:
            return 0
        buffer[:length] = self._source.read_at(self._position, length)
        self._position += length
        return length


def unpack_payload(source: RangeSource, footer: Footer, out: BinaryIO) -> int:
    """Writes the decompressed payload (everything before the TOC) to ``out``; returns its size."""
    stream = io.BufferedReader(_PayloadReader(source, footer.payload_end), UNPACK_READ_SIZE)
    written = 0
    if footer.layout.compression == "zstd":
        zstandard = load_zstandard()
        reader = zstandard.ZstdDecompressor().stream_reader(stream, read_across_frames=True)
        errors: tuple[type[Exception], ...] = (zstandard.ZstdError,)
    else:
        reader = gzip.GzipFile(fileobj=stream, mode="rb")
        errors = (OSError, EOFError, zlib.error)
    try:
        while piece := reader.read(UNPACK_READ_SIZE):
            out.write(piece)
            written += len(piece)
    except errors as exc:
        raise CorruptDataError(
            f"the {footer.layout.value} payload [0, {footer.payload_end}) does not decompress: {exc}"
        ) from None
    return written


def unpack(blob: SourceLike, dst: str | os.PathLike[str] | BinaryIO) -> int:
    """Writes a blob's tar stream (payload without TOC and footer) to ``dst``, as Go's ``Unpack``.

    Only the footer is read besides the payload, so an external-TOC blob needs
    no TOC.  For a blob written losslessly (``append_tar(..., lossless=True)``)
    this is the original tar byte for byte.  Returns the bytes written.
    """
    source = as_source(blob)
    try:
        size = source.size
        if size < MIN_FOOTER_SIZE:
            raise FooterError(f"blob of {size} bytes is too small to be a stargz blob")
        tail_start = max(0, size - MAX_FOOTER_SIZE)
        footer = parse_footer(source.read_at(tail_start, size - tail_start), size)
        if footer.layout.compression == "zstd":
            load_zstandard()  # before the output exists
        if isinstance(dst, (str, os.PathLike)):
            with open(dst, "wb") as out:
                return unpack_payload(source, footer, out)
        return unpack_payload(source, footer, dst)
    finally:
        close = getattr(source, "close", None)
        if source is not blob and callable(close):
            close()
