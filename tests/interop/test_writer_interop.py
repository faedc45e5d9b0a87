"""Blobs pystargz writes, read and verified by the Go reference; Go's and ours built side by side."""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any

import pytest

import pystargz
from pystargz.members import clean_name
from tests.interop.peer import GoPeer
from tests.test_writer import input_of, without_offsets
from tests.vectors import recorded_files, sha256_digest, vector_cases

pytestmark = pytest.mark.go


def build_inputs() -> list[Any]:
    """Each distinct input tar of the vectors, once."""
    seen: dict[str, Any] = {}
    for case in vector_cases(("estargz",)):
        name = case.record.get("input_tar") or case.record.get("input_tar_gz")
        if isinstance(name, str) and name not in seen and not case.record["options"].get("min_chunk_size"):
            seen[name] = pytest.param(case, id=name)
    return list(seen.values())


def tar_contents(tar_path: Path) -> dict[str, bytes]:
    """Regular files of a tar (last entry of a name wins), by normalized name."""
    contents: dict[str, bytes] = {}
    with tarfile.open(tar_path) as tar:
        for info in tar:
            name = clean_name(info.name)
            if info.isreg():
                source = tar.extractfile(info)
                contents[name] = source.read() if source else b""
            else:
                contents.pop(name, None)
    return contents


def assert_go_reads_our_blob(peer: GoPeer, blob: Path, expected: dict[str, bytes], toc_digest: str) -> None:
    """Go's VerifyTOC (with our TOC digest) and every chunk verify; Go lists exactly the input's files."""
    report = peer.verify(blob, toc_digest=toc_digest)
    assert report["ok"] is True, report["errors"]
    go_files = recorded_files(peer.files(blob))
    landmarks = {".prefetch.landmark", ".no.prefetch.landmark"}
    assert set(go_files) - landmarks == set(expected)
    for name, content in expected.items():
        assert go_files[name][:2] == (len(content), sha256_digest(content)), name


@pytest.mark.parametrize("case", build_inputs())
@pytest.mark.parametrize("chunk_size", [4096, 4 << 20])
def test_go_verifies_and_reads_our_build(go_peer: GoPeer, case: Any, chunk_size: int, tmp_path: Path) -> None:
    tar = input_of(case)
    blob = tmp_path / "ours.esgz"
    result = pystargz.build(tar, blob, chunk_size=chunk_size)
    assert_go_reads_our_blob(go_peer, blob, tar_contents(tar), result.toc_digest)
    go_blob = tmp_path / "go.esgz"
    go_peer.build(tar, go_blob, chunk_size=chunk_size)
    with pystargz.open(blob) as ours, pystargz.open(go_blob) as theirs:
        assert without_offsets(ours.toc.to_dict()["entries"]) == without_offsets(
            theirs.toc.to_dict()["entries"]
        )


def test_real_layer_both_ways(go_peer: GoPeer, real_tar: Path, tmp_path: Path) -> None:
    """A real tree: same TOC as Go's Build (GOMAXPROCS 1), verified and read by Go, files equal."""
    with tarfile.open(real_tar) as tar:
        files = [i.name for i in tar if i.isreg() and i.size > 0]
    prioritized = files[len(files) // 3 : len(files) // 3 + 3]
    ours, theirs = tmp_path / "ours.esgz", tmp_path / "go.esgz"
    result = pystargz.build(real_tar, ours, chunk_size=256 << 10, prioritized_files=prioritized)
    go_peer.build(real_tar, theirs, chunk_size=256 << 10, prioritized=prioritized)
    with pystargz.open(ours) as mine, pystargz.open(theirs) as go_reader:
        assert without_offsets(mine.toc.to_dict()["entries"]) == without_offsets(
            go_reader.toc.to_dict()["entries"]
        )
        assert mine.prefetch_range is not None
    expected = tar_contents(real_tar)
    assert_go_reads_our_blob(go_peer, ours, expected, result.toc_digest)
    for name in sorted(expected)[:: max(1, len(expected) // 20)]:
        assert go_peer.cat(ours, name) == expected[name], name


def test_go_reads_our_legacy_blob(go_peer: GoPeer, tmp_path: Path) -> None:
    case = next(c for c in vector_cases(("estargz",)) if c.name == "mixed__default")
    blob = tmp_path / "legacy.stargz"
    pystargz.build(input_of(case), blob, format="stargz")
    expected = tar_contents(input_of(case))
    go_files = recorded_files(go_peer.files(blob))
    assert set(go_files) == set(expected)
    for name, content in expected.items():
        assert go_files[name][:2] == (len(content), sha256_digest(content)), name
