"""Hand-made gzip members and eStargz blobs for tests.

Independent of pystargz's own (future) writer on purpose: members are framed
byte by byte here (so tests can choose every header flag, or break one), and
:func:`make_blob` lays files out the way FORMAT-NOTES.md describes, using only
the footer builder and the TOC serializer of the library.
"""

from __future__ import annotations

import hashlib
import json
import struct
import tarfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pystargz.footer import Layout, build_footer
from pystargz.members import TAR_TYPES
from pystargz.testing import TEXT as TEXT
from pystargz.testing import file_contents
from pystargz.testing import noise as noise
from pystargz.testing import tar_contents as tar_contents
from pystargz.testing import toc_tar as toc_tar
from pystargz.toc import TOC, EntryType, TOCEntry

FTEXT, FHCRC, FEXTRA, FNAME, FCOMMENT = 0x01, 0x02, 0x04, 0x08, 0x10
BLOCK = 512


# ---- gzip members ----


def gzip_header(
    *,
    flags: int = 0,
    extra: bytes | None = None,
    name: bytes | None = None,
    comment: bytes | None = None,
    header_crc: bool = False,
    mtime: int = 0,
    os_byte: int = 255,
) -> bytes:
    """An RFC 1952 member header; ``flags`` adds raw flag bits (FTEXT, reserved ones) to the derived ones."""
    flg = flags
    flg |= FEXTRA if extra is not None else 0
    flg |= FNAME if name is not None else 0
    flg |= FCOMMENT if comment is not None else 0
    flg |= FHCRC if header_crc else 0
    header = b"\x1f\x8b\x08" + bytes([flg]) + struct.pack("<I", mtime) + b"\x00" + bytes([os_byte])
    if extra is not None:
        header += struct.pack("<H", len(extra)) + extra
    if name is not None:
        header += name + b"\x00"
    if comment is not None:
        header += comment + b"\x00"
    if header_crc:
        header += struct.pack("<H", zlib.crc32(header) & 0xFFFF)
    return header


def deflate_raw(data: bytes, level: int = 6, wbits: int = 15, mem_level: int = 8) -> bytes:
    """A raw deflate stream (no zlib or gzip framing)."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, -wbits, mem_level)
    return compressor.compress(data) + compressor.flush()


def gzip_trailer(data: bytes) -> bytes:
    return struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)


def gzip_member(data: bytes, level: int = 6, header: bytes | None = None) -> bytes:
    """One complete member: ``header`` (default: the plain 10 bytes), deflate body, CRC32, ISIZE."""
    return (header if header is not None else gzip_header()) + deflate_raw(data, level) + gzip_trailer(data)


# ---- eStargz blobs ----


@dataclass(frozen=True)
class BlobFile:
    """One tar entry for :func:`make_blob`; ``type`` is a TOC type ("reg", "dir", "symlink", ...)."""

    name: str
    data: bytes = b""
    type: EntryType = "reg"
    link: str = ""
    mode: int = 0o644
    devmajor: int = 0
    devminor: int = 0


def tar_header(file: BlobFile) -> bytes:
    info = tarfile.TarInfo(file.name)
    info.type = TAR_TYPES[file.type]
    info.size = len(file.data) if file.type == "reg" else 0
    info.mode = file.mode
    info.linkname = file.link
    info.devmajor, info.devminor = file.devmajor, file.devminor
    return info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8", errors="surrogateescape")


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _pieces(data: bytes, chunk_size: int) -> list[tuple[int, bytes]]:
    step = chunk_size or len(data) or 1
    return [(start, data[start : start + step]) for start in range(0, len(data), step)]


def build_payload(files: Iterable[BlobFile], *, chunk_size: int = 0, level: int = 6) -> tuple[bytes, TOC]:
    """The gzip members before the TOC, and the TOC describing them.

    Each chunk of file data opens a new member; a file's tar header, the
    padding before it and the headers of data-less entries stay at the end
    of the previous member, as the Go writer lays them out.
    """
    blob = bytearray()
    pending = bytearray()
    entries: list[TOCEntry] = []

    def close_member() -> None:
        if pending:
            blob.extend(gzip_member(bytes(pending), level))
            pending.clear()

    for file in files:
        pending += tar_header(file)
        entry = TOCEntry(
            name=file.name,
            type=file.type,
            mode=file.mode,
            link_name=file.link,
            dev_major=file.devmajor,
            dev_minor=file.devminor,
        )
        if file.type != "reg":
            entries.append(entry)
            continue
        entry.size = len(file.data)
        entry.digest = _sha256(file.data)
        pieces = _pieces(file.data, chunk_size)
        if not pieces:
            entries.append(entry)  # an empty file: no data, no offset
        for index, (start, piece) in enumerate(pieces):
            close_member()
            last = index == len(pieces) - 1
            size = 0 if last else len(piece)
            if index == 0:
                entry.offset, entry.chunk_size, entry.chunk_digest = len(blob), size, _sha256(piece)
                entries.append(entry)
            else:
                entries.append(
                    TOCEntry(
                        name=file.name,
                        type="chunk",
                        offset=len(blob),
                        chunk_offset=start,
                        chunk_size=size,
                        chunk_digest=_sha256(piece),
                    )
                )
            pending += piece
        pending += bytes(-len(file.data) % BLOCK)
    close_member()
    return bytes(blob), TOC(entries=entries)


def assemble(payload: bytes, toc_json: bytes, *, layout: Layout = Layout.ESTARGZ, level: int = 6) -> bytes:
    """payload + gzip(tar(TOC)) + footer."""
    return payload + gzip_member(toc_tar(toc_json), level) + build_footer(len(payload), layout)


def make_blob(files: Iterable[BlobFile], *, chunk_size: int = 0, layout: Layout = Layout.ESTARGZ) -> bytes:
    """A minimal valid eStargz (or legacy stargz) blob holding ``files`` in order."""
    payload, toc = build_payload(files, chunk_size=chunk_size)
    return assemble(payload, toc.to_json(), layout=layout)


Entries = list[dict[str, Any]]


def payload_and_entries(files: Iterable[BlobFile], *, chunk_size: int = 0) -> tuple[bytes, Entries]:
    """The payload of ``files`` and its TOC entries as JSON dicts, for tests that damage the TOC."""
    payload, toc = build_payload(files, chunk_size=chunk_size)
    return payload, [entry.to_dict() for entry in toc.entries]


def toc_bytes(entries: object, version: object = 1) -> bytes:
    """TOC JSON from already-damaged pieces (anything JSON can hold)."""
    return json.dumps({"version": version, "entries": entries}).encode()


# ---- shared with pystargz.testing ----

# The oracle for file contents (tarfile), the TOC member's tar and the payload shapes live in the
# public module, so that other projects' tests use the same ones; tests import them from here too.
payloads = file_contents
RANDOM = noise(5000)
