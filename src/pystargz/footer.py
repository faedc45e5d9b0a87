"""Footer layouts: where a blob says its TOC starts, and how the rest of it is compressed.

Five layouts end a blob (``docs/format.md`` has their bytes):

- eStargz: a 51-byte empty gzip member whose extra field holds the subfield
  ``SG`` with ``%016xSTARGZ`` (the TOC offset in hex);
- legacy stargz (google/crfs): a 47-byte member whose extra field is those 22
  bytes without a subfield header;
- external TOC (estargz >= 0.13): a 46-byte member whose ``SG`` subfield says
  ``STARGZEXTERNALTOC``; the TOC is a separate blob the caller supplies;
- zstd:chunked as the Go estargz package writes it: a skippable zstd frame
  holding 40 bytes (TOC offset, compressed and raw TOC sizes, manifest type,
  magic ``GnUlInUx``);
- zstd:chunked as containers/storage writes it: a skippable frame holding 64
  bytes (the same four numbers, then the tar-split frame's offset and sizes,
  magic ``GNUlInUx``).

The gzip footers are valid gzip members and the zstd ones skippable frames,
which is what keeps every blob a plain ``tar.gz`` / ``tar.zst``.
"""

from __future__ import annotations

import enum
import re
import struct
from dataclasses import dataclass

from pystargz.compression.zstd import SKIPPABLE_HEADER_SIZE, is_skippable, skippable_frame
from pystargz.errors import FooterError

ESTARGZ_FOOTER_SIZE = 51
LEGACY_FOOTER_SIZE = 47
EXTERNAL_TOC_FOOTER_SIZE = 46
ZSTD_FOOTER_SIZE = 40  # Go's zstdchunked.FooterSize: the skippable frame's payload
STORAGE_FOOTER_SIZE = 64  # containers/storage's FooterSizeSupported
# The most bytes any footer takes at the end of a blob (skippable frame header included), and the least.
MAX_FOOTER_SIZE = SKIPPABLE_HEADER_SIZE + STORAGE_FOOTER_SIZE
MIN_FOOTER_SIZE = EXTERNAL_TOC_FOOTER_SIZE

_MAGIC = b"STARGZ"
_OFFSET_FIELD = re.compile(rb"([0-9a-fA-F]{16})STARGZ")  # Go parses either case
_GZIP_HEADER = struct.Struct("<2sBBIBB")  # magic, CM, FLG, MTIME, XFL, OS
_FEXTRA = 0x04
# An empty final stored block, then CRC32 = 0 and ISIZE = 0.
_EMPTY_BODY = b"\x01\x00\x00\xff\xff" + bytes(8)
_EXTERNAL_TOC_MAGIC = b"STARGZEXTERNALTOC"
ZSTD_CHUNKED_MAGIC = b"GnUlInUx"  # the Go estargz variant
STORAGE_MAGIC = b"GNUlInUx"  # the containers/storage variant
MANIFEST_TYPE_CRFS = 1  # the only manifest type either zstd:chunked variant defines
_ZSTD_NUMBERS = struct.Struct("<4Q")  # TOC offset, compressed size, raw size, manifest type
_STORAGE_NUMBERS = struct.Struct("<7Q")  # the same, then the tar-split offset, compressed and raw sizes


class Layout(enum.Enum):
    """The blob layouts pystargz reads; the value is what ``StargzReader.format`` reports."""

    ESTARGZ = "estargz"
    LEGACY = "stargz"
    EXTERNAL_TOC = "estargz-externaltoc"
    ZSTD_CHUNKED = "zstdchunked"
    STORAGE_ZSTD_CHUNKED = "zstdchunked-storage"

    @property
    def footer_size(self) -> int:
        """The footer's size as the Go reference counts it (for zstd: without the frame header)."""
        return _FOOTER_SIZES[self]

    @property
    def compression(self) -> str:
        """``"gzip"`` or ``"zstd"``: what the payload's members (frames) are."""
        return "zstd" if self in (Layout.ZSTD_CHUNKED, Layout.STORAGE_ZSTD_CHUNKED) else "gzip"

    @property
    def tail_size(self) -> int:
        """The bytes the footer takes at the end of the blob."""
        return self.footer_size + (SKIPPABLE_HEADER_SIZE if self.compression == "zstd" else 0)


