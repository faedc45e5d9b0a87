"""The writer against the Go reference's own output, against tarfile, and against itself."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pystargz
from pystargz.members import clean_name
from tests.vectors import DATA, VectorCase, read_file, regular_names, vector_cases

Entries = list[dict[str, Any]]


def without_offsets(entries: Entries | None) -> Entries:
    """A TOC's entries minus what may differ between two writers: member offsets."""
    return [{k: v for k, v in e.items() if k not in ("offset", "innerOffset")} for e in entries or []]


def input_of(case: VectorCase) -> Path:
    name = case.record.get("input_tar") or case.record.get("input_tar_gz")
    assert isinstance(name, str), f"{case.name} stores no input"
    return DATA / name


def cases(mode: str, formats: tuple[str, ...]) -> list[Any]:
    """Vector cases built by Go in ``mode`` with one part (GOMAXPROCS 1) and no min chunk size."""
    chosen = []
    for case in vector_cases(formats):
        options = case.record["options"]
        plain = not options.get("min_chunk_size") and not options.get("parallelism")
        if options["mode"] == mode and options.get("gomaxprocs") == 1 and plain:
            chosen.append(pytest.param(case, id=case.name))
    return chosen


@pytest.mark.parametrize("case", cases("build", ("estargz",)))
def test_build_writes_the_toc_go_writes(case: VectorCase, tmp_path: Path) -> None:
    """Same entries, same order, same fields as Go's Build: only offsets may differ."""
    options = case.record["options"]
    blob = tmp_path / "out.esgz"
    result = pystargz.build(
        input_of(case),
        blob,
        chunk_size=options["chunk_size"],
        compression_level=max(options["level"], 0),
        prioritized_files=options["prioritized"],
    )
    with pystargz.open(blob) as reader:
        assert without_offsets(reader.toc.to_dict()["entries"]) == without_offsets(
            json.loads(case.toc_json)["entries"]
        )
        assert reader.toc_digest == result.toc_digest
        for name, recorded in case.files.items():
            content = read_file(reader, name)
            assert "sha256:" + hashlib.sha256(content).hexdigest() == recorded["sha256"], name


@pytest.mark.parametrize("case", cases("writer", ("estargz", "stargz-legacy")))
def test_writer_append_tar_writes_the_toc_go_writes(case: VectorCase, tmp_path: Path) -> None:
    options = case.record["options"]
    legacy = case.format == "stargz-legacy"
    blob = tmp_path / "out.esgz"
    with pystargz.open(
        blob,
        "w",
        chunk_size=options["chunk_size"],
        compression_level=max(options["level"], 0),
        format="stargz" if legacy else "estargz",
    ) as writer:
        writer.append_tar(input_of(case))
    with pystargz.open(blob) as reader:
        assert reader.format == ("stargz" if legacy else "estargz")
        assert without_offsets(reader.toc.to_dict()["entries"]) == without_offsets(
            json.loads(case.toc_json)["entries"]
        )


# ---- min_chunk_size: small files packed into shared members (innerOffset) ----
# No Go interop here: the Go peer is v0.12, which cannot read innerOffset blobs; the stored
# up_* vectors (newest upstream) are the reference instead.


def packed_cases(modes: tuple[str, ...] = ("build", "writer")) -> list[Any]:
    """The up_* cases Go built in one of ``modes`` with a min chunk size, internal TOC, one part."""
    chosen = []
    for case in vector_cases(("estargz",)):
        options = case.record["options"]
        if options.get("min_chunk_size") and not options.get("external_toc") and options["mode"] in modes:
            chosen.append(pytest.param(case, id=case.name))
    return chosen


def build_like(case: VectorCase, out: Path | io.BytesIO, **overrides: Any) -> None:
    """Builds the case's input with its options (Build or Writer mode), ``overrides`` on top."""
    options = case.record["options"]
    settings_ = {
        "chunk_size": options["chunk_size"],
        "compression_level": max(options["level"], 0),
        "min_chunk_size": options.get("min_chunk_size", 0),
        **overrides,
    }
    if options["mode"] == "writer":
        with pystargz.open(out, "w", **settings_) as writer:
            writer.append_tar(input_of(case))
    else:
        pystargz.build(input_of(case), out, prioritized_files=options["prioritized"], **settings_)


def data_entries(entries: Entries) -> Entries:
    """Entries holding data (non-empty reg and chunk), in TOC order."""
    return [e for e in entries if e["type"] in ("reg", "chunk") and "chunkDigest" in e]


def landmark_index(entries: Entries) -> int:
    names = [e["name"] for e in entries]
    return next(i for i, n in enumerate(names) if n in (".prefetch.landmark", ".no.prefetch.landmark"))


