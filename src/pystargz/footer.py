"""Footer layouts: where a blob says its TOC starts.

eStargz ends with a 51-byte empty gzip member whose extra field holds the
subfield ``SG`` with ``%016xSTARGZ`` (the TOC offset in hex); legacy stargz
(google/crfs) ends with a 47-byte member whose extra field is those 22 bytes
without a subfield header.  Both are valid gzip members, which is what keeps
the blob a plain tar.gz.
"""

from __future__ import annotations

import enum
import re
import struct
from dataclasses import dataclass

from pystargz.errors import FooterError

ESTARGZ_FOOTER_SIZE = 51
LEGACY_FOOTER_SIZE = 47
MAX_FOOTER_SIZE = ESTARGZ_FOOTER_SIZE

_MAGIC = b"STARGZ"
_OFFSET_FIELD = re.compile(rb"([0-9a-fA-F]{16})STARGZ")  # Go parses either case
_GZIP_HEADER = struct.Struct("<2sBBIBB")  # magic, CM, FLG, MTIME, XFL, OS
_FEXTRA = 0x04
# An empty final stored block, then CRC32 = 0 and ISIZE = 0.
_EMPTY_BODY = b"\x01\x00\x00\xff\xff" + bytes(8)
_ZSTD_CHUNKED_MAGIC = b"GnUlInUx"
_EXTERNAL_TOC_MAGIC = b"STARGZEXTERNALTOC"


class Layout(enum.Enum):
    """The footer variants pystargz reads and writes."""

    ESTARGZ = "estargz"
    LEGACY = "stargz"

    @property
    def footer_size(self) -> int:
        return ESTARGZ_FOOTER_SIZE if self is Layout.ESTARGZ else LEGACY_FOOTER_SIZE


@dataclass(frozen=True)
class Footer:
    """A parsed footer: its layout and the TOC offset it records."""

    layout: Layout
    toc_offset: int

    @property
    def size(self) -> int:
        return self.layout.footer_size


def build_footer(toc_offset: int, layout: Layout = Layout.ESTARGZ) -> bytes:
    """The footer bytes for a TOC at ``toc_offset`` (what the Go writer emits)."""
    if not 0 <= toc_offset < 1 << 64:
        raise ValueError(f"TOC offset {toc_offset} does not fit the footer's 16 hex digits")
    payload = b"%016x" % toc_offset + _MAGIC
    extra = b"SG" + struct.pack("<H", len(payload)) + payload if layout is Layout.ESTARGZ else payload
    header = _GZIP_HEADER.pack(b"\x1f\x8b", 8, _FEXTRA, 0, 0, 255)
    return header + struct.pack("<H", len(extra)) + extra + _EMPTY_BODY


def parse_footer(tail: bytes, blob_size: int) -> Footer:
    """Reads the footer from the last bytes of a blob (at least 51, or all of a smaller blob).

    Tries eStargz first, then legacy stargz, as the Go reader does, and says
    why each failed when neither fits.
    """
    if tail.endswith(_ZSTD_CHUNKED_MAGIC):
        raise FooterError("this is a zstd:chunked blob; this version of pystargz reads gzip layouts only")
    if _EXTERNAL_TOC_MAGIC in tail[-ESTARGZ_FOOTER_SIZE:]:
        raise FooterError(
            "this blob keeps its TOC in a separate blob (external TOC), "
            "which this version of pystargz does not read"
        )
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
        return Footer(layout, offset)
    raise FooterError(f"no stargz footer in the last {MAX_FOOTER_SIZE} bytes ({'; '.join(causes)})")


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