_FOOTER_SIZES = {
    Layout.ESTARGZ: ESTARGZ_FOOTER_SIZE,
    Layout.LEGACY: LEGACY_FOOTER_SIZE,
    Layout.EXTERNAL_TOC: EXTERNAL_TOC_FOOTER_SIZE,
    Layout.ZSTD_CHUNKED: ZSTD_FOOTER_SIZE,
    Layout.STORAGE_ZSTD_CHUNKED: STORAGE_FOOTER_SIZE,
}


@dataclass(frozen=True)
class Footer:
    """A parsed footer: its layout and where the TOC and the payload are.

    ``toc_offset`` is where the compressed TOC starts (-1 for an external TOC,
    as in Go); ``toc_size`` its compressed length (the size of the separate
    TOC blob is not known here: 0); ``toc_raw_size`` its uncompressed length
    when the footer records it (zstd), else 0.  ``payload_end`` is where the
    compressed tar stream ends: data offsets must lie before it.
    ``tar_split`` is the containers/storage tar-split frame's (offset,
    compressed size, raw size).
    """

    layout: Layout
    toc_offset: int
    toc_size: int = 0
    toc_raw_size: int = 0
    payload_end: int = 0
    tar_split: tuple[int, int, int] | None = None

    @property
    def size(self) -> int:
        return self.layout.footer_size


def build_footer(
    toc_offset: int, layout: Layout = Layout.ESTARGZ, *, toc_size: int = 0, toc_raw_size: int = 0
) -> bytes:
    """The footer bytes for a TOC at ``toc_offset`` (what the Go writers emit).

    The zstd:chunked footers also record the TOC's compressed and raw sizes;
    an external-TOC footer records nothing.  The containers/storage footer is
    built by :func:`build_storage_footer` (it needs the tar-split's place too).
    """
    if not 0 <= toc_offset < 1 << 64:
        raise ValueError(f"TOC offset {toc_offset} does not fit the footer")
    if layout is Layout.ZSTD_CHUNKED:
        numbers = _ZSTD_NUMBERS.pack(toc_offset, toc_size, toc_raw_size, MANIFEST_TYPE_CRFS)
        return skippable_frame(numbers + ZSTD_CHUNKED_MAGIC)
    if layout is Layout.STORAGE_ZSTD_CHUNKED:
        raise ValueError("use build_storage_footer for the containers/storage layout")
    if layout is Layout.EXTERNAL_TOC:
        extra = b"SG" + struct.pack("<H", len(_EXTERNAL_TOC_MAGIC)) + _EXTERNAL_TOC_MAGIC
    else:
        payload = b"%016x" % toc_offset + _MAGIC
        extra = b"SG" + struct.pack("<H", len(payload)) + payload if layout is Layout.ESTARGZ else payload
    header = _GZIP_HEADER.pack(b"\x1f\x8b", 8, _FEXTRA, 0, 0, 255)
    return header + struct.pack("<H", len(extra)) + extra + _EMPTY_BODY


def build_storage_footer(toc: tuple[int, int, int], tar_split: tuple[int, int, int]) -> bytes:
    """The containers/storage footer: the TOC's and the tar-split's (offset, compressed, raw) sizes."""
    numbers = _STORAGE_NUMBERS.pack(toc[0], toc[1], toc[2], MANIFEST_TYPE_CRFS, *tar_split)
    return skippable_frame(numbers + STORAGE_MAGIC)


def parse_footer(tail: bytes, blob_size: int) -> Footer:
    """Reads the footer from the last bytes of a blob (at least MAX_FOOTER_SIZE, or all of a smaller one).

    The zstd magics and the external-TOC marker say which layout this is;
    otherwise eStargz is tried, then legacy stargz, as the Go reader does, and
    the error says why each failed.
    """
    if tail.endswith(ZSTD_CHUNKED_MAGIC):
        return _parse_zstd(tail, blob_size, Layout.ZSTD_CHUNKED)
    if tail.endswith(STORAGE_MAGIC):
        return _parse_zstd(tail, blob_size, Layout.STORAGE_ZSTD_CHUNKED)
    if _EXTERNAL_TOC_MAGIC in tail[-EXTERNAL_TOC_FOOTER_SIZE:]:
        _parse_external(tail[-EXTERNAL_TOC_FOOTER_SIZE:])
        end = blob_size - EXTERNAL_TOC_FOOTER_SIZE
        return Footer(Layout.EXTERNAL_TOC, -1, payload_end=end)
    causes = []
    for layout in (Layout.ESTARGZ, Layout.LEGACY):
        size = layout.footer_size
        if len(tail) < size:
            causes.append(f"{layout.value}: blob has {len(tail)} bytes, footer needs {size}")
            continue
        try:
            offset = _parse_one(tail[-size:], layout)
        except FooterError as exc:
            causes.append(f"{layout.value}: {exc}")
            continue
        footer_start = blob_size - size
        if offset > footer_start:
            causes.append(f"{layout.value}: TOC offset {offset} is past the footer at {footer_start}")
            continue
        return Footer(layout, offset, toc_size=footer_start - offset, payload_end=offset)
    raise FooterError(f"no stargz footer in the last {ESTARGZ_FOOTER_SIZE} bytes ({'; '.join(causes)})")


