"""The reader on remote sources: what an open, a file and a prefetch cost; the cache; faults.

Request counts are checked twice: on the test server's log (what really went
over the wire) and in ``reader.stats``.  Layers are built here with
pystargz's writer from random (incompressible) file contents, so member and
TOC sizes are what a real layer of that shape would have.
"""

from __future__ import annotations

import io
import random
import tarfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pystargz
from pystargz.cache import DEFAULT_CACHE_SIZE, ChunkCache
from pystargz.fetch import MAX_RANGES_PER_REQUEST, RANGE_GAP, REQUEST_BYTES, coalesce, plan_requests
from pystargz.members import Chunk
from pystargz.reader import TAIL_WINDOW
from pystargz.sources import BytesSource, FileSource, HTTPSource
from tests.faultproxy import Fault, FaultProxy
from tests.httpserver import BlobServer
from tests.vectors import read_file

SMALL_FILES = 44  # more than MAX_RANGES_PER_REQUEST, each far from the next
# Files after the prioritized ones and the landmark: each member a range of its own (PAD_SIZE > RANGE_GAP).
SPREAD = [f"data/f{i:02}" for i in range(8, SMALL_FILES)]
PAD_SIZE = RANGE_GAP + (16 << 10)
PRIORITIZED = ("data/f03", "data/f07")


@dataclass(frozen=True)
class Layer:
    blob: bytes
    files: dict[str, bytes]
    toc_offset: int
    footer_size: int

    @property
    def toc_and_footer(self) -> int:
        """Compressed TOC + footer: everything after the last payload byte."""
        return len(self.blob) - self.toc_offset

    def member_size(self, name: str) -> int:
        """Compressed bytes of a one-chunk file's gzip member (up to the next data entry)."""
        with pystargz.open(self.blob) as reader:
            (chunk,) = reader.getmember(name).chunks
        return chunk.end - chunk.offset


def make_layer(
    files: dict[str, bytes], *, prioritized: Sequence[str] = (), chunk_size: int = 1 << 20
) -> Layer:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory in sorted({name.rpartition("/")[0] for name in files}):
            info = tarfile.TarInfo(directory)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    raw.seek(0)
    out = io.BytesIO()
    pystargz.build(raw, out, prioritized_files=prioritized, chunk_size=chunk_size, workers=1)
    blob = out.getvalue()
    with pystargz.open(blob) as reader:
        return Layer(blob, files, reader.toc_offset, reader.footer.size)


@pytest.fixture(scope="module")
def small_layer() -> Layer:
    """Small files far apart (padding between them), one multi-chunk file, a prefetch landmark."""
    rng = random.Random(5)
    files: dict[str, bytes] = {}
    for i in range(SMALL_FILES):
        files[f"data/f{i:02}"] = rng.randbytes(rng.randrange(500, 4000))
        files[f"pad/p{i:02}"] = rng.randbytes(PAD_SIZE)
    files["data/big"] = rng.randbytes(3 << 20)
    return make_layer(files, prioritized=PRIORITIZED)


@pytest.fixture(scope="module")
def big_toc_layer() -> Layer:
    """Thousands of tiny files: a compressed TOC several times TAIL_WINDOW."""
    rng = random.Random(6)
    layer = make_layer({f"d{i // 500}/file-{i:05}": rng.randbytes(64) for i in range(3000)})
    assert layer.toc_and_footer > 2 * TAIL_WINDOW
    return layer


@pytest.fixture(scope="module")
def server() -> Iterator[BlobServer]:
    with BlobServer() as blob_server:
        yield blob_server


class CountingSource:
    """Bytes in memory that record every read; ``delay`` makes each read after the first slow."""

    def __init__(self, data: bytes, *, delay: float = 0.0) -> None:
        self._inner = BytesSource(data)
        self.delay = delay
        self.reads: list[tuple[int, int]] = []
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        return self._inner.size

    def read_at(self, offset: int, length: int) -> bytes:
        with self._lock:
            self.reads.append((offset, length))
            slow = len(self.reads) > 1
        if slow and self.delay:
            time.sleep(self.delay)
        return self._inner.read_at(offset, length)


