"""Reference blobs for the tests: the stored Go vectors in ``tests/data`` and layers the Go peer builds.

Shared by several test modules, so they live here rather than in ``conftest.py``
(which holds only fixtures and is not meant to be imported).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from pystargz import StargzInfo, StargzReader
from tests.interop.peer import GoPeer

DATA = Path(__file__).resolve().parent / "data"

#: The vector formats that the reader opens today (``options.format`` of a case).
GZIP_TOC_FORMATS = frozenset({"estargz", "stargz-legacy"})

#: ``StargzReader.format`` for each recorded ``toc.format`` the reader opens.
READER_FORMAT = {"estargz": "estargz", "stargz-legacy": "stargz"}


@dataclass(frozen=True)
class VectorCase:
    """One case of ``tests/data``: ``record`` is its ``CASE.json``, ``blob`` the Go-made blob."""

    name: str
    record: dict[str, Any]
    blob: Path
    format: str

    @property
    def files(self) -> dict[str, dict[str, Any]]:
        """The regular files the Go reader exposes: name -> ``size``, ``sha256``, ``chunks``."""
        files: dict[str, dict[str, Any]] = self.record["files"]
        return files

    @property
    def toc(self) -> dict[str, Any]:
        toc: dict[str, Any] = self.record["toc"]
        return toc

    @property
    def toc_json(self) -> str:
        toc_json: str = self.record["toc_json"]
        return toc_json


@cache
def vector_case(name: str) -> VectorCase:
    """The case called ``name`` (its record is parsed once per session)."""
    record: dict[str, Any] = json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))
    blob = DATA / f"{name}.esgz"
    return VectorCase(name=name, record=record, blob=blob, format=record["options"]["format"])


def case_names() -> list[str]:
    index: dict[str, list[str]] = json.loads((DATA / "index.json").read_text(encoding="utf-8"))
    return index["cases"]


def vector_cases(formats: Iterable[str] = GZIP_TOC_FORMATS) -> list[VectorCase]:
    """Cases with a stored blob whose ``options.format`` is one of ``formats``, in index order."""
    wanted = frozenset(formats)
    cases = (vector_case(name) for name in case_names())
    return [case for case in cases if case.format in wanted and case.blob.is_file()]


def vector_params(formats: Iterable[str] = GZIP_TOC_FORMATS) -> list[Any]:
    """``vector_cases`` as pytest parameters named after the case."""
    return [pytest.param(case, id=case.name) for case in vector_cases(formats)]


def sha256_digest(data: bytes) -> str:
    """The ``sha256:<hex>`` form the TOC and the Go tools use."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class BuiltLayer:
    """A blob built by the Go peer during the run; ``info`` is what its ``build`` printed."""

    blob: Path
    info: dict[str, Any]


def build_layer(peer: GoPeer, tar: Path, blob: Path, **options: Any) -> BuiltLayer:
    """Builds ``tar`` into ``blob`` with ``estargz.Build`` (``options`` as for :meth:`GoPeer.build`)."""
    return BuiltLayer(blob=blob, info=peer.build(tar, blob, **options))


def regular_names(reader: StargzReader) -> list[str]:
    """Names (TOC order, once each) whose last entry is a regular file: what Go's reader lists as files.

    Hardlinks are left out, as in the recorded ``files``: they resolve to their target.
    """
    names = dict.fromkeys(member.name for member in reader.getmembers())
    return [name for name in names if reader.getmember(name).isreg()]


def read_file(reader: StargzReader, member: str | StargzInfo) -> bytes:
    """The whole content of a regular file (or hardlink) through ``extractfile``."""
    fileobj = reader.extractfile(member)
    assert fileobj is not None, f"{member!r} is not a regular file"
    with fileobj:
        return fileobj.read()


FileRecord = tuple[int, str, int]


def file_record(reader: StargzReader, name: str, content: bytes) -> FileRecord:
    """``(size, sha256, chunk count)``: how the Go tools (vectors, peer ``files``) describe a file."""
    return (len(content), sha256_digest(content), len(reader.getmember(name).chunks))


def reader_files(reader: StargzReader) -> dict[str, FileRecord]:
    """Every regular file in the form of :func:`file_record`, each read through ``extractfile``."""
    return {name: file_record(reader, name, read_file(reader, name)) for name in regular_names(reader)}


def check_digests(case: VectorCase, reader: StargzReader) -> list[StargzInfo]:
    """Checks each regular member's ``digest`` and each chunk's bytes and ``chunkDigest``; returns them.

    Duplicate names are all checked: each member is read through its own
    chunks.  A chunk without a digest (legacy stargz writes none) is checked
    for its bytes only; callers whose format requires digests assert that.
    """
    files = [member for member in reader.getmembers() if member.isreg()]
    assert files or not case.files
    for member in files:
        content = read_file(reader, member)
        assert member.digest == sha256_digest(content), member.name
        for chunk in member.chunks:
            data = reader.read_chunk(chunk)
            assert data == content[chunk.chunk_offset : chunk.chunk_offset + chunk.size], member.name
            if chunk.digest:
                assert chunk.digest == sha256_digest(data), (member.name, chunk.chunk_offset)
    return files


def recorded_files(files: dict[str, dict[str, Any]]) -> dict[str, FileRecord]:
    """A recorded or Go-listed ``files`` object in the form of :func:`file_record`."""
    return {name: (info["size"], info["sha256"], info["chunks"]) for name, info in files.items()}