def _parse_zstd(tail: bytes, blob_size: int, layout: Layout) -> Footer:
    """A zstd:chunked footer: a skippable frame whose payload ends with the magic."""
    name = f"{layout.value} footer"
    if len(tail) < layout.tail_size:
        raise FooterError(f"{name}: blob has {len(tail)} bytes, footer needs {layout.tail_size}")
    frame = tail[-layout.tail_size :]
    frame_size = int.from_bytes(frame[4:8], "little")
    if not is_skippable(frame) or frame_size != layout.footer_size:
        raise FooterError(
            f"{name}: the last {layout.tail_size} bytes are not a skippable frame of {layout.footer_size}"
        )
    body = frame[SKIPPABLE_HEADER_SIZE:]
    if layout is Layout.ZSTD_CHUNKED:
        offset, size, raw_size, kind = _ZSTD_NUMBERS.unpack_from(body)
        tar_split = None
    else:
        offset, size, raw_size, kind, *split = _STORAGE_NUMBERS.unpack_from(body)
        tar_split = (split[0], split[1], split[2])
    if kind != MANIFEST_TYPE_CRFS:
        raise FooterError(f"{name}: manifest type {kind}, expected {MANIFEST_TYPE_CRFS}")
    footer_start = blob_size - layout.tail_size
    if not SKIPPABLE_HEADER_SIZE <= offset <= offset + size <= footer_start:
        raise FooterError(
            f"{name}: TOC of {size} bytes at offset {offset} is not between the payload and the footer "
            f"at {footer_start}"
        )
    if tar_split is not None and tar_split[0] + tar_split[1] > footer_start:
        raise FooterError(
            f"{name}: tar-split of {tar_split[1]} bytes at offset {tar_split[0]} is past the footer"
        )
    # The TOC's skippable frame header sits just before the TOC: that is where the payload ends.
    return Footer(layout, offset, size, raw_size, offset - SKIPPABLE_HEADER_SIZE, tar_split)


def _parse_external(footer: bytes) -> None:
    """Checks the 46-byte external-TOC footer: a gzip member whose only extra subfield is the marker."""
    magic, method, flags, _mtime, _xfl, _os = _GZIP_HEADER.unpack_from(footer)
    extra = b"SG" + struct.pack("<H", len(_EXTERNAL_TOC_MAGIC)) + _EXTERNAL_TOC_MAGIC
    if (
        magic != b"\x1f\x8b"
        or method != 8
        or not flags & _FEXTRA
        or footer[10:] != (struct.pack("<H", len(extra)) + extra + _EMPTY_BODY)
    ):
        raise FooterError(f"external-TOC footer {footer.hex()} is not an empty gzip member with the marker")


def _parse_one(footer: bytes, layout: Layout) -> int:
    magic, method, flags, _mtime, _xfl, _os = _GZIP_HEADER.unpack_from(footer)
    if magic != b"\x1f\x8b" or method != 8:
        raise FooterError("not a gzip member")
    if not flags & _FEXTRA:
        raise FooterError("gzip member has no extra field")
    (xlen,) = struct.unpack_from("<H", footer, 10)
    extra_len = 26 if layout is Layout.ESTARGZ else 22
    if xlen != extra_len:
        raise FooterError(f"extra field length is {xlen}, expected {extra_len}")
    extra = footer[12 : 12 + xlen]
    if layout is Layout.ESTARGZ:
        subfield_id, subfield_len = extra[:2], struct.unpack_from("<H", extra, 2)[0]
        if subfield_id != b"SG" or subfield_len != 22:
            raise FooterError(f"subfield is {subfield_id!r} of length {subfield_len}, expected b'SG' of 22")
        extra = extra[4:]
    match = _OFFSET_FIELD.fullmatch(extra)
    if match is None:
        raise FooterError(f"extra field {extra!r} is not 16 hex digits + 'STARGZ'")
    return int(match.group(1), 16)