def could_exceed(inner_offset: int, chunks_before: int, minimum: int) -> bool:
    """Whether any deflate could have reached ``minimum`` compressed bytes by ``inner_offset``.

    Deflate's worst case is stored blocks (5 bytes per 64 KiB), plus a few bytes per sync
    flush and the 10-byte gzip header: generous bounds make this compressor-independent.
    """
    return inner_offset + inner_offset // 100 + 16 * (chunks_before + 2) >= minimum


@pytest.mark.parametrize("case", packed_cases())
def test_min_chunk_size_writes_the_toc_go_writes(case: VectorCase, tmp_path: Path) -> None:
    """Same entries and fields as Go's packed TOC but offsets; files read back; packing holds."""
    blob = tmp_path / "out.esgz"
    build_like(case, blob)
    go_entries = json.loads(case.toc_json)["entries"]
    with pystargz.open(blob) as reader:
        ours = reader.toc.to_dict()["entries"]
        assert without_offsets(ours) == without_offsets(go_entries)
        for name, recorded in case.files.items():
            content = read_file(reader, name)
            assert "sha256:" + hashlib.sha256(content).hexdigest() == recorded["sha256"], name
    inner_by_member: dict[int, list[int]] = {}
    for entry in data_entries(ours):
        inner_by_member.setdefault(entry.get("offset", 0), []).append(entry.get("innerOffset", 0))
    for offset, inners in inner_by_member.items():
        assert inners == sorted(set(inners)), f"member at {offset}: innerOffsets {inners}"
        assert inners[0] == 0 or offset == 0, "a member opened by a chunk starts with it"
    assert any(len(inners) > 1 for inners in inner_by_member.values()), "nothing was packed"


@pytest.mark.parametrize("case", packed_cases(("build",)))
def test_min_chunk_size_packs_files_after_the_landmark_into_its_member(case: VectorCase) -> None:
    """The landmark opens a member; what Go packs after it, before any compressor could reach
    the threshold, is packed there by us too (with the same innerOffset)."""
    out = io.BytesIO()
    build_like(case, out)
    minimum = case.record["options"]["min_chunk_size"]
    go_entries = json.loads(case.toc_json)["entries"]
    with pystargz.open(out.getvalue()) as reader:
        ours = reader.toc.to_dict()["entries"]
    mark = landmark_index(go_entries)
    assert "innerOffset" not in ours[mark]
    assert ours[mark].get("offset", 0) > 0
    go_data, our_data = (data_entries(entries[mark:]) for entries in (go_entries, ours))
    checked = 0
    for count, (go, mine) in enumerate(zip(go_data[1:], our_data[1:], strict=True)):
        if go.get("offset") != go_entries[mark]["offset"]:
            break
        if could_exceed(go["innerOffset"], count + 1, minimum):
            break
        assert (mine.get("offset"), mine.get("innerOffset")) == (ours[mark]["offset"], go["innerOffset"])
        checked += 1
    if minimum >= 16384:
        assert checked > 0, "no file after the landmark is checkable"


def test_huge_min_chunk_size_packs_everything_after_the_landmark(tmp_path: Path) -> None:
    blob = tmp_path / "packed.esgz"
    pystargz.build(DATA / "up_mixed.tar", blob, chunk_size=4096, min_chunk_size=1 << 40)
    with pystargz.open(blob) as reader:
        entries = reader.toc.to_dict()["entries"]
        after = data_entries(entries[landmark_index(entries) :])
        assert len(after) > 10
        assert len({entry["offset"] for entry in after}) == 1
        assert [e.get("innerOffset", 0) for e in after] == sorted({e.get("innerOffset", 0) for e in after})
        for name in regular_names(reader):
            with tarfile.open(DATA / "up_mixed.tar") as tar:
                if name in tar.getnames():
                    source = tar.extractfile(name)
                    assert source is not None
                    assert read_file(reader, name) == source.read(), name


def test_min_chunk_size_zero_changes_nothing(tmp_path: Path) -> None:
    default = pystargz.build(DATA / "up_mixed.tar", tmp_path / "a.esgz", chunk_size=4096)
    zero = pystargz.build(DATA / "up_mixed.tar", tmp_path / "b.esgz", chunk_size=4096, min_chunk_size=0)
    assert default == zero
    assert (tmp_path / "a.esgz").read_bytes() == (tmp_path / "b.esgz").read_bytes()


