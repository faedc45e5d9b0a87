"""containers/storage's zstd:chunked: written from tars, read back, every part checked against the layout.

No Go reference for this variant is packaged (Debian has no containers/storage), so
the blobs are ours; the checks follow the layout read from containers/storage's
source (``docs/format.md``), and the tar-split stream is held to vbatts/tar-split
itself in ``tests/interop/test_zstd_interop.py``.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import zstandard

import pystargz
from pystargz import BuildError
from pystargz.footer import Layout, build_storage_footer
from pystargz.storagechunked import crc64_iso
from pystargz.zstdchunked import (
    STORAGE_ANNOTATION_MANIFEST_CHECKSUM,
    STORAGE_ANNOTATION_MANIFEST_POSITION,
    STORAGE_ANNOTATION_TAR_SPLIT_POSITION,
)
from tests.interop.test_writer_interop import tar_contents
from tests.test_lossless import unpacked
from tests.test_zstd import read_damaged
from tests.vectors import DATA, sha256_digest

# tar-split refuses a tar that names a file twice, and so does containers/storage.
TARS = sorted(path.name for path in DATA.glob("*.tar") if path.name != "duplicate.tar")


def frame_at(blob: bytes, offset: int, size: int) -> bytes:
    return zstandard.ZstdDecompressor().decompress(blob[offset : offset + size])


def reassemble(split: bytes, files: dict[str, bytes]) -> bytes:
    """The tar rebuilt from the tar-split stream and the files' contents (what tar-split's asm does)."""
    out = bytearray()
    for line in split.splitlines():
        entry: dict[str, Any] = json.loads(line)
        if entry["type"] == 2:
            out += base64.b64decode(entry["payload"])
        elif entry.get("size"):
            content = files[entry["name"]]
            assert crc64_iso(content).to_bytes(8, "big") == base64.b64decode(entry["payload"])
            out += content
    return bytes(out)


def test_crc64_iso_check_value() -> None:
    """CRC-64/GO-ISO's published check value, and incremental use."""
    assert crc64_iso(b"123456789") == 0xB90956C775A41001
    assert crc64_iso(b"56789", crc64_iso(b"1234")) == crc64_iso(b"123456789")


@pytest.mark.parametrize("name", TARS)
def test_storage_blob_layout_and_contents(name: str, tmp_path: Path) -> None:
    tar = DATA / name
    source = tar.read_bytes()
    out = tmp_path / "layer.zst"
    result = pystargz.build_zstd_chunked_storage(tar, out, chunk_size=4096)
    blob = out.read_bytes()
    assert result.diff_id == sha256_digest(source)
    assert result.size == len(blob)
    assert unpacked(blob) == source
    with pystargz.open(blob) as reader:
        assert reader.format == "zstdchunked-storage"
        footer = reader.footer
        assert footer.size == 64
        assert footer.tar_split is not None
        toc_place = (footer.toc_offset, footer.toc_size, footer.toc_raw_size)
        assert blob[-72:] == build_storage_footer(toc_place, footer.tar_split)
        annotations = result.annotations
        assert annotations[STORAGE_ANNOTATION_MANIFEST_POSITION] == ":".join(map(str, (*toc_place, 1)))
        assert annotations[STORAGE_ANNOTATION_TAR_SPLIT_POSITION] == ":".join(map(str, footer.tar_split))
        compressed_toc = blob[footer.toc_offset : footer.toc_offset + footer.toc_size]
        assert annotations[STORAGE_ANNOTATION_MANIFEST_CHECKSUM] == sha256_digest(compressed_toc)
        assert reader.toc_digest == result.toc_digest
        toc = json.loads(reader.toc_json)
        split_offset, split_size, split_raw = footer.tar_split
        assert toc["tarSplitDigest"] == sha256_digest(blob[split_offset : split_offset + split_size])
        split = frame_at(blob, split_offset, split_size)
        assert len(split) == split_raw
        contents = reader.read_files(m.name for m in reader if m.isreg())
        assert reassemble(split, {m.entry.name: contents[m.name] for m in reader if m.isreg()}) == source
        for path, content in tar_contents(tar).items():
            assert contents[path] == content, path
        check_entries(toc["entries"], blob, contents)


def check_entries(entries: list[dict[str, Any]], blob: bytes, contents: dict[str, bytes]) -> None:
    """Each file's data frames hold its data alone; chunk fields only on files of several chunks."""
    for index, entry in enumerate(entries):
        if entry["type"] != "reg":
            continue
        if not entry.get("size"):
            assert "digest" not in entry
            assert "offset" not in entry
            continue
        content = contents[pystargz.members.clean_name(entry["name"])]
        assert entry["digest"] == sha256_digest(content)
        frames = blob[entry["offset"] : entry["endOffset"]]
        assert zstandard.ZstdDecompressor().stream_reader(frames, read_across_frames=True).read() == content
        chunks = [entry]
        for following in entries[index + 1 :]:
            if following["type"] != "chunk":
                break
            chunks.append(following)
        if len(chunks) == 1:
            assert not {"chunkSize", "chunkDigest", "chunkOffset"} & set(entry)
            continue
        for chunk in chunks:
            start = chunk.get("chunkOffset", 0)
            data = content[start : start + chunk["chunkSize"]]
            assert chunk["chunkDigest"] == sha256_digest(data)
            assert frame_at(blob, chunk["offset"], len(blob) - chunk["offset"]) == data


def test_duplicate_names_refused(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="twice"):
        pystargz.build_zstd_chunked_storage(DATA / "duplicate.tar", tmp_path / "d.zst")


def test_footer_magic_tells_the_variants_apart() -> None:
    footer = build_storage_footer((8, 10, 20), (26, 5, 9))
    assert footer[-8:] == b"GNUlInUx"
    assert len(footer) == Layout.STORAGE_ZSTD_CHUNKED.tail_size == 72
    with pytest.raises(pystargz.FooterError, match="tar-split of 5 bytes at offset 26 is past the footer"):
        pystargz.open(bytes(20) + footer)
    with pytest.raises(pystargz.FooterError, match="TOC of 10 bytes at offset 8 is not between"):
        pystargz.open(bytes(10) + footer)


def test_damaged_storage_blobs_raise_stargz_errors(tmp_path: Path) -> None:
    out = tmp_path / "layer.zst"
    pystargz.build_zstd_chunked_storage(DATA / "mixed.tar", out, chunk_size=4096)
    read_damaged(out.read_bytes(), 7, 101)
