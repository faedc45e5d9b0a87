"""Damaged blobs: whatever the damage, only StargzError subclasses escape, and they say where."""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pystargz
from pystargz import CorruptDataError, FooterError, StargzError, TOCError
from pystargz.footer import Layout, build_footer
from tests.blobs import (
    BlobFile,
    Entries,
    assemble,
    gzip_header,
    gzip_member,
    payload_and_entries,
    toc_bytes,
    toc_tar,
)
from tests.vectors import vector_case

BACKENDS = ("native", "python")
# Small vectors: one file; symlinks; chunked files; innerOffset packing; a legacy footer.
CASES = (
    "one_small__default",
    "symlinks__default",
    "chunks_4k__cs1000",
    "up_mixed__mcs16384",
    "mixed__legacy",
)
Contents = tuple[bytes, dict[str, bytes]]


def read_everything(source: bytes, backend: str | None = None) -> Contents:
    """Opens ``source`` and reads every member every way; returns the TOC JSON and the file contents.

    Both read paths (``extractfile`` file by file, ``read_files`` in bulk) must agree.
    """
    with pystargz.open(source, backend=backend) as reader:
        contents: dict[str, bytes] = {}
        for member in reader.getmembers():
            assert reader.getmember(member.name) is not None
            file = reader.extractfile(member)
            if file is not None:
                contents[member.name] = file.read()
        _ = reader.prefetch_range, reader.toc_digest, repr(reader)
        bulk = reader.read_files(reader.getnames())
        assert bulk == {name: contents[name] for name in bulk}
        return reader.toc_json, contents


def outcome(source: bytes, backend: str | None = None) -> Contents | StargzError:
    """What opening and reading everything gives: the contents, or the StargzError raised.

    Any other exception propagates and fails the test.
    """
    try:
        return read_everything(source, backend)
    except StargzError as exc:
        return exc


@functools.cache
def split(case: str) -> tuple[bytes, bytes, bytes]:
    """A vector as (payload, TOC member, footer)."""
    blob = vector_case(case).blob.read_bytes()
    toc = vector_case(case).record["toc"]
    offset, footer_size = toc["toc_offset"], toc["footer_size"]
    return blob[:offset], blob[offset : len(blob) - footer_size], blob[len(blob) - footer_size :]


@functools.cache
def intact(case: str) -> Contents:
    return read_everything(vector_case(case).blob.read_bytes())


def flip(data: bytes, position: int, bit: int) -> bytes:
    changed = bytearray(data)
    changed[position] ^= 1 << bit
    return bytes(changed)


