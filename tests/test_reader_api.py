"""The tarfile-like reading API on the Go vectors and on hand-made blobs."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import tarfile
from pathlib import Path
from typing import Any, Literal

import pytest

import pystargz
from pystargz import ExtractionFilterError, StargzError, StargzInfo, StargzReader
from pystargz.members import clean_name
from tests.blobs import BlobFile, make_blob
from tests.vectors import DATA, vector_case

PROC_FDS = Path("/proc/self/fd")


def toc_entries(case: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads(vector_case(case).record["toc_json"])["entries"] or []
    return entries


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def read_member(reader: StargzReader, name: str) -> bytes:
    file = reader.extractfile(name)
    assert file is not None
    return file.read()


class CountingSource:
    """A RangeSource of our own: bytes in memory, with a log of the ranges read."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self.reads: list[tuple[int, int]] = []
        self.closed = False

    @property
    def size(self) -> int:
        return len(self._data)

    def read_at(self, offset: int, length: int) -> bytes:
        self.reads.append((offset, length))
        return self._data[offset : offset + length]

    def close(self) -> None:
        self.closed = True


def open_fds() -> int:
    return len(os.listdir(PROC_FDS))


# ---- opening ----


def contents_via(source: Any) -> dict[str, bytes]:
    with pystargz.open(source) as reader:
        return {m.name: read_member(reader, m.name) for m in reader if m.isreg()}


def test_open_from_every_kind_of_source(tmp_path: Path) -> None:
    path = DATA / "mixed__default.esgz"
    blob = path.read_bytes()
    expected = contents_via(str(path))
    assert {name: sha256(data) for name, data in expected.items()} == {
        name: file["sha256"] for name, file in vector_case("mixed__default").record["files"].items()
    }
    assert contents_via(path) == expected
    assert contents_via(blob) == expected
    assert contents_via(bytearray(blob)) == expected
    assert contents_via(memoryview(blob)) == expected
    assert contents_via(io.BytesIO(blob)) == expected
    with path.open("rb") as file:
        assert contents_via(file) == expected
        assert not file.closed  # the reader did not open it, so it does not close it
    source = CountingSource(blob)
    assert contents_via(source) == expected
    assert not source.closed
    assert isinstance(source, pystargz.RangeSource)


def test_custom_source_reads_only_what_it_needs() -> None:
    blob = vector_case("mixed__default").blob.read_bytes()
    source = CountingSource(blob)
    with pystargz.open(source) as reader:
        toc_offset = reader.toc_offset
        assert all(offset >= toc_offset or offset + length == len(blob) for offset, length in source.reads)
        source.reads.clear()
        member = reader.getmember("etc/hostname")
        assert (
            sha256(read_member(reader, "etc/hostname"))
            == vector_case("mixed__default").record["files"][member.name]["sha256"]
        )
        (chunk,) = member.chunks
        assert source.reads == [(chunk.offset, chunk.end - chunk.offset)]


@pytest.mark.skipif(not PROC_FDS.is_dir(), reason="needs /proc/self/fd")
def test_context_manager_closes_the_file_it_opened() -> None:
    before = open_fds()
    with pystargz.open(DATA / "one_small__default.esgz") as reader:
        assert open_fds() == before + 1
        assert read_member(reader, "hello.txt")
    assert open_fds() == before
    reader = pystargz.open(str(DATA / "one_small__default.esgz"))
    reader.close()
    assert open_fds() == before


@pytest.mark.skipif(not PROC_FDS.is_dir(), reason="needs /proc/self/fd")
def test_failed_open_closes_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.esgz"
    bad.write_bytes(b"not a stargz blob at all, but long enough to have a footer" * 3)
    before = open_fds()
    with pytest.raises(pystargz.FooterError):
        pystargz.open(bad)
    assert open_fds() == before


def test_open_refuses_unknown_source_types() -> None:
    with pytest.raises(TypeError):
        pystargz.open(12345)  # type: ignore[call-overload]


