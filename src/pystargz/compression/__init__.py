"""Inflate / deflate backends and the parallel drivers over them.

``PYSTARGZ_BACKEND`` chooses the backend: ``native`` (the default when the C
module is built) or ``python`` (isal, else zlib).  Both return the same bytes
and fail with the same statuses, which the property tests check.  Compressed
output depends on the backend's deflate (libdeflate and zlib write different,
equally valid streams) but never on how many threads made it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait

from pystargz.compression.base import (
    Backend,
    Buffer,
    Span,
    SpanFailure,
    Status,
    check_level,
    error_for,
)
from pystargz.compression.pure import PureBackend, inflate_member
from pystargz.errors import CompressionError

__all__ = [
    "Backend",
    "Buffer",
    "Span",
    "SpanFailure",
    "Status",
    "compress_parallel",
    "error_for",
    "extract_parallel",
    "get_backend",
    "inflate_member",
    "native_backend",
]

BACKEND_ENV = "PYSTARGZ_BACKEND"
# Below this many output (inflate) or input (deflate) bytes a batch is not worth handing to another thread.
PARALLEL_MIN_BYTES = 1 << 20
# Compression is cut into more runs than cores: a run's time depends on how well its bytes compress,
# so cores that finish early take more runs instead of waiting.  Runs stay big enough that the
# compressor each batch allocates costs nothing.
RUNS_PER_WORKER = 4
COMPRESS_RUN_MIN_BYTES = 256 << 10


def _load_native() -> Backend | None:
    try:
        from pystargz.compression._native import NativeBackend
    except ImportError:
        return None
    return NativeBackend()


_NATIVE = _load_native()
native_backend: str | None = _NATIVE.name if _NATIVE is not None else None
_PURE: Backend = PureBackend()


def get_backend(name: str | None = None) -> Backend:
    """The backend called ``name`` (``native`` / ``python``), else the one the environment picks."""
    choice = (name or os.environ.get(BACKEND_ENV) or "native").strip().lower()
    if choice == "python":
        return _PURE
    if choice != "native":
        raise CompressionError(f"{BACKEND_ENV} must be 'native' or 'python', not {choice!r}")
    if _NATIVE is None:
        return _PURE
    return _NATIVE


_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    """One process-wide pool sized to the cores; backends release the GIL while inflating."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="pystargz")
        return _pool


def _split(sizes: Sequence[int], parts: int) -> list[tuple[int, int]]:
    """Cuts items of these sizes into ``parts`` contiguous runs of about equal total size."""
    total = sum(sizes) or 1
    bounds: list[tuple[int, int]] = []
    start = acc = 0
    for index, size in enumerate(sizes):
        acc += size
        if acc * parts >= total * (len(bounds) + 1) and len(bounds) < parts - 1:
            bounds.append((start, index + 1))
            start = index + 1
    bounds.append((start, len(sizes)))
    return [b for b in bounds if b[0] < b[1]]


def extract_parallel(backend: Backend, data: Buffer, spans: Sequence[Span], limit: int) -> list[bytes]:
    """Like ``backend.extract_batch`` but on all cores; SpanFailure indexes stay global."""
    workers = os.cpu_count() or 1
    if workers == 1 or len(spans) < 2 or sum(s.length for s in spans) < PARALLEL_MIN_BYTES:
        return backend.extract_batch(data, spans, limit)
    runs = _split([span.length for span in spans], workers)
    futures = [
        (first, _executor().submit(backend.extract_batch, data, spans[first:end], limit))
        for first, end in runs[1:]
    ]
    # The caller's thread inflates the first run itself rather than wait idle; that run starts at
    # span 0, so its failures already carry global indexes and are the earliest ones.
    results = backend.extract_batch(data, spans[: runs[0][1]], limit)
    for first, future in futures:
        try:
            results.extend(future.result())
        except SpanFailure as failure:
            raise SpanFailure(first + failure.index, failure.status, failure.offset) from None
    return results


def compress_parallel(
    backend: Backend, pieces: Sequence[Buffer], level: int, workers: int | None = None
) -> list[bytes]:
    """Like ``backend.compress_batch`` (the same bytes) but on ``workers`` threads (default: all cores).

    Each piece is its own member, so how pieces are cut into runs cannot change
    the output.  The caller's thread compresses the first run itself, then keeps
    claiming runs alongside the pool's threads; helpers still queued when every
    run is claimed are cancelled, so a call from inside the pool cannot deadlock.
    """
    check_level(level, backend.max_level)
    sizes = [memoryview(piece).nbytes for piece in pieces]
    total = sum(sizes)
    workers = min(workers or os.cpu_count() or 1, os.cpu_count() or 1)
    if workers == 1 or len(pieces) < 2 or total < PARALLEL_MIN_BYTES:
        return backend.compress_batch(pieces, level)
    runs = _split(sizes, max(2, min(workers * RUNS_PER_WORKER, total // COMPRESS_RUN_MIN_BYTES)))
    done: list[list[bytes]] = [[] for _ in runs]
    claims = iter(range(len(runs)))
    claim_lock = threading.Lock()
    failed = threading.Event()

    def work() -> None:
        while not failed.is_set():
            with claim_lock:
                index = next(claims, None)
            if index is None:
                return
            first, end = runs[index]
            try:
                done[index] = backend.compress_batch(pieces[first:end], level)
            except BaseException:
                failed.set()
                raise

    helpers = [_executor().submit(work) for _ in range(min(workers, len(runs)) - 1)]
    try:
        work()
    finally:
        # A cancelled helper counts as done for wait() only once a pool thread dequeues it, which
        # never happens when every pool thread is a caller here: wait only for the ones running.
        started = [helper for helper in helpers if not helper.cancel()]
        wait(started)
    for helper in started:
        helper.result()
    return [member for run in done for member in run]
