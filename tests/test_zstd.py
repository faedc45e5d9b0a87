"""zstd:chunked and external-TOC writing, the zstd backend's bounds and errors, the footers' bytes."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import random
import sys
import tarfile
from pathlib import Path

import pytest
import zstandard

import pystargz
from pystargz import CompressionError, CorruptDataError, FooterError, LimitError, TOCError
from pystargz.cli import main
from pystargz.compression.base import Span, SpanFailure, Status
from pystargz.compression.zstd import ZstdBackend, decompress_frames, skippable_frame
from pystargz.footer import Layout, build_footer
from pystargz.zstdchunked import ANNOTATION_MANIFEST_CHECKSUM, ANNOTATION_MANIFEST_POSITION
from tests.vectors import DATA, VectorCase, recorded_files, regular_names, sha256_digest, vector_params

ZSTD_CASES = vector_params({"zstdchunked"})
EXTERNAL_CASES = vector_params({"estargz-externaltoc"})


def input_tar(case: VectorCase) -> Path:
    name: str = case.record["input_tar"]
    return DATA / name


def without_offsets(toc_json: bytes | str) -> list[dict[str, object]]:
    """TOC entries with the fields that depend on compressed sizes removed."""
    entries = json.loads(toc_json)["entries"] or []
    return [{k: v for k, v in entry.items() if k not in ("offset", "innerOffset")} for entry in entries]


def zstd_payload(blob: bytes) -> bytes:
    """What a plain zstd decoder gets from the whole blob: skippable frames (TOC, footer) skipped."""
    return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(blob), read_across_frames=True).read()


def tar_files(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isreg()}  # type: ignore[union-attr]


# ---- writing zstd:chunked ----


@pytest.mark.parametrize("case", ZSTD_CASES)
def test_build_matches_go_toc_and_files(case: VectorCase, tmp_path: Path) -> None:
    """Same entries, sizes and digests as Go's zstd:chunked build; only the offsets differ."""
    out = tmp_path / "out.zst"
    result = pystargz.build(
        input_tar(case), out, format="zstdchunked", chunk_size=case.record["options"]["chunk_size"]
    )
    with pystargz.open(out) as reader:
        assert reader.format == "zstdchunked"
        assert without_offsets(reader.toc_json) == without_offsets(case.toc_json)
        got = {name: reader.extractfile(name).read() for name in regular_names(reader)}  # type: ignore[union-attr]
        records = {n: (len(d), sha256_digest(d), len(reader.getmember(n).chunks)) for n, d in got.items()}
        assert records == recorded_files(case.files)
        for member in reader:
            for chunk in member.chunks:
                assert out.read_bytes()[chunk.offset : chunk.offset + 4] == b"\x28\xb5\x2f\xfd"
                assert sha256_digest(reader.read_chunk(chunk)) == chunk.digest
        assert result.toc_digest == reader.toc_digest


@pytest.mark.parametrize("case", ZSTD_CASES)
def test_build_annotations_and_diff_id(case: VectorCase, tmp_path: Path) -> None:
    out = tmp_path / "out.zst"
    result = pystargz.build(input_tar(case), out, format="zstdchunked")
    blob = out.read_bytes()
    with pystargz.open(out) as reader:
        footer = reader.footer
    position = f"{footer.toc_offset}:{footer.toc_size}:{footer.toc_raw_size}:1"
    assert result.annotations[ANNOTATION_MANIFEST_POSITION] == position
    compressed_toc = blob[footer.toc_offset : footer.toc_offset + footer.toc_size]
    assert result.annotations[ANNOTATION_MANIFEST_CHECKSUM] == sha256_digest(compressed_toc)
    assert blob[-48:] == build_footer(
        footer.toc_offset, Layout.ZSTD_CHUNKED, toc_size=footer.toc_size, toc_raw_size=footer.toc_raw_size
    )
    payload = zstd_payload(blob)
    assert result.diff_id == sha256_digest(payload)
    assert result.uncompressed_size == len(payload)
    assert result.digest == sha256_digest(blob)
    assert result.size == len(blob)


