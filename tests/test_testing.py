"""The public strategies of pystargz.testing hold what they promise.

Valid blobs open and read back what the input tar holds (tarfile is the
oracle), metadata included; each malformation class is caught as its label
says; the module refuses to import without hypothesis, with a clear message.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pystargz
from pystargz import StargzError, StargzReader
from pystargz.members import clean_name
from pystargz.testing import (
    MALFORMATIONS,
    BuiltBlob,
    Malformation,
    malformed_blobs,
    stargz_blobs,
    tar_contents,
    tar_layers,
)

# Building a blob per example is slower than most properties: a fraction of the profile's examples.
EXAMPLES = max(10, (settings().max_examples or 100) // 8)
heavy = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def read_regular(reader: StargzReader) -> dict[str, bytes]:
    """Every regular file (last entry of a name) through ``extractfile``."""
    contents = {}
    for member in reader.getmembers():
        if member.isreg() and reader.getmember(member.name) is member:
            file = reader.extractfile(member)
            assert file is not None
            contents[member.name] = file.read()
    return contents


def last_of_each_name(tar: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(tar), mode="r:") as archive:
        return {clean_name(info.name): info for info in archive}


@heavy
@given(stargz_blobs())
def test_blobs_read_back_what_the_tar_holds(built: BuiltBlob) -> None:
    assert tar_contents(built.blob) == built.contents  # tarfile reading the blob as a plain tar.gz
    with pystargz.open(built.blob) as reader:
        assert reader.format == ("estargz" if built.format == "estargz" else "stargz")
        assert reader.toc_digest == built.toc_digest
        assert reader.toc_offset == built.toc_offset
        assert read_regular(reader) == built.contents
        reader.verify(toc_digest=built.toc_digest)
        if built.prioritized_files:
            assert reader.prefetch_range is not None
        for name, info in last_of_each_name(built.tar).items():
            member = reader.getmember(name)
            assert (member.type, member.mode, member.uid, member.gid) == (
                info.type,
                info.mode,
                info.uid,
                info.gid,
            )
            assert (member.uname, member.gname, member.mtime) == (info.uname, info.gname, info.mtime)
            assert (member.linkname, member.devmajor, member.devminor) == (
                info.linkname,
                info.devmajor,
                info.devminor,
            ), name
            xattrs = {k.removeprefix("SCHILY.xattr."): v.encode() for k, v in info.pax_headers.items()}
            assert member.xattrs == {k: v for k, v in xattrs.items() if k.startswith("user.")}
            if info.islnk():
                file = reader.extractfile(member)
                assert file is not None
                assert file.read() == built.contents[clean_name(info.linkname)]


@heavy
@given(stargz_blobs(tar_layers(min_data_files=1), formats=("estargz",), chunk_sizes=st.just(512)))
def test_blobs_exercise_chunks_and_packing(built: BuiltBlob) -> None:
    """The options show in the TOC: files have one chunk per 512 bytes; packing uses inner offsets.

    When the whole payload is smaller than ``min_chunk_size``, the files after the landmark
    pack into the landmark's member.
    """
    with pystargz.open(built.blob) as reader:
        for name, data in built.contents.items():
            assert len(reader.getmember(name).chunks) == -(-len(data) // 512)
        packed = any(chunk.inner_offset for member in reader for chunk in member.chunks)
        unprioritized = set(built.contents) - set(built.prioritized_files) - {".prefetch.landmark"}
        if not built.min_chunk_size:
            assert not packed
        elif built.min_chunk_size >= built.toc_offset and any(built.contents[n] for n in unprioritized):
            assert packed


def outcome(blob: bytes, toc_digest: str | None = None) -> dict[str, bytes] | StargzError:
    """What opening, reading every file and verifying gives: the contents, or the StargzError."""
    try:
        with pystargz.open(blob) as reader:
            contents = read_regular(reader)
            reader.verify(toc_digest=toc_digest)
            return contents
    except StargzError as exc:
        return exc


def check(malformation: Malformation) -> None:
    """The contract of :data:`pystargz.testing.Expectation`."""
    if malformation.expect == "error":
        try:
            with pystargz.open(malformation.blob) as reader:
                read_regular(reader)
        except StargzError:
            return
        pytest.fail(f"{malformation} opened and read without an error")
    if malformation.expect == "verify":
        result = outcome(malformation.blob)
        assert isinstance(result, StargzError), f"{malformation} read and verified without an error"
        return
    result = outcome(malformation.blob, malformation.original.toc_digest)
    if not isinstance(result, StargzError):
        assert result == malformation.original.contents, malformation


@heavy
@pytest.mark.parametrize("kind", MALFORMATIONS)
@given(data=st.data())
def test_each_malformation_is_caught_as_labelled(kind: str, data: st.DataObject) -> None:
    malformation = data.draw(malformed_blobs(kinds=(kind,)))
    assert malformation.kind == kind
    assert malformation.blob != malformation.original.blob
    check(malformation)


def test_malformation_classes() -> None:
    assert set(MALFORMATIONS) == {
        "truncate",
        "bit_flip",
        "splice",
        "footer_offset",
        "footer_garbage",
        "toc_offset_out_of_range",
        "toc_chunk_overlap",
        "toc_size_lie",
        "toc_digest_lie",
        "toc_hardlink_cycle",
        "toc_huge_size",
    }
    with pytest.raises(ValueError, match="unknown malformation"):
        malformed_blobs(kinds=("nonsense",))


def test_import_without_hypothesis_says_what_to_install() -> None:
    """hypothesis is only a dev and ``testing`` extra dependency: the import error must say so."""
    result = python_without_hypothesis("import pystargz.testing")
    assert result.returncode == 1
    assert "ImportError: pystargz.testing needs hypothesis" in result.stderr
    assert "pip install 'pystargz[testing]'" in result.stderr
    plain = python_without_hypothesis("import pystargz")  # pystargz itself does not need it
    assert plain.returncode == 0, plain.stderr


def python_without_hypothesis(statement: str) -> subprocess.CompletedProcess[str]:
    """Runs ``statement`` in a fresh interpreter where importing hypothesis fails."""
    code = f"import sys; sys.modules['hypothesis'] = None; {statement}"
    src = str(Path(pystargz.__file__).resolve().parent.parent)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": src}, check=False
    )