class MultiRangeCountingSource(CountingSource):
    """Also answers several ranges at once, recording each batch."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.batches: list[list[tuple[int, int]]] = []

    def read_ranges(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        with self._lock:
            self.batches.append(list(ranges))
        return [self._inner.read_at(offset, length) for offset, length in ranges]


def served(server: BlobServer, layer: Layer, name: str) -> tuple[str, str]:
    path = f"/{name}"
    return server.add(path, layer.blob), path


# ---- what opening and reading cost over HTTP ----


def test_open_with_a_small_toc_costs_one_request(server: BlobServer) -> None:
    layer = make_layer({"etc/os-release": b"ID=test\n", "etc/hostname": b"box\n"})
    url, path = served(server, layer, "open-small")
    with pystargz.open(url) as reader:
        assert server.count(path=path) == 1
        assert reader.stats.requests == 1
        assert reader.stats.bytes_fetched == len(layer.blob) <= TAIL_WINDOW
        assert read_file(reader, "etc/os-release") == b"ID=test\n"
        # The file's member was in the tail already: no request.
        assert server.count(path=path) == 1


def test_open_with_a_big_toc_costs_two_requests_and_only_the_toc(
    server: BlobServer, big_toc_layer: Layer
) -> None:
    url, path = served(server, big_toc_layer, "open-big")
    with pystargz.open(url) as reader:
        assert server.count(path=path) == 2
        assert reader.stats.requests == 2
        # The tail window, then only the part of the TOC before it: TOC and footer, nothing else.
        assert reader.stats.bytes_fetched == big_toc_layer.toc_and_footer
        assert reader.read_files(["d5/file-02999"]) == {"d5/file-02999": big_toc_layer.files["d5/file-02999"]}


@pytest.mark.parametrize("which", ["small_layer", "big_toc_layer"])
def test_cat_of_one_small_file_meets_the_request_and_byte_targets(
    server: BlobServer, request: pytest.FixtureRequest, which: str
) -> None:
    layer: Layer = request.getfixturevalue(which)
    name = "data/f11" if which == "small_layer" else "d3/file-01717"
    url, path = served(server, layer, f"cat-{which}")
    with pystargz.open(url) as reader:
        file = reader.extractfile(name)
        assert file is not None
        assert file.read() == layer.files[name]
        stats = reader.stats
    assert server.count(path=path) == stats.requests <= 3
    assert stats.bytes_fetched <= layer.toc_and_footer + TAIL_WINDOW + layer.member_size(name)


def test_prefetch_is_one_request_and_serves_the_prioritized_files(
    server: BlobServer, small_layer: Layer
) -> None:
    url, path = served(server, small_layer, "prefetch")
    with pystargz.open(url) as reader:
        prefetch = reader.prefetch_range
        assert prefetch is not None
        server.reset_log()
        assert reader.prefetch() == prefetch[1]
        assert [r.headers.get("range") for r in server.requests] == [f"bytes=0-{prefetch[1] - 1}"]
        for name in PRIORITIZED:
            assert read_file(reader, name) == small_layer.files[name]
        assert reader.read_files(PRIORITIZED) == {name: small_layer.files[name] for name in PRIORITIZED}
        assert server.count(path=path) == 1
        assert reader.stats.cache_hits >= 4
        assert reader.prefetch() == 0  # all cached already: nothing fetched
        assert server.count(path=path) == 1


def test_prefetch_without_a_landmark_does_nothing() -> None:
    layer = make_layer({"a/x": b"x" * 100})
    source = CountingSource(layer.blob)
    with pystargz.open(source) as reader:
        reads = len(source.reads)
        assert reader.prefetch_range is None
        assert reader.prefetch() == 0
        assert len(source.reads) == reads


def test_reading_many_files_sends_multi_range_requests(server: BlobServer, small_layer: Layer) -> None:
    url, _ = served(server, small_layer, "coalesce")
    with pystargz.open(url) as reader:
        server.reset_log()
        assert reader.read_files(SPREAD) == {name: small_layer.files[name] for name in SPREAD}
    ranges = [r.headers["range"].count(",") + 1 for r in server.requests]
    assert ranges == [MAX_RANGES_PER_REQUEST, len(SPREAD) - MAX_RANGES_PER_REQUEST]


def test_near_members_are_fetched_as_one_range(server: BlobServer, big_toc_layer: Layer) -> None:
    url, _ = served(server, big_toc_layer, "near")
    names = [f"d1/file-{i:05}" for i in range(500, 1000, 7)]
    with pystargz.open(url) as reader:
        server.reset_log()
        assert reader.read_files(names) == {name: big_toc_layer.files[name] for name in names}
    assert [r.headers["range"].count(",") for r in server.requests] == [0]


@pytest.mark.parametrize("mode", ["full", "reject"])
def test_servers_without_multi_range_still_give_the_right_bytes(small_layer: Layer, mode: str) -> None:
    names = [f"data/f{i:02}" for i in range(0, SMALL_FILES, 3)]
    with BlobServer(multirange=mode) as plain:  # type: ignore[arg-type]
        url = plain.add("/blob", small_layer.blob)
        with pystargz.open(url) as reader:
            assert reader.read_files(names) == {name: small_layer.files[name] for name in names}
            big = reader.extractfile("data/big")
            assert big is not None
            assert big.read() == small_layer.files["data/big"]


def test_batches_respect_the_range_bound_on_any_multi_range_source(small_layer: Layer) -> None:
    source = MultiRangeCountingSource(small_layer.blob)
    with pystargz.open(source) as reader:
        assert reader.read_files(SPREAD) == {name: small_layer.files[name] for name in SPREAD}
        assert [len(batch) for batch in source.batches] == [
            MAX_RANGES_PER_REQUEST,
            len(SPREAD) - MAX_RANGES_PER_REQUEST,
        ]
        assert reader.stats.requests == 1 + 2


# ---- the cache ----


def test_cache_evicts_least_recently_used_bytes_first() -> None:
    cache = ChunkCache(100)
    loads: list[str] = []

    def get(key: str, size: int) -> bytes:
        def load(indexes: list[int]) -> list[bytes]:
            loads.append(key)
            return [key.encode() * size]

        return cache.get_many([key], load)[0]

    get("a", 40)
    get("b", 40)
    get("a", 40)  # a is now the most recently used
    get("c", 40)  # 120 bytes > 100: b goes
    assert "a" in cache
    assert "c" in cache
    assert "b" not in cache
    assert cache.size == 80 <= cache.max_bytes
    get("d", 101)  # larger than the whole cache: handed on, not kept
    assert "d" not in cache
    assert cache.size == 80
    assert loads == ["a", "b", "c", "d"]
    assert (cache.hits, cache.misses) == (1, 4)
    get("b", 40)
    assert loads[-1] == "b"
    assert "a" not in cache


def test_reader_cache_stays_within_its_bound(small_layer: Layer) -> None:
    source = CountingSource(small_layer.blob)
    bound = 3 * 4000
    names = [f"data/f{i:02}" for i in range(10)]
    with pystargz.open(source, cache_size=bound) as reader:
        assert reader.cache is not None
        assert reader.cache.max_bytes == bound
        for name in names:
            assert read_file(reader, name) == small_layer.files[name]
            assert reader.cache.size <= bound
        reads = len(source.reads)
        read_file(reader, names[-1])
        assert len(source.reads) == reads  # still cached
        read_file(reader, names[0])
        assert len(source.reads) == reads + 1  # evicted long ago
        assert reader.stats.cache_hits == 1


def test_eight_threads_reading_one_file_fetch_it_once(small_layer: Layer) -> None:
    source = CountingSource(small_layer.blob, delay=0.2)
    name = "data/f20"
    with pystargz.open(source) as reader:
        (chunk,) = reader.getmember(name).chunks
        start = threading.Barrier(8)
        got: list[bytes] = []

        def read() -> None:
            start.wait()
            file = reader.extractfile(name)
            assert file is not None
            got.append(file.read())

        threads = [threading.Thread(target=read) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert got == [small_layer.files[name]] * 8
        assert source.reads.count((chunk.offset, chunk.end - chunk.offset)) == 1
        assert (reader.stats.cache_hits, reader.stats.cache_misses) == (7, 1)


def test_single_flight_loads_once_for_eight_threads() -> None:
    cache = ChunkCache()
    release = threading.Event()
    calls: list[list[int]] = []

    def load(indexes: list[int]) -> list[bytes]:
        calls.append(indexes)
        release.wait(5)
        return [b"k%d" % i for i in indexes]

    results: list[list[bytes]] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get_many(["x", "y"], load))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    while not calls:
        time.sleep(0.01)
    time.sleep(0.1)  # let the other seven find the flight
    release.set()
    for thread in threads:
        thread.join()
    assert calls == [[0, 1]]
    assert results == [[b"k0", b"k1"]] * 8


def test_waiters_fetch_for_themselves_when_the_shared_fetch_fails() -> None:
    cache = ChunkCache()
    started, release = threading.Event(), threading.Event()
    outcome: list[BaseException] = []

    def failing(indexes: list[int]) -> list[bytes]:
        started.set()
        release.wait(5)
        raise pystargz.SourceError("connection reset")

    def first() -> None:
        try:
            cache.get_many(["x"], failing)
        except pystargz.SourceError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=first)
    thread.start()
    started.wait(5)
    waiter: list[list[bytes]] = []
    second = threading.Thread(target=lambda: waiter.append(cache.get_many(["x"], lambda _: [b"good"])))
    second.start()
    time.sleep(0.1)
    release.set()
    thread.join()
    second.join()
    assert len(outcome) == 1
    assert waiter == [[b"good"]]
    assert "x" in cache


def test_threads_reading_different_files_over_http_with_a_small_cache(
    server: BlobServer, small_layer: Layer
) -> None:
    url, _ = served(server, small_layer, "threads")
    names = sorted(n for n in small_layer.files if n.startswith("data/"))
    errors: list[BaseException] = []
    with pystargz.open(url, cache_size=16 << 10) as reader:

        def work(seed: int) -> None:
            rng = random.Random(seed)
            try:
                for _ in range(20):
                    picked = rng.sample(names, 3)
                    if rng.random() < 0.5:
                        assert reader.read_files(picked) == {n: small_layer.files[n] for n in picked}
                    else:
                        assert read_file(reader, picked[0]) == small_layer.files[picked[0]]
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(seed,)) for seed in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert reader.cache is not None
        assert reader.cache.size <= 16 << 10
    assert errors == []


def test_a_read_during_prefetch_waits_for_it(small_layer: Layer) -> None:
    source = CountingSource(small_layer.blob, delay=0.3)
    with pystargz.open(source) as reader:
        opened = len(source.reads)
        prefetch = threading.Thread(target=reader.prefetch)
        prefetch.start()
        while len(source.reads) == opened:
            time.sleep(0.01)
        assert read_file(reader, PRIORITIZED[0]) == small_layer.files[PRIORITIZED[0]]
        prefetch.join()
        assert len(source.reads) == opened + 1


def test_default_cache_is_for_remote_sources_only(small_layer: Layer) -> None:
    with pystargz.open(small_layer.blob) as reader:
        assert reader.cache is None
        assert reader.prefetch() == 0
    source = CountingSource(small_layer.blob)
    with pystargz.open(source) as reader:
        assert reader.cache is not None
        assert reader.cache.max_bytes == DEFAULT_CACHE_SIZE
    with pystargz.open(source, cache_size=0) as reader:
        assert reader.cache is None
        assert read_file(reader, "data/f01") == small_layer.files["data/f01"]
    with pystargz.open(BytesSource(small_layer.blob), cache_size=1 << 20) as reader:
        assert reader.cache is not None
        assert reader.cache.max_bytes == 1 << 20


def test_readers_can_share_one_cache(small_layer: Layer) -> None:
    shared = ChunkCache(1 << 20)
    other = make_layer({"data/f01": b"another layer's file"})
    with pystargz.open(small_layer.blob, cache=shared) as one, pystargz.open(other.blob, cache=shared) as two:
        assert read_file(one, "data/f01") == small_layer.files["data/f01"]
        assert read_file(two, "data/f01") == b"another layer's file"
        assert len(shared) == 2


def test_stats_of_a_source_without_counters_count_the_reads(small_layer: Layer) -> None:
    source = CountingSource(small_layer.blob)
    with pystargz.open(source) as reader:
        read_file(reader, "data/big")
        stats = reader.stats
    assert stats.requests == len(source.reads) == 2  # the tail, then the big file's chunks in one range
    assert stats.bytes_fetched == sum(length for _, length in source.reads)
    assert stats.retries == 0


@settings(max_examples=40, deadline=None)
@given(reads=st.lists(st.tuples(st.integers(0, SMALL_FILES - 1), st.booleans()), min_size=1, max_size=30))
def test_cached_reads_give_the_same_bytes(reads: list[tuple[int, bool]], small_layer: Layer) -> None:
    """Any sequence of single and batch reads through a small cache returns the files' bytes."""
    with pystargz.open(CountingSource(small_layer.blob), cache_size=8000) as reader:
        for index, batch in reads:
            names = [f"data/f{i:02}" for i in range(index, min(SMALL_FILES, index + 3))]
            if batch:
                assert reader.read_files(names) == {n: small_layer.files[n] for n in names}
            else:
                assert read_file(reader, names[0]) == small_layer.files[names[0]]
            assert reader.cache is not None
            assert reader.cache.size <= 8000