def test_streaming_writer_zstd_round_trip(tmp_path: Path) -> None:
    data = bytes(range(256)) * 100
    out = tmp_path / "w.zst"
    with pystargz.open(out, "w", format="zstdchunked", chunk_size=1000, compression_level=19) as writer:
        info = tarfile.TarInfo("dir/file.bin")
        info.size = len(data)
        writer.addfile(info, io.BytesIO(data))
        result = writer.close()
    with pystargz.open(out) as reader:
        assert reader.extractfile("dir/file.bin").read() == data  # type: ignore[union-attr]
        assert len(reader.getmember("dir/file.bin").chunks) == 26
        assert reader.toc_digest == result.toc_digest
    with tarfile.open(fileobj=io.BytesIO(zstd_payload(out.read_bytes()))) as tar:
        assert tar.extractfile("dir/file.bin").read() == data  # type: ignore[union-attr]


def test_zstd_writer_options_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="min_chunk_size"):
        pystargz.open(tmp_path / "a", "w", format="zstdchunked", min_chunk_size=100)
    with pytest.raises(ValueError, match="compression level"):
        pystargz.open(tmp_path / "b", "w", format="zstdchunked", compression_level=23)
    with pytest.raises(ValueError, match="external_toc"):
        pystargz.open(tmp_path / "c", "w", format="zstdchunked", external_toc=True)


# ---- external TOC ----


@pytest.mark.parametrize("case", EXTERNAL_CASES)
def test_external_toc_footer_bytes_match_go(case: VectorCase) -> None:
    footer = build_footer(0, Layout.EXTERNAL_TOC)
    assert len(footer) == 46
    assert case.blob.read_bytes()[-46:] == footer
    assert footer.hex() == case.record["external_toc"]["footer_hex"]


def test_external_toc_build_round_trip(tmp_path: Path) -> None:
    """As Go: the internal-TOC blob up to its TOC, then the 46-byte footer; the TOC blob is its TOC member."""
    tar = DATA / "mixed.tar"
    internal = pystargz.build(tar, tmp_path / "in.esgz", chunk_size=4096)
    external = pystargz.build(tar, tmp_path / "ex.esgz", chunk_size=4096, external_toc=True)
    assert external.toc_blob is not None
    with pystargz.open(tmp_path / "in.esgz") as reader:
        toc_offset = reader.toc_offset
        toc_end = toc_offset + reader.footer.toc_size
    in_blob, ex_blob = (tmp_path / "in.esgz").read_bytes(), (tmp_path / "ex.esgz").read_bytes()
    assert ex_blob == in_blob[:toc_offset] + build_footer(0, Layout.EXTERNAL_TOC)
    assert external.toc_blob == in_blob[toc_offset:toc_end]
    assert external.toc_digest == internal.toc_digest
    assert external.toc_blob_digest == sha256_digest(external.toc_blob)
    assert internal.toc_blob_digest is None
    assert external.diff_id == sha256_digest(gzip.decompress(ex_blob))
    assert external.annotations[pystargz.writer.ANNOTATION_TOC_DIGEST] == external.toc_digest
    (tmp_path / "toc.gz").write_bytes(external.toc_blob)
    expected = tar_files(tar) | {".no.prefetch.landmark": b"\x0f"}
    for toc in (external.toc_blob, tmp_path / "toc.gz"):
        with pystargz.open(ex_blob, toc=toc) as reader:
            assert reader.format == "estargz-externaltoc"
            assert reader.toc_digest == internal.toc_digest
            assert {n: reader.extractfile(n).read() for n in regular_names(reader)} == expected  # type: ignore[union-attr]


def test_external_toc_bad_toc_blob(tmp_path: Path) -> None:
    result = pystargz.build(DATA / "mixed.tar", tmp_path / "ex.esgz", external_toc=True)
    assert result.toc_blob is not None
    with pytest.raises(TOCError, match="TOC blob"):
        pystargz.open(tmp_path / "ex.esgz", toc=result.toc_blob[:-20])
    with pytest.raises(pystargz.SourceError, match="TOC blob"):
        pystargz.open(tmp_path / "ex.esgz", toc=tmp_path / "missing")


# ---- the zstd backend and damaged blobs ----


