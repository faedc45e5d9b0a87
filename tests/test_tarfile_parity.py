"""Python's tarfile as an independent oracle for the reader.

An eStargz or legacy-stargz blob is still a valid ``tar.gz``: tarfile reads it
from the first byte to the TOC entry, never looking at the TOC, while the
reader looks only at the TOC and the chunks it points to.  Both must describe
the same members with the same metadata and contents.

One thing tarfile sees that a TOC cannot say: an *empty* owner name after a
non-empty one for the same id.  The Go writer records ``userName`` /
``groupName`` only when the name for an id changes to a non-empty one, and
readers (Go's and ours) fill a missing name with the last one seen for the id.
So the oracle applies the same rule to tarfile's names (``_OwnerNames``); see
``test_empty_owner_name_is_backfilled`` for where the vectors hit it.
"""

from __future__ import annotations

import io
import math
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import pystargz
from pystargz import StargzReader
from pystargz.members import clean_name
from pystargz.toc import PREFETCH_LANDMARK, TOC_TAR_NAME
from tests.interop.peer import GoPeer
from tests.vectors import (
    BuiltLayer,
    VectorCase,
    build_layer,
    read_file,
    sha256_digest,
    vector_case,
    vector_params,
)

XATTR_PREFIX = "SCHILY.xattr."


@dataclass
class _OwnerNames:
    """The owner names a TOC reader reports: the tar's, or the last non-empty one for the id."""

    last: dict[int, str] = field(default_factory=dict)

    def seen(self, owner_id: int, name: str) -> str:
        if name:
            self.last[owner_id] = name
            return name
        return self.last.get(owner_id, "")


def _go_seconds(mtime: float) -> int:
    """The TOC keeps RFC 3339 seconds, rounded to the nearest (halves up) as Go's Time.Round does."""
    return math.floor(mtime + 0.5)


def _xattrs(info: tarfile.TarInfo) -> dict[str, bytes]:
    """``SCHILY.xattr.*`` PAX records; tarfile decodes undecodable bytes with surrogateescape."""
    return {
        key[len(XATTR_PREFIX) :]: value.encode("utf-8", "surrogateescape")
        for key, value in info.pax_headers.items()
        if key.startswith(XATTR_PREFIX)
    }


def _tar_view(tar: tarfile.TarFile, info: tarfile.TarInfo, uname: str, gname: str) -> dict[str, Any]:
    view: dict[str, Any] = {
        "type": tarfile.REGTYPE if info.isreg() else info.type,
        "mode": info.mode,
        "uid": info.uid,
        "gid": info.gid,
        "uname": uname,
        "gname": gname,
        "linkname": info.linkname,
        "mtime": _go_seconds(info.mtime),
        "xattrs": _xattrs(info),
    }
    if info.ischr() or info.isblk():
        view["dev"] = (info.devmajor, info.devminor)
    if info.isreg():
        view["size"] = info.size
    if info.isreg() or info.islnk():
        content = tar.extractfile(info)
        assert content is not None, info.name
        view["sha256"] = sha256_digest(content.read())
    return view


def tarfile_members(blob: Path) -> dict[str, dict[str, Any]]:
    """What tarfile sees in ``blob``: cleaned name -> metadata and content digest (last entry wins).

    Read in one forward pass, contents included, so a large blob is inflated once.
    """
    unames, gnames = _OwnerNames(), _OwnerNames()
    members: dict[str, dict[str, Any]] = {}
    with tarfile.open(blob, "r:gz") as tar:
        for info in tar:
            if info.name == TOC_TAR_NAME:
                continue
            uname, gname = unames.seen(info.uid, info.uname), gnames.seen(info.gid, info.gname)
            members[clean_name(info.name)] = _tar_view(tar, info, uname, gname)
    return members


def reader_members(reader: StargzReader, names: list[str]) -> dict[str, dict[str, Any]]:
    """The same view of ``names`` through the reader (``getmember``: last entry wins)."""
    members: dict[str, dict[str, Any]] = {}
    for name in names:
        member = reader.getmember(name)
        view: dict[str, Any] = {
            "type": member.type,
            "mode": member.mode,
            "uid": member.uid,
            "gid": member.gid,
            "uname": member.uname,
            "gname": member.gname,
            "linkname": member.linkname,
            "mtime": member.mtime,
            "xattrs": member.xattrs,
        }
        if member.ischr() or member.isblk():
            view["dev"] = (member.devmajor, member.devminor)
        if member.isreg():
            view["size"] = member.size
        if member.isreg() or member.islnk():
            view["sha256"] = sha256_digest(read_file(reader, member.name))
        members[name] = view
    return members


