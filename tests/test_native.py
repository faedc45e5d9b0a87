"""The native inflate module against the pure-Python backend: same bytes, same statuses, same offsets."""

from __future__ import annotations

import functools
import gzip
import importlib
import itertools
import os
import random
import struct
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pystargz
from pystargz import compression
from pystargz.compression import (
    PARALLEL_MIN_BYTES,
    Backend,
    Buffer,
    Span,
    SpanFailure,
    Status,
    error_for,
    extract_parallel,
    get_backend,
)
from pystargz.errors import CorruptDataError, InternalError, LimitError
from tests.blobs import (
    FTEXT,
    RANDOM,
    TEXT,
    deflate_raw,
    gzip_header,
    gzip_member,
    gzip_trailer,
    payloads,
)

BACKENDS = ("native", "python")
LIMIT = 1 << 24
Outcome = bytes | tuple[Status, int]


def outcome(name: str, data: bytes, span: Span, limit: int = LIMIT) -> Outcome:
    """The bytes of ``span``, or the (status, offset) it fails with."""
    try:
        return get_backend(name).extract(data, span, limit)
    except SpanFailure as failure:
        caught = failure
    assert caught.index == 0
    return Status(caught.status), caught.offset


# Deflate decoders differ in how strictly they reject invalid Huffman tables: isal and libdeflate
# decode some streams zlib refuses, so a damaged member can be DATA in one backend and CRC (or
# TRUNCATED) in the other; see test_decoders_agree_on_invalid_huffman_tables, which fails on that.
DECODER_DEPENDENT = frozenset({Status.DATA, Status.CRC, Status.TRUNCATED})


def equivalent(native: object, python: object) -> bool:
    """Same bytes, or failures at the same offset with the same status up to decoder strictness."""
    if native == python:
        return True
    if not (isinstance(native, tuple) and isinstance(python, tuple)):
        return False
    *native_where, native_status, native_offset = native
    *python_where, python_status, python_offset = python
    statuses = {native_status, python_status}
    return native_where == python_where and native_offset == python_offset and statuses <= DECODER_DEPENDENT


def agreed(data: bytes, span: Span, limit: int = LIMIT) -> Outcome:
    """The outcome both backends give; fails the test when they differ."""
    native, python = (outcome(name, data, span, limit) for name in BACKENDS)
    assert equivalent(native, python), f"native {native!r:.200} != python {python!r:.200}"
    return native


def whole(data: bytes, skip: int = 0, length: int | None = None, start: int = 0) -> Span:
    return Span(start, len(data), skip, (len(data) if length is None else length))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


# ---- the module itself ----


def test_native_backend_name() -> None:
    assert pystargz.native_backend in ("libdeflate", "zlib")
    native_module = importlib.import_module("pystargz.compression._native")
    assert pystargz.native_backend == native_module.NAME
    assert get_backend("native").name == pystargz.native_backend
    assert get_backend("python").name in ("python-isal", "python-zlib")
    expected = os.environ.get("PYSTARGZ_EXPECT_NATIVE_BACKEND")
    if expected:
        assert pystargz.native_backend == expected


# ---- one test per status ----


def test_valid_single_member(backend: str) -> None:
    data = gzip_member(TEXT)
    assert outcome(backend, data, Span(0, len(data), 0, len(TEXT))) == TEXT


def test_window_spanning_members(backend: str) -> None:
    parts = [TEXT[:1000], RANDOM, TEXT[1000:3000]]
    data = b"".join(gzip_member(part, level) for part, level in zip(parts, (9, 1, 0), strict=True))
    payload = b"".join(parts)
    assert outcome(backend, data, whole(data, 500, 5800)) == payload[500:6300]
    assert outcome(backend, data, whole(data, 0, len(payload))) == payload


def test_skip_into_middle_of_member(backend: str) -> None:
    data = gzip_member(TEXT[:100]) + gzip_member(TEXT[100:9000])
    assert outcome(backend, data, whole(data, 4321, 17)) == TEXT[4321:4338]
    assert outcome(backend, data, whole(data, 8999, 1)) == TEXT[8999:9000]


def test_span_start_inside_buffer(backend: str) -> None:
    members = gzip_member(TEXT[:10]) + gzip_member(TEXT[10:20])
    data = b"JUNK" * 5 + members + b"MORE JUNK"
    assert outcome(backend, data, Span(20, 20 + len(members), 5, 10)) == TEXT[5:15]


