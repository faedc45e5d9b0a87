"""Verification: ``StargzReader.verify`` and readers opened with ``toc_digest``.

The blobs that matter here are the ones whose gzip is intact but whose bytes
are not the ones the TOC describes: CRCs cannot catch them, digests must.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import pystargz
from pystargz import StargzReader, VerificationError
from pystargz.cli import main
from pystargz.toc import TOC_TAR_NAME
from tests.blobs import BlobFile, Entries, assemble, build_payload, toc_bytes
from tests.vectors import VectorCase, vector_case, vector_params

BACKENDS = ("native", "python")


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# ---- every vector verifies ----


@pytest.mark.parametrize("case", vector_params())
def test_every_vector_verifies(case: VectorCase) -> None:
    """Including the innerOffset and legacy blobs Go's VerifyTOC rejects (its record says ok=False)."""
    toc_digest = case.record["build"]["toc_digest"]
    with pystargz.open(case.blob) as reader:
        result = reader.verify(toc_digest)
        regular = [m for m in reader if m.isreg()]
    assert result.toc_digest == toc_digest
    assert result.toc_checked
    assert result.files == len(regular)
    assert result.chunks == sum(len(m.chunks) for m in regular)
    assert result.bytes == sum(m.size for m in regular)


@pytest.mark.parametrize("case", vector_params())
def test_verifying_reader_reads_every_vector(case: VectorCase) -> None:
    with pystargz.open(case.blob, toc_digest=case.record["build"]["toc_digest"]) as reader:
        assert reader.verifying
        contents = reader.read_files(case.files)
        for name, expected in case.files.items():
            assert sha256(contents[name]) == expected["sha256"]
            file = reader.extractfile(name)
            assert file is not None
            assert sha256(file.read()) == expected["sha256"]
            assert sha256(b"".join(reader.iter_chunks(name))) == expected["sha256"]


def test_plain_reader_is_not_verifying() -> None:
    with pystargz.open(vector_case("one_small__default").blob) as reader:
        assert not reader.verifying


# ---- the TOC digest ----


@pytest.mark.parametrize(
    "wrong",
    ["sha256:" + "0" * 64, "sha512:" + "0" * 128, "sha256:abc", "md5:" + "0" * 32, "nonsense", ""],
)
def test_wrong_toc_digest(wrong: str) -> None:
    case = vector_case("up_mixed__mcs16384")
    with pystargz.open(case.blob) as reader, pytest.raises(VerificationError) as caught:
        reader.verify(wrong)
    check_toc_error(caught.value, case, wrong)
    with pytest.raises(VerificationError) as caught:
        pystargz.open(case.blob, toc_digest=wrong)
    check_toc_error(caught.value, case, wrong)


def check_toc_error(error: VerificationError, case: VectorCase, wrong: str) -> None:
    assert error.entry == TOC_TAR_NAME
    assert error.offset == case.toc["toc_offset"]
    assert error.expected == wrong
    assert str(case.toc["toc_offset"]) in str(error)
    if wrong.startswith("sha256:"):
        assert error.actual == case.record["build"]["toc_digest"]


def test_toc_digest_in_other_algorithms_and_case() -> None:
    case = vector_case("one_small__default")
    toc_json = case.toc_json.encode()
    for digest in (
        "sha512:" + hashlib.sha512(toc_json).hexdigest(),
        "sha384:" + hashlib.sha384(toc_json).hexdigest(),
        case.record["build"]["toc_digest"].upper(),
    ):
        with pystargz.open(case.blob, toc_digest=digest) as reader:
            assert reader.verify(digest).toc_checked


# ---- payloads that are valid gzip but not what the TOC says ----

FILES = [
    BlobFile("d", type="dir", mode=0o755),
    BlobFile("d/small", b"small file\n" * 30),
    BlobFile("big", bytes(range(256)) * 40),
    BlobFile("tail", b"last one"),
]
SWAPPED = [BlobFile("big", bytes(reversed(range(256))) * 40) if f.name == "big" else f for f in FILES]
CHUNK = 4000


