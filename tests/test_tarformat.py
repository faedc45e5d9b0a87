"""pystargz.tarformat against tarfile: the same members read, the same header bytes written.

The writer trusts :func:`tarformat.scan` and :func:`tarformat.header_bytes`
instead of tarfile for speed, so they must give exactly what tarfile gives:
every TarInfo attribute (offsets and PAX records included) and the TOC's raw
name for every tar the scanner accepts (on tars it declines the writer uses
tarfile), and ``TarInfo.tobuf(PAX_FORMAT, "utf-8", "surrogateescape")`` byte
for byte (or the same exception) for any TarInfo.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import pystargz
from pystargz import tarformat, writer
from pystargz.writer import _raw_name
from tests.vectors import DATA

ATTRIBUTES = (
    "name",
    "mode",
    "uid",
    "gid",
    "size",
    "mtime",
    "chksum",
    "type",
    "linkname",
    "uname",
    "gname",
    "devmajor",
    "devminor",
    "offset",
    "offset_data",
    "pax_headers",
    "sparse",
)
FORMATS = (tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT)


def tobuf(info: tarfile.TarInfo) -> bytes:
    """What the writer writes for a header: tarfile's PAX header, names in UTF-8."""
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def described(info: tarfile.TarInfo) -> dict[str, Any]:
    """Every attribute tarfile sets when reading, with its type (an int mtime is not a float one)."""
    return {name: (type(getattr(info, name)), getattr(info, name)) for name in ATTRIBUTES}


def read_by_tarfile(data: bytes) -> list[tuple[dict[str, Any], str]] | None:
    """What the writer's tarfile path reads: each member and its raw name; None if tarfile refuses the tar."""
    plain = io.BytesIO(data)
    try:
        with tarfile.open(fileobj=plain, mode="r:") as tar:
            infos = list(tar)
    except (tarfile.TarError, EOFError):
        return None
    return [(described(info), _raw_name(plain, info)) for info in infos]


def read_by_scan(data: bytes) -> list[tuple[dict[str, Any], str]] | None:
    scanned = tarformat.scan(data)
    if scanned is None:
        return None
    return [(described(member.info), member.raw_name) for member in scanned]


def assert_scan_agrees(data: bytes, *, must_scan: bool) -> None:
    """The scanner reads what tarfile reads, or declines (and then tarfile decides)."""
    scanned = read_by_scan(data)
    if must_scan:
        assert scanned is not None, "the scanner declined a tar it should read"
    if scanned is not None:
        assert scanned == read_by_tarfile(data)


def input_tars() -> list[Any]:
    return [pytest.param(path, id=path.name) for path in sorted(DATA.glob("*.tar*"))]


@pytest.mark.parametrize("path", input_tars())
def test_scan_reads_every_vector_tar_as_tarfile_does(path: Path) -> None:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    assert_scan_agrees(data, must_scan=True)


def test_scan_reads_a_real_layer_as_tarfile_does(real_tar: Path) -> None:
    assert_scan_agrees(real_tar.read_bytes(), must_scan=True)


# ---- random tars ----

TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
SURROGATE_TEXT = st.text(st.sampled_from("ab/\udc80\udcff\u00e9"), max_size=6)
PART = st.one_of(
    st.text(st.sampled_from("abc._-"), min_size=1, max_size=8),
    st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789"), min_size=40, max_size=120),
    st.text(
        st.characters(codec="utf-8", exclude_categories=["Cs"], exclude_characters="/\0"),
        min_size=1,
        max_size=6,
    ),
)
NAMES = st.builds(
    lambda parts, slash: "/".join(parts) + slash,
    st.lists(PART, min_size=1, max_size=4),
    st.sampled_from(["", "/", "//"]),
)
TYPES = st.sampled_from(
    [
        tarfile.REGTYPE,
        tarfile.AREGTYPE,
        tarfile.LNKTYPE,
        tarfile.SYMTYPE,
        tarfile.CHRTYPE,
        tarfile.BLKTYPE,
        tarfile.DIRTYPE,
        tarfile.FIFOTYPE,
        tarfile.CONTTYPE,
    ]
)
SMALL_ID = st.integers(0, 70000)
ID = st.one_of(SMALL_ID, st.integers(0, 8**8))
MTIME = st.one_of(st.integers(0, 2**33), st.integers(-(2**40), 2**40), st.floats(0, 2**33, allow_nan=False))
PAX_RECORDS = st.dictionaries(
    st.sampled_from(
        ["SCHILY.xattr.user.a", "SCHILY.xattr.security.b", "comment", "atime", "ctime", "mtime", "uname"]
    ),
    st.one_of(TEXT, st.sampled_from(["1", "1700000000.5", "", "x"])),
    max_size=3,
)


