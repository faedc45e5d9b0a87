"""Gzip-member compression: every level on both backends, the exact framing, the C bounds, threads.

Members are read back three ways: the standard library's ``gzip.decompress``,
our own ``extract`` on both backends, and one span across many members as the
reader sees a blob.  The C-level tests call ``pystargz._inflate`` directly (only
tests do) to reach statuses the typed wrapper never provokes: it always sizes
output from ``psgz_gzip_bound``.
"""

from __future__ import annotations

import gzip
import importlib
import os
import random
import struct
import threading
import zlib
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pystargz
from pystargz import compression
from pystargz.compression import (
    PARALLEL_MIN_BYTES,
    Backend,
    Buffer,
    Span,
    Status,
    compress_parallel,
    get_backend,
)
from pystargz.compression.base import gzip_header
from tests.blobs import RANDOM, TEXT, noise, payloads

BACKENDS = ("native", "python")
LIMIT = 1 << 28
ZLIB_MAX_LEVEL = 9
GZIP_OS_UNKNOWN = 255
XFL_SLOWEST, XFL_FASTEST = 2, 4
HEADER, TRAILER = 10, 8


PIECES = {
    "empty": b"",
    "one byte": b"x",
    "text": TEXT,
    "random": RANDOM,
    "zeros": bytes(200_000),
    "two stored blocks": bytes(2 * 65535),
    "mixed": TEXT + RANDOM + TEXT,
}


def native_module() -> Any:
    """The typed wrapper, for ``gzip_bound``; tests may import it, the package imports it once."""
    return importlib.import_module("pystargz.compression._native")


def all_levels() -> list[tuple[str, int]]:
    return [(name, level) for name in BACKENDS for level in range(get_backend(name).max_level + 1)]


def extracted(name: str, member: bytes, size: int) -> bytes:
    return get_backend(name).extract(member, Span(0, len(member), 0, size), LIMIT)


def expected_xfl(level: int) -> int:
    """zlib's rule (Go's too, but for level 0, where Go writes 0)."""
    if level >= ZLIB_MAX_LEVEL:
        return XFL_SLOWEST
    return XFL_FASTEST if level <= 1 else 0


def assert_member_of(member: bytes, piece: bytes, level: int) -> None:
    """``member`` is one gzip member of ``piece`` as every reader we know sees it."""
    assert member[:HEADER] == bytes([0x1F, 0x8B, 8, 0, 0, 0, 0, 0, expected_xfl(level), GZIP_OS_UNKNOWN])
    assert member[-TRAILER:] == struct.pack("<II", zlib.crc32(piece), len(piece) & 0xFFFFFFFF)
    assert gzip.decompress(member) == piece
    for name in BACKENDS:
        assert extracted(name, member, len(piece)) == piece


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    return get_backend(request.param)


# ---- round trips and framing ----


def test_max_levels() -> None:
    assert get_backend("python").max_level == ZLIB_MAX_LEVEL
    native = get_backend("native")
    assert native.max_level == {"libdeflate": 12, "zlib": ZLIB_MAX_LEVEL}[pystargz.native_backend or ""]


@pytest.mark.parametrize(("name", "level"), all_levels())
def test_every_level_round_trips(name: str, level: int) -> None:
    pieces = list(PIECES.values())
    members = get_backend(name).compress_batch(pieces, level)
    assert len(members) == len(pieces)
    for member, piece in zip(members, pieces, strict=True):
        assert_member_of(member, piece, level)


@pytest.mark.parametrize(("name", "level"), all_levels())
def test_members_concatenate_into_one_stream(name: str, level: int) -> None:
    """A blob is members back to back: one span across them all, and gzip, see the whole payload."""
    pieces = list(PIECES.values())
    blob = b"".join(get_backend(name).compress_batch(pieces, level))
    payload = b"".join(pieces)
    assert gzip.decompress(blob) == payload
    for reader in BACKENDS:
        assert get_backend(reader).extract(blob, Span(0, len(blob), 0, len(payload)), LIMIT) == payload