def swapped_blob(entries_edit: Callable[[Entries], None] | None = None) -> tuple[bytes, Entries]:
    """The TOC of FILES over the payload of SWAPPED (same lengths: stored members, same offsets).

    Every gzip CRC is right; only the digests tell that the bytes of ``big`` are not the TOC's.
    """
    honest, toc = build_payload(FILES, chunk_size=CHUNK, level=0)
    forged, forged_toc = build_payload(SWAPPED, chunk_size=CHUNK, level=0)
    assert len(honest) == len(forged)
    entries = [e.to_dict() for e in toc.entries]
    assert [e["offset"] for e in entries if "offset" in e] == [
        e.offset for e in forged_toc.entries if e.offset
    ]
    if entries_edit is not None:
        entries_edit(entries)
    return assemble(forged, toc_bytes(entries)), entries


def test_unverified_reader_returns_forged_bytes() -> None:
    """The reason verification exists: without it the forged bytes come out silently."""
    blob, _ = swapped_blob()
    with pystargz.open(blob) as reader:
        file = reader.extractfile("big")
        assert file is not None
        assert file.read() == SWAPPED[2].data


def test_verify_names_entry_offset_and_digests() -> None:
    blob, entries = swapped_blob()
    with pystargz.open(blob) as reader, pytest.raises(VerificationError) as caught:
        reader.verify()
    error = caught.value
    first = next(e for e in entries if e["name"] == "big")
    assert error.entry == "big"
    assert error.offset == first["offset"]
    assert error.expected == first["chunkDigest"]
    assert error.actual == sha256(SWAPPED[2].data[:CHUNK])
    for part in ("'big'", str(first["offset"]), error.expected, error.actual):
        assert part in str(error)


def verifying_reader(blob: bytes, backend: str = "native") -> StargzReader:
    toc_json = pystargz.open(blob).toc_json
    return pystargz.open(blob, toc_digest=sha256(toc_json), backend=backend)


def read_some(reader: StargzReader, name: str, *, seek: int = 0, size: int = -1) -> bytes:
    file = reader.extractfile(name)
    assert file is not None
    file.seek(seek)
    return file.read(size)