def test_min_chunk_size_result_describes_the_blob(tmp_path: Path) -> None:
    blob = tmp_path / "packed.esgz"
    result = pystargz.build(DATA / "up_tree300.tar", blob, min_chunk_size=16384)
    data = blob.read_bytes()
    uncompressed = gzip.decompress(data)
    assert result.digest == "sha256:" + hashlib.sha256(data).hexdigest()
    assert result.diff_id == "sha256:" + hashlib.sha256(uncompressed).hexdigest()
    assert result.uncompressed_size == len(uncompressed)
    with pystargz.open(blob) as reader:
        assert reader.toc_digest == result.toc_digest


def test_min_chunk_size_refusals(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="min_chunk_size"):
        pystargz.open(tmp_path / "x.esgz", "w", min_chunk_size=-1)
    with pytest.raises(ValueError, match="compression level"):
        pystargz.open(tmp_path / "y.esgz", "w", min_chunk_size=1000, compression_level=12)
    with pytest.raises(ValueError, match="innerOffset"):
        pystargz.build(DATA / "mixed.tar", tmp_path / "z.stargz", format="stargz", min_chunk_size=1000)


def test_build_result_describes_the_blob(tmp_path: Path) -> None:
    blob = tmp_path / "mixed.esgz"
    result = pystargz.build(DATA / "mixed.tar", blob)
    data = blob.read_bytes()
    uncompressed = gzip.decompress(data)
    assert result.size == len(data)
    assert result.digest == "sha256:" + hashlib.sha256(data).hexdigest()
    assert result.diff_id == "sha256:" + hashlib.sha256(uncompressed).hexdigest()
    assert result.uncompressed_size == len(uncompressed)
    assert result.annotations == {
        "containerd.io/snapshot/stargz/toc.digest": result.toc_digest,
        "io.containers.estargz.uncompressed-size": str(len(uncompressed)),
    }
    with pystargz.open(blob) as reader:
        assert reader.toc_digest == result.toc_digest


@pytest.mark.parametrize("compression", ["gz", "raw"])
def test_build_accepts_gzip_input_and_file_objects(compression: str, tmp_path: Path) -> None:
    raw = (DATA / "mixed.tar").read_bytes()
    source = io.BytesIO(gzip.compress(raw) if compression == "gz" else raw)
    out = io.BytesIO()
    result = pystargz.build(source, out, chunk_size=4096)
    expected = pystargz.build(DATA / "mixed.tar", tmp_path / "ref.esgz", chunk_size=4096)
    assert out.getvalue() == (tmp_path / "ref.esgz").read_bytes()
    assert result == expected


def test_build_accepts_zstd_input(tmp_path: Path) -> None:
    import zstandard  # a dev dependency (pystargz[zstd] for users)

    compressed = tmp_path / "mixed.tar.zst"
    compressed.write_bytes(zstandard.ZstdCompressor().compress((DATA / "mixed.tar").read_bytes()))
    from_zstd = pystargz.build(compressed, tmp_path / "z.esgz")
    from_plain = pystargz.build(DATA / "mixed.tar", tmp_path / "p.esgz")
    assert from_zstd == from_plain


def test_output_does_not_depend_on_workers(tmp_path: Path) -> None:
    digests = set()
    for workers in (1, 2, 4):
        result = pystargz.build(
            DATA / "mixed.tar", tmp_path / f"w{workers}.esgz", chunk_size=1000, workers=workers
        )
        digests.add(result.digest)
    assert len(digests) == 1


def test_legacy_build_has_no_landmark_and_no_chunk_digests(tmp_path: Path) -> None:
    blob = tmp_path / "legacy.stargz"
    pystargz.build(DATA / "chunks_4k.tar", blob, chunk_size=4096, format="stargz")
    assert blob.read_bytes()[-47:-35] == bytes.fromhex("1f8b08040000000000ff1600")  # XLEN 22
    with pystargz.open(blob) as reader:
        assert reader.format == "stargz"
        assert all(not e.chunk_digest for e in reader.toc.entries)
        assert not {".prefetch.landmark", ".no.prefetch.landmark"} & set(reader.getnames())


def test_missing_prioritized_file(tmp_path: Path) -> None:
    with pytest.raises(pystargz.BuildError, match="nope"):
        pystargz.build(DATA / "mixed.tar", tmp_path / "x.esgz", prioritized_files=["nope"])
    pystargz.build(
        DATA / "mixed.tar", tmp_path / "y.esgz", prioritized_files=["nope"], allow_missing_prioritized=True
    )
    with pystargz.open(tmp_path / "y.esgz") as reader:
        assert reader.getnames()[0] == ".prefetch.landmark"


def test_prioritized_file_whose_parent_has_no_entry_is_refused(tmp_path: Path) -> None:
    tar = tmp_path / "noparent.tar"
    with tarfile.open(tar, "w") as out:
        info = tarfile.TarInfo("a/b/file")
        info.size = 3
        out.addfile(info, io.BytesIO(b"abc"))
    with pytest.raises(pystargz.BuildError, match="parent"):
        pystargz.build(tar, tmp_path / "x.esgz", prioritized_files=["a/b/file"])