@pytest.mark.parametrize("level", range(ZLIB_MAX_LEVEL + 1))
def test_header_matches_the_rule(level: int) -> None:
    assert gzip_header(level) == b"\x1f\x8b\x08\x00\x00\x00\x00\x00" + bytes([expected_xfl(level), 255])


def test_header_xfl_per_level(backend: Backend) -> None:
    for level in range(backend.max_level + 1):
        (member,) = backend.compress_batch([TEXT], level)
        flags, mtime, xfl, os_byte = struct.unpack("<xxxBIBB", member[:HEADER])
        assert (flags, mtime, os_byte) == (0, 0, GZIP_OS_UNKNOWN)
        assert xfl == expected_xfl(level), level


@pytest.mark.parametrize("level", [0, 1, 6, 9])
def test_empty_pieces(backend: Backend, level: int) -> None:
    members = backend.compress_batch([b"", bytearray(), memoryview(b"")], level)
    assert len(set(members)) == 1
    assert_member_of(members[0], b"", level)
    assert backend.compress_batch([], level) == []


def test_buffer_types(backend: Backend) -> None:
    """bytes, bytearray and memoryviews (also slices and non-byte formats) are all the same piece."""
    expected = backend.compress_batch([TEXT], 6)[0]
    views: list[Buffer] = [bytearray(TEXT), memoryview(TEXT), memoryview(b"xx" + TEXT + b"yy")[2:-2]]
    assert backend.compress_batch(views, 6) == [expected] * 3
    words = memoryview(TEXT[:4000]).cast("I")
    assert backend.compress_batch([words], 6) == backend.compress_batch([TEXT[:4000]], 6)


def test_batching_does_not_change_members(backend: Backend) -> None:
    """A compressor reused across a batch carries nothing from one member to the next."""
    pieces = [TEXT, RANDOM, TEXT, b"", TEXT[:100], TEXT]
    for level in (0, 1, 6, backend.max_level):
        alone = [backend.compress_batch([piece], level)[0] for piece in pieces]
        assert backend.compress_batch(pieces, level) == alone
        assert backend.compress_batch(pieces[::-1], level) == alone[::-1]


@pytest.mark.parametrize("level", [0, 1, 6, 9, 12])
def test_big_incompressible_piece_within_bound(backend: Backend, level: int) -> None:
    if level > backend.max_level:
        pytest.skip(f"{backend.name} stops at level {backend.max_level}")
    piece = noise(6 << 20, seed=level)
    (member,) = backend.compress_batch([piece], level)
    # The native bound holds any member either backend writes (zlib's stored blocks are cheaper).
    assert len(member) <= native_module().gzip_bound(len(piece))
    assert len(member) < len(piece) + len(piece) // 100 + 64  # stored, or barely worse
    assert_member_of(member, piece, level)


def test_levels_mean_something(backend: Backend) -> None:
    """Level 0 stores, higher levels compress text better or as well."""
    piece = TEXT * 20
    sizes = [len(backend.compress_batch([piece], level)[0]) for level in range(backend.max_level + 1)]
    assert sizes[0] > len(piece)
    assert sizes[1] < len(piece) // 4
    assert sizes[9] <= sizes[1]
    assert sizes[backend.max_level] <= sizes[6]


def test_native_zlib_build_writes_what_python_zlib_writes() -> None:
    """Same zlib, same parameters, same framing: the same bytes (the zlib variant run checks this)."""
    if pystargz.native_backend != "zlib":
        pytest.skip("libdeflate writes different (equally valid) deflate streams than zlib")
    pieces = list(PIECES.values())
    for level in range(ZLIB_MAX_LEVEL + 1):
        assert get_backend("native").compress_batch(pieces, level) == get_backend("python").compress_batch(
            pieces, level
        )


def test_level_0_is_the_same_everywhere() -> None:
    """Stored blocks leave nothing to choose but where blocks end: every backend cuts at 65535 bytes."""
    pieces = [*PIECES.values(), bytes(65535), bytes(65536), noise(3 * 65535 + 1)]
    native, python = (get_backend(name).compress_batch(pieces, 0) for name in BACKENDS)
    assert native == python
    assert python[0] == gzip_header(0) + b"\x01\x00\x00\xff\xff" + bytes(TRAILER)