def test_missing_file_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(pystargz.SourceError) as caught:
        pystargz.open(tmp_path / "absent.esgz")
    assert isinstance(caught.value, OSError)


# ---- members and names ----

MEMBER_CASES = [
    "mixed__default",
    "chunks_4k__cs1000",
    "duplicate__writer",
    "duplicate__default",
    "dot_prefix__default",
    "hardlinks__cs4096",
    "up_mixed__mcs16384",
    "empty__writer",
]


@pytest.mark.parametrize("case", MEMBER_CASES)
def test_members_in_toc_order_without_chunks(case: str) -> None:
    expected = [clean_name(entry["name"]) for entry in toc_entries(case) if entry["type"] != "chunk"]
    with pystargz.open(DATA / f"{case}.esgz") as reader:
        assert reader.getnames() == expected
        assert [m.name for m in reader.getmembers()] == expected
        assert list(reader) == reader.getmembers()
        assert len(reader) == len(expected)
        for name in expected:
            assert name in reader
            assert reader.getmember(name).name == name


def test_getmember_absent_raises_key_error() -> None:
    with pystargz.open(DATA / "mixed__default.esgz") as reader:
        for name in ("nope", "etc/nope", "etc/hostname/x", "ETC/HOSTNAME"):
            with pytest.raises(KeyError):
                reader.getmember(name)
            assert name not in reader
        assert 42 not in reader
        with pytest.raises(KeyError):
            reader.extractfile("nope")


def test_duplicates_last_entry_wins() -> None:
    record = vector_case("duplicate__writer").record
    with pystargz.open(DATA / "duplicate__writer.esgz") as reader:
        names = reader.getnames()
        assert len(names) > len(set(names))  # the Writer keeps both entries, and so do we
        for name, file in record["files"].items():
            assert sha256(read_member(reader, name)) == file["sha256"]
        assert reader.getmember("x").issym()  # x changes from a file to a symlink


def test_names_are_normalized() -> None:
    with pystargz.open(DATA / "dot_prefix__default.esgz") as reader:
        names = reader.getnames()
        assert "" in names  # the "./" root entry
        assert "etc/config" in names
        assert not any(n.startswith(("./", "/")) or n.endswith("/") for n in names)
        config = read_member(reader, "etc/config")
        for alias in (
            "./etc/config",
            "/etc/config",
            "etc//config",
            "./etc/./config",
            "etc/config/",
            "//etc/config",
        ):
            assert alias in reader
            assert reader.getmember(alias).name == "etc/config"
            assert read_member(reader, alias) == config
        assert reader.getmember("./").isdir()
        assert reader.getmember("/").name == ""
        assert reader.getmember("./usr/bin/").isdir()


def test_implicit_parent_directories_in_a_vector() -> None:
    with pystargz.open(DATA / "big_chunks_4m__cs1m.esgz") as reader:
        assert "big" not in reader.getnames()
        assert "big" in reader
        parent = reader.getmember("big")
        assert parent.isdir()
        assert reader.extractfile("big") is None


def test_implicit_parent_directories_made_by_hand() -> None:
    blob = make_blob([BlobFile("a/b/c/file.txt", b"deep"), BlobFile("a/b/other", b"x"), BlobFile("z", b"z")])
    with pystargz.open(blob) as reader:
        assert reader.getnames() == ["a/b/c/file.txt", "a/b/other", "z"]
        for parent in ("a", "a/b", "a/b/c", "./a/b/"):
            member = reader.getmember(parent)
            assert member.isdir()
            assert member.mode == 0o755
            assert member.chunks == ()
        assert "a/b/c/file.txt/x" not in reader
        assert read_member(reader, "a/b/c/file.txt") == b"deep"


# ---- reading ----