FLAG_HEADERS = {
    "fname": gzip_header(name=b"file.txt"),
    "fcomment": gzip_header(comment=b"a comment"),
    "fextra": gzip_header(extra=b"SG\x03\x00abc"),
    "fhcrc": gzip_header(header_crc=True),
    "ftext": gzip_header(flags=FTEXT),
    "all": gzip_header(flags=FTEXT, extra=b"x" * 300, name=b"n", comment=b"c", header_crc=True, mtime=12345),
    "empty fields": gzip_header(extra=b"", name=b"", comment=b"", header_crc=True),
}


@pytest.mark.parametrize("header", FLAG_HEADERS.values(), ids=FLAG_HEADERS.keys())
def test_header_flags(backend: str, header: bytes) -> None:
    first = gzip_member(TEXT[:50])
    data = first + gzip_member(TEXT[50:300], header=header)
    assert outcome(backend, data, whole(data, 40, 200)) == TEXT[40:240]


def test_wrong_header_crc(backend: str) -> None:
    header = bytearray(gzip_header(name=b"x", header_crc=True))
    header[-1] ^= 0x01
    first = gzip_member(TEXT[:50])
    data = first + gzip_member(TEXT[50:300], header=bytes(header))
    assert outcome(backend, data, whole(data, 0, 300)) == (Status.HEADER, len(first))
    assert outcome(backend, data, whole(data, 0, 50)) == TEXT[:50]  # the bad member is never touched


BAD_HEADERS = {
    "magic 1": b"\x1e\x8b\x08\x00" + bytes(6),
    "magic 2": b"\x1f\x8c\x08\x00" + bytes(6),
    "method 7": b"\x1f\x8b\x07\x00" + bytes(6),
    "zlib stream": zlib.compress(TEXT)[:10],
    "flag 0x20": gzip_header(flags=0x20),
    "flag 0x40": gzip_header(flags=0x40),
    "flag 0x80": gzip_header(flags=0x80),
}


@pytest.mark.parametrize("header", BAD_HEADERS.values(), ids=BAD_HEADERS.keys())
def test_bad_header(backend: str, header: bytes) -> None:
    first = gzip_member(b"ok")
    data = b"pad" + first + header + deflate_raw(TEXT) + gzip_trailer(TEXT)
    assert outcome(backend, data, Span(3, len(data), 0, 10)) == (Status.HEADER, 3 + len(first))


def test_corrupt_deflate(backend: str) -> None:
    invalid_block_type = b"\x07" + bytes(20)  # BFINAL=1, BTYPE=3 (reserved)
    data = gzip_header() + invalid_block_type + gzip_trailer(b"")
    assert outcome(backend, data, whole(data, 0, 1)) == (Status.DATA, 0)
    stored_length_mismatch = b"\x01\x05\x00\x00\x00" + b"hello"  # NLEN is not ~LEN
    data = gzip_member(b"a") + gzip_header() + stored_length_mismatch + gzip_trailer(b"hello")
    assert outcome(backend, data, whole(data, 0, 6)) == (Status.DATA, len(gzip_member(b"a")))