def every_bit(data: bytes, stride: int = 1) -> list[tuple[int, int]]:
    """Every bit of ``data``; with a stride, one bit (a different one each time) of every stride-th byte."""
    if stride == 1:
        return [(position, bit) for position in range(len(data)) for bit in range(8)]
    return [(position, position // stride % 8) for position in range(0, len(data), stride)]


# ---- sizes and truncation ----

TINY = {
    "empty": b"",
    "one byte": b"\x1f",
    "46 zeros": bytes(46),
    "47 zeros": bytes(47),
    "51 zeros": bytes(51),
    "gzip of nothing": gzip_member(b""),
    "51 bytes of 0xff": b"\xff" * 51,
}


@pytest.mark.parametrize("blob", TINY.values(), ids=TINY.keys())
def test_tiny_inputs(blob: bytes) -> None:
    with pytest.raises(FooterError):
        pystargz.open(blob)


@pytest.mark.parametrize("layout", [Layout.ESTARGZ, Layout.LEGACY])
def test_footer_alone(layout: Layout) -> None:
    with pytest.raises(TOCError, match="offset 0"):
        pystargz.open(build_footer(0, layout))


@pytest.mark.parametrize("case", CASES)
def test_truncated_anywhere(case: str) -> None:
    blob = vector_case(case).blob.read_bytes()
    cuts = set(range(0, len(blob), 37)) | set(range(max(0, len(blob) - 300), len(blob)))
    for cut in sorted(cuts):
        with pytest.raises(FooterError, match=r"footer|too small"):
            pystargz.open(blob[:cut])


@pytest.mark.parametrize("case", CASES)
def test_truncated_toc_member(case: str) -> None:
    payload, toc, footer = split(case)
    for keep in range(len(toc)):
        with pytest.raises(TOCError, match=f"offset {len(payload)}"):
            pystargz.open(payload + toc[:keep] + footer)


@pytest.mark.parametrize("case", CASES)
def test_truncated_payload(case: str) -> None:
    """The payload cut short under an intact TOC (footer rewritten to point at it)."""
    payload, toc, footer = split(case)
    layout = Layout.ESTARGZ if len(footer) == 51 else Layout.LEGACY
    for keep in range(0, len(payload), max(1, len(payload) // 150)):
        result = outcome(payload[:keep] + toc + build_footer(keep, layout))
        if isinstance(result, TOCError):
            assert "TOC entry #" in str(result)
        elif isinstance(result, CorruptDataError):
            assert result.offset is not None
            assert result.entry
        else:
            assert not isinstance(result, StargzError), result
            assert result[1] == intact(case)[1]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize(
    "junk",
    [b"\x00", bytes(51), b"garbage" * 20, b"\x1f\x8b\x08\x04"],
    ids=["one zero", "51 zeros", "text", "gzip magic"],
)
def test_garbage_appended(case: str, junk: bytes) -> None:
    with pytest.raises(FooterError):
        pystargz.open(vector_case(case).blob.read_bytes() + junk)


@pytest.mark.parametrize("case", CASES)
def test_second_footer_appended(case: str) -> None:
    """A copy of the footer at the end still points at the TOC; the first footer trails the TOC member."""
    blob = vector_case(case).blob.read_bytes()
    result = outcome(blob + split(case)[2])
    assert result == intact(case) or isinstance(result, StargzError)


# ---- the footer ----


@pytest.mark.parametrize("offset", [10**6, 2**63, 2**64 - 1])
def test_footer_offset_past_the_end(offset: int) -> None:
    payload, toc, _ = split("one_small__default")
    with pytest.raises(FooterError, match=str(offset)):
        pystargz.open(payload + toc + build_footer(offset))


def test_footer_offset_inside_the_footer() -> None:
    payload, toc, _ = split("one_small__default")
    end = len(payload) + len(toc)
    for offset in (end + 1, end + 50):
        with pytest.raises(StargzError, match=str(offset)):
            pystargz.open(payload + toc + build_footer(offset))


def footer_with_extra(extra: bytes) -> bytes:
    return gzip_header(extra=extra) + b"\x01\x00\x00\xff\xff" + bytes(8)


EMPTY_SUBFIELDS = {
    "SG len 22, no data": footer_with_extra(b"SG\x16\x00"),
    "SG len 22, no data, 51-byte tail": bytes(51 - 29) + footer_with_extra(b"SG\x16\x00"),
    "SG len 22, 22 zero bytes": footer_with_extra(b"SG\x16\x00" + bytes(22)),
    "SG len 22, xlen 26, short data": footer_with_extra(b"SG\x16\x00" + b"0" * 16 + b"STARG"),
    "SG len 0, xlen 26": footer_with_extra(b"SG\x00\x00" + b"%016xSTARGZ" % 0),
    "SG len 300": footer_with_extra(b"SG\x2c\x01" + b"%016xSTARGZ" % 0),
    "external TOC": footer_with_extra(b"SG\x11\x00STARGZEXTERNALTOC"),
}


@pytest.mark.parametrize("tail", EMPTY_SUBFIELDS.values(), ids=EMPTY_SUBFIELDS.keys())
def test_footer_subfield_without_data(tail: bytes) -> None:
    """The Go reference panics on a subfield that says LEN 22 but holds nothing; we must not."""
    payload, toc, _ = split("one_small__default")
    for blob in (tail, payload + toc + tail, bytes(100) + tail):
        with pytest.raises(FooterError):
            pystargz.open(blob)


@pytest.mark.parametrize("case", CASES)
def test_footer_bit_flips(case: str) -> None:
    payload, toc, footer = split(case)
    for position, bit in every_bit(footer):
        result = outcome(payload + toc + flip(footer, position, bit))
        if isinstance(result, TOCError):
            assert "offset" in str(result)
        elif not isinstance(result, FooterError):
            assert result == intact(case)


# ---- the TOC member ----


@pytest.mark.parametrize("case", CASES)
def test_toc_member_bit_flips(case: str) -> None:
    payload, toc, footer = split(case)
    for position, bit in every_bit(toc, 1 if len(toc) < 1500 else 2):
        result = outcome(payload + flip(toc, position, bit) + footer)
        if isinstance(result, StargzError):
            assert isinstance(result, TOCError), result
            assert f"offset {len(payload)}" in str(result)
        else:
            assert result == intact(case)


def blob_with_toc(toc_json: bytes) -> bytes:
    payload, _ = payload_and_entries(FILES)
    return assemble(payload, toc_json)


FILES = [
    BlobFile("d", type="dir", mode=0o755),
    BlobFile("d/f", b"hello world\n" * 100),
    BlobFile("g", bytes(range(256)) * 20),
    BlobFile("l", type="symlink", link="g", mode=0o777),
]
CHUNK = 2000


@functools.cache
def good() -> tuple[bytes, Entries]:
    return payload_and_entries(FILES, chunk_size=CHUNK)


BAD_JSON = {
    "empty": (b"", "JSON"),
    "truncated": (b'{"version": 1, "entries": [', "JSON"),
    "invalid utf-8": (b'{"version": 1, "entries": [{"name": "\xff", "type": "dir"}]}', "JSON"),
    "nested arrays": (b"[" * 100_000 + b"]" * 100_000, "object"),
    "nested objects": (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "JSON"),
    "array": (b"[]", "object"),
    "number": (b"1", "object"),
    "null": (b"null", "object"),
    "string": (b'"toc"', "object"),
    "version string": (b'{"version": "1", "entries": []}', "version"),
    "version bool": (b'{"version": true, "entries": []}', "version"),
    "entries object": (b'{"version": 1, "entries": {}}', "entries"),
    "entries string": (b'{"version": 1, "entries": "x"}', "entries"),
    "entry number": (b'{"version": 1, "entries": [1]}', "#0"),
    "entry list": (b'{"version": 1, "entries": [{"name": "a", "type": "dir"}, []]}', "#1"),
    "no name": (b'{"version": 1, "entries": [{"type": "dir"}]}', "#0"),
    "no type": (b'{"version": 1, "entries": [{"name": "a"}]}', "'a'"),
    "name number": (b'{"version": 1, "entries": [{"name": 5, "type": "dir"}]}', "'name'"),
    "unknown type": (b'{"version": 1, "entries": [{"name": "sock", "type": "socket"}]}', "'sock'"),
    "gnu sparse type": (b'{"version": 1, "entries": [{"name": "sp", "type": "S"}]}', "'sp'"),
    "huge digits": (
        b'{"version": 1, "entries": [{"name": "a", "type": "dir", "mode": ' + b"9" * 5000 + b"}]}",
        "field 'mode'",
    ),
    "infinity": (b'{"version": 1, "entries": [{"name": "a", "type": "reg", "size": Infinity}]}', "byte 64"),
    "nan": (b'{"version": 1, "entries": [{"name": "a", "type": "reg", "size": NaN}]}', "byte 64"),
    # Found by the toc fuzz target: an unknown key that is not UTF-8 next to a bad field.
    "bad utf-8 key": (
        b'{"version": 1, "entries": [{"name": "a", "type": "reg", "mod\x8ctime": 1, "size": "x"}]}',
        "#0",
    ),
}


@pytest.mark.parametrize(("toc_json", "where"), BAD_JSON.values(), ids=BAD_JSON.keys())
def test_bad_toc_json(toc_json: bytes, where: str) -> None:
    with pytest.raises(TOCError) as caught:
        pystargz.open(blob_with_toc(toc_json))
    assert where in str(caught.value)


Mutation = Callable[[Entries], None]


def set_field(index: int, **fields: Any) -> Mutation:
    def mutate(entries: Entries) -> None:
        entries[index].update(fields)

    return mutate


def drop_field(index: int, key: str) -> Mutation:
    def mutate(entries: Entries) -> None:
        del entries[index][key]

    return mutate


def insert(index: int, entry: dict[str, Any]) -> Mutation:
    def mutate(entries: Entries) -> None:
        entries.insert(index, entry)

    return mutate


def swap(a: int, b: int) -> Mutation:
    def mutate(entries: Entries) -> None:
        entries[a], entries[b] = entries[b], entries[a]

    return mutate


# Entries of FILES: 0 d (dir), 1 d/f (reg, 1200 bytes), 2 g (reg, 5120 bytes: 3 chunks), 3-4 g chunks, 5 l.
BAD_ENTRIES: dict[str, tuple[Mutation, str]] = {
    "size string": (set_field(1, size="1200"), "'size'"),
    "size negative": (set_field(1, size=-1), "'size'"),
    "size float": (set_field(1, size=1200.0), "'size'"),
    "size bool": (set_field(1, size=True), "'size'"),
    "size over int64": (set_field(1, size=2**64), "'size'"),
    "offset string": (set_field(1, offset="92"), "'offset'"),
    "mode list": (set_field(0, mode=[493]), "'mode'"),
    "link name number": (set_field(5, linkName=7), "'linkName'"),
    "xattrs list": (set_field(0, xattrs=["a"]), "'xattrs'"),
    "xattr not base64": (set_field(0, xattrs={"user.a": "!!!"}), "user.a"),
    "xattr number": (set_field(0, xattrs={"user.a": 5}), "user.a"),
    "modtime garbage": (set_field(0, modtime="yesterday"), "'d'"),
    "modtime out of range": (set_field(0, modtime="2023-13-45T25:61:61Z"), "'d'"),
    "chunk first": (insert(0, {"name": "g", "type": "chunk", "offset": 10, "chunkOffset": 0}), "#0"),
    "chunk after dir": (swap(0, 3), "#0"),
    "chunk after symlink": (
        lambda e: e.append({"name": "l", "type": "chunk", "offset": e[4]["offset"]}),
        "#6",
    ),
    "offsets backwards": (swap(1, 2), "offset"),
    "chunk offsets backwards": (swap(3, 4), "offset"),
    "offset past the TOC": (set_field(4, offset=10**9), "'g'"),
    "reg without offset": (drop_field(1, "offset"), "'d/f'"),
    "chunk without offset": (drop_field(3, "offset"), "'g'"),
    "chunk gap": (set_field(3, chunkOffset=CHUNK + 1), "'g'"),
    "chunk overlap": (set_field(3, chunkOffset=CHUNK - 1), "'g'"),
    "chunks short of size": (set_field(4, chunkSize=100), "'g'"),
    "chunk past size": (set_field(2, size=3000), "'g'"),
    "chunk size past file": (set_field(1, chunkSize=5000), "'d/f'"),
    "duplicate chunk": (insert(4, {"name": "g", "type": "chunk", "offset": 0, "chunkOffset": CHUNK}), "'g'"),
    "hardlink to nothing": (insert(6, {"name": "h", "type": "hardlink", "linkName": "nope"}), "'h'"),
    "hardlink to itself": (insert(6, {"name": "h", "type": "hardlink", "linkName": "h"}), "'h'"),
    "hardlink cycle": (
        lambda e: e.extend(
            [
                {"name": "h1", "type": "hardlink", "linkName": "h2"},
                {"name": "h2", "type": "hardlink", "linkName": "h1"},
            ]
        ),
        "'h",
    ),
}


@pytest.mark.parametrize(("mutate", "where"), BAD_ENTRIES.values(), ids=BAD_ENTRIES.keys())
def test_bad_toc_entries(mutate: Mutation, where: str) -> None:
    payload, entries = good()
    broken = copy.deepcopy(entries)
    mutate(broken)
    with pytest.raises(TOCError) as caught:
        pystargz.open(assemble(payload, toc_bytes(broken)))
    assert where in str(caught.value)


def test_the_good_toc_is_good() -> None:
    payload, entries = good()
    assert [e["type"] for e in entries] == ["dir", "reg", "reg", "chunk", "chunk", "symlink"]
    _, contents = read_everything(assemble(payload, toc_bytes(entries)))
    assert contents == {"d/f": FILES[1].data, "g": FILES[2].data}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("index", "fields"),
    [
        (1, {"offset": 95}),
        (3, {"offset": 7}),
        (4, {"offset": 1}),
        (1, {"offset": 1}),
        (1, {"innerOffset": 7}),
    ],
    ids=["mid-member", "chunk mid-member", "last chunk mid-member", "header bytes", "inner offset"],
)
def test_wrong_offsets_fail_when_read(backend: str, index: int, fields: dict[str, int]) -> None:
    """Offsets that pass the index checks but point at the wrong bytes: the read fails, naming the entry."""
    payload, entries = good()
    broken = copy.deepcopy(entries)
    if "offset" in fields and index > 1:
        fields = {"offset": broken[index - 1]["offset"] + fields["offset"]}  # keep offsets ascending
    broken[index].update(fields)
    result = outcome(assemble(payload, toc_bytes(broken)), backend)
    if isinstance(result, TOCError):
        # caught at open: the chunk cannot come out of the compressed bytes its offset leaves it
        assert repr(broken[index]["name"]) in str(result)
    elif isinstance(result, StargzError):
        assert isinstance(result, CorruptDataError)
        assert result.entry == broken[index]["name"]
        assert result.offset is not None
        assert str(result.offset) in str(result)
        assert repr(result.entry) in str(result)
    else:
        # a shifted inner offset reads other bytes of a valid member; nothing can tell (verify() will)
        assert "innerOffset" in fields


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "fields",
    [{"size": 2**56}, {"size": 2**63 - 1}, {"innerOffset": 2**56}, {"size": 2**56, "chunkSize": 2**55}],
    ids=["size 2^56", "size int64 max", "innerOffset 2^56", "chunk size 2^55"],
)
def test_huge_claims_are_format_errors(backend: str, fields: dict[str, int]) -> None:
    """A TOC that claims a huge file or inner offset is refused at open, before any allocation.

    A gzip member cannot inflate to more than ~1032 times its size, so such claims are false.
    """
    payload, entries = payload_and_entries([BlobFile("f", b"hello world" * 100)])
    entries[0].update(fields)
    if "chunkSize" in fields:
        entries.append({"name": "f", "type": "chunk", "offset": entries[0]["offset"], "chunkOffset": 2**55})
    blob = assemble(payload, toc_bytes(entries))
    with pytest.raises(TOCError, match=r"'f'.*cannot come out of"):
        pystargz.open(blob, backend=backend)


def toc_member_holding(tar: bytes) -> bytes:
    payload, _ = good()
    return payload + gzip_member(tar) + build_footer(len(payload))


@pytest.mark.parametrize(
    ("tar", "where"),
    [
        (b"", "tar"),
        (bytes(1024), "nothing"),
        (b"this is not a tar file" * 30, "tar"),
        (toc_tar(b"{}", name="other.json"), "other.json"),
        (toc_tar(b'{"version": 1, "entries": []}')[:520], "TOC"),
    ],
    ids=["empty", "end blocks only", "not a tar", "wrong name", "truncated tar"],
)
def test_bad_toc_tar(tar: bytes, where: str) -> None:
    with pytest.raises(TOCError) as caught:
        pystargz.open(toc_member_holding(tar))
    assert where in str(caught.value)
    assert "offset" in str(caught.value)


def test_toc_member_not_gzip() -> None:
    payload, entries = good()
    blob = payload + toc_tar(toc_bytes(entries)) + build_footer(len(payload))
    with pytest.raises(TOCError, match=f"offset {len(payload)}"):
        pystargz.open(blob)


def test_toc_with_null_entries_is_an_empty_blob() -> None:
    with pystargz.open(blob_with_toc(b'{"version": 1, "entries": null}')) as reader:
        assert reader.getnames() == []


# ---- the payload ----


@pytest.mark.parametrize(
    ("case", "stride"),
    [
        ("one_small__default", 1),
        ("symlinks__default", 1),
        ("up_mixed__mcs16384", 29),
        ("chunks_4k__cs1000", 37),
    ],
)
def test_payload_bit_flips(case: str, stride: int) -> None:
    """Every damaged member a read touches is caught by its CRC (or earlier); the others do not matter."""
    payload, toc, footer = split(case)
    toc_json, contents = intact(case)
    for position, bit in every_bit(payload, stride):
        damaged = flip(payload, position, bit) + toc + footer
        for backend in BACKENDS:
            result = outcome(damaged, backend)
            if isinstance(result, StargzError):
                assert isinstance(result, CorruptDataError), result
                assert result.offset is not None
                assert result.offset <= position
                assert result.entry
            else:
                assert result == (toc_json, contents)


# ---- properties ----


@st.composite
def damaged_blobs(draw: st.DrawFn) -> bytes:
    blob = vector_case(draw(st.sampled_from(CASES))).blob.read_bytes()
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["flip", "flip", "truncate", "splice", "cut", "zero"]))
        if not blob:
            break
        if kind == "flip":
            blob = flip(blob, draw(st.integers(0, len(blob) - 1)), draw(st.integers(0, 7)))
            continue
        a, b = sorted(draw(st.lists(st.integers(0, len(blob)), min_size=2, max_size=2)))
        if kind == "truncate":
            blob = blob[:b]
        elif kind == "cut":
            blob = blob[:a] + blob[b:]
        elif kind == "zero":
            blob = blob[:a] + bytes(min(b - a, 64)) + blob[a + min(b - a, 64) :]
        else:
            other = vector_case(draw(st.sampled_from(CASES))).blob.read_bytes()
            c = draw(st.integers(0, len(other)))
            blob = blob[:a] + other[c : c + draw(st.integers(0, 200))] + blob[b:]
    return blob


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged_blobs(), st.sampled_from(BACKENDS))
def test_random_damage_only_raises_stargz_errors(blob: bytes, backend: str) -> None:
    outcome(blob, backend)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_payload_damage_is_detected(data: st.DataObject) -> None:
    case = data.draw(st.sampled_from(CASES))
    payload, toc, footer = split(case)
    damaged = payload
    for _ in range(data.draw(st.integers(1, 4))):
        damaged = flip(damaged, data.draw(st.integers(0, len(payload) - 1)), data.draw(st.integers(0, 7)))
    result = outcome(damaged + toc + footer, data.draw(st.sampled_from(BACKENDS)))
    if isinstance(result, StargzError):
        assert isinstance(result, CorruptDataError), result
    else:
        assert result == intact(case)


