"""Hostile blobs against the whole API: open, read, extract, verify, the verifying reader.

tests/test_malformed.py holds open and read to "only StargzError" on damaged
vectors and hand-made TOCs.  Here the damage also meets ``verify()``,
``extractall`` and ``open(toc_digest=...)``, on blobs built from random trees
(pystargz.testing) as well as on the vectors, eStargz and legacy, with and
without innerOffset packing; and every single-byte change inside a payload
gzip member or the TOC member is either detected or changes nothing a reader
returns.
"""

from __future__ import annotations

import bisect
import functools
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pystargz
from pystargz import StargzError
from pystargz.testing import BuiltBlob, flip_bit, malformed_blobs, stargz_blobs, tar_layers
from tests.vectors import vector_case

# innerOffset packing, legacy footers (no chunk digests), chunked files, hardlinks, a single file.
CASES = (
    "one_small__default",
    "up_mixed__mcs16384",
    "mixed__legacy",
    "chunks_4k__cs4096_legacy",
    "chunks_4k__cs1000",
    "hardlinks__default",
)
BACKENDS = ("native", "python")
# Single-byte changes on a vector: every byte of a region, or evenly spread positions up to about this many.
MAX_POSITIONS = 600
Read = tuple[bytes, dict[str, bytes]]
PLAIN_HEADER, TRAILER = 10, 8

# Building a blob per example costs more than most properties: a quarter of the profile's examples.
built_examples = settings(
    max_examples=max(10, (settings().max_examples or 100) // 4),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
heavy = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def read_all(reader: pystargz.StargzReader) -> dict[str, bytes]:
    """Every file a reader serves (hardlinks included), through both read paths; they must agree."""
    contents = {}
    for member in reader.getmembers():
        file = reader.extractfile(member)
        if file is not None and reader.getmember(member.name) is member:
            contents[member.name] = file.read()
    assert reader.read_files(reader.getnames()) == contents
    return contents


def detect(blob: bytes, toc_digest: str | None, backend: str | None = None) -> Read | StargzError:
    """Open, read everything, ``verify(toc_digest)``: the TOC and contents, or the StargzError raised."""
    try:
        with pystargz.open(blob, backend=backend) as reader:
            contents = read_all(reader)
            reader.verify(toc_digest=toc_digest)
            return reader.toc_json, contents
    except StargzError as exc:
        return exc


def verified_read(blob: bytes, toc_digest: str, backend: str | None = None) -> Read | StargzError:
    """The same through the verifying reader (``open(toc_digest=...)``): it checks each chunk it inflates."""
    try:
        with pystargz.open(blob, toc_digest=toc_digest, backend=backend) as reader:
            return reader.toc_json, read_all(reader)
    except StargzError as exc:
        return exc


def extract(blob: bytes, dest: Path) -> None:
    """``extractall`` with the default ("data") filter; refusals are StargzErrors like the rest."""
    try:
        with pystargz.open(blob) as reader:
            reader.extractall(dest)
    except StargzError:
        pass


def workout(blob: bytes, toc_digest: str, dest: Path, backend: str | None = None) -> None:
    """Everything the API does with a blob; an exception other than StargzError fails the test."""
    detect(blob, None, backend)
    detect(blob, toc_digest, backend)
    verified_read(blob, toc_digest, backend)
    extract(blob, dest)


@functools.cache
def intact(case: str) -> tuple[bytes, str, Read]:
    blob = vector_case(case).blob.read_bytes()
    with pystargz.open(blob) as reader:
        toc_digest = reader.toc_digest
    result = detect(blob, toc_digest)
    assert not isinstance(result, StargzError)
    return blob, toc_digest, result


# ---- only StargzError, whatever the damage ----


@st.composite
def damaged_vectors(draw: st.DrawFn) -> tuple[bytes, str]:
    """A vector truncated, flipped or spliced with another (one to three times), and its TOC digest."""
    blob, toc_digest, _ = intact(draw(st.sampled_from(CASES)))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["truncate", "flip", "flip", "splice"]))
        if not blob:
            break
        if kind == "truncate":
            blob = blob[: draw(st.integers(0, len(blob) - 1))]
        elif kind == "flip":
            blob = flip_bit(blob, draw(st.integers(0, len(blob) - 1)), draw(st.integers(0, 7)))
        else:
            other = intact(draw(st.sampled_from(CASES)))[0]
            cut, resume = draw(st.integers(0, len(blob))), draw(st.integers(0, len(other)))
            blob = blob[:cut] + other[resume:]
    return blob, toc_digest


@heavy
@given(damaged_vectors(), st.sampled_from(BACKENDS))
def test_damaged_vectors_only_raise_stargz_errors(
    tmp_path_factory: pytest.TempPathFactory, damaged: tuple[bytes, str], backend: str
) -> None:
    workout(*damaged, tmp_path_factory.mktemp("x"), backend)


