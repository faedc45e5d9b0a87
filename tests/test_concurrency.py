"""One reader, many threads: every byte each thread reads is the right one."""

from __future__ import annotations

import functools
import io
import random
import tarfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import pystargz
from pystargz import StargzReader
from tests.blobs import TEXT, noise

THREADS = 8
ROUNDS = 25
CHUNK_SIZE = 64 << 10


@functools.cache
def layer() -> tuple[bytes, dict[str, bytes]]:
    """A tar of files from empty to several chunks, text and noise, with a hardlink."""
    rng = random.Random(4)
    files: dict[str, bytes] = {}
    for index in range(120):
        size = rng.choice([0, 1, 100, 5000, 70_000, 300_000])
        data = noise(size, index) if index % 2 else (TEXT * (size // len(TEXT) + 1))[:size]
        files[f"dir{index % 7}/file{index}"] = data
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("hardlink")
        link.type, link.linkname = tarfile.LNKTYPE, "dir1/file1"
        tar.addfile(link)
    files["hardlink"] = files["dir1/file1"]
    return out.getvalue(), files


@functools.cache
def blob(min_chunk_size: int) -> tuple[bytes, str]:
    tar, _ = layer()
    out = io.BytesIO()
    result = pystargz.build(io.BytesIO(tar), out, chunk_size=CHUNK_SIZE, min_chunk_size=min_chunk_size)
    return out.getvalue(), result.toc_digest


def read_piecewise(reader: StargzReader, name: str, rng: random.Random, size: int) -> dict[int, bytes]:
    """Random seeks and read sizes through one file object: {offset: bytes read there}."""
    file = reader.extractfile(name)
    assert file is not None
    reads: dict[int, bytes] = {}
    for _ in range(4):
        offset = rng.randrange(size + 10)
        file.seek(offset)
        reads[offset] = file.read(rng.choice([1, 100, 4096, CHUNK_SIZE + 7, -1]))
    return reads


def worker(reader: StargzReader, expected: dict[str, bytes], seed: int, start: threading.Barrier) -> None:
    rng = random.Random(seed)
    names = sorted(expected)
    start.wait()
    for _ in range(ROUNDS):
        if rng.random() < 0.5:
            name = rng.choice(names)
            data = expected[name]
            for offset, got in read_piecewise(reader, name, rng, len(data)).items():
                assert got == data[offset : offset + len(got)], (name, offset)
                assert got or offset >= len(data), (name, offset)
        else:
            wanted = rng.sample(names, rng.randint(1, 30))
            assert reader.read_files(wanted) == {name: expected[name] for name in wanted}


def run_threads(target: Callable[..., None], args: list[tuple[Any, ...]]) -> None:
    """Runs ``target`` in one thread per args tuple; re-raises the first failure here."""
    failures: list[BaseException] = []

    def guarded(*call: Any) -> None:
        try:
            target(*call)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=guarded, args=call) for call in args]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


def open_source(kind: str, data: bytes, tmp_path: Path) -> Any:
    if kind == "path":
        path = tmp_path / "layer.esgz"
        path.write_bytes(data)
        return path
    if kind == "file object":
        return io.BytesIO(data)
    return data


@pytest.mark.parametrize(
    ("source", "backend", "verifying", "min_chunk_size"),
    [
        ("path", "native", False, 0),
        ("path", "native", True, 0),
        ("file object", "python", True, 0),
        ("bytes", "native", True, 16384),
        ("bytes", "python", False, 16384),
    ],
    ids=["path", "path verifying", "file object python verifying", "packed verifying", "packed python"],
)
def test_one_reader_many_threads(
    tmp_path: Path, source: str, backend: str, verifying: bool, min_chunk_size: int
) -> None:
    data, toc_digest = blob(min_chunk_size)
    _, expected = layer()
    digest = toc_digest if verifying else None
    with pystargz.open(open_source(source, data, tmp_path), backend=backend, toc_digest=digest) as reader:
        assert reader.verifying is verifying
        start = threading.Barrier(THREADS)
        run_threads(worker, [(reader, expected, seed, start) for seed in range(THREADS)])


def test_verify_and_extract_from_many_threads(tmp_path: Path) -> None:
    """Whole-blob operations at once: verify() in some threads, extractall() into others' directories."""
    data, toc_digest = blob(0)
    _, expected = layer()

    def job(reader: StargzReader, index: int) -> None:
        if index % 2:
            # the hardlink is not a file of its own, the landmark the builder adds is
            assert reader.verify(toc_digest).files == len(expected)
            return
        dest = tmp_path / str(index)
        reader.extractall(dest)
        for name, contents in expected.items():
            assert (dest / name).read_bytes() == contents

    with pystargz.open(data, toc_digest=toc_digest) as reader:
        run_threads(job, [(reader, index) for index in range(THREADS)])