FIELD_VALUES = {
    "offset": st.integers(0, 40_000),
    "innerOffset": st.integers(0, 70_000),
    "size": st.integers(0, 70_000),
    "chunkOffset": st.integers(0, 70_000),
    "chunkSize": st.integers(0, 70_000),
    "type": st.sampled_from(["dir", "reg", "symlink", "hardlink", "char", "block", "fifo", "chunk"]),
    "name": st.sampled_from(["", ".", "/", "..", "a", "g", "d/f", "./d/f", "d//f/"]),
    "linkName": st.sampled_from(["", "g", "d/f", "l", "d", "/", "../g"]),
}


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_toc_edits_only_raise_stargz_errors(data: st.DataObject) -> None:
    """Plausible-looking but wrong TOC values (kept small; huge claims have their own test above)."""
    case = data.draw(st.sampled_from(["up_mixed__mcs16384", "chunks_4k__cs1000", "symlinks__default"]))
    payload, _, _ = split(case)
    entries: Entries = json.loads(vector_case(case).record["toc_json"])["entries"]
    for _ in range(data.draw(st.integers(1, 4))):
        entry = entries[data.draw(st.integers(0, len(entries) - 1))]
        key = data.draw(st.sampled_from(sorted(FIELD_VALUES)))
        entry[key] = data.draw(FIELD_VALUES[key])
    if data.draw(st.booleans()):
        entries.insert(
            data.draw(st.integers(0, len(entries))), entries.pop(data.draw(st.integers(0, len(entries) - 1)))
        )
    outcome(assemble(payload, toc_bytes(entries)), data.draw(st.sampled_from(BACKENDS)))


def test_toc_tar_size_past_its_data() -> None:
    """A TOC tar entry claiming more bytes than the member holds is a TOCError, not a struct or tar error."""
    tar = bytearray(toc_tar(b'{"version": 1, "entries": []}'))
    tar[124:136] = b"%011o\x00" % 99999
    header_sum = sum(tar[:148]) + 8 * 32 + sum(tar[156:512])
    tar[148:156] = b"%06o\x00 " % header_sum
    with pytest.raises(TOCError, match="offset"):
        pystargz.open(toc_member_holding(bytes(tar)))