Read = Callable[[StargzReader, str], object]
READS: dict[str, Read] = {
    "extractfile": read_some,
    "extractfile read(1)": lambda r, name: read_some(r, name, size=1),
    "extractfile seek": lambda r, name: read_some(r, name, seek=CHUNK + 5, size=3),
    "read_files": lambda r, name: r.read_files([name]),
    "read_files all": lambda r, name: r.read_files(r.getnames()),
    "iter_contents": lambda r, name: list(r.iter_contents(r.getmembers())),
    "read_chunk": lambda r, name: [r.read_chunk(c) for c in r.getmember(name).chunks],
    "iter_chunks": lambda r, name: list(r.iter_chunks(name)),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("read", READS.values(), ids=READS.keys())
def test_verifying_reader_never_returns_forged_bytes(backend: str, read: Read) -> None:
    blob, _ = swapped_blob()
    with verifying_reader(blob, backend) as reader, pytest.raises(VerificationError) as caught:
        read(reader, "big")
    assert caught.value.entry == "big"


def test_verifying_reader_reads_the_honest_files_of_a_forged_blob() -> None:
    blob, _ = swapped_blob()
    with verifying_reader(blob) as reader:
        assert reader.read_files(["d/small", "tail"]) == {"d/small": FILES[1].data, "tail": FILES[3].data}


def test_verifying_extractall_writes_nothing_of_the_forged_file(tmp_path: Path) -> None:
    blob, _ = swapped_blob()
    with verifying_reader(blob) as reader, pytest.raises(VerificationError):
        reader.extractall(tmp_path)
    assert not (tmp_path / "big").exists()


def test_forged_file_digest_alone() -> None:
    """Chunk digests right, the file digest wrong: verify() still checks the file digest."""

    def forge(entries: Entries) -> None:
        next(e for e in entries if e["name"] == "tail")["digest"] = sha256(b"something else")

    honest, toc = build_payload(FILES, chunk_size=CHUNK, level=0)
    entries = [e.to_dict() for e in toc.entries]
    forge(entries)
    blob = assemble(honest, toc_bytes(entries))
    with pystargz.open(blob) as reader, pytest.raises(VerificationError) as caught:
        reader.verify()
    assert caught.value.entry == "tail"
    assert caught.value.expected == sha256(b"something else")
    assert caught.value.actual == sha256(b"last one")


def test_file_without_any_digest_does_not_verify() -> None:
    def strip(entries: Entries) -> None:
        for entry in entries:
            if entry["name"] == "tail":
                entry.pop("digest", None)
                entry.pop("chunkDigest", None)

    honest, toc = build_payload(FILES, chunk_size=CHUNK, level=0)
    entries = [e.to_dict() for e in toc.entries]
    strip(entries)
    blob = assemble(honest, toc_bytes(entries))
    with pystargz.open(blob) as reader, pytest.raises(VerificationError, match=r"'tail'.*neither") as caught:
        reader.verify()
    assert caught.value.expected == ""
    with verifying_reader(blob) as reader, pytest.raises(VerificationError, match=r"'tail'.*no digest"):
        reader.read_files(["tail"])


def test_other_digest_algorithms_in_the_toc() -> None:
    def to_sha512(entries: Entries) -> None:
        tail = next(entry for entry in entries if entry["name"] == "tail")
        tail["digest"] = tail["chunkDigest"] = "sha512:" + hashlib.sha512(FILES[3].data).hexdigest()

    honest, toc = build_payload(FILES, chunk_size=CHUNK, level=0)
    entries = [e.to_dict() for e in toc.entries]
    to_sha512(entries)
    assert any(str(e.get("digest", "")).startswith("sha512:") for e in entries)
    blob = assemble(honest, toc_bytes(entries))
    with verifying_reader(blob) as reader:
        assert reader.verify().files == 3
        assert reader.read_files(["tail"]) == {"tail": b"last one"}


# ---- innerOffset and legacy blobs ----


def vector_toc(case: str) -> tuple[bytes, dict[str, Any]]:
    vector = vector_case(case)
    blob = vector.blob.read_bytes()
    return blob[: vector.toc["toc_offset"]], json.loads(vector.toc_json)


def test_shifted_inner_offset_is_caught() -> None:
    """Packed entries share a member: a wrong innerOffset reads a neighbour's bytes; only a digest tells."""
    payload, toc = vector_toc("up_mixed__mcs16384")
    packed = [e for e in toc["entries"] if e.get("innerOffset") and e.get("size", 0) > 100]
    target = packed[0]
    target["innerOffset"] -= 50
    blob = assemble(payload, toc_bytes(toc["entries"]))
    with pystargz.open(blob) as reader, pytest.raises(VerificationError) as caught:
        reader.verify()
    assert caught.value.entry == target["name"].strip("/").removeprefix("./")
    assert caught.value.offset == target["offset"]
    assert caught.value.expected == target["chunkDigest"]


def test_legacy_chunked_file_with_a_wrong_digest() -> None:
    """Legacy stargz has no chunk digests: multi-chunk files are checked whole before any byte comes out."""
    payload, toc = vector_toc("chunks_4k__cs4096_legacy")
    target = next(e for e in toc["entries"] if e["name"] == "data/exact_2x4096.bin")
    assert not any("chunkDigest" in e for e in toc["entries"])
    target["digest"] = sha256(b"not the contents")
    blob = assemble(payload, toc_bytes(toc["entries"]), layout=pystargz.Layout.LEGACY)
    with pystargz.open(blob) as reader, pytest.raises(VerificationError) as caught:
        reader.verify()
    assert caught.value.entry == "data/exact_2x4096.bin"
    for read in READS.values():
        with verifying_reader(blob) as reader, pytest.raises(VerificationError):
            read(reader, "data/exact_2x4096.bin")
    with verifying_reader(blob) as reader:
        assert len(reader.read_files(["data/plus1_4097.bin"])["data/plus1_4097.bin"]) == 4097


def test_legacy_chunked_file_read_piecewise_when_verifying() -> None:
    case = vector_case("chunks_4k__cs4096_legacy")
    with pystargz.open(case.blob, toc_digest=case.record["build"]["toc_digest"]) as reader:
        for name, expected in case.files.items():
            file = reader.extractfile(name)
            assert file is not None
            pieces = []
            while piece := file.read(1000):
                pieces.append(piece)
            assert sha256(b"".join(pieces)) == expected["sha256"]


# ---- the command line ----


def test_cli_verify_ok(capsys: pytest.CaptureFixture[str]) -> None:
    case = vector_case("up_mixed__mcs16384")
    assert main(["verify", str(case.blob), "--toc-digest", case.record["build"]["toc_digest"]]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ok: ")
    assert case.record["build"]["toc_digest"] in out
    assert main(["verify", str(case.blob), "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["toc_digest"] == case.record["build"]["toc_digest"]
    assert facts["toc_checked"] is False
    assert facts["files"] == 48


def test_cli_verify_failures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blob, _ = swapped_blob()
    path = tmp_path / "forged.esgz"
    path.write_bytes(blob)
    assert main(["verify", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert "'big'" in captured.err
    good = vector_case("one_small__default").blob
    assert main(["verify", str(good), "--toc-digest", "sha256:" + "1" * 64, "--json"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "TOC" in err


def test_verify_leaves_the_reader_usable() -> None:
    """verify() works on a view of the reader: the reader itself keeps its mode and serves reads after."""
    blob, _ = swapped_blob()
    with pystargz.open(blob) as reader:
        with pytest.raises(VerificationError):
            reader.verify()
        assert not reader.verifying
        assert reader.read_files(["tail"]) == {"tail": b"last one"}


def test_verify_matches_a_tar_of_the_same_files() -> None:
    """A blob built by pystargz from a tar verifies, with the counts of that tar."""
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as out:
        for index in range(20):
            data = os.urandom(index * 3000)
            info = tarfile.TarInfo(f"f{index}")
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
    blob = io.BytesIO()
    result = pystargz.build(io.BytesIO(tar.getvalue()), blob, chunk_size=8192)
    with pystargz.open(blob.getvalue(), toc_digest=result.toc_digest) as reader:
        verification = reader.verify(result.toc_digest)
    assert verification.bytes == sum(index * 3000 for index in range(20)) + 1  # + the landmark
    assert verification.chunks == sum(-(-index * 3000 // 8192) for index in range(20)) + 1


@pytest.mark.parametrize("case", ["symlinks__default", "dirs_modes__writer", "zero_length__default"])
def test_members_no_chunk_points_into_are_checked(case: str) -> None:
    """The first member holds only tar headers: no read inflates it, verify() checks its CRC and length."""
    vector = vector_case(case)
    blob = vector.blob.read_bytes()
    with pystargz.open(blob) as reader:
        first_data = min((c.offset for m in reader for c in m.chunks), default=vector.toc["toc_offset"])
    assert first_data > 0
    for position in range(first_data - 8, first_data):  # the member's CRC32 and ISIZE
        for bit in range(8):
            damaged = bytearray(blob)
            damaged[position] ^= 1 << bit
            with pystargz.open(bytes(damaged)) as reader:
                reader.read_files(reader.getnames())  # reads never touch that member
                with pytest.raises(pystargz.CorruptDataError) as caught:
                    reader.verify()
            assert caught.value.offset == 0
