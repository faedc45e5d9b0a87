"""Fuzz target: the native inflate (``pystargz.compression`` native backend), against the pure one.

Input: one byte for the number of spans (1 to 4), 16 bytes per span (start,
end, skip, length as little-endian uint32, folded into range), 4 bytes of
limit (added to the largest ``skip + length``, as the reader does), then the
gzip data.  The native ``extract_batch`` runs on it; a
failure must be a ``SpanFailure`` with a known status, and the pure-Python
backend must give the same bytes or a failure of the same span, at the same
offset, with the same status (up to decoder strictness on invalid deflate
data, as ``tests/test_native.py`` allows, and up to which of damage and the
output limit a decoder notices first).  Built with ASan, any read or write
out of bounds in the C code aborts the run.
"""

from __future__ import annotations

import struct
import sys
import zlib

import atheris

with atheris.instrument_imports(include=["pystargz"]):
    from pystargz.compression import Backend, Span, SpanFailure, Status, get_backend

from _harness import Seeds, main, split, vectors

NATIVE = get_backend("native")
PURE = get_backend("python")
if NATIVE is PURE:
    sys.exit("fuzz_inflate: the native module is not built")
SPAN = struct.Struct("<IIII")
LIMIT = struct.Struct("<I")
MAX_LENGTH = 1 << 20
MAX_LIMIT = 4 << 20
# Statuses that depend on how strictly a decoder checks invalid Huffman tables, and on whether it
# notices damage or the output limit first when a damaged member also inflates past the limit.
DECODER_DEPENDENT = frozenset({Status.CRC, Status.TRUNCATED, Status.OUTPUT_TOO_SMALL})


def decode(data: bytes) -> tuple[list[Span], int, bytes] | None:
    """The spans, limit and buffer an input stands for; None when it is too short."""
    if not data:
        return None
    count = data[0] % 4 + 1
    head = 1 + count * SPAN.size + LIMIT.size
    if len(data) < head:
        return None
    buffer = data[head:]
    spans = []
    for index in range(count):
        start, end, skip, length = SPAN.unpack_from(data, 1 + index * SPAN.size)
        start %= len(buffer) + 1
        end = start + end % (len(buffer) - start + 1)
        spans.append(Span(start, end, skip % MAX_LENGTH, length % MAX_LENGTH))
    (limit,) = LIMIT.unpack_from(data, head - LIMIT.size)
    # The reader never asks for more than the limit lets a member inflate to: keep that contract.
    return spans, max(s.skip + s.length for s in spans) + limit % MAX_LIMIT, buffer


def encode(spans: list[Span], limit: int, buffer: bytes) -> bytes:
    head = bytes([len(spans) - 1]) + b"".join(SPAN.pack(*span) for span in spans)
    return head + LIMIT.pack(limit) + buffer


Outcome = list[bytes] | tuple[int, int, int]


def outcome(backend: Backend, buffer: bytes, spans: list[Span], limit: int) -> Outcome:
    try:
        return backend.extract_batch(buffer, spans, limit)
    except SpanFailure as failure:
        Status(failure.status)  # a status outside the table is a crash (ValueError)
        return failure.index, failure.status, failure.offset


def test_one_input(data: bytes) -> None:
    decoded = decode(data)
    if decoded is None:
        return
    spans, limit, buffer = decoded
    native = outcome(NATIVE, buffer, spans, limit)
    python = outcome(PURE, buffer, spans, limit)
    if not equivalent(native, python):
        raise AssertionError(f"native {native!r:.300} != python {python!r:.300} for {spans}, limit {limit}")


def equivalent(native: Outcome, python: Outcome) -> bool:
    """Same bytes, or the same failure up to decoder strictness.

    libdeflate and isal decode some invalid Huffman tables that zlib refuses,
    and not the same ones: where one backend fails with DATA, the other may
    decode that member (its CRC32 then vouches for the bytes, or fails) and
    succeed, or fail later, elsewhere.  Any other difference is a crash.
    """
    if native == python:
        return True
    failures = [outcome for outcome in (native, python) if isinstance(outcome, tuple)]
    if any(failure[1] == Status.DATA for failure in failures):
        return True
    if len(failures) < 2:
        return False
    same_place = native[0] == python[0] and native[2] == python[2]
    return same_place and {native[1], python[1]} <= DECODER_DEPENDENT


def seeds() -> Seeds:
    """Whole payloads of the vectors as one span, then each member alone and parts of members."""
    for _, blob in vectors():
        parts = split(blob)
        if parts is None or not parts[0]:
            continue
        payload = parts[0]
        size = len(zlib.decompressobj(31).decompress(payload))  # the first member only
        yield encode([Span(0, len(payload), 0, size)], MAX_LIMIT - 1, payload)
        yield encode(
            [Span(0, len(payload), size // 3, size // 2), Span(0, len(payload), 0, 1)], size, payload
        )


if __name__ == "__main__":
    main(test_one_input, seeds)