def test_hardlinks_resolve() -> None:
    record = vector_case("hardlinks__default").record
    with pystargz.open(DATA / "hardlinks__default.esgz") as reader:
        orig = read_member(reader, "orig.txt")
        big = read_member(reader, "big.bin")
        assert sha256(orig) == record["files"]["orig.txt"]["sha256"]
        assert sha256(big) == record["files"]["big.bin"]["sha256"]
        for name in ("hl1", "sub/hl2", "chain"):
            member = reader.getmember(name)
            assert member.islnk()
            assert read_member(reader, name) == orig
            assert read_member(reader, member.name) == orig
        assert reader.getmember("chain").linkname == "hl1"
        assert read_member(reader, "big_hl") == big
        assert reader.read_files(["hl1", "./chain", "big_hl", "sub"]) == {
            "hl1": orig,
            "chain": orig,
            "big_hl": big,
        }


@pytest.mark.parametrize(
    ("case", "name"),
    [
        ("hardlinks__default", "sub"),
        ("symlinks__default", "link_rel"),
        ("symlinks__default", "dirlink"),
        ("devices__default", "dev/null"),
        ("devices__default", "dev/sda"),
        ("devices__default", "dev/fifo"),
        ("dot_prefix__default", ""),
    ],
)
def test_extractfile_none_for_non_regular(case: str, name: str) -> None:
    with pystargz.open(DATA / f"{case}.esgz") as reader:
        assert reader.extractfile(name) is None
        assert reader.extractfile(reader.getmember(name)) is None


def test_empty_regular_file_reads_empty() -> None:
    with pystargz.open(DATA / "mixed__default.esgz") as reader:
        file = reader.extractfile("home/user/empty")
        assert file is not None
        assert file.read() == b""
        assert reader.read_files(["home/user/empty"]) == {"home/user/empty": b""}


def test_extractfile_is_a_seekable_binary_file() -> None:
    with pystargz.open(DATA / "chunks_4k__cs1000.esgz") as reader:
        member = reader.getmember("data/multi_3x4096_plus_123.bin")
        file = reader.extractfile(member)
        assert file is not None
        with file:
            assert file.readable()
            assert file.seekable()
            assert not file.writable()
            data = file.read()
            assert len(data) == member.size == 3 * 4096 + 123
            assert file.tell() == member.size
            assert file.seek(-123, io.SEEK_END) == 3 * 4096
            assert file.read() == data[-123:]
        assert file.closed


# ---- member attributes ----


def test_device_members() -> None:
    with pystargz.open(DATA / "devices__default.esgz") as reader:
        expected = {
            "dev/null": ("chr", 1, 3),
            "dev/zero": ("chr", 1, 5),
            "dev/sda": ("blk", 8, 0),
            "dev/bigdev": ("chr", 4095, 1048575),
            "dev/zerodev": ("blk", 0, 0),
        }
        for name, (kind, major, minor) in expected.items():
            member = reader.getmember(name)
            assert member.ischr() == (kind == "chr")
            assert member.isblk() == (kind == "blk")
            assert member.isdev()
            assert not any(
                check() for check in (member.isreg, member.isfile, member.isdir, member.issym, member.islnk)
            )
            assert (member.devmajor, member.devminor) == (major, minor)
            assert member.size == 0
        fifo = reader.getmember("dev/fifo")
        assert fifo.isfifo()
        assert fifo.isdev()
        assert (fifo.uid, fifo.gid, fifo.uname, fifo.gname) == (1000, 1000, "user", "user")
        assert reader.getmember("dev/sda").gname == "disk"
        regular = reader.getmember("dev/regular")
        assert regular.isreg()
        assert regular.isfile()
        assert not regular.isdev()
        assert regular.digest == vector_case("devices__default").record["files"]["dev/regular"]["sha256"]


def test_symlink_members() -> None:
    targets = {
        "link_rel": "target.txt",
        "dir/link_up": "../target.txt",
        "link_abs": "/etc/passwd",
        "dangling": "does/not/exist",
        "dirlink": "dir",
        "link_to_link": "link_rel",
    }
    with pystargz.open(DATA / "symlinks__default.esgz") as reader:
        for name, target in targets.items():
            member = reader.getmember(name)
            assert member.issym()
            assert not member.isreg()
            assert member.linkname == target
            assert member.mode == 0o777


