"""Inflate backends and the parallel driver over them.

``PYSTARGZ_BACKEND`` chooses the backend: ``native`` (the default when the C
module is built) or ``python`` (isal, else zlib).  Both return the same bytes
and fail with the same statuses, which the property tests check.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from pystargz.compression.base import Backend, Buffer, Span, SpanFailure, Status, error_for
from pystargz.compression.pure import PureBackend, inflate_member
from pystargz.errors import CompressionError

__all__ = [
    "Backend",
    "Buffer",
    "Span",
    "SpanFailure",
    "Status",
    "error_for",
    "extract_parallel",
    "get_backend",
    "inflate_member",
    "native_backend",
]

BACKEND_ENV = "PYSTARGZ_BACKEND"
# Below this many output bytes a batch is not worth handing to another thread.
PARALLEL_MIN_BYTES = 1 << 20


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


def _split(spans: Sequence[Span], parts: int) -> list[tuple[int, int]]:
    """Cuts spans into ``parts`` contiguous runs of about equal output size."""
    total = sum(span.length for span in spans) or 1
    bounds: list[tuple[int, int]] = []
    start = acc = 0
    for index, span in enumerate(spans):
        acc += span.length
        if acc * parts >= total * (len(bounds) + 1) and len(bounds) < parts - 1:
            bounds.append((start, index + 1))
            start = index + 1
    bounds.append((start, len(spans)))
    return [b for b in bounds if b[0] < b[1]]


def extract_parallel(backend: Backend, data: Buffer, spans: Sequence[Span], limit: int) -> list[bytes]:
    """Like ``backend.extract_batch`` but on all cores; SpanFailure indexes stay global."""
    workers = os.cpu_count() or 1
    if workers == 1 or len(spans) < 2 or sum(s.length for s in spans) < PARALLEL_MIN_BYTES:
        return backend.extract_batch(data, spans, limit)
    runs = _split(spans, workers)
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
