"""Smoke tests of the live Go peer against the recorded reference vectors.

They check that the peer reproduces what the reference wrapper recorded in
``tests/data`` (same Go package, same Go version), so that later interop tests
can trust it. The peer must build: a missing Go toolchain is a failure, not a
skip.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests.interop.peer import BenchWhat, GoPeer, GoPeerError

pytestmark = pytest.mark.go

DATA = Path(__file__).resolve().parent.parent / "data"

# Flags of the reference wrapper ("esgzref") that the peer's build does not
# have: those cases were not made with estargz.Build's plain options.
_NON_BUILD_FLAGS = {
    "--writer",
    "--legacy",
    "--legacy-footer",
    "--zstdchunked",
    "--min-chunk-size",
    "--parallelism",
    "--external-toc",
    "--toc-out",
}


@cache
def _record(case: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads((DATA / f"{case}.json").read_text(encoding="utf-8"))
    return value


def _cases() -> list[str]:
    index: dict[str, Any] = json.loads((DATA / "index.json").read_text(encoding="utf-8"))
    return [c for c in index["cases"] if (DATA / f"{c}.esgz").is_file() and "build_error" not in _record(c)]


def _uses_inner_offset(case: str) -> bool:
    """``up_*`` blobs built with a min chunk size pack several chunks into one
    gzip member (``innerOffset``), which v0.12 does not understand."""
    return case.startswith("up_") and bool(_record(case)["options"].get("min_chunk_size"))


def _format(case: str) -> str:
    fmt: str = _record(case)["options"]["format"]
    return fmt


CASES = _cases()
# Blobs Go v0.12 can open and read (external-TOC blobs have a footer without
# a TOC offset, which v0.12 cannot parse).
V012_READABLE = [c for c in CASES if _format(c) != "estargz-externaltoc" and not _uses_inner_offset(c)]
ESTARGZ = [c for c in V012_READABLE if _format(c) == "estargz"]
OTHER_FORMATS = [c for c in V012_READABLE if _format(c) != "estargz"]
INNER_OFFSET = [c for c in CASES if _format(c) == "estargz" and _uses_inner_offset(c)]
BUILD_CASES = [
    c
    for c in CASES
    if _record(c)["options"]["mode"] == "build"
    and not _NON_BUILD_FLAGS.intersection(_record(c)["esgzref_args"])
    and (_record(c)["input_tar"] or _record(c)["input_tar_gz"])
]


def test_vectors_present() -> None:
    assert (DATA / "mixed.tar").is_file()
    assert "mixed__default" in ESTARGZ
    assert len(ESTARGZ) >= 50
    assert INNER_OFFSET
    assert BUILD_CASES


def test_build_mixed_default_matches_record(go_peer: GoPeer, tmp_path: Path) -> None:
    rec = _record("mixed__default")["build"]
    out = tmp_path / "mixed.esgz"
    res = go_peer.build(DATA / "mixed.tar", out, procs=1)
    assert res["toc_digest"] == rec["toc_digest"]
    assert res["blob_digest"] == rec["blob_digest"]
    assert res["diff_id"] == rec["diff_id"]
    assert res["size"] == rec["size"] == out.stat().st_size
    assert res["blob_digest"] == "sha256:" + hashlib.sha256(out.read_bytes()).hexdigest()
    assert res["seconds"] > 0


@pytest.mark.parametrize("case", BUILD_CASES)
def test_build_matches_record(go_peer: GoPeer, tmp_path: Path, case: str) -> None:
    rec = _record(case)
    opts = rec["options"]
    src = DATA / (rec["input_tar"] or rec["input_tar_gz"])
    res = go_peer.build(
        src,
        tmp_path / "out.esgz",
        chunk_size=opts["chunk_size"],
        level=opts["level"],
        prioritized=opts["prioritized"],
        allow_missing=opts["allow_prioritize_not_found"],
        procs=opts["gomaxprocs"],
    )
    for key in ("toc_digest", "diff_id", "blob_digest", "size"):
        assert res[key] == rec["build"][key], key
    if opts["allow_prioritize_not_found"]:
        assert res["missed_prioritized"] == rec["build"].get("missed_prioritized", [])


def _counts(v: dict[str, Any]) -> dict[str, Any]:
    return {k: v.get(k) for k in ("ok", "files", "empty_files", "chunks", "bytes", "verify_toc_error")}


@pytest.mark.parametrize("case", ESTARGZ)
def test_verify_estargz(go_peer: GoPeer, case: str) -> None:
    rec = _record(case)
    res = go_peer.verify(DATA / f"{case}.esgz", rec["build"]["toc_digest"])
    assert res["ok"] is True
    assert res["errors"] == []
    assert res["toc_digest"] == rec["build"]["toc_digest"]
    assert _counts(res) == _counts(rec["verify"])


@pytest.mark.parametrize("case", OTHER_FORMATS)
def test_verify_other_formats_as_recorded(go_peer: GoPeer, case: str) -> None:
    # Legacy stargz and zstd:chunked: Go's verdict must equal the recorded one
    # (a legacy TOC without chunkDigest fails VerifyTOC once a file has chunks).
    rec = _record(case)
    res = go_peer.verify(DATA / f"{case}.esgz", rec["build"]["toc_digest"], check=False)
    assert _counts(res) == _counts(rec["verify"])


@pytest.mark.parametrize("case", INNER_OFFSET)
def test_verify_rejects_inner_offset(go_peer: GoPeer, case: str) -> None:
    # v0.12's Verifiers keys chunk digests by offset and refuses shared offsets.
    rec = _record(case)
    blob = DATA / f"{case}.esgz"
    with pytest.raises(GoPeerError) as excinfo:
        go_peer.verify(blob, rec["build"]["toc_digest"])
    assert excinfo.value.returncode == 1
    report = excinfo.value.result
    assert report is not None
    assert report["ok"] is False
    assert report["verify_toc_error"] == rec["verify"]["verify_toc_error"]
    assert "found twice" in report["verify_toc_error"]


@pytest.mark.parametrize("case", V012_READABLE)
def test_files_match_record(go_peer: GoPeer, case: str) -> None:
    got = go_peer.files(DATA / f"{case}.esgz")
    want = _record(case)["files"]
    assert sorted(got) == sorted(want)
    for name, info in want.items():
        assert got[name]["type"] == "reg"
        assert (got[name]["size"], got[name]["sha256"], got[name]["chunks"]) == (
            info["size"],
            info["sha256"],
            info["chunks"],
        ), name


def test_cat_matches_record(go_peer: GoPeer) -> None:
    blob = DATA / "mixed__default.esgz"
    files = _record("mixed__default")["files"]
    for name in ("usr/bin/app", "etc/hostname", "home/user/empty"):
        data = go_peer.cat(blob, name)
        assert len(data) == files[name]["size"]
        assert "sha256:" + hashlib.sha256(data).hexdigest() == files[name]["sha256"]
    # A hardlink resolves to its target, with or without a leading "/".
    assert go_peer.cat(blob, "/usr/bin/app2") == go_peer.cat(blob, "usr/bin/app")


def test_names_starting_with_dash(go_peer: GoPeer, tmp_path: Path) -> None:
    # Positional arguments go after "--", so they are never taken for flags.
    src = tmp_path / "dash.tar"
    with tarfile.open(src, "w", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo("-x")
        info.size = 5
        tf.addfile(info, io.BytesIO(b"dash\n"))
    blob = tmp_path / "-dash.esgz"
    go_peer.build(src, blob)
    assert go_peer.cat(blob, "-x") == b"dash\n"
    assert go_peer.files(blob)["-x"]["size"] == 5
    assert go_peer.verify(blob)["ok"] is True


def test_cat_missing_file_raises(go_peer: GoPeer) -> None:
    with pytest.raises(GoPeerError, match="no-such-file") as excinfo:
        go_peer.cat(DATA / "mixed__default.esgz", "no-such-file")
    assert excinfo.value.returncode == 1


def test_errors_carry_stderr(go_peer: GoPeer, tmp_path: Path) -> None:
    not_a_blob = tmp_path / "junk.esgz"
    not_a_blob.write_bytes(b"not a stargz blob" * 10)
    with pytest.raises(GoPeerError) as excinfo:
        go_peer.files(not_a_blob)
    assert "estargz.Open" in excinfo.value.stderr
    with pytest.raises(GoPeerError, match=r"estargz\.Build"):
        go_peer.build(DATA / "mixed.tar", tmp_path / "o.esgz", prioritized=["no/such/file"])
    res = go_peer.build(
        DATA / "mixed.tar", tmp_path / "o.esgz", prioritized=["no/such/file"], allow_missing=True
    )
    assert res["missed_prioritized"] == ["no/such/file"]


def test_verify_wrong_toc_digest_fails(go_peer: GoPeer) -> None:
    res = go_peer.verify(DATA / "mixed__default.esgz", "sha256:" + "0" * 64, check=False)
    assert res["ok"] is False
    assert "invalid TOC JSON" in res["verify_toc_error"]


@pytest.mark.parametrize("what", ["open", "readall", "readsome"])
def test_bench(go_peer: GoPeer, what: BenchWhat) -> None:
    blob = DATA / "mixed__default.esgz"
    names = ["usr/bin/app", "etc/hostname"] if what == "readsome" else None
    res = go_peer.bench(blob, what, names=names, repeat=3)
    assert res["what"] == what
    assert res["repeat"] == 3
    assert len(res["seconds"]) == 3
    assert all(s > 0 for s in res["seconds"])
    assert res["median"] > 0
    assert min(res["seconds"]) <= res["median"] <= max(res["seconds"])


def test_bench_chunk_reads(go_peer: GoPeer) -> None:
    res = go_peer.bench(DATA / "big_chunks_4m__default.esgz", "readall", repeat=1, chunk_reads=True)
    assert res["median"] > 0
