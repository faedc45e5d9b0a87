"""Lossless blobs against the Go reference (v0.12), both ways, gzip and zstd:chunked.

Go's ``AppendTarLossLess`` blobs must unpack in ours to the input tar; ours
must unpack in Go's ``Unpack`` to the input tar and pass its verification.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

import pystargz
from tests.interop.peer import GoPeer
from tests.interop.test_writer_interop import assert_go_reads_our_blob, tar_contents
from tests.test_lossless import lossless_blob, unpacked
from tests.vectors import DATA

pytestmark = pytest.mark.go

INPUTS = ["mixed.tar", "longnames_pax.tar", "hardlinks.tar", "devices.tar", "empty.tar"]


@pytest.mark.parametrize("zstd", [False, True], ids=["gzip", "zstd"])
@pytest.mark.parametrize("name", INPUTS)
def test_go_lossless_blob_unpacks_in_ours(go_peer: GoPeer, name: str, zstd: bool, tmp_path: Path) -> None:
    tar = DATA / name
    blob = tmp_path / "go.blob"
    built = go_peer.append(tar, blob, lossless=True, zstdchunked=zstd, chunk_size=4096)
    assert unpacked(blob) == tar.read_bytes()
    with pystargz.open(blob) as reader:
        assert reader.toc_digest == built["toc_digest"]
        for path, content in tar_contents(tar).items():
            assert reader.extractfile(path).read() == content, path  # type: ignore[union-attr]


@pytest.mark.parametrize("zstd", [False, True], ids=["gzip", "zstd"])
@pytest.mark.parametrize("name", INPUTS)
def test_our_lossless_blob_unpacks_in_go(go_peer: GoPeer, name: str, zstd: bool, tmp_path: Path) -> None:
    tar = DATA / name
    blob = tmp_path / "ours.blob"
    result = lossless_blob(tar, blob, "zstdchunked" if zstd else "estargz")
    report = go_peer.unpack(blob, tmp_path / "unpacked.tar")
    assert (tmp_path / "unpacked.tar").read_bytes() == tar.read_bytes()
    assert report["sha256"] == "sha256:" + hashlib.sha256(tar.read_bytes()).hexdigest()
    if tar_contents(tar):
        assert_go_reads_our_blob(go_peer, blob, tar_contents(tar), result.toc_digest)


def test_go_and_our_lossless_tocs_agree(go_peer: GoPeer, tmp_path: Path) -> None:
    """Same input, same chunk size: the same TOC up to offsets (headers are the input's in both)."""
    tar = DATA / "mixed.tar"
    go_blob, our_blob = tmp_path / "go.esgz", tmp_path / "ours.esgz"
    go_peer.append(tar, go_blob, lossless=True, chunk_size=4096)
    lossless_blob(tar, our_blob, "estargz")
    with pystargz.open(go_blob) as theirs, pystargz.open(our_blob) as ours:
        strip = {"offset", "innerOffset"}
        assert [{k: v for k, v in e.to_dict().items() if k not in strip} for e in ours.toc] == [
            {k: v for k, v in e.to_dict().items() if k not in strip} for e in theirs.toc
        ]