def test_xattrs() -> None:
    with pystargz.open(DATA / "pax_xattrs__default.esgz") as reader:
        assert reader.getmember("xattr.txt").xattrs == {
            "trusted.overlay.opaque": b"y",
            "user.comment": b"hello world",
            "user.empty": b"",
        }
        capability = reader.getmember("cap_bin").xattrs["security.capability"]
        assert capability == bytes.fromhex("0100000200200000000000000000000000000000")
        assert reader.getmember("xdir").xattrs == {"user.dirattr": b"dir value"}
        assert reader.getmember("xlink").xattrs == {"user.onlink": b"l"}
        assert reader.getmember("xdir/comment.txt").xattrs == {"user.unicode": "värde ✓".encode()}
        assert reader.getmember("plain.txt").xattrs == {}


def test_modes_keep_special_bits() -> None:
    with pystargz.open(DATA / "dirs_modes__default.esgz") as reader:
        modes = {m.name: m.mode for m in reader}
        assert modes["bin/su"] == 0o4755
        assert modes["bin/sgid"] == 0o2755
        assert modes["tmp"] == 0o1777
        assert modes["shared"] == 0o2775
        assert modes["a/b/c"] == 0o555
        assert modes["a/private/secret"] == 0o600
        assert modes["a/nomode"] == 0
        # owner names are written once per id and back-filled
        assert (reader.getmember("a/private").uname, reader.getmember("a/private").gname) == ("user", "user")
        assert reader.getmember("shared/doc.txt").gname == "staff"


ROUND_TRIP_CASES = [
    ("devices__default", "devices.tar"),
    ("dirs_modes__default", "dirs_modes.tar"),
    ("symlinks__default", "symlinks.tar"),
    ("pax_xattrs__default", "pax_xattrs.tar"),
    ("hardlinks__default", "hardlinks.tar"),
    ("dot_prefix__default", "dot_prefix.tar"),
    ("mixed__default", "mixed.tar"),
]
TARINFO_FIELDS = (
    "type",
    "size",
    "mode",
    "uid",
    "gid",
    "uname",
    "gname",
    "mtime",
    "linkname",
    "devmajor",
    "devminor",
)


def xattrs_of(info: tarfile.TarInfo) -> dict[str, bytes]:
    prefix = "SCHILY.xattr."
    return {
        key[len(prefix) :]: value.encode("utf-8", "surrogateescape")
        for key, value in info.pax_headers.items()
        if key.startswith(prefix)
    }


@pytest.mark.parametrize(("case", "tar_name"), ROUND_TRIP_CASES)
def test_to_tarinfo_round_trip(case: str, tar_name: str) -> None:
    with tarfile.open(DATA / tar_name) as tar:
        originals = {clean_name(info.name): info for info in tar}
    with pystargz.open(DATA / f"{case}.esgz") as reader:
        members = [m for m in reader if m.name in originals]
        assert len(members) == len(originals)
        written = io.BytesIO()
        with tarfile.open(
            fileobj=written, mode="w", format=tarfile.PAX_FORMAT, errors="surrogateescape"
        ) as out:
            for member in members:
                info = member.to_tarinfo()
                assert info.name == member.name
                original = originals[member.name]
                for field in TARINFO_FIELDS:
                    assert getattr(info, field) == getattr(original, field), (member.name, field)
                assert xattrs_of(info) == xattrs_of(original) == member.xattrs
                out.addfile(info, reader.extractfile(member) if member.isreg() else None)
        written.seek(0)
        with tarfile.open(fileobj=written, errors="surrogateescape") as back:
            reread = back.getmembers()
        assert [info.name for info in reread] == [m.name for m in members]
        for member, info in zip(members, reread, strict=True):
            for field in TARINFO_FIELDS:
                assert getattr(info, field) == getattr(member, field), (member.name, field)
            assert xattrs_of(info) == member.xattrs


# ---- prefetch ----

PRIO_CASES = [
    "chunks_4k__cs4096_prio",
    "dirs_modes__prio",
    "mixed__prio",
    "one_small__prio",
    "zero_length__prio",
    "up_mixed__prio_mcs16384",
]