def test_truncated_deflate(backend: str) -> None:
    first = gzip_member(TEXT)
    body = deflate_raw(RANDOM)
    data = first + gzip_header() + body[: len(body) // 2]
    assert outcome(backend, data, whole(data, 0, len(TEXT) + 1)) == (Status.DATA, len(first))
    data = gzip_header() + body[:-1]
    assert outcome(backend, data, whole(data, 0, 1)) == (Status.DATA, 0)


@pytest.mark.parametrize("keep", [0, 1, 4, 7])
def test_truncated_trailer(backend: str, keep: int) -> None:
    first = gzip_member(b"first")
    member = gzip_member(TEXT)
    data = first + member[: len(member) - 8 + keep]
    assert outcome(backend, data, whole(data, 0, 10)) == (Status.TRUNCATED, len(first))


TRUNCATED_HEADERS = {
    "1 byte": b"\x1f",
    "9 bytes": gzip_header()[:9],
    "xlen missing": gzip_header(extra=b"abc")[:11],
    "extra short": gzip_header(extra=b"abcdef")[:15],
    "name unterminated": gzip_header(name=b"name")[:13],
    "comment unterminated": gzip_header(comment=b"comment")[:15],
    "hcrc missing": gzip_header(header_crc=True)[:11],
}


@pytest.mark.parametrize("partial", TRUNCATED_HEADERS.values(), ids=TRUNCATED_HEADERS.keys())
def test_truncated_header(backend: str, partial: bytes) -> None:
    first = gzip_member(b"first")
    data = first + partial
    assert outcome(backend, data, whole(data, 0, 6)) == (Status.TRUNCATED, len(first))


def test_crc_mismatch(backend: str) -> None:
    member = bytearray(gzip_member(TEXT))
    member[-8] ^= 0x40
    data = gzip_member(b"x") + bytes(member)
    assert outcome(backend, data, whole(data, 0, 2)) == (Status.CRC, len(gzip_member(b"x")))


def test_isize_mismatch(backend: str) -> None:
    member = bytearray(gzip_member(TEXT))
    member[-1] ^= 0x01
    data = bytes(member)
    assert outcome(backend, data, whole(data, 0, 2)) == (Status.LENGTH, 0)


def test_short(backend: str) -> None:
    data = gzip_member(TEXT[:100]) + gzip_member(TEXT[100:200])
    assert outcome(backend, b"xx" + data, Span(2, 2 + len(data), 150, 51)) == (Status.SHORT, 2 + len(data))
    assert outcome(backend, data, whole(data, 200, 1)) == (Status.SHORT, len(data))
    assert outcome(backend, b"", Span(0, 0, 0, 1)) == (Status.SHORT, 0)


def test_short_then_header_when_span_runs_into_garbage(backend: str) -> None:
    data = gzip_member(b"abc") + b"garbage after the member"
    assert outcome(backend, data, whole(data, 0, 4)) == (Status.HEADER, len(gzip_member(b"abc")))


def test_output_too_small(backend: str) -> None:
    first = gzip_member(b"tiny")
    data = first + gzip_member(TEXT)
    too_small = outcome(backend, data, whole(data, 0, 10), limit=len(TEXT) - 1)
    assert too_small == (Status.OUTPUT_TOO_SMALL, len(first))
    assert outcome(backend, data, whole(data, 0, 10), limit=len(TEXT)) == b"tiny" + TEXT[:6]
    error = error_for(Status.OUTPUT_TOO_SMALL, 1000 + len(first), len(TEXT) - 1, "some/file")
    assert isinstance(error, LimitError)
    assert str(1000 + len(first)) in str(error)
    assert str(len(TEXT) - 1) in str(error)
    assert "some/file" in str(error)


def test_member_bigger_than_default_scratch(backend: str) -> None:
    """Members over 1 MiB make the native backend retry with a bigger scratch buffer."""
    big = TEXT * 300  # ~5 MB
    data = gzip_member(b"head") + gzip_member(big, 1) + gzip_member(b"tail")
    expected = (b"head" + big + b"tail")[-10:]
    assert outcome(backend, data, whole(data, len(big) - 2, 10)) == expected


def test_big_member_with_lying_isize(backend: str) -> None:
    big = TEXT * 100
    member = bytearray(gzip_member(big, 1))
    member[-4:] = struct.pack("<I", 10)
    assert outcome(backend, bytes(member), whole(bytes(member), 0, 1)) == (Status.LENGTH, 0)


def test_zero_length_request_touches_nothing(backend: str) -> None:
    assert outcome(backend, b"", Span(0, 0, 0, 0)) == b""
    garbage = b"definitely not gzip"
    assert outcome(backend, garbage, Span(0, len(garbage), 0, 0)) == b""
    assert outcome(backend, garbage, Span(5, 5, 0, 0)) == b""


def test_skip_only_request_still_checks_members(backend: str) -> None:
    member = bytearray(gzip_member(TEXT))
    member[-5] ^= 1
    assert outcome(backend, bytes(member), whole(bytes(member), 10, 0)) == (Status.CRC, 0)


@pytest.mark.parametrize(
    "span", [Span(-1, 5, 0, 1), Span(0, 1000, 0, 1), Span(5, 4, 0, 1), Span(0, 5, -1, 1), Span(0, 5, 0, -1)]
)
def test_bad_span_arguments(backend: str, span: Span) -> None:
    data = gzip_member(b"12345")
    assert outcome(backend, data, span) == (Status.ARGS, span.start)


def test_empty_members_in_a_run(backend: str) -> None:
    data = gzip_member(b"") + gzip_member(b"ab") + gzip_member(b"") + gzip_member(b"") + gzip_member(b"cd")
    assert outcome(backend, data, whole(data, 1, 3)) == b"bcd"


@pytest.mark.parametrize("status", [s for s in Status if s not in (Status.OK, Status.OUTPUT_TOO_SMALL)])
def test_error_for_table(status: Status) -> None:
    error = error_for(status, 4242, 100, "dir/name")
    if status is Status.NOMEM:
        assert isinstance(error, MemoryError)
    elif status is Status.ARGS:
        assert isinstance(error, InternalError)
    else:
        assert isinstance(error, CorruptDataError)
        assert (error.offset, error.entry) == (4242, "dir/name")
    if status is not Status.NOMEM:
        assert "4242" in str(error)


# Members (from gzip level 9 of TEXT[:400]) with one bit flipped in the dynamic Huffman header.
# The first decodes under libdeflate (then fails its CRC) but zlib and isal refuse its tables;
# the second decodes under isal but zlib and libdeflate refuse it.
LENIENT_DECODER_CASES = {
    "libdeflate accepts": bytes.fromhex(
        "1f8b08000000000000ff8dc8c90980401004c0bf517408de4738222d0ab3ae38031abe1880d0f52edb0fa2445ee139"
        "11c12710db1c58723a2fbad371d3acb02f566aacd5d8a8b15563a7c65e8d831a47354ebff10550a1523590010000"
    ),
    "isal accepts": bytes.fromhex(
        "1f8b08000000000000ff8dcac90980401004c03f517408de4738222d0ab3ae38031abe1880d0f52edb0fa2445ee139"
        "11c12710db1c58723a2fbad371d3acb02f566aacd5d8a8b15563a7c65e8d831a47354ebff10550a1523590010000"
    ),
}


@pytest.mark.parametrize("member", LENIENT_DECODER_CASES.values(), ids=LENIENT_DECODER_CASES.keys())
def test_decoders_differ_only_in_detail_on_invalid_huffman_tables(member: bytes) -> None:
    """The documented limit of "same errors": decoders differ in how strictly they check tables.

    zlib (C build and stdlib) says DATA for both members; libdeflate decodes the first and isal
    (the python backend's default) decodes the second, then the trailer CRC fails: CRC.  Both
    backends still fail, at the same member, with the same exception class.
    """
    results = {name: outcome(name, member, whole(member, 0, 400)) for name in BACKENDS}
    statuses = {name: result[0] for name, result in results.items() if isinstance(result, tuple)}
    assert set(statuses) == set(BACKENDS)
    assert set(statuses.values()) <= {Status.DATA, Status.CRC}
    assert {result[1] for result in results.values() if isinstance(result, tuple)} == {0}
    errors = {type(error_for(status, 0, 1 << 20)) for status in statuses.values()}
    assert errors == {CorruptDataError}


# ---- batches ----


def test_batch_reports_first_failing_span(backend: str) -> None:
    good = gzip_member(TEXT)
    bad = bytearray(gzip_member(RANDOM))
    bad[-6] ^= 0xFF
    data = good + bytes(bad) + good
    spans = [
        Span(0, len(good), 0, 10),
        Span(len(data) - len(good), len(data), 5, 5),
        Span(len(good), len(good) + len(bad), 0, 1),
        Span(0, 3, 0, 1),
    ]
    impl = get_backend(backend)
    assert impl.extract_batch(data, spans[:2], LIMIT) == [TEXT[:10], TEXT[5:10]]
    with pytest.raises(SpanFailure) as caught:
        impl.extract_batch(data, spans, LIMIT)
    assert (caught.value.index, caught.value.status, caught.value.offset) == (2, Status.CRC, len(good))
    assert impl.extract_batch(data, [], LIMIT) == []


# ---- properties: native and python agree ----


def nul_free(data: bytes) -> bytes:
    return data.replace(b"\x00", b"_")


@st.composite
def members(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` as one gzip member, framed by the stdlib or by hand with random flags and levels."""
    level = draw(st.integers(0, 9))
    if draw(st.booleans()):
        return gzip.compress(data, compresslevel=level, mtime=draw(st.integers(0, 2**32 - 1)))
    header = gzip_header(
        flags=draw(st.sampled_from([0, FTEXT])),
        extra=draw(st.none() | st.binary(max_size=64)),
        name=draw(st.none() | st.binary(max_size=24).map(nul_free)),
        comment=draw(st.none() | st.binary(max_size=24).map(nul_free)),
        header_crc=draw(st.booleans()),
        mtime=draw(st.integers(0, 2**32 - 1)),
        os_byte=draw(st.integers(0, 255)),
    )
    body = deflate_raw(data, level, wbits=draw(st.integers(9, 15)), mem_level=draw(st.integers(1, 9)))
    return header + body + gzip_trailer(data)


@st.composite
def gzip_runs(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """(payload, its gzip members): the payload split into 1..4 members."""
    payload = draw(payloads())
    count = draw(st.integers(1, 4))
    cuts = sorted(draw(st.lists(st.integers(0, len(payload)), min_size=count - 1, max_size=count - 1)))
    bounds = [0, *cuts, len(payload)]
    parts = [payload[a:b] for a, b in itertools.pairwise(bounds)]
    return payload, b"".join(draw(members(part)) for part in parts)


def flip(data: bytes, position: int, bit: int) -> bytes:
    changed = bytearray(data)
    changed[position] ^= 1 << bit
    return bytes(changed)


@st.composite
def corrupted(draw: st.DrawFn, blob: bytes) -> bytes:
    """``blob`` damaged one way: a bit flip, a truncation, a splice of other gzip bytes, appended junk."""
    kind = draw(st.sampled_from(["flip", "truncate", "splice", "append"]))
    if kind == "flip" and blob:
        return flip(blob, draw(st.integers(0, len(blob) - 1)), draw(st.integers(0, 7)))
    if kind == "truncate":
        return blob[: draw(st.integers(0, len(blob)))]
    if kind == "splice":
        other = draw(gzip_runs())[1]
        a, b = sorted(draw(st.lists(st.integers(0, len(blob)), min_size=2, max_size=2)))
        c, d = sorted(draw(st.lists(st.integers(0, len(other)), min_size=2, max_size=2)))
        return blob[:a] + other[c:d] + blob[b:]
    return blob + draw(st.binary(min_size=1, max_size=32))


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_backends_agree(data: st.DataObject) -> None:
    payload, blob = data.draw(gzip_runs())
    damaged = data.draw(st.booleans())
    if damaged:
        blob = data.draw(corrupted(blob))
    prefix = data.draw(st.binary(max_size=8))
    buffer = prefix + blob + data.draw(st.binary(max_size=8))
    skip = data.draw(st.integers(0, len(payload) + 4))
    length = data.draw(st.integers(0, len(payload) + 4 - skip))
    span = Span(len(prefix), len(prefix) + len(blob), skip, length)
    if damaged and lenient_but_right(buffer, span, payload[skip : skip + length]):
        return
    result = agreed(buffer, span)
    if not damaged:
        if skip + length <= len(payload):
            assert result == payload[skip : skip + length]
        else:
            assert result == (Status.SHORT, span.end)
    elif isinstance(result, bytes):
        assert len(result) == length


def lenient_but_right(data: bytes, span: Span, expected: bytes) -> bool:
    """Whether one backend decoded a damaged stream the other refused, and got the true bytes.

    libdeflate accepts some Huffman tables zlib and isal refuse; when the
    member's CRC and length still match, what it returns is the original
    content, which is right, not a disagreement worth failing on.
    """
    results = [outcome(name, data, span, LIMIT) for name in BACKENDS]
    decoded = [r for r in results if isinstance(r, bytes)]
    refused = [r for r in results if isinstance(r, tuple) and r[-2] in DECODER_DEPENDENT]
    return len(decoded) == 1 and len(refused) == 1 and decoded[0] == expected


def one_by_one(impl: Backend, data: bytes, spans: Sequence[Span]) -> list[bytes] | tuple[int, int, int]:
    """What extract_batch must return, from single extracts: the list, or (index, status, offset)."""
    results = []
    for index, span in enumerate(spans):
        try:
            results.append(impl.extract(data, span, LIMIT))
        except SpanFailure as failure:
            return index, failure.status, failure.offset
    return results


Runner = Callable[[Buffer, Sequence[Span], int], list[bytes]]


def batched(run: Runner, data: bytes, spans: Sequence[Span]) -> list[bytes] | tuple[int, int, int]:
    """``run(data, spans, LIMIT)``: the list, or (index, status, offset) of its failure."""
    try:
        return run(data, spans, LIMIT)
    except SpanFailure as failure:
        return failure.index, failure.status, failure.offset


@st.composite
def run_buffers(draw: st.DrawFn) -> tuple[bytes, list[tuple[int, int, int]]]:
    """Several gzip runs in one buffer, some damaged: (buffer, [(start, end, payload length)])."""
    buffer = b""
    runs = []
    for _ in range(draw(st.integers(1, 6))):
        payload, blob = draw(gzip_runs())
        if draw(st.integers(0, 4)) == 0:
            blob = draw(corrupted(blob))
        buffer += draw(st.binary(max_size=4))
        runs.append((len(buffer), len(buffer) + len(blob), len(payload)))
        buffer += blob
    return buffer, runs


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_batch_equals_single_extracts(data: st.DataObject) -> None:
    buffer, runs = data.draw(run_buffers())
    spans = []
    for _ in range(data.draw(st.integers(0, 12))):
        start, end, size = data.draw(st.sampled_from(runs))
        skip = data.draw(st.integers(0, size + 2))
        spans.append(Span(start, end, skip, data.draw(st.integers(0, size + 2 - skip))))
    results = []
    for name in BACKENDS:
        impl = get_backend(name)
        single = one_by_one(impl, buffer, spans)
        assert batched(impl.extract_batch, buffer, spans) == single
        results.append(single)
    assert equivalent(*results)


# ---- the parallel driver ----


@functools.lru_cache(maxsize=1)
def big_buffer() -> tuple[bytes, tuple[Span, ...], tuple[bytes, ...]]:
    """48 runs of ~48 KiB each (2.25 MiB of output in all), most of them two members."""
    rng = random.Random(7)
    buffer = b""
    spans = []
    payloads = []
    for index in range(48):
        payload = (TEXT * 2)[: rng.randrange(40_000, 56_000)] + rng.randbytes(rng.randrange(0, 500))
        cut = rng.randrange(0, len(payload))
        blob = gzip_member(payload[:cut], 1 + index % 9) + gzip_member(payload[cut:], 6)
        spans.append(Span(len(buffer), len(buffer) + len(blob), 0, len(payload)))
        payloads.append(payload)
        buffer += blob
    return buffer, tuple(spans), tuple(payloads)


def test_parallel_takes_the_parallel_path(monkeypatch: pytest.MonkeyPatch) -> None:
    buffer, spans, payloads = big_buffer()
    assert sum(span.length for span in spans) > PARALLEL_MIN_BYTES
    executor = compression._executor
    used = []

    def spy() -> ThreadPoolExecutor:
        used.append(True)
        return executor()

    monkeypatch.setattr(compression, "_executor", spy)
    for name in BACKENDS:
        assert extract_parallel(get_backend(name), buffer, spans, LIMIT) == list(payloads)
    assert bool(used) == ((os.cpu_count() or 1) > 1)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_parallel_equals_batch(data: st.DataObject) -> None:
    buffer, all_spans, _ = big_buffer()
    indexes = data.draw(st.lists(st.integers(0, len(all_spans) - 1), min_size=40, max_size=60))
    spans = []
    for index in indexes:
        span = all_spans[index]
        skip = data.draw(st.integers(0, 2000))
        short_by = data.draw(st.integers(-1, 2000))  # -1 asks for one byte past the end
        spans.append(span._replace(skip=skip, length=max(0, span.length - skip - short_by)))
    damaged = buffer
    for _ in range(data.draw(st.integers(0, 2))):
        target = all_spans[data.draw(st.sampled_from(indexes))]
        position = data.draw(st.integers(target.start, target.end - 1))
        damaged = flip(damaged, position, data.draw(st.integers(0, 7)))
    assert sum(span.length for span in spans) > PARALLEL_MIN_BYTES
    results = []
    for name in BACKENDS:
        impl = get_backend(name)
        serial = batched(impl.extract_batch, damaged, spans)
        assert batched(functools.partial(extract_parallel, impl), damaged, spans) == serial
        results.append(serial)
    assert equivalent(*results)


def test_parallel_failure_index_is_global() -> None:
    buffer, spans, _ = big_buffer()
    victim = len(spans) - 3
    damaged = flip(buffer, spans[victim].end - 7, 0)  # inside the trailer CRC of the victim's last member
    for name in BACKENDS:
        with pytest.raises(SpanFailure) as caught:
            extract_parallel(get_backend(name), damaged, spans, LIMIT)
        assert caught.value.index == victim
        assert caught.value.status == Status.CRC
        assert spans[victim].start < caught.value.offset < spans[victim].end
