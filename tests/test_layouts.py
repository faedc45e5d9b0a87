"""The zstd:chunked and external-TOC vectors of ``tests/data``, read byte-exact.

Each blob must give back what the Go reader recorded: its regular files
(size, sha256, chunk count), the TOC digest, offset and sizes from the footer,
the TOC JSON as stored, and every chunk's and file's digest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

import pystargz
from pystargz import StargzReader
from pystargz.zstdchunked import ANNOTATION_MANIFEST_CHECKSUM, ANNOTATION_MANIFEST_POSITION
from tests.vectors import (
    VectorCase,
    check_digests,
    file_record,
    reader_files,
    recorded_files,
    regular_names,
    vector_params,
)

ZSTD_CASES = vector_params({"zstdchunked"})
EXTERNAL_CASES = vector_params({"estargz-externaltoc"})
over_cases = pytest.mark.parametrize("case", [*ZSTD_CASES, *EXTERNAL_CASES])


def toc_blob_of(case: VectorCase) -> bytes | None:
    """The separate TOC blob of an external-TOC case (None for the others)."""
    external = case.record.get("external_toc")
    return (case.blob.parent / external["toc_blob"]).read_bytes() if external else None


@pytest.fixture
def reader(case: VectorCase) -> Iterator[StargzReader]:
    with pystargz.open(case.blob, toc=toc_blob_of(case)) as blob:
        yield blob


def test_case_selection() -> None:
    assert {param.id for param in ZSTD_CASES} == {
        "empty__zstd",
        "one_small__zstd",
        "chunks_4k__cs4096_zstd",
        "mixed__zstd",
    }
    assert {param.id for param in EXTERNAL_CASES} == {"up_mixed__ext", "up_mixed__ext_mcs16384"}


@over_cases
def test_files_match_record(case: VectorCase, reader: StargzReader) -> None:
    got = reader_files(reader)
    assert got == recorded_files(case.files)
    contents = reader.read_files(regular_names(reader))
    assert {name: file_record(reader, name, data) for name, data in contents.items()} == got


@over_cases
def test_toc_matches_record(case: VectorCase, reader: StargzReader) -> None:
    assert reader.format == case.toc["format"]
    assert reader.toc_digest == case.toc["toc_digest"] == case.record["build"]["toc_digest"]
    assert reader.toc_offset == case.toc["toc_offset"]
    assert reader.footer.size == case.toc["footer_size"]
    assert reader.toc_json == case.toc_json.encode()
    assert reader.toc.to_json() == case.toc_json.encode()
    assert len(reader.toc_json) == case.toc["toc_json_size"]


@pytest.mark.parametrize("case", ZSTD_CASES)
def test_zstd_footer_matches_annotations(case: VectorCase, reader: StargzReader) -> None:
    """The footer's numbers are the manifest-position annotation; the checksum is the compressed TOC's."""
    footer = reader.footer
    metadata = case.record["build"]["zstd_metadata"]
    position = f"{footer.toc_offset}:{footer.toc_size}:{footer.toc_raw_size}:1"
    assert metadata[ANNOTATION_MANIFEST_POSITION] == position
    assert footer.toc_size == case.toc["toc_compressed_size"]
    compressed = case.blob.read_bytes()[footer.toc_offset : footer.toc_offset + footer.toc_size]
    assert metadata[ANNOTATION_MANIFEST_CHECKSUM] == "sha256:" + hashlib.sha256(compressed).hexdigest()


@over_cases
def test_chunk_and_file_digests(case: VectorCase, reader: StargzReader) -> None:
    files = check_digests(case, reader)
    assert all(chunk.digest for member in files for chunk in member.chunks)


@over_cases
def test_verify_and_verifying_reads(case: VectorCase, reader: StargzReader) -> None:
    """verify() walks zstd frames and external-TOC payloads too; a verifying reader reads them all."""
    result = reader.verify(case.toc["toc_digest"])
    assert result.toc_checked
    assert result.files == len(regular_names(reader))
    with pystargz.open(case.blob, toc=toc_blob_of(case), toc_digest=reader.toc_digest) as checked:
        assert checked.verifying
        assert checked.read_files(regular_names(checked)) == reader.read_files(regular_names(reader))


@pytest.mark.parametrize("case", EXTERNAL_CASES)
def test_external_toc_is_required(case: VectorCase) -> None:
    with pytest.raises(pystargz.FooterError, match="toc="):
        pystargz.open(case.blob)


@pytest.mark.parametrize("case", ZSTD_CASES)
def test_toc_given_to_an_internal_toc_blob_is_refused(case: VectorCase) -> None:
    with pytest.raises(pystargz.FooterError, match="carries its own TOC"):
        pystargz.open(case.blob, toc=b"")
