"""Safe extraction: every refusal of tarfile's filters, setuid bits, hostile attributes, whiteouts."""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
from pathlib import Path
from typing import Any

import pytest

import pystargz
from pystargz import ExtractionFilterError, StargzError, TOCError
from pystargz.errors import FILTER_ERRORS, filter_error
from tests.blobs import BlobFile, assemble, build_payload, make_blob, payload_and_entries, toc_bytes

SECRET = b"outside the destination"


def extract(blob: bytes, dest: Path, **options: Any) -> None:
    with pystargz.open(blob) as reader:
        reader.extractall(dest, **options)


def listing(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


# ---- one class per refusal, caught by either except clause ----

REFUSALS = {
    "absolute symlink": (
        [BlobFile("evil", type="symlink", link="/etc/passwd", mode=0o777)],
        "evil",
        pystargz.AbsoluteLinkError,
        tarfile.AbsoluteLinkError,
    ),
    "absolute hardlink": (
        [BlobFile("x", b"data"), BlobFile("hl", type="hardlink", link="/x")],
        "hl",
        pystargz.AbsoluteLinkError,
        tarfile.AbsoluteLinkError,
    ),
    "symlink up": (
        [BlobFile("d", type="dir", mode=0o755), BlobFile("d/up", type="symlink", link="../../outside")],
        "d/up",
        pystargz.LinkOutsideDestinationError,
        tarfile.LinkOutsideDestinationError,
    ),
    "hardlink outside": (
        [BlobFile("x", b"data"), BlobFile("hl", type="hardlink", link="../x")],
        "hl",
        pystargz.LinkOutsideDestinationError,
        tarfile.LinkOutsideDestinationError,
    ),
    "symlink through an earlier symlink": (
        [
            BlobFile("s", type="symlink", link=".", mode=0o777),
            BlobFile("esc", type="symlink", link="s/..", mode=0o777),
            BlobFile("esc/pwned", SECRET),
        ],
        "esc",
        pystargz.LinkOutsideDestinationError,
        tarfile.LinkOutsideDestinationError,
    ),
    "char device": (
        [BlobFile("dev", type="char", devmajor=1, devminor=3)],
        "dev",
        pystargz.SpecialFileError,
        tarfile.SpecialFileError,
    ),
    "block device": (
        [BlobFile("sda", type="block", devmajor=8, devminor=0)],
        "sda",
        pystargz.SpecialFileError,
        tarfile.SpecialFileError,
    ),
    "fifo": ([BlobFile("pipe", type="fifo")], "pipe", pystargz.SpecialFileError, tarfile.SpecialFileError),
}


@pytest.mark.parametrize(("files", "refused", "ours", "theirs"), REFUSALS.values(), ids=REFUSALS.keys())
def test_each_refusal_has_its_class(
    tmp_path: Path, files: list[BlobFile], refused: str, ours: type[Exception], theirs: type[Exception]
) -> None:
    dest = tmp_path / "dest"
    blob = make_blob(files)
    with pytest.raises(theirs) as caught:  # code written for tarfile
        extract(blob, dest)
    error = caught.value
    assert type(error) is ours
    assert isinstance(error, StargzError)
    assert isinstance(error, ExtractionFilterError)
    assert isinstance(error.__cause__, theirs)
    assert error.member == refused
    assert error.tarinfo.name == refused
    assert repr(refused) in str(error)
    with pytest.raises(ours):  # code written for pystargz
        extract(blob, tmp_path / "again")
    assert sorted(os.listdir(tmp_path)) == ["again", "dest"]
    assert not (tmp_path / "pwned").exists()


def test_tarfile_agrees_on_each_refusal(tmp_path: Path) -> None:
    """The same members make tarfile's own extractall raise the same tarfile class."""
    import io

    for index, (files, _, _, theirs) in enumerate(REFUSALS.values()):
        with tarfile.open(fileobj=io.BytesIO(make_blob(files)), mode="r:gz") as tar, pytest.raises(theirs):
            tar.extractall(tmp_path / str(index), filter="data")


def test_outside_through_a_symlink_already_in_the_destination(tmp_path: Path) -> None:
    """Layers are applied on top of each other: a link an earlier layer left must not be followed out."""
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "pre").symlink_to(outside)
    with pytest.raises(tarfile.OutsideDestinationError) as caught:
        extract(make_blob([BlobFile("pre/file", SECRET)]), dest)
    assert type(caught.value) is pystargz.OutsideDestinationError
    assert caught.value.member == "pre/file"
    assert os.listdir(outside) == []