# ---- coalescing ----


def chunk(offset: int, end: int) -> Chunk:
    return Chunk(offset, 0, end, 0, 1, "", "f")


def test_coalesce_merges_across_small_gaps_only() -> None:
    chunks = [
        chunk(0, 10),
        chunk(10, 20),
        chunk(20 + RANGE_GAP, 30 + RANGE_GAP),
        chunk(31 + 2 * RANGE_GAP, 40 + 2 * RANGE_GAP),
    ]
    assert coalesce(chunks, RANGE_GAP) == [(0, 30 + RANGE_GAP), (31 + 2 * RANGE_GAP, 40 + 2 * RANGE_GAP)]


def test_plan_requests_bounds_ranges_and_bytes() -> None:
    far = [chunk(i * 2 * RANGE_GAP, i * 2 * RANGE_GAP + 10) for i in range(70)]
    assert list(plan_requests(far)) == [(0, 32), (32, 64), (64, 70)]
    huge = [chunk(i * REQUEST_BYTES // 2, (i + 1) * REQUEST_BYTES // 2) for i in range(5)]
    assert list(plan_requests(huge)) == [(0, 2), (2, 4), (4, 5)]
    assert list(plan_requests([chunk(0, 3 * REQUEST_BYTES)])) == [(0, 1)]


# ---- faults between the reader and the server ----

TRANSIENT: list[Fault] = [
    "reset",
    "status",
    "truncate",
    "short_body",
    "misrange",
    "ignore_range",
    "reject_multirange",
]


@pytest.mark.parametrize("fault", TRANSIENT)
def test_faults_give_the_right_bytes_or_a_source_error(
    server: BlobServer, small_layer: Layer, fault: Fault
) -> None:
    served(server, small_layer, f"fault-{fault}")
    names = [f"data/f{i:02}" for i in range(0, SMALL_FILES, 2)] + ["data/big"]
    with FaultProxy(server.origin) as proxy:
        proxy.inject(fault, times=2)
        source = HTTPSource(proxy.url(f"/fault-{fault}"), retries=6, backoff=0.01)
        with pystargz.open(source) as reader:
            assert reader.read_files(names) == {name: small_layer.files[name] for name in names}
            assert read_file(reader, "data/f05") == small_layer.files["data/f05"]
            if fault not in ("ignore_range", "reject_multirange"):
                assert reader.stats.retries > 0
        assert proxy.faults(fault) > 0


def test_a_server_that_keeps_failing_gives_a_source_error_naming_the_url(
    server: BlobServer, small_layer: Layer
) -> None:
    url, _ = served(server, small_layer, "dies")
    with FaultProxy(server.origin) as proxy:
        source = HTTPSource(proxy.url("/dies"), retries=1, backoff=0.01)
        with pystargz.open(source) as reader:
            proxy.inject("status", status=500)
            with pytest.raises(pystargz.SourceError, match="/dies"):
                reader.read_files(["data/f01", "data/f30"])
            with pytest.raises(pystargz.SourceError, match="/dies"):
                read_file(reader, "data/f02")
    assert url.endswith("/dies")


def test_local_file_reads_are_counted_too(tmp_path: Path, small_layer: Layer) -> None:
    path = tmp_path / "layer.esgz"
    path.write_bytes(small_layer.blob)
    with pystargz.open(FileSource(path)) as reader:
        reader.read_files(["data/f01", "data/f02"])
        # The tail, then one read per range: a file cannot answer several ranges at once.
        assert reader.stats.requests == 1 + 2