def test_backend_spans_across_frames_and_skippable_frames() -> None:
    backend = ZstdBackend()
    frames = backend.compress_batch([b"abc", b"", b"defgh"], 3)
    data = frames[0] + skippable_frame(b"ignored") + frames[1] + frames[2]
    assert backend.extract(data, Span(0, len(data), 2, 4), 100) == b"cdef"
    assert decompress_frames(data, 100) == b"abcdefgh"
    with pytest.raises(SpanFailure) as short:
        backend.extract(data, Span(0, len(data), 0, 9), 100)
    assert short.value.status == Status.SHORT


def test_backend_bounds_output() -> None:
    """A frame may not decompress past the limit, whether or not it declares its size."""
    data = bytes(1 << 20)
    declared = zstandard.ZstdCompressor(write_content_size=True).compress(data)
    streamed = zstandard.ZstdCompressor(write_content_size=False).compress(data)
    for frame in (declared, streamed):
        with pytest.raises(SpanFailure) as failure:
            ZstdBackend().extract(frame, Span(0, len(frame), 0, 10), 1000)
        assert failure.value.status == Status.OUTPUT_TOO_SMALL


@pytest.mark.parametrize("case", ZSTD_CASES[-1:])
def test_damaged_chunk_frame_names_offset_and_entry(case: VectorCase) -> None:
    blob = bytearray(case.blob.read_bytes())
    with pystargz.open(bytes(blob)) as reader:
        member = max((m for m in reader if m.isreg()), key=lambda m: m.size)
        chunk = member.chunks[0]
    blob[chunk.offset + 20] ^= 0xFF
    with pystargz.open(bytes(blob)) as reader:
        with pytest.raises(CorruptDataError, match=f"zstd frame at offset {chunk.offset}") as error:
            reader.read_chunk(reader.getmember(member.name).chunks[0])
        assert error.value.entry == member.name
        assert error.value.offset == chunk.offset


@pytest.mark.parametrize("case", ZSTD_CASES)
def test_damaged_toc_and_footer(case: VectorCase) -> None:
    blob = case.blob.read_bytes()
    offset = case.toc["toc_offset"]
    flipped = bytearray(blob)
    flipped[offset + 5] ^= 0xFF
    with pytest.raises((TOCError, LimitError), match=str(offset)):
        pystargz.open(bytes(flipped))
    for cut in (1, 8, 47, 48, 100):
        with pytest.raises(FooterError):
            pystargz.open(blob[:-cut])
    raw = case.toc["toc_json_size"]
    lying = blob[:-48] + build_footer(
        offset, Layout.ZSTD_CHUNKED, toc_size=case.toc["toc_compressed_size"], toc_raw_size=raw + 1
    )
    with pytest.raises(TOCError, match=f"the footer says {raw + 1}"):
        pystargz.open(lying)
    past = blob[:-48] + build_footer(len(blob), Layout.ZSTD_CHUNKED, toc_size=10, toc_raw_size=raw)
    with pytest.raises(FooterError, match="not between"):
        pystargz.open(past)


def test_toc_size_limit_is_checked_before_decompressing() -> None:
    case = ZSTD_CASES[0].values[0]
    with pytest.raises(LimitError, match="exceeds the limit"):
        pystargz.open(case.blob, limits=pystargz.Limits(max_toc_size=100))


def test_without_zstandard_a_compression_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "zstandard", None)
    case = ZSTD_CASES[0].values[0]
    with pytest.raises(CompressionError, match=r"pystargz\[zstd\]"):
        pystargz.open(case.blob)
    with pytest.raises(CompressionError, match=r"pystargz\[zstd\]"):
        pystargz.build(input_tar(case), tmp_path / "x", format="zstdchunked")
    assert not (tmp_path / "x").exists()
    with pytest.raises(CompressionError, match=r"pystargz\[zstd\]"):
        pystargz.build_zstd_chunked_storage(DATA / "mixed.tar", tmp_path / "y")
    assert not (tmp_path / "y").exists()
    with pytest.raises(CompressionError, match=r"pystargz\[zstd\]"):
        pystargz.unpack(case.blob, tmp_path / "z")
    assert not (tmp_path / "z").exists()
    with pystargz.open(DATA / "mixed__default.esgz") as reader:  # gzip blobs need no zstd
        assert reader.format == "estargz"