@built_examples
@given(malformed_blobs(kinds=("truncate", "bit_flip", "splice", "toc_size_lie", "toc_digest_lie")))
def test_damaged_built_blobs_only_raise_stargz_errors(
    tmp_path_factory: pytest.TempPathFactory, malformation: pystargz.testing.Malformation
) -> None:
    workout(malformation.blob, malformation.original.toc_digest, tmp_path_factory.mktemp("x"))


# ---- every single-byte change is detected or harmless ----


def members(payload: bytes) -> list[tuple[int, int, bytes]]:
    """The payload's gzip members as (start, end, uncompressed bytes), by zlib."""
    found = []
    start = 0
    while start < len(payload):
        inflater = zlib.decompressobj(31)
        data = inflater.decompress(payload[start:])
        end = len(payload) - len(inflater.unused_data)
        found.append((start, end, data))
        start = end
    return found


def changes_what_zlib_reads(member: bytes, position: int, value: int, original: bytes) -> bool:
    """Whether the change alters the member's trailer or what zlib inflates from its deflate body.

    Only for members with the plain 10-byte header (the writers' own); a change zlib refuses is not
    counted (a more lenient decoder may still read the right bytes, which the CRC then vouches for).
    """
    if member[3] != 0 or position < PLAIN_HEADER:
        return False
    if position >= len(member) - TRAILER:
        return True
    changed = bytearray(member)
    changed[position] ^= value
    try:
        return zlib.decompressobj(-15).decompress(bytes(changed[PLAIN_HEADER:])) != original
    except zlib.error:
        return False


def change(blob: bytes, position: int, value: int) -> bytes:
    changed = bytearray(blob)
    changed[position] ^= value
    return bytes(changed)


def check_change(blob: bytes, toc_digest: str, truth: Read, position: int, value: int) -> bool:
    """Changes one byte; returns whether it was detected, after checking nothing wrong was returned."""
    damaged = change(blob, position, value)
    result = detect(damaged, toc_digest)
    if not isinstance(result, StargzError):
        assert result == truth, (
            f"byte {position} ^ {value:#x}: undetected, and the reader returned other bytes"
        )
    verified = verified_read(damaged, toc_digest)
    if not isinstance(verified, StargzError):
        assert verified == truth, f"byte {position} ^ {value:#x}: the verifying reader returned other bytes"
    return isinstance(result, StargzError)


def positions(start: int, end: int) -> range:
    return range(start, end, max(1, (end - start) // MAX_POSITIONS))


@pytest.mark.parametrize("case", CASES)
def test_every_byte_change_in_a_payload_member_is_detected(case: str) -> None:
    """A change zlib sees in the bytes of a member some chunk reads is always detected.

    Other changes (gzip header MTIME/XFL/OS, deflate padding bits, members no
    chunk reads) may go unnoticed but must not change a byte the reader returns.
    """
    blob, toc_digest, truth = intact(case)
    with pystargz.open(blob) as reader:
        read_offsets = {chunk.offset for member in reader for chunk in member.chunks}
        payload = blob[: reader.toc_offset]
    found = members(payload)
    detected = must = 0
    for position in positions(0, len(payload)):
        start, end, data = found[bisect.bisect_right([m[0] for m in found], position) - 1]
        value = 1 + position * 37 % 255
        caught = check_change(blob, toc_digest, truth, position, value)
        detected += caught
        if start in read_offsets and changes_what_zlib_reads(blob[start:end], position - start, value, data):
            must += 1
            assert caught, f"{case}: byte {position} ^ {value:#x} changes member {start} unnoticed"
    assert must > 0
    assert detected >= must


@pytest.mark.parametrize("case", CASES)
def test_every_byte_change_in_the_toc_member_is_detected(case: str) -> None:
    """Any change to the TOC JSON fails ``verify(toc_digest)`` (or open); other changes change nothing."""
    blob, toc_digest, truth = intact(case)
    with pystargz.open(blob) as reader:
        start, end = reader.toc_offset, len(blob) - reader.footer.size
    toc_json = zlib.decompress(blob[start:end], 31)
    for position in positions(start, end):
        value = 1 + position * 37 % 255
        caught = check_change(blob, toc_digest, truth, position, value)
        if changes_what_zlib_reads(blob[start:end], position - start, value, toc_json):
            assert caught, f"{case}: TOC member byte {position} ^ {value:#x} went unnoticed"


@built_examples
@given(
    stargz_blobs(tar_layers(max_entries=6, max_file_size=16 << 10, min_data_files=1)),
    st.data(),
)
def test_random_byte_changes_in_built_blobs_are_detected_or_harmless(
    built: BuiltBlob, data: st.DataObject
) -> None:
    truth = detect(built.blob, built.toc_digest)
    assert not isinstance(truth, StargzError)
    position = data.draw(st.integers(0, len(built.blob) - built.footer_size - 1), label="position")
    check_change(built.blob, built.toc_digest, truth, position, data.draw(st.integers(1, 255), label="xor"))