def assert_tarfile_parity(reader: StargzReader, blob: Path) -> None:
    """The reader's names, metadata and contents are tarfile's (the root "" aside in the names)."""
    expected = tarfile_members(blob)
    assert set(reader.getnames()) - {""} == set(expected) - {""}
    ours = reader_members(reader, list(expected))
    mismatches = [
        (name, key, view.get(key), ours[name].get(key))
        for name, view in expected.items()
        for key in sorted(view.keys() | ours[name].keys())
        if view.get(key) != ours[name].get(key)
    ]
    assert mismatches == [], "(name, field, tarfile, reader)"


@pytest.mark.parametrize("case", vector_params())
def test_vector_matches_tarfile(case: VectorCase) -> None:
    with pystargz.open(case.blob) as reader:
        assert_tarfile_parity(reader, case.blob)


@pytest.mark.parametrize("case", ["mixed__prio", "dirs_modes__prio", "up_mixed__prio_mcs16384"])
def test_empty_owner_name_is_backfilled(case: str) -> None:
    """Build adds ``.prefetch.landmark`` with no owner names after root-owned prioritized files.

    Its tar header says uname "" and gname "", but its TOC entry can only omit
    ``userName`` / ``groupName``, which means "unchanged": a TOC reader
    reports "root", the last names recorded for uid 0 and gid 0.
    """
    blob = vector_case(case).blob
    with tarfile.open(blob, "r:gz") as tar:
        landmark = tar.getmember(PREFETCH_LANDMARK)
        assert (landmark.uid, landmark.gid, landmark.uname, landmark.gname) == (0, 0, "", "")
    with pystargz.open(blob) as reader:
        member = reader.getmember(PREFETCH_LANDMARK)
        assert member.entry is not None
        assert (member.entry.user_name, member.entry.group_name) == ("", "")
        assert (member.uid, member.gid, member.uname, member.gname) == (0, 0, "root", "root")
        earlier = reader.toc.entries[: reader.toc.entries.index(member.entry)]
        assert any(e.uid == 0 and e.user_name == "root" for e in earlier)
        assert any(e.gid == 0 and e.group_name == "root" for e in earlier)


@pytest.mark.go
def test_owner_names_backfilled_per_id(go_peer: GoPeer, tmp_path: Path) -> None:
    """User names are filled per uid and group names per gid, from their own maps.

    The vectors cannot tell: wherever they omit a name, uid == gid and the user
    and group names are equal.  Go's reader fills a missing ``groupName`` from
    the *user* names by gid, which would make ``b.txt``'s group "alice" here.
    """
    owners = [
        ("a.txt", 1000, 1000, "alice", "staff"),
        ("b.txt", 1000, 1000, "alice", "staff"),
        ("c.txt", 2000, 1000, "bob", "staff"),
        ("d.txt", 1000, 2000, "alice", "devs"),
        ("e.txt", 2000, 2000, "bob", "devs"),
    ]
    tar_path = tmp_path / "owners.tar"
    with tarfile.open(tar_path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, uid, gid, uname, gname in owners:
            info = tarfile.TarInfo(name)
            info.uid, info.gid, info.uname, info.gname, info.size = uid, gid, uname, gname, len(name)
            tar.addfile(info, io.BytesIO(name.encode()))
    blob = build_layer(go_peer, tar_path, tmp_path / "owners.esgz").blob
    with pystargz.open(blob) as reader:
        omitted = {e.name for e in reader.toc.entries if e.type == "reg" and not e.group_name}
        assert {"b.txt", "c.txt", "e.txt"} <= omitted
        assert_tarfile_parity(reader, blob)
        assert [(reader.getmember(n).uname, reader.getmember(n).gname) for n, *_ in owners] == [
            (uname, gname) for _, _, _, uname, gname in owners
        ]


@pytest.mark.go
@pytest.mark.slow
def test_real_layer_matches_tarfile(real_layer: BuiltLayer) -> None:
    with pystargz.open(real_layer.blob) as reader:
        assert len(reader.getmembers()) >= 1000
        assert_tarfile_parity(reader, real_layer.blob)