# ---- bad levels ----

BAD_LEVELS: list[Any] = [-1, 13, 100, 1.0, 6.5, "6", None, True]


@pytest.mark.parametrize("level", BAD_LEVELS, ids=repr)
def test_bad_level_raises_value_error(backend: Backend, level: Any) -> None:
    for pieces in ([TEXT], []):
        with pytest.raises(ValueError, match=f"from 0 to {backend.max_level}"):
            backend.compress_batch(pieces, level)
        with pytest.raises(ValueError, match=f"from 0 to {backend.max_level}"):
            compress_parallel(backend, pieces, level)


def test_levels_past_9_only_with_libdeflate() -> None:
    python = get_backend("python")
    with pytest.raises(ValueError, match="from 0 to 9"):
        python.compress_batch([TEXT], 10)
    native = get_backend("native")
    if native.max_level > ZLIB_MAX_LEVEL:
        assert_member_of(native.compress_batch([TEXT], 10)[0], TEXT, 10)
    else:
        with pytest.raises(ValueError, match="from 0 to 9"):
            native.compress_batch([TEXT], 10)


# ---- properties ----


@given(
    pieces=st.lists(payloads(), max_size=6),
    name=st.sampled_from(BACKENDS),
    level=st.integers(0, 12),
)
def test_random_pieces_round_trip(pieces: list[bytes], name: str, level: int) -> None:
    backend = get_backend(name)
    level = min(level, backend.max_level)
    members = backend.compress_batch(pieces, level)
    assert len(members) == len(pieces)
    for member, piece in zip(members, pieces, strict=True):
        assert_member_of(member, piece, level)
    if pieces:
        blob, payload = b"".join(members), b"".join(pieces)
        assert backend.extract(blob, Span(0, len(blob), 0, len(payload)), LIMIT) == payload


# ---- compress_parallel ----