def test_unsupported_entries_are_refused(tmp_path: Path) -> None:
    tar = tmp_path / "sparse.tar"
    with tarfile.open(tar, "w", format=tarfile.GNU_FORMAT) as out:
        info = tarfile.TarInfo("volume")
        info.type = b"V"  # a GNU volume header: Go refuses it, and so do we
        out.addfile(info)
    with pytest.raises(pystargz.BuildError, match="unsupported tar entry type"):
        pystargz.build(tar, tmp_path / "x.esgz")


@pytest.mark.parametrize("mtime", [float("inf"), float("-inf"), float("nan"), 1e20, -1e20])
def test_times_rfc3339_cannot_hold_are_refused(mtime: float) -> None:
    """A PAX mtime past years 1 to 9999 (or not a number) is a BuildError naming the entry."""
    info = tarfile.TarInfo("odd-time")
    info.mtime = mtime
    with pytest.raises(pystargz.BuildError, match="odd-time"), pystargz.open(io.BytesIO(), "w") as writer:
        writer.addfile(info)


def test_streaming_writer_add_and_addfile(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "hello.txt").write_bytes(b"hello\n" * 1000)
    (tree / "empty").write_bytes(b"")
    (tree / "link").symlink_to("sub/hello.txt")
    blob = tmp_path / "tree.esgz"
    with pystargz.open(blob, "w", chunk_size=1024) as writer:
        writer.add(tree, arcname="root")
        info = tarfile.TarInfo("extra.bin")
        info.size = 5
        writer.addfile(info, io.BytesIO(b"12345"))
    with pystargz.open(blob) as reader:
        assert read_file(reader, "root/sub/hello.txt") == b"hello\n" * 1000
        assert read_file(reader, "root/empty") == b""
        assert reader.getmember("root/link").linkname == "sub/hello.txt"
        assert read_file(reader, "extra.bin") == b"12345"
        assert len(reader.getmember("root/sub/hello.txt").chunks) == 6


# ---- properties ----

names = st.text(alphabet="abcxyz_.-", min_size=1, max_size=8).filter(lambda n: n not in (".", ".."))
contents = st.one_of(st.binary(max_size=3000), st.builds(lambda n: b"ab" * n, st.integers(0, 5000)))


@st.composite
def layers(draw: st.DrawFn) -> bytes:
    """A tar with directories, files (some chunked), symlinks and hardlinks."""
    out = io.BytesIO()
    files: list[str] = []
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory in draw(st.lists(names, max_size=3, unique=True)):
            info = tarfile.TarInfo(f"d_{directory}")
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
            for name in draw(st.lists(names, max_size=4, unique=True)):
                data = draw(contents)
                info = tarfile.TarInfo(f"d_{directory}/{name}")
                info.size = len(data)
                info.mtime = draw(st.integers(0, 2**33))
                info.mode = draw(st.sampled_from([0o644, 0o755, 0o4755, 0o600]))
                info.uid, info.uname = draw(st.sampled_from([(0, "root"), (1000, "user"), (1000, "")]))
                tar.addfile(info, io.BytesIO(data))
                files.append(info.name)
        if files:
            link = tarfile.TarInfo("hardlink")
            link.type, link.linkname = tarfile.LNKTYPE, draw(st.sampled_from(files))
            tar.addfile(link)
            sym = tarfile.TarInfo("symlink")
            sym.type, sym.linkname = tarfile.SYMTYPE, draw(st.sampled_from(files))
            tar.addfile(sym)
    return out.getvalue()


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=60)
@given(
    layer=layers(),
    chunk_size=st.sampled_from([100, 1000, 4096, 1 << 20]),
    level=st.integers(0, 9),
    min_chunk_size=st.sampled_from([0, 1, 1000, 65536]),
)
def test_round_trip_against_tarfile(layer: bytes, chunk_size: int, level: int, min_chunk_size: int) -> None:
    out = io.BytesIO()
    pystargz.build(
        io.BytesIO(layer), out, chunk_size=chunk_size, compression_level=level, min_chunk_size=min_chunk_size
    )
    with pystargz.open(out.getvalue()) as reader, tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        for info in tar:
            member = reader.getmember(clean_name(info.name))
            assert (member.mode, member.uid, member.mtime) == (info.mode, info.uid, info.mtime)
            assert member.linkname == info.linkname
            if info.isreg():
                source = tar.extractfile(info)
                assert source is not None
                assert read_file(reader, member) == source.read()
        assert set(regular_names(reader)) >= {clean_name(i.name) for i in tar if i.isreg()}
