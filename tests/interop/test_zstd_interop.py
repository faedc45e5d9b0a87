"""zstd:chunked against the Go reference (estargz/zstdchunked, v0.12), both ways.

Our blobs must open in Go and pass its VerifyTOC and every chunk verifier;
Go's blobs, built live from the vectors' input tars and from a real tree, must
read byte-exact in ours, footer and annotations included.  containers/storage's
variant has no Go reference here; its tar-split stream is checked against
vbatts/tar-split, the library containers/storage makes it with.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import zstandard

import pystargz
from pystargz import StargzReader
from pystargz.zstdchunked import ANNOTATION_MANIFEST_CHECKSUM, ANNOTATION_MANIFEST_POSITION
from tests.interop.peer import GoPeer
from tests.interop.test_writer_interop import assert_go_reads_our_blob, tar_contents
from tests.layers import make_tree_tar
from tests.test_zstd import without_offsets, zeros_tar
from tests.vectors import DATA, recorded_files, regular_names, sha256_digest, vector_cases

pytestmark = pytest.mark.go

INPUTS = [
    pytest.param(DATA / case.record["input_tar"], id=case.record["input_tar"])
    for case in vector_cases(("zstdchunked",))
]
TREE_BYTES = 8 << 20
STORAGE_TARS = sorted(path.name for path in DATA.glob("*.tar") if path.name != "duplicate.tar")


@pytest.fixture(scope="module")
def tree_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real directory tree, capped so that both builds stay quick."""
    return make_tree_tar(tmp_path_factory.mktemp("zstd") / "tree.tar", max_bytes=TREE_BYTES)


def assert_reads_go_blob(
    reader: StargzReader, go: GoPeer, blob: Path, built: dict[str, Any], tar: Path
) -> None:
    """Our reader on Go's blob: Go's TOC digest and annotations, Go's file listing, the input's bytes."""
    assert reader.format == "zstdchunked"
    assert reader.toc_digest == built["toc_digest"]
    footer = reader.footer
    metadata = built["zstd_metadata"]
    position = f"{footer.toc_offset}:{footer.toc_size}:{footer.toc_raw_size}:1"
    assert metadata[ANNOTATION_MANIFEST_POSITION] == position
    compressed = blob.read_bytes()[footer.toc_offset : footer.toc_offset + footer.toc_size]
    assert metadata[ANNOTATION_MANIFEST_CHECKSUM] == sha256_digest(compressed)
    contents = reader.read_files(regular_names(reader))
    ours = {
        name: (len(d), sha256_digest(d), len(reader.getmember(name).chunks)) for name, d in contents.items()
    }
    assert ours == recorded_files(go.files(blob))
    for name, content in tar_contents(tar).items():
        assert contents[name] == content, name
    for member in reader:
        for chunk in member.chunks:
            assert sha256_digest(reader.read_chunk(chunk)) == chunk.digest, member.name


@pytest.mark.parametrize("tar", INPUTS)
@pytest.mark.parametrize("chunk_size", [4096, 4 << 20])
def test_go_verifies_our_zstd_build(go_peer: GoPeer, tar: Path, chunk_size: int, tmp_path: Path) -> None:
    blob = tmp_path / "ours.zst"
    result = pystargz.build(tar, blob, format="zstdchunked", chunk_size=chunk_size)
    assert_go_reads_our_blob(go_peer, blob, tar_contents(tar), result.toc_digest)


@pytest.mark.parametrize("tar", INPUTS)
@pytest.mark.parametrize("chunk_size", [4096, 4 << 20])
def test_we_read_go_zstd_build(go_peer: GoPeer, tar: Path, chunk_size: int, tmp_path: Path) -> None:
    blob = tmp_path / "go.zst"
    built = go_peer.build(tar, blob, zstdchunked=True, chunk_size=chunk_size)
    with pystargz.open(blob) as reader:
        assert_reads_go_blob(reader, go_peer, blob, built, tar)
        ours = tmp_path / "ours.zst"
        pystargz.build(tar, ours, format="zstdchunked", chunk_size=chunk_size)
        with pystargz.open(ours) as mine:
            assert without_offsets(mine.toc_json) == without_offsets(reader.toc_json)


def test_real_tree_both_ways(go_peer: GoPeer, tree_tar: Path, tmp_path: Path) -> None:
    """A real tree at zstd level 3 (Go's default), 256 KiB chunks: each side reads and verifies the other."""
    ours, theirs = tmp_path / "ours.zst", tmp_path / "go.zst"
    result = pystargz.build(tree_tar, ours, format="zstdchunked", chunk_size=256 << 10, compression_level=3)
    assert_go_reads_our_blob(go_peer, ours, tar_contents(tree_tar), result.toc_digest)
    built = go_peer.build(tree_tar, theirs, zstdchunked=True, chunk_size=256 << 10)
    with pystargz.open(theirs) as reader, pystargz.open(ours) as mine:
        assert_reads_go_blob(reader, go_peer, theirs, built, tree_tar)
        assert without_offsets(mine.toc_json) == without_offsets(reader.toc_json)


def test_streaming_writers_both_ways(go_peer: GoPeer, tmp_path: Path) -> None:
    """Go's Writer (AppendTar, no landmark) read by ours; our StargzWriter.append_tar verified by Go."""
    tar = DATA / "mixed.tar"
    theirs, ours = tmp_path / "go.zst", tmp_path / "ours.zst"
    built = go_peer.append(tar, theirs, zstdchunked=True, chunk_size=4096)
    with pystargz.open(theirs) as reader:
        assert_reads_go_blob(reader, go_peer, theirs, built, tar)
    with pystargz.open(ours, "w", format="zstdchunked", chunk_size=4096) as writer:
        writer.append_tar(tar)
        result = writer.close()
    assert_go_reads_our_blob(go_peer, ours, tar_contents(tar), result.toc_digest)
    with pystargz.open(ours) as mine, pystargz.open(theirs) as reader:
        assert without_offsets(mine.toc_json) == without_offsets(reader.toc_json)


@pytest.mark.parametrize("name", STORAGE_TARS)
def test_storage_tar_split_matches_vbatts_tar_split(go_peer: GoPeer, name: str, tmp_path: Path) -> None:
    """containers/storage's tar-split frame holds exactly the stream vbatts/tar-split makes of the tar."""
    tar = DATA / name
    blob = tmp_path / "layer.zst"
    pystargz.build_zstd_chunked_storage(tar, blob, chunk_size=4096)
    with pystargz.open(blob) as reader:
        assert reader.footer.tar_split is not None
        offset, size, raw = reader.footer.tar_split
    ours = zstandard.ZstdDecompressor().decompress(blob.read_bytes()[offset : offset + size])
    go_peer.tarsplit(tar, tmp_path / "go.json")
    assert ours == (tmp_path / "go.json").read_bytes()
    assert len(ours) == raw


def test_we_read_go_zstd_frames_of_zeros(go_peer: GoPeer, tmp_path: Path) -> None:
    """Go's frames of zeros compress past deflate's 1032:1; the open-time ratio check must allow zstd's."""
    blob = tmp_path / "go.zst"
    go_peer.build(zeros_tar(tmp_path / "zeros.tar"), blob, zstdchunked=True)
    with pystargz.open(blob) as reader:
        assert reader.extractfile("zeros").read() == bytes(16 << 20)  # type: ignore[union-attr]