def big_pieces() -> list[bytes]:
    """About 3 MiB in 40 pieces of mixed size and compressibility: well past PARALLEL_MIN_BYTES."""
    rng = random.Random(7)
    pieces: list[bytes] = []
    for index in range(40):
        size = rng.choice([0, 100, 5000, 60_000, 200_000])
        if index % 3 == 0:
            pieces.append(noise(size, seed=index))
        else:
            pieces.append((TEXT * (size // len(TEXT) + 1))[:size])
    assert sum(map(len, pieces)) > 2 * PARALLEL_MIN_BYTES
    return pieces


class Recording:
    """A backend that notes which thread compressed how many pieces, then defers to the real one."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.name = inner.name
        self.max_level = inner.max_level
        self.calls: list[tuple[int, int]] = []
        self._lock = threading.Lock()

    def extract(self, data: Buffer, span: Span, limit: int) -> bytes:
        return self.inner.extract(data, span, limit)

    def extract_batch(self, data: Buffer, spans: Sequence[Span], limit: int) -> list[bytes]:
        return self.inner.extract_batch(data, spans, limit)

    def compress_batch(self, pieces: Sequence[Buffer], level: int) -> list[bytes]:
        with self._lock:
            self.calls.append((threading.get_ident(), len(pieces)))
        return self.inner.compress_batch(pieces, level)


@pytest.mark.parametrize("level", [1, 6, 9])
@pytest.mark.parametrize("cpus", [1, 2, 3, 8, 64])
def test_parallel_equals_batch(
    backend: Backend, level: int, cpus: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    pieces = big_pieces()
    expected = backend.compress_batch(pieces, level)
    monkeypatch.setattr(os, "cpu_count", lambda: cpus)
    recording = Recording(backend)
    assert compress_parallel(recording, pieces, level) == expected
    assert sum(count for _, count in recording.calls) == len(pieces)
    if cpus == 1:
        assert len(recording.calls) == 1
    else:
        assert len(recording.calls) >= 2  # the parallel path ran, in runs


def test_parallel_uses_the_pool(backend: Backend) -> None:
    recording = Recording(backend)
    pieces = big_pieces() * 2
    if (os.cpu_count() or 1) == 1:
        pytest.skip("one CPU: compress_parallel rightly stays on the caller's thread")
    assert compress_parallel(recording, pieces, 6) == backend.compress_batch(pieces, 6)
    assert threading.get_ident() in {thread for thread, _ in recording.calls}


def test_parallel_small_input_stays_on_the_caller(backend: Backend) -> None:
    recording = Recording(backend)
    pieces = [TEXT] * 10
    assert compress_parallel(recording, pieces, 6) == backend.compress_batch(pieces, 6)
    assert recording.calls == [(threading.get_ident(), 10)]
    assert compress_parallel(backend, [], 6) == []


def test_parallel_failure_propagates(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run that fails fails the call, after every helper has stopped."""
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    real = get_backend("native")
    started = []

    class Failing(Recording):
        def compress_batch(self, pieces: Sequence[Buffer], level: int) -> list[bytes]:
            started.append(len(pieces))
            if len(started) == 3:
                raise MemoryError("no room")
            return self.inner.compress_batch(pieces, level)

    with pytest.raises(MemoryError, match="no room"):
        compress_parallel(Failing(real), big_pieces() * 3, 6)
    settled = len(started)
    compress_parallel(real, big_pieces(), 6)  # the pool still works, and nobody is still at it
    assert len(started) == settled


def test_parallel_called_from_the_pool_does_not_deadlock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every pool thread inside compress_parallel at once: their helpers queue, the callers finish."""
    backend = get_backend("native")
    workers = os.cpu_count() or 1
    pool = compression._executor()
    pieces = big_pieces()
    expected = backend.compress_batch(pieces, 6)
    calls = [pool.submit(compress_parallel, backend, pieces, 6) for _ in range(workers + 1)]
    for call in calls:
        assert call.result(timeout=120) == expected


# ---- the C functions, directly ----


GUARD = 64  # bytes after each job's dst_cap that must stay untouched


@pytest.fixture
def c() -> Any:
    """The cffi module; only here do tests reach past the typed wrapper."""
    return importlib.import_module("pystargz._inflate")


def c_batch(c: Any, pieces: Sequence[bytes], caps: Sequence[int], level: int) -> tuple[int, Any, Any]:
    """Runs psgz_gzip_batch with each job's dst_cap given, each dst followed by guard bytes."""
    ffi, lib = c.ffi, c.lib
    sources = [ffi.from_buffer(piece) for piece in pieces]
    dst = ffi.new("unsigned char[]", sum(caps) + GUARD * len(caps) + 1)
    ffi.memmove(dst, b"\xa5" * len(dst), len(dst))
    jobs = ffi.new("psgz_gzip_job[]", len(pieces))
    cursor = 0
    for job, source, cap in zip(jobs, sources, caps, strict=True):
        job.src, job.src_len, job.dst, job.dst_cap = source, len(source), dst + cursor, cap
        job.status, job.dst_len, job.crc32 = 12345, 999, 999
        cursor += cap + GUARD
    failed = lib.psgz_gzip_batch(jobs, len(pieces), level)
    cursor = 0
    for cap in caps:  # nothing is written past dst_cap
        assert ffi.buffer(dst + cursor + cap, GUARD)[:] == b"\xa5" * GUARD
        cursor += cap + GUARD
    return failed, jobs, dst  # the arrays that own the memory: their items are only views


def test_c_bound(c: Any) -> None:
    lib, ffi = c.lib, c.ffi
    size_max = 2 ** (8 * ffi.sizeof("size_t")) - 1
    assert lib.psgz_gzip_bound(0) >= HEADER + TRAILER + 2
    previous = 0
    for size in (0, 1, 100, 65535, 65536, 1 << 20, 1 << 30, 1 << 40):
        bound = lib.psgz_gzip_bound(size)
        assert bound >= size + HEADER + TRAILER + 5
        assert bound >= previous
        previous = bound
    assert lib.psgz_gzip_bound(size_max) == 0
    assert lib.psgz_gzip_bound(size_max // 2 + 1) == 0
    assert lib.psgz_gzip_bound(size_max // 2) > size_max // 2
    assert lib.psgz_gzip_max_level() == get_backend("native").max_level
    with pytest.raises(MemoryError, match="too large"):
        native_module().gzip_bound(size_max)


@pytest.mark.parametrize("level", [0, 1, 6, 9])
def test_c_output_capacity_is_checked(c: Any, level: int) -> None:
    """Too little room fails cleanly, the bound always suffices, and room never changes the bytes.

    Neither backend promises to fit a member in exactly its length: libdeflate (1.14) wants up to
    9 bytes more while it compresses, zlib sometimes one (its last flush fills the output and it
    asks for another call), so past the member's length only "fails, or writes the same member".
    """
    for piece in (b"", b"abc", TEXT, RANDOM):
        (member,) = get_backend("native").compress_batch([piece], level)
        short = sorted({0, 1, HEADER, HEADER + TRAILER - 1, HEADER + TRAILER, len(member) - 1})
        roomy = [len(member) + slack for slack in range(16)] + [c.lib.psgz_gzip_bound(len(piece))]
        caps = short + roomy
        failed, jobs, dst = c_batch(c, [piece] * len(caps), caps, level)
        cursor = 0
        for job, cap in zip(jobs, caps, strict=True):
            if cap < len(member):
                assert (job.status, job.dst_len, job.crc32) == (Status.OUTPUT_TOO_SMALL, 0, 0), cap
            elif job.status == Status.OK:
                assert (job.dst_len, job.crc32) == (len(member), zlib.crc32(piece))
                assert c.ffi.buffer(dst + cursor, job.dst_len)[:] == member
            else:
                assert (job.status, job.dst_len) == (Status.OUTPUT_TOO_SMALL, 0), cap
            cursor += cap + GUARD
        assert jobs[len(caps) - 1].status == Status.OK  # at the bound
        assert failed >= len(short)


def test_c_bad_arguments(c: Any) -> None:
    ffi, lib = c.ffi, c.lib
    jobs = ffi.new("psgz_gzip_job[]", 4)
    out = ffi.new("unsigned char[]", 64)
    jobs[0].src, jobs[0].src_len, jobs[0].dst, jobs[0].dst_cap = ffi.NULL, 5, out, 64  # NULL source
    jobs[1].src, jobs[1].src_len, jobs[1].dst, jobs[1].dst_cap = ffi.NULL, 0, ffi.NULL, 64  # NULL dst
    jobs[2].src, jobs[2].src_len, jobs[2].dst, jobs[2].dst_cap = ffi.NULL, 0, ffi.NULL, 0  # no room
    jobs[3].src, jobs[3].src_len, jobs[3].dst, jobs[3].dst_cap = ffi.NULL, 0, out, 64  # empty: fine
    assert lib.psgz_gzip_batch(jobs, 4, 6) == 3
    assert [job.status for job in jobs] == [Status.ARGS, Status.ARGS, Status.OUTPUT_TOO_SMALL, Status.OK]
    assert gzip.decompress(ffi.buffer(out, jobs[3].dst_len)[:]) == b""
    assert lib.psgz_gzip_batch(ffi.NULL, 7, 6) == 7
    assert lib.psgz_gzip_batch(jobs, 0, 6) == 0
    assert lib.psgz_gzip_batch(ffi.NULL, 0, 6) == 0


@pytest.mark.parametrize("level", [-1, -1000, 13, 2**31 - 1])
def test_c_bad_level_fails_every_job(c: Any, level: int) -> None:
    failed, jobs, _ = c_batch(c, [TEXT, b""], [100_000, 100], level)
    assert failed == 2
    assert [(job.status, job.dst_len, job.crc32) for job in jobs] == [(Status.ARGS, 0, 0)] * 2


def test_c_levels_10_to_12_follow_the_build(c: Any) -> None:
    bound = c.lib.psgz_gzip_bound(len(TEXT))
    for level in (10, 11, 12):
        failed, jobs, _ = c_batch(c, [TEXT], [bound], level)
        assert (failed, jobs[0].status) == (
            (0, Status.OK) if pystargz.native_backend == "libdeflate" else (1, Status.ARGS)
        )
