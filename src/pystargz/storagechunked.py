"""Writing zstd:chunked as containers/storage (podman, CRI-O) writes it.

The layout (``docs/format.md``) differs from the Go estargz variant in every
part but the idea: the tar stream is kept byte for byte, a file's data
frames hold only data, the TOC is compact JSON with containers/storage's own
fields, a zstd-compressed tar-split stream lets the tar be rebuilt from the
files, and a 64-byte footer records both.  This module writes it from a tar;
reading needs nothing beyond the zstd backend and the footer parser.

Chunks here are of a fixed size; containers/storage cuts them with a rolling
checksum, which its readers do not rely on.  The tar-split's per-file
CRC-64 is computed in Python, a few MB/s: fine for tests and small layers.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import posixpath
import tarfile
from typing import Any, BinaryIO

from pystargz.compression.zstd import SKIPPABLE_HEADER_SIZE, ZstdBackend, load_zstandard, skippable_frame
from pystargz.footer import MANIFEST_TYPE_CRFS, build_storage_footer
from pystargz.lossless import RawTar
from pystargz.toc import go_quote
from pystargz.writer import (
    DEFAULT_CHUNK_SIZE,
    BuildError,
    BuildResult,
    _entry_type,
    _members,
    _plain_tar,
    _raw_name,
    _read_exactly,
    _xattrs,
)
from pystargz.zstdchunked import (
    STORAGE_ANNOTATION_MANIFEST_CHECKSUM,
    STORAGE_ANNOTATION_MANIFEST_POSITION,
    STORAGE_ANNOTATION_TAR_SPLIT_POSITION,
)

DEFAULT_ZSTD_LEVEL = 3  # zstd's and containers/storage's default
TAR_SPLIT_FILE, TAR_SPLIT_SEGMENT = 1, 2
TAR_SPLIT_READ_SIZE = 1 << 20  # tar-split stores what follows the archive in pieces of this size
_CRC64_ISO_REVERSED = 0xD800000000000000


def _crc64_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _CRC64_ISO_REVERSED if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC64_TABLE = _crc64_table()


def crc64_iso(data: bytes, crc: int = 0) -> int:
    """Go's ``crc64.Update`` with the ISO table: what tar-split records for each file."""
    crc ^= 0xFFFFFFFFFFFFFFFF
    table = _CRC64_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFFFFFFFFFF


class _TarSplit:
    """vbatts/tar-split's JSON-lines stream (``storage.NewJSONPacker``), one entry a line."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self._seen: set[str] = set()

    def segment(self, payload: bytes) -> None:
        self._add({"type": TAR_SPLIT_SEGMENT, "payload": base64.b64encode(payload).decode()})

    def file(self, name: str, size: int, crc: int | None) -> None:
        """A file entry; tar-split refuses a name seen before (Go ``filepath.Clean``), so this does too."""
        clean = posixpath.normpath(name)
        clean = "/" + clean.lstrip("/") if clean.startswith("//") else clean
        if clean in self._seen:
            raise BuildError(f"{name!r} is in the tar twice, which tar-split (containers/storage) refuses")
        self._seen.add(clean)
        entry: dict[str, Any] = {"type": TAR_SPLIT_FILE}
        raw = name.encode("utf-8", "surrogateescape")
        try:
            entry["name"] = raw.decode("utf-8")
        except UnicodeDecodeError:
            entry["name_raw"] = base64.b64encode(raw).decode()
        if size:
            entry["size"] = size
        entry["payload"] = None if crc is None else base64.b64encode(crc.to_bytes(8, "big")).decode()
        self._add(entry)

    def _add(self, entry: dict[str, Any]) -> None:
        entry["position"] = len(self.lines)
        self.lines.append(_go_compact(entry) + b"\n")


def _go_compact(value: Any) -> bytes:
    """Compact JSON as Go's encoder writes it (its string escapes, no spaces)."""
    return _go_text(value).encode("utf-8")


