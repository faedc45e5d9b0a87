"""Live interop with the Go reference on a real layer: Go builds, we read, Go checks our answers.

The layer is a tar of a real directory tree (thousands of files) built by
``estargz.Build`` in the run, with its defaults and with a small chunk size,
prioritized files and two build workers (which changes member boundaries).
"""

from __future__ import annotations

import tarfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import pystargz
from pystargz.members import clean_name
from pystargz.toc import PREFETCH_LANDMARK
from tests.interop.peer import GoPeer
from tests.vectors import (
    BuiltLayer,
    FileRecord,
    build_layer,
    read_file,
    reader_files,
    recorded_files,
    regular_names,
)

pytestmark = [pytest.mark.go, pytest.mark.slow]

SMALL_CHUNK_SIZE = 64 * 1024
VARIANTS = ("chunk_size_64k", "prioritized", "procs_2")


def go_files(peer: GoPeer, blob: Path) -> dict[str, FileRecord]:
    listed = peer.files(blob)
    assert all(info["type"] == "reg" for info in listed.values())
    return recorded_files(listed)


def assert_go_agrees(peer: GoPeer, layer: BuiltLayer) -> None:
    """Go lists the files we read, and verifies the blob against the TOC digest we computed."""
    with pystargz.open(layer.blob) as reader:
        files = reader_files(reader)
        assert files == go_files(peer, layer.blob)
        assert reader.toc_digest == layer.info["toc_digest"]
        report = peer.verify(layer.blob, toc_digest=reader.toc_digest)
    assert report["ok"] is True
    assert report["errors"] == []
    assert report["toc_digest"] == layer.info["toc_digest"]
    assert report["files"] == len(files)
    assert report["empty_files"] == sum(1 for size, _, _ in files.values() if size == 0)


@pytest.fixture(scope="module")
def prioritized(real_tar: Path) -> list[str]:
    """Three non-empty regular files from different parts of the tar, as named in it."""
    with tarfile.open(real_tar) as tar:
        names = [info.name for info in tar if info.isreg() and info.size > 0 and "," not in info.name]
    assert len(names) >= 4
    return [names[len(names) * i // 4] for i in (3, 1, 2)]


@pytest.fixture(scope="module")
def variants(
    go_peer: GoPeer, real_tar: Path, prioritized: list[str], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, BuiltLayer]:
    """The real tar built with other options; the builds run at the same time."""
    options: dict[str, dict[str, Any]] = {
        "chunk_size_64k": {"chunk_size": SMALL_CHUNK_SIZE},
        "prioritized": {"prioritized": prioritized},
        "procs_2": {"procs": 2},
    }
    out = tmp_path_factory.mktemp("variants")
    with ThreadPoolExecutor(max_workers=len(options)) as pool:
        futures = {
            name: pool.submit(build_layer, go_peer, real_tar, out / f"{name}.esgz", **opts)
            for name, opts in options.items()
        }
        return {name: future.result() for name, future in futures.items()}


def test_real_layer_files_match_go(go_peer: GoPeer, real_layer: BuiltLayer) -> None:
    assert_go_agrees(go_peer, real_layer)


def test_real_layer_is_large(real_layer: BuiltLayer) -> None:
    with pystargz.open(real_layer.blob) as reader:
        assert len(regular_names(reader)) >= 1000
        assert reader.prefetch_range is None


def test_read_files_equals_extractfile(real_layer: BuiltLayer) -> None:
    with pystargz.open(real_layer.blob) as reader:
        names = reader.getnames()
        contents = reader.read_files(names)
        readable = [
            name
            for name in dict.fromkeys(names)
            if reader.getmember(name).isreg() or reader.getmember(name).islnk()
        ]
        assert list(contents) == readable
        for name in readable:
            assert contents[name] == read_file(reader, name), name


@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_files_match_go(go_peer: GoPeer, variants: dict[str, BuiltLayer], variant: str) -> None:
    assert_go_agrees(go_peer, variants[variant])


def test_small_chunks_are_used(variants: dict[str, BuiltLayer]) -> None:
    with pystargz.open(variants["chunk_size_64k"].blob) as reader:
        chunked = [m for m in reader.getmembers() if len(m.chunks) > 1]
        assert chunked
        assert all(c.size <= SMALL_CHUNK_SIZE for m in chunked for c in m.chunks)


def test_procs_2_changes_the_blob(real_layer: BuiltLayer, variants: dict[str, BuiltLayer]) -> None:
    """Two build workers compress two parts separately: same files, other members and TOC."""
    assert variants["procs_2"].info["toc_digest"] != real_layer.info["toc_digest"]


def test_prefetch_range_ends_at_the_landmark(variants: dict[str, BuiltLayer], prioritized: list[str]) -> None:
    with pystargz.open(variants["prioritized"].blob) as reader:
        landmarks = [e for e in reader.toc.entries if clean_name(e.name) == PREFETCH_LANDMARK]
        assert len(landmarks) == 1
        assert landmarks[0].offset > 0
        assert reader.prefetch_range == (0, landmarks[0].offset)
        assert reader.prefetch_size == landmarks[0].offset
        for name in prioritized:
            chunks = reader.getmember(name).chunks
            assert chunks
            assert all(c.end <= landmarks[0].offset for c in chunks), name