@pytest.mark.parametrize("case", PRIO_CASES)
def test_prefetch_range_on_prioritized_blobs(case: str) -> None:
    (landmark,) = [e for e in toc_entries(case) if e["name"] == ".prefetch.landmark"]
    with pystargz.open(DATA / f"{case}.esgz") as reader:
        assert reader.prefetch_range == (0, landmark["offset"])
        assert reader.prefetch_size == landmark["offset"] > 0


@pytest.mark.parametrize(
    "case", ["mixed__default", "one_small__default", "mixed__writer", "up_mixed__mcs16384"]
)
def test_no_prefetch_range_without_prioritized_files(case: str) -> None:
    with pystargz.open(DATA / f"{case}.esgz") as reader:
        assert reader.prefetch_range is None
        assert reader.prefetch_size == 0


# ---- extraction ----


def snapshot(root: Path) -> dict[str, tuple[Any, ...]]:
    """What a tree holds: kind, mode, mtime, content and link count of files, symlink targets, dir modes."""
    found: dict[str, tuple[Any, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            info = path.lstat()
            relative = path.relative_to(root).as_posix()
            if stat.S_ISLNK(info.st_mode):
                found[relative] = ("symlink", os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                found[relative] = ("dir", stat.S_IMODE(info.st_mode))
            elif stat.S_ISREG(info.st_mode):
                mode, mtime = stat.S_IMODE(info.st_mode), int(info.st_mtime)
                found[relative] = ("file", mode, mtime, path.read_bytes(), info.st_nlink)
            else:
                found[relative] = ("other", stat.S_IFMT(info.st_mode), stat.S_IMODE(info.st_mode))
    return found


def tarfile_extraction(
    tar_path: Path, dest: Path, skip: set[str], filter: Literal["data", "tar"] = "data"
) -> dict[str, Any]:
    with tarfile.open(tar_path) as tar:
        members = [info for info in tar if clean_name(info.name) not in skip]
        tar.extractall(dest, members=members, filter=filter)
    return snapshot(dest)


def test_extractall_reproduces_the_input_tar(tmp_path: Path) -> None:
    skip = {"home/user/pipe"}  # the data filter refuses FIFOs (tested below)
    expected = tarfile_extraction(DATA / "mixed.tar", tmp_path / "tarfile", skip)
    with pystargz.open(DATA / "mixed__default.esgz") as reader:
        chosen = [m for m in reader if m.name not in skip]
        reader.extractall(tmp_path / "ours", chosen)
    ours = snapshot(tmp_path / "ours")
    del ours[".no.prefetch.landmark"]
    assert ours == expected
    for name, file in vector_case("mixed__default").record["files"].items():
        assert sha256((tmp_path / "ours" / name).read_bytes()) == file["sha256"]
    assert ours["usr/lib/libfoo.so.1"] == ("symlink", "libfoo.so.1.2")
    assert ours["usr/bin/app"][1] == 0o644  # shares its inode with usr/bin/app2 (mode 0644), as in tarfile


@pytest.mark.parametrize(
    ("case", "tar_name", "filter"),
    [
        ("dirs_modes__default", "dirs_modes.tar", "data"),
        ("hardlinks__cs4096", "hardlinks.tar", "data"),
        ("dot_prefix__default", "dot_prefix.tar", "data"),
        ("pax_xattrs__default", "pax_xattrs.tar", "data"),
        ("unicode_spaces__default", "unicode_spaces.tar", "data"),
        ("longnames_pax__default", "longnames_pax.tar", "data"),
        ("symlinks__default", "symlinks.tar", "tar"),
        ("mixed__writer", "mixed.tar", "tar"),
    ],
)
def test_extractall_matches_tarfile(
    tmp_path: Path, case: str, tar_name: str, filter: Literal["data", "tar"]
) -> None:
    expected = tarfile_extraction(DATA / tar_name, tmp_path / "tarfile", set(), filter)
    with pystargz.open(DATA / f"{case}.esgz") as reader:
        reader.extractall(tmp_path / "ours", filter=filter)
    ours = snapshot(tmp_path / "ours")
    ours.pop(".no.prefetch.landmark", None)
    assert ours == expected
    if case == "dirs_modes__default":
        assert ours["bin/su"][1] == 0o755  # the data filter drops setuid
    if case == "hardlinks__cs4096":
        assert ours["chain"][4] == ours["orig.txt"][4] == 4  # one inode, four names


def test_extractall_refuses_fifo_like_tarfile(tmp_path: Path) -> None:
    with tarfile.open(DATA / "mixed.tar") as tar, pytest.raises(tarfile.SpecialFileError):
        tar.extractall(tmp_path / "tarfile", filter="data")
    with (
        pystargz.open(DATA / "mixed__default.esgz") as reader,
        pytest.raises(ExtractionFilterError) as caught,
    ):
        reader.extractall(tmp_path / "ours")
    assert isinstance(caught.value, tarfile.FilterError)
    assert isinstance(caught.value.__cause__, tarfile.SpecialFileError)
    assert caught.value.member == "home/user/pipe"


def test_extractall_with_tar_filter_makes_the_fifo(tmp_path: Path) -> None:
    expected = tarfile_extraction(DATA / "mixed.tar", tmp_path / "tarfile", set(), filter="tar")
    with pystargz.open(DATA / "mixed__default.esgz") as reader:
        reader.extractall(tmp_path / "ours", filter="tar")
    ours = snapshot(tmp_path / "ours")
    del ours[".no.prefetch.landmark"]
    assert ours == expected
    assert ours["home/user/pipe"][:2] == ("other", stat.S_IFIFO)


def test_extract_one_member(tmp_path: Path) -> None:
    with pystargz.open(DATA / "mixed__default.esgz") as reader:
        reader.extract("etc/hostname", tmp_path)
        hostname = read_member(reader, "etc/hostname")
        reader.extract(reader.getmember("usr/bin/app2"), tmp_path / "links")
        app = read_member(reader, "usr/bin/app")
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "etc",
        "etc/hostname",
        "links",
        "links/usr",
        "links/usr/bin",
        "links/usr/bin/app2",
    ]
    assert (tmp_path / "etc/hostname").read_bytes() == hostname
    # a hardlink whose target is not on disk is written as a copy, as tarfile does
    assert (tmp_path / "links/usr/bin/app2").read_bytes() == app


def test_extract_implicit_parents(tmp_path: Path) -> None:
    blob = make_blob([BlobFile("a/b/c.txt", b"content", mode=0o640)])
    with pystargz.open(blob) as reader:
        reader.extractall(tmp_path)
    assert (tmp_path / "a/b/c.txt").read_bytes() == b"content"
    assert stat.S_IMODE((tmp_path / "a/b/c.txt").stat().st_mode) == 0o640


def escape_attempt(dest: Path, files: list[BlobFile]) -> ExtractionFilterError:
    with pystargz.open(make_blob(files)) as reader, pytest.raises(ExtractionFilterError) as caught:
        reader.extractall(dest)
    return caught.value


@pytest.mark.parametrize(
    ("files", "refused", "cause"),
    [
        (
            [BlobFile("evil", type="symlink", link="/etc/passwd", mode=0o777)],
            "evil",
            tarfile.AbsoluteLinkError,
        ),
        (
            [BlobFile("d", type="dir", mode=0o755), BlobFile("d/up", type="symlink", link="../../outside")],
            "d/up",
            tarfile.LinkOutsideDestinationError,
        ),
        (
            [BlobFile("x", b"data"), BlobFile("hl", type="hardlink", link="../x")],
            "hl",
            tarfile.LinkOutsideDestinationError,
        ),
        ([BlobFile("dev", type="char", devmajor=1, devminor=3)], "dev", tarfile.SpecialFileError),
    ],
    ids=["absolute symlink", "symlink up", "hardlink up", "device"],
)
def test_data_filter_refuses_escapes(
    tmp_path: Path, files: list[BlobFile], refused: str, cause: type
) -> None:
    dest = tmp_path / "dest"
    error = escape_attempt(dest, files)
    assert isinstance(error, StargzError)
    assert isinstance(error, tarfile.FilterError)
    assert isinstance(error.__cause__, cause)
    assert error.member == refused
    assert refused in str(error)
    assert sorted(os.listdir(tmp_path)) == ["dest"]


def test_absolute_and_dotdot_names_stay_inside(tmp_path: Path) -> None:
    """Names are cleaned as the Go reader cleans them, so they cannot leave the destination."""
    dest = tmp_path / "dest"
    files = [BlobFile("/abs/file", b"abs"), BlobFile("../../evil", b"evil"), BlobFile("a/../../b", b"b")]
    with pystargz.open(make_blob(files)) as reader:
        assert reader.getnames() == ["abs/file", "evil", "b"]
        reader.extractall(dest)
    assert sorted(os.listdir(tmp_path)) == ["dest"]
    assert (dest / "abs/file").read_bytes() == b"abs"
    assert (dest / "evil").read_bytes() == b"evil"
    assert (dest / "b").read_bytes() == b"b"


def test_symlink_chain_cannot_escape(tmp_path: Path) -> None:
    """A link through an earlier link of the same layer cannot lead outside the destination.

    "s" -> "." is inside; "esc" -> "s/.." looks inside while "s" does not exist yet, but once
    "s" is on disk it is the destination's parent.  Members are filtered just before each is
    written (as tarfile does), so "esc" is refused and nothing lands outside.
    """
    files = [
        BlobFile("s", type="symlink", link=".", mode=0o777),
        BlobFile("esc", type="symlink", link="s/..", mode=0o777),
        BlobFile("esc/pwned", b"written outside the destination"),
    ]
    blob = make_blob(files)
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar, pytest.raises(tarfile.FilterError):
        tar.extractall(tmp_path / "tarfile", filter="data")
    dest = tmp_path / "dest"
    try:
        with pystargz.open(blob) as reader:
            reader.extractall(dest)
    except ExtractionFilterError:
        pass
    assert not (tmp_path / "pwned").exists(), "extractall wrote a file outside its destination"
    assert sorted(os.listdir(tmp_path)) == ["dest", "tarfile"]


def test_unknown_filter_name(tmp_path: Path) -> None:
    with (
        pystargz.open(DATA / "one_small__default.esgz") as reader,
        pytest.raises(ValueError, match="filter"),
    ):
        reader.extractall(tmp_path, filter="nonsense")  # type: ignore[arg-type]


def test_callable_filter(tmp_path: Path) -> None:
    seen: list[str] = []

    def only_text(info: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
        seen.append(info.name)
        return info if info.name.endswith(".txt") else None

    with pystargz.open(DATA / "symlinks__default.esgz") as reader:
        reader.extractall(tmp_path, filter=only_text)
        assert set(seen) == {m.name for m in reader} - {""}
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "dir",
        "dir/inner.txt",
        "target.txt",
    ]


def test_members_are_stargz_infos() -> None:
    with pystargz.open(DATA / "one_small__default.esgz") as reader:
        for member in reader:
            assert isinstance(member, StargzInfo)
            assert repr(member).startswith("<StargzInfo ")
        assert "estargz" in repr(reader)


def test_is_stargz() -> None:
    assert pystargz.is_stargz(DATA / "mixed__default.esgz")
    assert pystargz.is_stargz(vector_case("mixed__legacy").blob.read_bytes())
    assert pystargz.is_stargz(make_blob([BlobFile("a", b"a")]))
    assert pystargz.is_stargz(DATA / "mixed__zstd.esgz")
    for not_ours in ("up_mixed__ext.esgz", "mixed.tar"):  # an external TOC needs its TOC blob
        assert not pystargz.is_stargz(DATA / not_ours)
    assert not pystargz.is_stargz(b"")
