"""Typed wrapper of the cffi module ``pystargz._inflate``: its only importer.

Everything cffi-specific (cdata, ``ffi.from_buffer``, the job structs) stays
in this file; the rest of pystargz sees :class:`NativeBackend`, which speaks
bytes and :class:`~pystargz.compression.base.Span`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from pystargz._inflate import ffi, lib
from pystargz.compression.base import Buffer, Span, SpanFailure, Status, check_level, compress_error_for

NAME: str = ffi.string(lib.psgz_backend()).decode("ascii")
MAX_LEVEL: int = lib.psgz_gzip_max_level()
SCRATCH_MIN = 1 << 20
# Room past a batch's output for the last member's tar padding and trailing headers.
SPILL = 64 << 10

# Scratch buffers are big (a whole member) and reused, so skip zero-filling.
_alloc_uncleared = ffi.new_allocator(should_clear_after_alloc=False)


def _check_status_table() -> None:
    """The Python enum must match the C enum; a mismatch would mislabel errors."""
    for status in Status:
        c_value = getattr(lib, "PSGZ_OK" if status is Status.OK else f"PSGZ_ERR_{status.name}")
        if c_value != status.value:
            raise ImportError(f"pystargz._inflate disagrees on status {status.name}: {c_value}")


_check_status_table()


def gzip_bound(size: int) -> int:
    """The most bytes one member of ``size`` input bytes can take, at any level (``psgz_gzip_bound``)."""
    bound: int = lib.psgz_gzip_bound(size)
    if bound == 0:
        raise MemoryError(f"a {size}-byte piece is too large to compress in one member")
    return bound


class _Scratch(threading.local):
    """One scratch buffer per thread: jobs in different threads never share one."""

    def __init__(self) -> None:
        self.buf: Any = None
        self.size = 0

    def get(self, size: int) -> Any:
        if size > self.size:
            self.buf = _alloc_uncleared("unsigned char[]", size)
            self.size = size
        return self.buf


class NativeBackend:
    """Inflates and deflates with the C module: whole members in C, GIL released, one call per batch."""

    def __init__(self) -> None:
        self.name = NAME
        self.max_level = MAX_LEVEL
        self._scratch = _Scratch()

    def compress_batch(self, pieces: Sequence[Buffer], level: int) -> list[bytes]:
        check_level(level, self.max_level)
        if not pieces:
            return []
        sources = [ffi.from_buffer(piece) for piece in pieces]
        bounds = [gzip_bound(len(source)) for source in sources]
        # Members go back to back into one uncleared buffer, each in room for its worst case.
        dst = _alloc_uncleared("unsigned char[]", sum(bounds))
        jobs = ffi.new("psgz_gzip_job[]", len(sources))
        cursor = 0
        for job, source, bound in zip(jobs, sources, bounds, strict=True):
            job.src = source
            job.src_len = len(source)
            job.dst = dst + cursor
            job.dst_cap = bound
            cursor += bound
        if lib.psgz_gzip_batch(jobs, len(sources), level) != 0:
            for index, job in enumerate(jobs):
                if job.status != Status.OK:
                    raise compress_error_for(job.status, index)
        out = ffi.buffer(dst, cursor)
        members = []
        cursor = 0
        for job, bound in zip(jobs, bounds, strict=True):
            members.append(out[cursor : cursor + job.dst_len])
            cursor += bound
        return members

    def extract(self, data: Buffer, span: Span, limit: int) -> bytes:
        return self.extract_batch(data, (span,), limit)[0]

    def extract_batch(self, data: Buffer, spans: Sequence[Span], limit: int) -> list[bytes]:
        size = len(data)
        for index, span in enumerate(spans):
            if not 0 <= span.start <= span.end <= size or span.skip < 0 or span.length < 0:
                raise SpanFailure(index, Status.ARGS, span.start)
        total = sum(span.length for span in spans)
        # Jobs write back to back into one uncleared buffer; SPILL past the end lets the last
        # job inflate its whole member in place too (see dst_cap in _inflate.h).
        end = total + SPILL
        dst = _alloc_uncleared("unsigned char[]", end)
        src = ffi.from_buffer(data)
        jobs = ffi.new("psgz_job[]", len(spans))
        cursor = 0
        for job, span in zip(jobs, spans, strict=True):
            job.src = src + span.start
            job.src_len = span.end - span.start
            job.skip = span.skip
            job.dst = dst + cursor
            job.dst_len = span.length
            job.dst_cap = min(end - cursor, max(limit, span.length))
            cursor += span.length
        want = min(limit, max(SCRATCH_MIN, max((s.skip + s.length for s in spans), default=0) * 2))
        self._run(jobs, spans, want, limit)
        results = []
        cursor = 0
        out = ffi.buffer(dst, total)
        for span in spans:
            results.append(out[cursor : cursor + span.length])
            cursor += span.length
        return results

    def _run(self, jobs: Any, spans: Sequence[Span], want: int, limit: int) -> None:
        """Runs the batch, then re-runs jobs whose member outgrew the scratch with more of it."""
        if lib.psgz_extract_batch(jobs, len(spans), self._scratch.get(want), want) == 0:
            return
        for index, span in enumerate(spans):
            job = jobs[index]
            scratch_size = want
            while job.status == Status.OUTPUT_TOO_SMALL and scratch_size < limit:
                scratch_size = min(limit, max(job.needed_scratch, scratch_size * 2))
                lib.psgz_extract(jobs + index, self._scratch.get(scratch_size), scratch_size)
            if job.status != Status.OK:
                raise SpanFailure(index, job.status, span.start + int(job.error_offset))