def _go_text(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ",".join(f"{go_quote(key)}:{_go_text(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_go_text(item) for item in value) + "]"
    if isinstance(value, str):
        return go_quote(value)
    return json.dumps(value)  # None, booleans and integers are spelled alike


def _time(seconds: float, name: str) -> str:
    """Go's ``time.Time`` in JSON (RFC 3339, fraction trimmed), in UTC.

    The epoch is written too: Go leaves out only its zero time (year 1), which no tar holds.
    """
    try:
        moment = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    except (OverflowError, OSError, ValueError) as exc:
        raise BuildError(f"{name!r}: time {seconds} is out of range: {exc}") from None
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def _metadata(info: tarfile.TarInfo, name: str) -> dict[str, Any]:
    """The TOC entry containers/storage writes for a header (``minimal.NewFileMetadata``)."""
    kind = _entry_type(info)
    pax = info.pax_headers
    fields: dict[str, Any] = {
        "type": kind,
        "name": name,
        "linkName": info.linkname,
        "mode": info.mode,
        "size": info.size if kind == "reg" else 0,
        "uid": info.uid,
        "gid": info.gid,
        "modtime": _time(info.mtime, name),
        "accesstime": _time(float(pax["atime"]), name) if "atime" in pax else None,
        "changetime": _time(float(pax["ctime"]), name) if "ctime" in pax else None,
        "devMajor": info.devmajor if kind in ("char", "block") else 0,
        "devMinor": info.devminor if kind in ("char", "block") else 0,
        "xattrs": {k: base64.b64encode(v).decode() for k, v in _xattrs(info).items()},
    }
    return {key: value for key, value in fields.items() if value or key in ("type", "name")}


class _Frames:
    """The payload: one zstd frame per run of raw tar bytes and per data chunk."""

    def __init__(self, out: BinaryIO, level: int) -> None:
        self._out = out
        self._backend = ZstdBackend()
        self._level = level
        self._pending = bytearray()
        self.size = 0
        self.blob_hash = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self._pending += data

    def close_frame(self) -> int:
        """Ends the current frame (none when empty); returns where the next one starts."""
        if self._pending:
            (frame,) = self._backend.compress_batch([bytes(self._pending)], self._level)
            self.write_raw(frame)
            self._pending = bytearray()
        return self.size

    def write_raw(self, data: bytes) -> None:
        self._out.write(data)
        self.blob_hash.update(data)
        self.size += len(data)

    def compress(self, data: bytes) -> bytes:
        (frame,) = self._backend.compress_batch([data], self._level)
        return frame


def _add_data(
    frames: _Frames, plain: BinaryIO, info: tarfile.TarInfo, entry: dict[str, Any], chunk_size: int
) -> tuple[list[dict[str, Any]], int]:
    """Writes a file's data, a frame per chunk; returns its TOC entries (the file's, then chunks')
    and the data's CRC-64 for the tar-split."""
    plain.seek(info.offset_data)
    whole = hashlib.sha256()
    crc = 0
    chunks: list[dict[str, Any]] = []
    start = frames.close_frame()
    offset, written = start, 0
    while written < info.size:
        data = _read_exactly(plain, min(chunk_size, info.size - written), info.name)
        whole.update(data)
        crc = crc64_iso(data, crc)
        frames.write(data)
        end = frames.close_frame()
        chunks.append(
            {
                "chunkSize": len(data),
                "offset": offset,
                "chunkDigest": "sha256:" + hashlib.sha256(data).hexdigest(),
                "chunkOffset": written,
            }
        )
        offset, written = end, written + len(data)
    entry.update(digest="sha256:" + whole.hexdigest(), offset=start, endOffset=offset)
    if len(chunks) == 1:
        return [entry], crc
    entries = [entry] + [
        {"type": "chunk", "name": entry["name"], "chunkOffset": c["chunkOffset"]} for c in chunks[1:]
    ]
    for target, chunk in zip(entries, chunks, strict=True):
        target.update(chunkSize=chunk["chunkSize"], offset=chunk["offset"], chunkDigest=chunk["chunkDigest"])
    return entries, crc


def build_zstd_chunked_storage(
    src: str | os.PathLike[str] | BinaryIO,
    dst: str | os.PathLike[str] | BinaryIO,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    compression_level: int = DEFAULT_ZSTD_LEVEL,
) -> BuildResult:
    """Converts a tar (plain, gzip or zstd) into containers/storage's zstd:chunked.

    The payload decompresses to the input tar byte for byte, so ``diff_id`` is
    the input's.  ``annotations`` are the three containers/storage ones; their
    manifest checksum (the digest of the compressed TOC) is what that project
    calls the TOC digest, while ``toc_digest`` here stays the sha256 of the JSON.
    """
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, not {chunk_size}")
    load_zstandard()  # before the output exists: without zstd there is nothing to write
    owns = isinstance(dst, (str, os.PathLike))
    out: BinaryIO = open(dst, "wb") if isinstance(dst, (str, os.PathLike)) else dst  # noqa: SIM115
    try:
        return _build(src, out, chunk_size, compression_level)
    finally:
        if owns:
            out.close()


def _build(src: str | os.PathLike[str] | BinaryIO, out: BinaryIO, chunk_size: int, level: int) -> BuildResult:
    frames = _Frames(out, level)
    entries: list[dict[str, Any]] = []
    split = _TarSplit()
    diff_hash = hashlib.sha256()
    with _plain_tar(src) as plain, tarfile.open(fileobj=plain, mode="r:") as tar:
        raw = RawTar(plain)
        for info in _members(tar):
            name = _raw_name(plain, info)
            header = raw.before_data(info)
            frames.write(header)
            split.segment(header)
            entry = _metadata(info, name)
            crc = None
            if info.isreg() and info.size:
                file_entries, crc = _add_data(frames, plain, info, entry, chunk_size)
                entries += file_entries
            else:
                entries.append(entry)
            split.file(name, info.size, crc)
        rest_start = raw.position
        rest = raw.rest()
        plain.seek(0)
        while block := plain.read(1 << 20):
            diff_hash.update(block)
        uncompressed_size = plain.tell()
    frames.write(rest)
    frames.close_frame()
    # Where Go's tar reader stops: the last data's padding and two zero blocks; the rest is read after.
    end_of_archive = min(len(rest), -rest_start % tarfile.BLOCKSIZE + 2 * tarfile.BLOCKSIZE)
    split.segment(rest[:end_of_archive])
    for start in range(end_of_archive, len(rest), TAR_SPLIT_READ_SIZE):
        split.segment(rest[start : start + TAR_SPLIT_READ_SIZE])
    split.segment(b"")
    return _finish(frames, entries, split, diff_hash.hexdigest(), uncompressed_size)


def _finish(
    frames: _Frames, entries: list[dict[str, Any]], split: _TarSplit, diff_id: str, uncompressed: int
) -> BuildResult:
    """Appends the TOC, the tar-split and the footer, each in a skippable frame."""
    split_raw = b"".join(split.lines)
    split_frame = frames.compress(split_raw)
    toc: dict[str, Any] = {
        "version": 1,
        "entries": entries,
        "tarSplitDigest": "sha256:" + hashlib.sha256(split_frame).hexdigest(),
    }
    toc_json = _go_compact(toc)
    toc_frame = frames.compress(toc_json)
    toc_offset = frames.size + SKIPPABLE_HEADER_SIZE
    frames.write_raw(skippable_frame(toc_frame))
    split_offset = frames.size + SKIPPABLE_HEADER_SIZE
    frames.write_raw(skippable_frame(split_frame))
    toc_place = (toc_offset, len(toc_frame), len(toc_json))
    split_place = (split_offset, len(split_frame), len(split_raw))
    frames.write_raw(build_storage_footer(toc_place, split_place))
    return BuildResult(
        toc_digest="sha256:" + hashlib.sha256(toc_json).hexdigest(),
        diff_id="sha256:" + diff_id,
        digest="sha256:" + frames.blob_hash.hexdigest(),
        size=frames.size,
        uncompressed_size=uncompressed,
        annotations={
            STORAGE_ANNOTATION_MANIFEST_CHECKSUM: "sha256:" + hashlib.sha256(toc_frame).hexdigest(),
            STORAGE_ANNOTATION_MANIFEST_POSITION: ":".join(map(str, (*toc_place, MANIFEST_TYPE_CRFS))),
            STORAGE_ANNOTATION_TAR_SPLIT_POSITION: ":".join(map(str, split_place)),
        },
    )
