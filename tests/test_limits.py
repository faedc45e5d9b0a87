"""Limits, and the one exception tree: hostile blobs are refused at open with a StargzError that says where.

Each limit is tested at its default and with a tighter setting; the last part
crafts one blob per exception class that would otherwise escape the public
API (OverflowError, MemoryError, ValueError from a NUL byte, UnicodeError...)
and runs everything a user can do on it.
"""

from __future__ import annotations

import dataclasses
import re
import tarfile
from pathlib import Path
from typing import Any

import pytest

import pystargz
from pystargz import CorruptDataError, LimitError, Limits, StargzError, TOCError
from pystargz.reader import FilterArg
from tests.blobs import (
    BlobFile,
    Entries,
    assemble,
    gzip_member,
    make_blob,
    payload_and_entries,
    toc_bytes,
    toc_tar,
)
from tests.vectors import vector_case

BACKENDS = ("native", "python")
DOCS = Path(__file__).resolve().parent.parent / "docs" / "integrity.md"


def blob_of(entries: Entries, payload: bytes = b"") -> bytes:
    return assemble(payload, toc_bytes(entries))


# ---- the documented defaults ----


def test_defaults_are_the_documented_ones() -> None:
    """docs/integrity.md has a table row per limit with its default; both must move together."""
    text = DOCS.read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `(\w+)` \| `([^`]+)` \|", text, flags=re.MULTILINE))
    defaults = {field.name: field.default for field in dataclasses.fields(Limits)}
    assert set(rows) == set(defaults)
    for name, default in defaults.items():
        assert eval(rows[name], {}) == default, name


def test_limits_are_checked_not_just_stored() -> None:
    """Every vector opens under the defaults (they must not refuse real layers)."""
    cases = ("up_tree300__mcs16384", "big_chunks_4m__cs1m", "hardlinks__cs4096", "longnames_pax__default")
    for case in cases:
        pystargz.open(vector_case(case).blob).close()


# ---- the TOC ----


def test_toc_compressed_size() -> None:
    case = vector_case("up_tree300__mcs16384")
    size = case.toc["toc_compressed_size"]
    pystargz.open(case.blob, limits=Limits(max_toc_compressed_size=size)).close()
    with pytest.raises(LimitError, match=f"offset {case.toc['toc_offset']}"):
        pystargz.open(case.blob, limits=Limits(max_toc_compressed_size=size - 1))


def test_toc_size() -> None:
    case = vector_case("up_tree300__mcs16384")
    size = case.toc["toc_json_size"]
    pystargz.open(case.blob, limits=Limits(max_toc_size=size)).close()
    with pytest.raises(LimitError, match=str(size)):
        pystargz.open(case.blob, limits=Limits(max_toc_size=size - 1))


def test_toc_member_that_inflates_past_the_toc_limit() -> None:
    """A small TOC member holding a huge tar is cut off while inflating, not after."""
    bomb = gzip_member(toc_tar(b" " * (4 << 20)), level=9)
    assert len(bomb) < 10_000
    with pytest.raises(TOCError, match="inflates to more than"):
        pystargz.open(bomb + pystargz.footer.build_footer(0), limits=Limits(max_toc_size=1 << 20))


def test_number_of_entries() -> None:
    case = vector_case("up_tree300__mcs16384")
    count = case.toc_json.count('"type"')
    pystargz.open(case.blob, limits=Limits(max_entries=count)).close()
    with pytest.raises(LimitError, match=f"{count} entries"):
        pystargz.open(case.blob, limits=Limits(max_entries=count - 1))


# ---- names ----


@pytest.mark.parametrize(
    ("entry", "limits", "message"),
    [
        ({"name": "n" * 4097, "type": "dir"}, Limits(), "name of 4097 characters"),
        ({"name": "short", "type": "dir"}, Limits(max_name_length=4), "name of 5 characters"),
        ({"name": "l", "type": "symlink", "linkName": "t" * 5000}, Limits(), "link target of 5000"),
        ({"name": "a/" * 1024 + "f", "type": "dir"}, Limits(), "1025 components"),
        ({"name": "a/b/c/d", "type": "dir"}, Limits(max_path_depth=3), "4 components"),
        ({"name": "./a//b/c/", "type": "dir"}, Limits(max_path_depth=2), "3 components"),
    ],
    ids=["long name", "tight name", "long link", "deep", "tight depth", "depth of the clean name"],
)
def test_names(entry: dict[str, Any], limits: Limits, message: str) -> None:
    entries: Entries = [{"name": "a", "type": "dir"}, entry]
    with pytest.raises(LimitError, match=message) as caught:
        pystargz.open(blob_of(entries), limits=limits)
    assert "TOC entry #1" in str(caught.value)


def test_names_at_the_limits_open() -> None:
    entries: Entries = [
        {"name": "n" * 4096, "type": "dir"},
        {"name": "a/" * 1023 + "f", "type": "dir"},
        {"name": "l", "type": "symlink", "linkName": "t" * 4096},
    ]
    with pystargz.open(blob_of(entries)) as reader:
        assert len(reader) == 3


@pytest.mark.parametrize(
    "entry",
    [{"name": "a\x00b", "type": "dir"}, {"name": "l", "type": "symlink", "linkName": "/etc\x00x"}],
    ids=["name", "link"],
)
def test_nul_bytes_in_names(entry: dict[str, Any]) -> None:
    """No tar name holds a NUL; os functions would raise ValueError on it much later."""
    with pytest.raises(TOCError, match="NUL") as caught:
        pystargz.open(blob_of([entry]))
    assert "TOC entry #0" in str(caught.value)


# ---- declared sizes ----

COMPRESSIBLE = [BlobFile("zeros", bytes(200_000)), BlobFile("text", b"some text " * 2000)]


def test_inflate_ratio_per_chunk() -> None:
    blob = make_blob(COMPRESSIBLE)
    pystargz.open(blob).close()
    with pytest.raises(LimitError, match=r"'zeros'.*at most 50:1") as caught:
        pystargz.open(blob, limits=Limits(max_inflate_ratio=50))
    assert "offset" in str(caught.value)


def test_impossible_ratio_is_a_toc_error() -> None:
    """Past the configured ratio a claim breaks the limit; past what deflate can do, the TOC is wrong."""
    payload, entries = payload_and_entries([BlobFile("f", b"x" * 100)])
    span = len(payload) - entries[0]["offset"]
    limits = Limits(max_inflate_ratio=100)
    for claim, error in ((200 * span, LimitError), (2000 * span, TOCError)):
        entries[0]["size"] = claim
        with pytest.raises(error, match=r"'f'.*cannot come out of") as caught:
            pystargz.open(blob_of(entries, payload), limits=limits)
        assert type(caught.value) is error


def test_total_declared_size_against_the_payload() -> None:
    """Each entry's claim fits its member, but together they claim more than the payload can hold.

    Many entries naming the same bytes is how one small blob would make extractall write terabytes.
    """
    payload, entries = payload_and_entries([BlobFile("f", bytes(100_000))])
    span = len(payload) - entries[0]["offset"]
    offset = entries[0]["offset"]
    copies = [{"name": f"copy{i}", "type": "reg", "size": 100_000, "offset": offset} for i in range(20)]
    limits = Limits(max_inflate_ratio=10 * 100_000 // span)
    pystargz.open(blob_of(entries + copies[:5], payload), limits=limits).close()
    with pytest.raises(LimitError, match=r"copy\d+.*declared so far exceeds \d+ times") as caught:
        pystargz.open(blob_of(entries + copies, payload), limits=limits)
    assert f"blob offset {entries[0]['offset']}" in str(caught.value)


def test_total_declared_size_cap() -> None:
    files = [BlobFile("a", b"a" * 600), BlobFile("b", b"b" * 600)]
    pystargz.open(make_blob(files), limits=Limits(max_total_size=1200)).close()
    with pytest.raises(LimitError, match=r"'b'.*the limit of 1000 bytes"):
        pystargz.open(make_blob(files), limits=Limits(max_total_size=1000))


@pytest.mark.parametrize("backend", BACKENDS)
def test_member_never_inflates_past_its_chunk_and_the_slack(backend: str) -> None:
    """A 10-byte file whose gzip member goes on for 8 MiB of zeros: inflating stops at the slack."""
    payload = gzip_member(b"x" * 512) + gzip_member(b"0123456789" + bytes(8 << 20), level=9)
    entries: Entries = [{"name": "f", "type": "reg", "size": 10, "offset": len(gzip_member(b"x" * 512))}]
    blob = blob_of(entries, payload)
    with pystargz.open(blob, backend=backend) as reader:
        assert reader.read_files(["f"]) == {"f": b"0123456789"}
    with pystargz.open(blob, backend=backend, limits=Limits(member_slack=1 << 20)) as reader:
        with pytest.raises(LimitError, match=r"'f'.*inflates to more than"):
            reader.read_files(["f"])
        file = reader.extractfile("f")
        assert file is not None
        with pytest.raises(LimitError):
            file.read()


@pytest.mark.parametrize("backend", BACKENDS)
def test_huge_declared_size_is_not_a_memory_error(backend: str) -> None:
    """Limits loosened far past sense: allocation from the declared size fails as a StargzError."""
    payload, entries = payload_and_entries([BlobFile("f", b"hello world" * 100)])
    entries[0].update(size=2**50, chunkDigest="")
    limits = Limits(max_inflate_ratio=10**15, max_total_size=2**62)
    with pystargz.open(blob_of(entries, payload), limits=limits, backend=backend) as reader:
        with pytest.raises((LimitError, CorruptDataError)) as caught:
            reader.read_files(["f"])
        assert "'f'" in str(caught.value)


# ---- hardlinks ----


def chain(length: int, cycle: bool = False) -> Entries:
    payload_entries: Entries = [{"name": "target", "type": "dir"}]
    links = [{"name": f"h{i}", "type": "hardlink", "linkName": f"h{i + 1}"} for i in range(length)]
    links[-1]["linkName"] = "h0" if cycle else "target"
    return payload_entries + links


def test_hardlink_chains() -> None:
    pystargz.open(blob_of(chain(64))).close()
    with pytest.raises(LimitError, match=r"'h0'.*chain of 65 links exceeds the limit of 64"):
        pystargz.open(blob_of(chain(65)))
    with pytest.raises(LimitError, match="limit of 3"):
        pystargz.open(blob_of(chain(4)), limits=Limits(max_link_depth=3))


@pytest.mark.parametrize("length", [1, 2, 100])
def test_hardlink_cycles(length: int) -> None:
    with pytest.raises(TOCError, match="cycle"):
        pystargz.open(blob_of(chain(length, cycle=True)))


# ---- nothing but StargzError, whatever the entry says ----

INT64_MAX = 2**63 - 1
EXTREMES: dict[str, dict[str, Any]] = {
    "modtime far future": {"modtime": "99999999-12-31T23:59:59Z"},
    "modtime far past": {"modtime": "-99999999-01-01T00:00:00Z"},
    "modtime huge year": {"modtime": "9" * 4000 + "-01-01T00:00:00Z"},
    "uid": {"uid": INT64_MAX},
    "gid": {"gid": INT64_MAX},
    "mode": {"mode": INT64_MAX},
    "devices": {"devMajor": INT64_MAX, "devMinor": INT64_MAX},
    "size": {"size": INT64_MAX},
    "offset": {"offset": INT64_MAX},
    "innerOffset": {"innerOffset": INT64_MAX},
    "chunkOffset": {"chunkOffset": INT64_MAX},
    "chunkSize": {"chunkSize": INT64_MAX},
    "digest": {"digest": "sha256:" + "z" * 5000},
    "chunkDigest": {"chunkDigest": "\u2028\ud7ff\ue000"},
    "name unicode": {"name": "caf\u00e9/\u2028/\U0001f600"},
    "name surrogate escape": {"name": "\\ud800"},
    "name dots": {"name": "../../../.."},
    "xattr names": {"xattrs": {"\u00e9" * 300: "AAAA", "": ""}},
}
FILES = [
    BlobFile("dir", type="dir", mode=0o755),
    BlobFile("dir/file", b"contents " * 100),
    BlobFile("link", type="symlink", link="dir/file", mode=0o777),
    BlobFile("dev", type="char", devmajor=1, devminor=3),
    BlobFile("hard", type="hardlink", link="dir/file"),
]


FILTERS: tuple[FilterArg, ...] = ("data", "tar", "fully_trusted")


def everything(blob: bytes, dest: Path, backend: str) -> None:
    """Every public verb on the blob; any exception but StargzError fails the test."""
    refusals: list[tarfile.FilterError] = []
    try:
        with pystargz.open(blob, backend=backend) as reader:
            for member in reader:
                member.to_tarinfo()
                _ = member.size, member.mode, member.mtime, member.linkname, repr(member)
            reader.read_files(reader.getnames())
            for index, filter_name in enumerate(FILTERS):
                try:
                    reader.extractall(dest / str(index), filter=filter_name)
                except tarfile.FilterError as exc:
                    refusals.append(exc)
            reader.verify()
    except StargzError:
        pass
    assert all(isinstance(refusal, StargzError) for refusal in refusals), refusals


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fields", EXTREMES.values(), ids=EXTREMES.keys())
def test_extreme_values_in_every_entry_only_raise_stargz_errors(
    tmp_path: Path, backend: str, fields: dict[str, Any]
) -> None:
    payload, entries = payload_and_entries(FILES)
    for index in range(len(entries)):
        changed = [dict(entry) for entry in entries]
        changed[index].update(fields)
        text = toc_bytes(changed)
        if "surrogate" in str(fields):
            text = text.replace(b"\\\\ud800", b"\\ud800")
        everything(assemble(payload, text), tmp_path / str(index), backend)


def test_lone_surrogate_in_a_name_is_a_toc_error() -> None:
    """JSON may escape half a UTF-16 pair; no file system name can hold it."""
    text = toc_bytes([{"name": "x", "type": "dir"}]).replace(b'"x"', b'"\\ud800"')
    with pytest.raises(TOCError, match="JSON"):
        pystargz.open(assemble(b"", text))


def test_a_shadowed_hardlink_to_nothing_is_a_toc_error() -> None:
    """A hardlink shadowed by a later entry of its name is still listed and extracted: it is checked too.

    (Only the last entry of each name used to be checked: reading the first raised KeyError.)
    """
    entries: Entries = [{"name": "h", "type": "hardlink", "linkName": "nope"}, {"name": "h", "type": "dir"}]
    with pytest.raises(TOCError, match="'h' leads to 'nope'"):
        pystargz.open(blob_of(entries))


def test_entries_are_counted_before_they_are_built() -> None:
    """A TOC of a million tiny entries compresses to almost nothing; it is refused before decoding."""
    entries = b",".join([b'{"name":"a","type":"dir"}'] * 300_000)
    text = b'{"version":1,"entries":[' + entries + b"]}"
    blob = assemble(b"", text)
    assert len(blob) < len(text) // 100
    with pytest.raises(LimitError, match="300000 entries"):
        pystargz.open(blob, limits=Limits(max_entries=299_999))


def test_braces_in_names_are_not_entries() -> None:
    entries: Entries = [{"name": "{" * 10, "type": "dir"}, {"name": "{}", "type": "dir"}]
    with pystargz.open(blob_of(entries), limits=Limits(max_entries=2)) as reader:
        assert len(reader) == 2
    with pytest.raises(LimitError, match="2 entries"):
        pystargz.open(blob_of(entries), limits=Limits(max_entries=1))