@st.composite
def tarinfos(draw: st.DrawFn, *, texts: st.SearchStrategy[str] = TEXT) -> tarfile.TarInfo:
    """A TarInfo as layers have them, with the odd corner: long and unicode names, big ids, PAX records."""
    info = tarfile.TarInfo(draw(NAMES))
    info.type = draw(TYPES)
    info.mode = draw(st.integers(0, 0o7777))
    info.uid, info.gid = draw(ID), draw(ID)
    info.uname, info.gname = draw(st.one_of(st.sampled_from(["", "root", "user"]), texts)), draw(texts)
    info.mtime = draw(MTIME)
    if info.type in (tarfile.LNKTYPE, tarfile.SYMTYPE):
        info.linkname = draw(NAMES)
    if info.type in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = draw(st.integers(0, 4095)), draw(st.integers(0, 2**20))
    if info.isreg():
        info.size = draw(st.integers(0, 1500))
    info.pax_headers = draw(PAX_RECORDS)
    return info


def write_tar(infos: list[tarfile.TarInfo], tar_format: int) -> bytes | None:
    """The tar tarfile writes for these entries in this format; None when it cannot."""
    out = io.BytesIO()
    try:
        with tarfile.open(fileobj=out, mode="w", format=tar_format) as tar:
            for info in infos:
                tar.addfile(info, io.BytesIO(bytes(info.size)) if info.isreg() else None)
    except (ValueError, UnicodeError):
        return None
    return out.getvalue()


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(infos=st.lists(tarinfos(), max_size=6), tar_format=st.sampled_from(FORMATS))
def test_scan_reads_random_tars_as_tarfile_does(infos: list[tarfile.TarInfo], tar_format: int) -> None:
    data = write_tar(infos, tar_format)
    assume(data is not None)
    assert data is not None
    # GNU base-256 numbers are left to tarfile; every other tar tarfile writes must be scanned.
    assert_scan_agrees(data, must_scan=tar_format != tarfile.GNU_FORMAT or not any(map(base_256, infos)))


def base_256(info: tarfile.TarInfo) -> bool:
    """Whether GNU tar format writes one of the entry's numbers in base 256."""
    fields = ((info.uid, 8), (info.gid, 8), (info.size, 12), (int(info.mtime), 12))
    return any(not 0 <= number < 8 ** (digits - 1) for number, digits in fields)


NUMBER_SPELLINGS = st.sampled_from(
    [
        b"0000644\0",
        b" 644 \0\0\0",
        b"644\0\0\0\0\0",
        b"0000644 ",
        b"\0\0\0\0\0\0\0\0",
        b"00006448",
        b"0o644\0\0\0",
        b"+000644\0",
    ]
)


def with_checksum(block: bytearray) -> bytes:
    block[148:156] = b"        "
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    info=tarinfos(),
    field=st.sampled_from([(100, 108), (108, 116), (116, 124), (329, 337), (337, 345)]),
    spelling=NUMBER_SPELLINGS,
)
def test_scan_reads_odd_number_spellings_as_tarfile_does(
    info: tarfile.TarInfo, field: tuple[int, int], spelling: bytes
) -> None:
    """Old tars pad numbers with spaces, leave device fields empty...: read as tarfile reads them."""
    info.pax_headers = {}
    data = write_tar([info], tarfile.USTAR_FORMAT)
    assume(data is not None)
    assert data is not None
    block = bytearray(data[:512])
    block[field[0] : field[1]] = spelling
    assert_scan_agrees(with_checksum(block) + data[512:], must_scan=False)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    infos=st.lists(tarinfos(), min_size=1, max_size=3),
    tar_format=st.sampled_from(FORMATS),
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), min_size=1, max_size=3),
    cut=st.one_of(st.none(), st.integers(0, 10_000)),
)
def test_scan_of_damaged_tars_agrees_or_declines(
    infos: list[tarfile.TarInfo], tar_format: int, flips: list[tuple[int, int]], cut: int | None
) -> None:
    """Flipped bytes or a cut tar: whatever the scanner still reads, tarfile reads the same way."""
    data = write_tar(infos, tar_format)
    assume(data is not None)
    assert data is not None
    damaged = bytearray(data)
    for position, mask in flips:
        damaged[position % len(damaged)] ^= mask
    if cut is not None:
        del damaged[cut % len(damaged) :]
    assert_scan_agrees(bytes(damaged), must_scan=False)


def test_scan_declines_what_tarfile_must_read() -> None:
    """Global PAX headers, sparse files and a missing end-of-archive block go to tarfile."""
    member = tarfile.TarInfo("a")
    with_global = io.BytesIO()
    with tarfile.open(
        fileobj=with_global, mode="w", format=tarfile.PAX_FORMAT, pax_headers={"comment": "x"}
    ) as tar:
        tar.addfile(member)
    assert tarformat.scan(with_global.getvalue()) is None
    plain = write_tar([member], tarfile.USTAR_FORMAT)
    assert plain is not None
    assert tarformat.scan(plain[:512]) is None
    sparse = bytearray(plain[:512])
    sparse[156:157] = tarfile.GNUTYPE_SPARSE
    assert tarformat.scan(with_checksum(sparse) + bytes(1024)) is None


