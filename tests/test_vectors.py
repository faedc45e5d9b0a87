"""The reader against the Go reference vectors of ``tests/data``, with each inflate backend.

Every eStargz and legacy-stargz blob must read back exactly what the Go
reader recorded: its regular files, the TOC digest and offset, the footer and
the TOC itself (re-serialized byte for byte as Go writes it).  zstd:chunked
and external-TOC blobs have their own tests (``tests/test_layouts.py``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

import pystargz
from pystargz import StargzReader
from tests.vectors import (
    READER_FORMAT,
    VectorCase,
    check_digests,
    file_record,
    reader_files,
    recorded_files,
    regular_names,
    vector_params,
)

CASES = vector_params()
over_cases = pytest.mark.parametrize("case", CASES)


def test_case_selection() -> None:
    """Selected by ``options.format``: eStargz and legacy stargz (the other layouts: test_layouts.py)."""
    formats = {param.values[0].format for param in CASES}
    assert formats == {"estargz", "stargz-legacy"}
    names = [param.id for param in CASES]
    assert {"mixed__default", "mixed__legacy", "chunks_4k__cs4096_legacyfooter", "up_mixed__mcs16384"} <= set(
        names
    )
    assert not set(names) & {"mixed__zstd", "up_mixed__ext", "up_mixed__ext_mcs16384"}


@pytest.fixture(params=["native", "python"])
def reader(request: pytest.FixtureRequest, case: VectorCase) -> Iterator[StargzReader]:
    with pystargz.open(case.blob, backend=request.param) as blob:
        yield blob


@over_cases
def test_regular_files_match_record(case: VectorCase, reader: StargzReader) -> None:
    assert reader_files(reader) == recorded_files(case.files)


@over_cases
def test_read_files_match_record(case: VectorCase, reader: StargzReader) -> None:
    names = regular_names(reader)
    contents = reader.read_files(names)
    assert list(contents) == names
    got = {name: file_record(reader, name, data) for name, data in contents.items()}
    assert got == recorded_files(case.files)


@over_cases
def test_toc_facts_match_record(case: VectorCase, reader: StargzReader) -> None:
    assert reader.toc_digest == case.toc["toc_digest"] == case.record["build"]["toc_digest"]
    assert reader.format == READER_FORMAT[case.toc["format"]]
    assert reader.toc_offset == case.toc["toc_offset"]
    assert reader.footer.size == case.toc["footer_size"]
    assert len(reader.toc_json) == case.toc["toc_json_size"]


@over_cases
def test_toc_matches_recorded_json(case: VectorCase, reader: StargzReader) -> None:
    assert reader.toc_json == case.toc_json.encode()
    assert reader.toc.to_dict() == json.loads(case.toc_json)
    assert reader.toc.to_json() == case.toc_json.encode()


@over_cases
def test_chunk_and_file_digests(case: VectorCase, reader: StargzReader) -> None:
    """Every chunk's bytes hash to its ``chunkDigest`` and every file's to its ``digest``."""
    files = check_digests(case, reader)
    if case.format == "estargz":
        assert all(chunk.digest for member in files for chunk in member.chunks)