def test_manifest_checksum_is_of_the_compressed_toc() -> None:
    case = ZSTD_CASES[0].values[0]
    blob = case.blob.read_bytes()
    toc = case.toc
    compressed = blob[toc["toc_offset"] : toc["toc_offset"] + toc["toc_compressed_size"]]
    assert (
        hashlib.sha256(compressed).hexdigest()
        in case.record["build"]["zstd_metadata"][ANNOTATION_MANIFEST_CHECKSUM]
    )


# ---- the command line ----


def test_cli_converts_to_zstd_and_external_toc(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tar = str(DATA / "mixed.tar")
    zst, ext, toc = (str(tmp_path / name) for name in ("o.zst", "e.esgz", "e.toc"))
    assert main(["convert", tar, zst, "--format", "zstdchunked", "--level", "3", "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert ANNOTATION_MANIFEST_POSITION in facts["annotations"]
    assert main(["info", zst, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["format"] == "zstdchunked"
    assert info["footer_size"] == 40
    assert (
        f"{info['toc_offset']}:{info['toc_compressed_size']}:{info['toc_size']}:1"
        == (facts["annotations"][ANNOTATION_MANIFEST_POSITION])
    )
    assert main(["convert", tar, ext, "--external-toc", toc]) == 0
    capsys.readouterr()
    assert main(["info", ext]) == 1
    assert "external TOC" in capsys.readouterr().err
    assert main(["cat", ext, "etc/os-release", "--toc", toc]) == 0
    assert capsys.readouterr().out.encode() == tar_files(DATA / "mixed.tar")["etc/os-release"]


# ---- damaged blobs only ever raise StargzError ----


def read_everything(blob: bytes, toc: bytes | None = None) -> None:
    with pystargz.open(blob, toc=toc) as reader:
        files = [member for member in reader if member.isreg()]
        for member in files:
            reader.extractfile(member).read()  # type: ignore[union-attr]
        reader.read_files(files)
    pystargz.unpack(blob, io.BytesIO())


def read_damaged(blob: bytes, seed: int | str, step: int, toc: bytes | None = None) -> None:
    """Reads ``blob`` cut every ``step`` bytes, then with one seeded random bit flipped, 200 times.

    Each read may work or raise a StargzError, nothing else.
    """
    rng = random.Random(seed)
    damaged = [blob[:cut] for cut in range(0, len(blob), step)]
    for _ in range(200):
        flipped = bytearray(blob)
        flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
        damaged.append(bytes(flipped))
    for candidate in damaged:
        with contextlib.suppress(pystargz.StargzError):
            read_everything(candidate, toc)


@pytest.mark.parametrize("case", [*ZSTD_CASES, *EXTERNAL_CASES])
def test_truncations_and_bit_flips_raise_stargz_errors(case: VectorCase) -> None:
    blob = case.blob.read_bytes()
    external = case.record.get("external_toc")
    toc = (DATA / external["toc_blob"]).read_bytes() if external else None
    read_damaged(blob, case.name, 97, toc)
    if toc is not None:
        for cut in range(0, len(toc), 13):
            with pytest.raises(pystargz.StargzError):
                read_everything(blob, toc[:cut])


def zeros_tar(path: Path, size: int = 16 << 20) -> Path:
    """A file of zeros: zstd compresses each 128 KiB block of it to 4 bytes, far past deflate's ratio."""
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("zeros")
        info.size = size
        tar.addfile(info, io.BytesIO(bytes(size)))
    return path


def test_zstd_ratios_beyond_deflate_are_accepted(tmp_path: Path) -> None:
    blob = tmp_path / "zeros.zst"
    pystargz.build(zeros_tar(tmp_path / "zeros.tar"), blob, format="zstdchunked")
    with pystargz.open(blob) as reader:
        member = reader.getmember("zeros")
        assert any(chunk.size > (chunk.end - chunk.offset) * 1032 for chunk in member.chunks)
        assert reader.extractfile(member).read() == bytes(16 << 20)  # type: ignore[union-attr]
