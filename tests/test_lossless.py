"""Lossless append (Go ``AppendTarLossLess``) and ``unpack`` (Go ``Unpack``)."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path
from typing import Any

import pytest

import pystargz
from pystargz import BuildError, BuildResult, CorruptDataError, FooterError
from pystargz.toc import TOC_TAR_NAME
from pystargz.writer import Format
from tests.interop.test_writer_interop import tar_contents
from tests.vectors import DATA, case_names, sha256_digest, vector_case

PLAIN_TARS = sorted(path.name for path in DATA.glob("*.tar"))
FORMATS: list[Format] = ["estargz", "zstdchunked"]


def unpacked(blob: Path | bytes) -> bytes:
    out = io.BytesIO()
    written = pystargz.unpack(blob, out)
    assert written == len(out.getvalue())
    return out.getvalue()


def lossless_blob(src: Path | io.BytesIO, dst: Path, fmt: Format, chunk_size: int = 4096) -> BuildResult:
    with pystargz.open(dst, "w", format=fmt, chunk_size=chunk_size) as writer:
        writer.append_tar(src, lossless=True)
        result: BuildResult = writer.close()
    return result


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", PLAIN_TARS)
def test_lossless_round_trip(name: str, fmt: Format, tmp_path: Path) -> None:
    """The payload is the input tar byte for byte; files and chunks read and verify as usual."""
    source = (DATA / name).read_bytes()
    blob = tmp_path / "lossless.blob"
    result = lossless_blob(DATA / name, blob, fmt)
    assert unpacked(blob) == source
    if fmt == "zstdchunked":  # the TOC sits in skippable frames: the DiffID is the input tar's
        assert result.diff_id == sha256_digest(source)
    with pystargz.open(blob) as reader:
        assert reader.toc_digest == result.toc_digest
        expected = tar_contents(DATA / name)
        for member in reader:
            if member.isreg():
                content = reader.extractfile(member).read()  # type: ignore[union-attr]
                assert member.digest == sha256_digest(content)
                for chunk in member.chunks:
                    assert sha256_digest(reader.read_chunk(chunk)) == chunk.digest
        for path, content in expected.items():
            assert reader.extractfile(path).read() == content, path  # type: ignore[union-attr]


def test_lossless_keeps_odd_bytes(tmp_path: Path) -> None:
    """GNU long names, a global PAX header, a non-zero end padding and bytes after the archive survive."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo("d/" + "x" * 150)
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    gnu = out.getvalue()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT, pax_headers={"comment": "hi"}) as tar:
        info = tarfile.TarInfo("p")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    pax = out.getvalue()
    for source in (gnu + b"trailing junk", pax):
        for fmt in FORMATS:
            blob = tmp_path / f"{fmt}.blob"
            lossless_blob(io.BytesIO(source), blob, fmt)
            assert unpacked(blob) == source


def test_lossless_gzip_input_unpacks_to_the_plain_tar(tmp_path: Path) -> None:
    source = DATA / "big_chunks_4m.tar.gz"
    blob = tmp_path / "big.esgz"
    lossless_blob(source, blob, "estargz", chunk_size=1 << 20)
    assert unpacked(blob) == gzip.decompress(source.read_bytes())


def test_lossless_refuses_an_input_toc(tmp_path: Path) -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo(TOC_TAR_NAME)
        tar.addfile(info, io.BytesIO())
    out.seek(0)
    with pytest.raises(BuildError, match="holds a TOC"):
        lossless_blob(out, tmp_path / "x.esgz", "estargz")


def unpack_cases() -> list[Any]:
    cases = (vector_case(name) for name in case_names())
    return [
        pytest.param(c, id=c.name)
        for c in cases
        if c.blob.is_file() and "unpacked_payload_sha256" in c.record
    ]


@pytest.mark.parametrize("case", unpack_cases())
def test_unpack_matches_go_on_every_vector(case: Any) -> None:
    """Go's recorded ``Unpack`` output, for every layout (external TOC needs no TOC to unpack)."""
    assert (
        "sha256:" + hashlib.sha256(unpacked(case.blob)).hexdigest() == case.record["unpacked_payload_sha256"]
    )


def test_unpack_errors() -> None:
    blob = bytearray((DATA / "mixed__default.esgz").read_bytes())
    blob[100] ^= 0xFF
    with pytest.raises(CorruptDataError, match=r"payload \[0, "):
        unpacked(bytes(blob))
    zstd_blob = bytearray((DATA / "mixed__zstd.esgz").read_bytes())
    zstd_blob[200] ^= 0xFF
    with pytest.raises(CorruptDataError, match="zstdchunked payload"):
        unpacked(bytes(zstd_blob))
    with pytest.raises(FooterError):
        unpacked(b"not a blob at all, but long enough to hold any of the footers we know")