def test_tar_filter_allows_the_link_but_not_a_file_through_it(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    files = [
        BlobFile("esc", type="symlink", link=str(outside), mode=0o777),
        BlobFile("esc/pwned", SECRET),
    ]
    with pytest.raises(pystargz.OutsideDestinationError) as caught:
        extract(make_blob(files), tmp_path / "dest", filter="tar")
    assert caught.value.member == "esc/pwned"
    assert os.listdir(outside) == []


def test_a_custom_filters_refusals_are_mapped(tmp_path: Path) -> None:
    def refuse(info: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
        raise tarfile.AbsolutePathError(info)

    with pytest.raises(pystargz.AbsolutePathError) as caught:
        extract(make_blob([BlobFile("f", b"x")]), tmp_path, filter=refuse)
    assert isinstance(caught.value, tarfile.AbsolutePathError)

    def plain(info: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
        raise tarfile.FilterError("no")

    with pytest.raises(ExtractionFilterError) as plain_caught:
        extract(make_blob([BlobFile("f", b"x")]), tmp_path, filter=plain)
    assert type(plain_caught.value) is ExtractionFilterError
    assert plain_caught.value.tarinfo.name == "f"


def test_every_filter_error_of_this_python_has_a_class() -> None:
    theirs = {
        cls
        for cls in vars(tarfile).values()
        if isinstance(cls, type) and issubclass(cls, tarfile.FilterError) and cls is not tarfile.FilterError
    }
    assert {pair[0] for pair in FILTER_ERRORS} == theirs
    for tar_class, ours in FILTER_ERRORS:
        assert ours.__name__ == tar_class.__name__
        assert issubclass(ours, tar_class)
        assert issubclass(ours, StargzError)
        info = tarfile.TarInfo("m")
        refusal = tar_class(info) if tar_class.__init__.__code__.co_argcount == 2 else tar_class(info, "/p")
        mapped = filter_error(refusal, "m")
        assert type(mapped) is ours
        assert mapped.tarinfo is info
        assert str(refusal) in str(mapped)


# ---- modes and hostile attributes ----


def test_setuid_and_setgid_are_stripped(tmp_path: Path) -> None:
    files = [
        BlobFile("bin", type="dir", mode=0o2775),
        BlobFile("bin/su", b"#!/bin/sh\n", mode=0o4755),
        BlobFile("bin/sg", b"#!/bin/sh\n", mode=0o2711),
        BlobFile("tmp", type="dir", mode=0o1777),
    ]
    blob = make_blob(files)
    for filter_name in ("data", "tar"):
        dest = tmp_path / filter_name
        extract(blob, dest, filter=filter_name)
        for name in ("bin/su", "bin/sg", "bin", "tmp"):
            assert not stat.S_IMODE(os.lstat(dest / name).st_mode) & 0o7000, (filter_name, name)
        assert stat.S_IMODE(os.lstat(dest / "bin/su").st_mode) == 0o755
    extract(blob, tmp_path / "trusted", filter="fully_trusted")
    assert stat.S_IMODE(os.lstat(tmp_path / "trusted/bin/su").st_mode) == 0o4755


def blob_with_fields(files: list[BlobFile], index: int, **fields: Any) -> bytes:
    payload, entries = payload_and_entries(files)
    entries[index].update(fields)
    return assemble(payload, toc_bytes(entries))


@pytest.mark.parametrize("filter_name", ["data", "tar", "fully_trusted"])
def test_times_and_owners_beyond_this_system_do_not_fail(tmp_path: Path, filter_name: str) -> None:
    """The TOC allows any int64; os.utime and os.chown do not (OverflowError): the file is still written."""
    blob = blob_with_fields(
        [BlobFile("f", b"content")], 0, modtime="99999999-01-01T00:00:00Z", uid=2**40, gid=2**62
    )
    extract(blob, tmp_path, filter=filter_name)
    assert (tmp_path / "f").read_bytes() == b"content"


def test_device_numbers_beyond_this_system(tmp_path: Path) -> None:
    blob = blob_with_fields([BlobFile("dev", type="char", devmajor=1, devminor=3)], 0, devMajor=2**62)
    with pytest.raises(TOCError, match="'dev'"):
        extract(blob, tmp_path, filter="tar")


# ---- whiteouts ----


def lower_layer(dest: Path, outside: Path) -> None:
    """What earlier layers left in the destination."""
    for name in ("etc/foo", "etc/bar", "opq/old1", "opq/sub/old2", "gone/deep/file"):
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        (dest / name).write_bytes(b"lower " + name.encode())
    outside.mkdir()
    (outside / "victim").write_bytes(SECRET)
    (dest / "link").symlink_to(outside)


UPPER = [
    BlobFile("etc", type="dir", mode=0o755),
    BlobFile("etc/.wh.foo"),
    BlobFile("etc/baz", b"upper baz"),
    BlobFile("opq", type="dir", mode=0o755),
    BlobFile("opq/early", b"upper, before the opaque marker"),
    BlobFile("opq/.wh..wh..opq"),
    BlobFile("opq/new", b"upper new"),
    BlobFile(".wh.gone"),
    BlobFile(".wh.link"),
    BlobFile(".wh..wh.plnk", type="dir", mode=0o700),
]


def test_whiteouts_are_kept_as_files_by_default(tmp_path: Path) -> None:
    extract(make_blob(UPPER), tmp_path)
    whiteouts = {"etc/.wh.foo", "opq/.wh..wh..opq", ".wh.gone", ".wh.link", ".wh..wh.plnk"}
    assert whiteouts <= set(listing(tmp_path))
    assert (tmp_path / "etc/.wh.foo").read_bytes() == b""


def test_whiteouts_applied(tmp_path: Path) -> None:
    dest, outside = tmp_path / "dest", tmp_path / "outside"
    lower_layer(dest, outside)
    extract(make_blob(UPPER), dest, whiteouts="apply")
    assert listing(dest) == ["etc", "etc/bar", "etc/baz", "opq", "opq/early", "opq/new"]
    assert (dest / "etc/bar").read_bytes() == b"lower etc/bar"
    assert (dest / "opq/early").read_bytes() == b"upper, before the opaque marker"
    assert (outside / "victim").read_bytes() == SECRET  # the link went, not what it pointed at


def test_whiteout_does_not_remove_what_the_same_layer_wrote(tmp_path: Path) -> None:
    files = [BlobFile("a", b"upper a"), BlobFile(".wh.a")]
    extract(make_blob(files), tmp_path, whiteouts="apply")
    assert listing(tmp_path) == ["a"]


def test_whiteout_through_a_symlink_to_outside_is_refused(tmp_path: Path) -> None:
    dest, outside = tmp_path / "dest", tmp_path / "outside"
    lower_layer(dest, outside)
    with pytest.raises(pystargz.OutsideDestinationError):
        extract(make_blob([BlobFile("link/.wh.victim")]), dest, whiteouts="apply")
    with pytest.raises(pystargz.OutsideDestinationError):
        extract(make_blob([BlobFile("link/.wh..wh..opq")]), dest, whiteouts="apply")
    assert (outside / "victim").read_bytes() == SECRET


@pytest.mark.parametrize("name", ["d/.wh..", "d/.wh...", "d/.wh."])
def test_whiteout_naming_no_sibling_is_refused(tmp_path: Path, name: str) -> None:
    dest = tmp_path / "dest"
    (dest / "d").mkdir(parents=True)
    (dest / "keep").write_bytes(b"x")
    with pytest.raises(ExtractionFilterError, match="names no sibling"):
        extract(make_blob([BlobFile("d", type="dir", mode=0o755), BlobFile(name)]), dest, whiteouts="apply")
    assert listing(dest) == ["d", "keep"]


def test_unknown_whiteout_mode(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="whiteouts"):
        extract(make_blob([BlobFile("f", b"x")]), tmp_path, whiteouts="drop")


# ---- later members replace earlier ones; file-system failures name the member ----


def test_a_file_replaces_an_earlier_directory_and_the_other_way_round(tmp_path: Path) -> None:
    files = [
        BlobFile("x", type="dir", mode=0o755),
        BlobFile("x/inner", b"inner"),
        BlobFile("x", b"x is a file now"),
        BlobFile("y", b"y was a file"),
        BlobFile("y", type="dir", mode=0o700),
    ]
    extract(make_blob(files), tmp_path)
    assert (tmp_path / "x").read_bytes() == b"x is a file now"
    assert (tmp_path / "y").is_dir()


def test_a_file_replaces_a_symlink_without_following_it(tmp_path: Path) -> None:
    files = [
        BlobFile("target", b"original target"),
        BlobFile("l", type="symlink", link="target", mode=0o777),
        BlobFile("l", b"l is a file now"),
    ]
    extract(make_blob(files), tmp_path)
    assert not (tmp_path / "l").is_symlink()
    assert (tmp_path / "l").read_bytes() == b"l is a file now"
    assert (tmp_path / "target").read_bytes() == b"original target"


def test_file_system_failures_name_the_member(tmp_path: Path) -> None:
    (tmp_path / "p").write_bytes(b"a file where the layer wants a directory")
    with pytest.raises(pystargz.ExtractionError) as caught:
        extract(make_blob([BlobFile("p/x", b"x")]), tmp_path)
    error = caught.value
    assert isinstance(error, OSError)
    assert isinstance(error, StargzError)
    assert isinstance(error.__cause__, FileExistsError)
    assert error.member == "p/x"
    assert error.errno == error.__cause__.errno
    assert "'p/x'" in str(error)


# ---- large files are written as they are inflated ----

BIG = [
    BlobFile("big1", bytes(range(256)) * 64),
    BlobFile("small", b"small"),
    BlobFile("big2", b"text that repeats " * 1500),
    BlobFile("hl", type="hardlink", link="big2"),
]


@pytest.fixture
def tiny_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files over 1000 bytes count as large, and a read window holds at most 3000 bytes."""
    monkeypatch.setattr("pystargz.extract.BATCH_BYTES", 1000)
    monkeypatch.setattr("pystargz.fetch.REQUEST_OUTPUT", 3000)


@pytest.mark.usefixtures("tiny_windows")
def test_large_files_are_streamed(tmp_path: Path) -> None:
    blob = make_blob(BIG, chunk_size=2000)
    with pystargz.open(blob) as reader:
        assert list(map(len, reader.iter_chunks("big1"))) == [2000] * 8 + [384]
        assert reader.read_files(["big1", "big2"]) == {"big1": BIG[0].data, "big2": BIG[2].data}
        reader.extractall(tmp_path)
    for file in BIG[:3]:
        assert (tmp_path / file.name).read_bytes() == file.data
    assert (tmp_path / "hl").read_bytes() == BIG[2].data


@pytest.mark.usefixtures("tiny_windows")
def test_a_streamed_file_that_fails_verification_is_removed(tmp_path: Path) -> None:
    _, toc = build_payload(BIG, chunk_size=2000, level=0)
    swapped = [BIG[0], BIG[1], BlobFile("big2", b"TEXT THAT REPEATS " * 1500)]
    forged, _ = build_payload(swapped, chunk_size=2000, level=0)
    blob = assemble(forged, toc.to_json())
    digest = "sha256:" + hashlib.sha256(toc.to_json()).hexdigest()
    with pystargz.open(blob, toc_digest=digest) as reader, pytest.raises(pystargz.VerificationError):
        reader.extractall(tmp_path)
    assert (tmp_path / "big1").read_bytes() == BIG[0].data
    assert not (tmp_path / "big2").exists()