class Unmapped(io.RawIOBase):
    """A seekable binary stream that is neither a file nor a BytesIO: the writer reads it with tarfile."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._data.readinto(buffer)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._data.seek(offset, whence)

    def tell(self) -> int:
        return self._data.tell()


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None, max_examples=40)
@given(infos=st.lists(tarinfos(), max_size=5), tar_format=st.sampled_from(FORMATS))
def test_build_writes_the_same_blob_whether_tarfile_or_the_scanner_reads(
    infos: list[tarfile.TarInfo], tar_format: int
) -> None:
    data = write_tar(infos, tar_format)
    assume(data is not None)
    assert data is not None
    blobs = []
    for source in (io.BytesIO(data), io.BufferedReader(Unmapped(data))):
        out = io.BytesIO()
        try:
            pystargz.build(source, out, chunk_size=700)
        except pystargz.BuildError as exc:
            blobs.append(str(exc).encode())
            continue
        blobs.append(out.getvalue())
    assert blobs[0] == blobs[1]


# ---- header bytes ----


def tobuf_or_error(info: tarfile.TarInfo, write: Any) -> tuple[str, Any]:
    try:
        return "bytes", write(info)
    except Exception as exc:  # which exception is the point
        return "error", type(exc)


ODD_NUMBER = st.one_of(
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([None, True, 0.5, 2.5, 8**11 - 0.4, 8**11 - 0.6]),
)


@st.composite
def odd_tarinfos(draw: st.DrawFn) -> tarfile.TarInfo:
    """Any TarInfo a caller could hand the writer: numbers out of range, floats, None, odd types."""
    info = draw(tarinfos(texts=st.one_of(TEXT, SURROGATE_TEXT)))
    for attribute in draw(
        st.sets(st.sampled_from(["uid", "gid", "size", "mtime", "devmajor", "devminor", "mode"]))
    ):
        setattr(info, attribute, draw(ODD_NUMBER))
    if draw(st.booleans()):
        info.type = draw(st.sampled_from([tarfile.XHDTYPE, tarfile.GNUTYPE_SPARSE, b"V", b"", b"ab"]))
    if draw(st.booleans()):
        info.name = draw(SURROGATE_TEXT)
    if draw(st.booleans()):
        info.pax_headers = draw(st.dictionaries(SURROGATE_TEXT, SURROGATE_TEXT, max_size=2))
    return info


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None, max_examples=300)
@given(info=st.one_of(tarinfos(), odd_tarinfos()))
def test_header_bytes_are_tobuf(info: tarfile.TarInfo) -> None:
    assert tobuf_or_error(info, tarformat.header_bytes) == tobuf_or_error(info, tobuf)


@pytest.mark.parametrize("path", input_tars())
def test_header_bytes_of_every_vector_entry_are_tobuf(path: Path) -> None:
    data = path.read_bytes()
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data) if path.suffix == ".gz" else data)) as tar:
        for info in tar:
            assert tarformat.header_bytes(info) == tobuf(info), info.name


def test_pax_record_lengths_count_their_own_digits() -> None:
    """Around each power of ten a record's length gains a digit: tarfile's loop and ours agree."""
    for value_length in range(1100):
        info = tarfile.TarInfo("a")
        info.pax_headers = {"comment": "x" * value_length}
        assert tarformat.header_bytes(info) == tobuf(info), value_length


def test_letting_go_of_mapped_pages_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages let go behind the reader (and read again for prioritized files) give the same blob."""
    layer = tmp_path / "layer.tar"
    layer.write_bytes((DATA / "up_tree300.tar").read_bytes())
    with tarfile.open(layer) as tar:
        names = [info.name for info in tar if info.isreg()]
    options: dict[str, Any] = {"chunk_size": 4096, "prioritized_files": names[-3:]}
    unmapped = io.BytesIO()
    pystargz.build(io.BufferedReader(Unmapped(layer.read_bytes())), unmapped, **options)
    monkeypatch.setattr(writer, "LET_GO_BYTES", 1)  # let go at every step
    positions: list[int] = []
    let_go = writer._Mapped.let_go

    def counting(self: writer._Mapped, position: int) -> None:
        positions.append(position)
        let_go(self, position)

    monkeypatch.setattr(writer._Mapped, "let_go", counting)
    mapped = tmp_path / "mapped.esgz"
    pystargz.build(layer, mapped, **options)
    assert mapped.read_bytes() == unmapped.getvalue()
    assert len(positions) > 300
