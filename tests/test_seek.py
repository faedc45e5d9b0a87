"""Random seeks and reads on ``extractfile`` against the true contents (tarfile reading the same blob)."""

from __future__ import annotations

import functools
import hashlib
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pystargz
from pystargz import StargzReader
from tests.blobs import tar_contents
from tests.vectors import vector_case

CASES = (
    "chunks_4k__cs1000",
    "big_chunks_4m__cs1m",
    "mixed__cs4096",
    "up_mixed__mcs16384",
    "up_mixed__cs4096_mcs16384",
    "up_tree300__mcs16384",
)


@functools.cache
def opened(case: str) -> tuple[StargzReader, dict[str, bytes]]:
    """The reader over the blob in memory and every regular file's true contents."""
    blob = vector_case(case).blob.read_bytes()
    truth = tar_contents(blob)
    files = vector_case(case).record["files"]
    assert {name: "sha256:" + hashlib.sha256(data).hexdigest() for name, data in truth.items()} == {
        name: file["sha256"] for name, file in files.items()
    }
    return pystargz.open(blob), truth


@pytest.mark.parametrize("case", CASES)
def test_cases_have_what_the_property_needs(case: str) -> None:
    reader, truth = opened(case)
    chunk_counts = [len(reader.getmember(name).chunks) for name in truth]
    assert max(chunk_counts) >= (1 if case in ("up_mixed__mcs16384", "up_tree300__mcs16384") else 3)
    if case.startswith("up_"):
        assert any(chunk.inner_offset for name in truth for chunk in reader.getmember(name).chunks)


@st.composite
def operations(draw: st.DrawFn, size: int) -> list[tuple[str, int, int]]:
    """(verb, argument, whence) steps; seek targets may be negative or past the end."""
    steps = []
    for _ in range(draw(st.integers(1, 25))):
        verb = draw(st.sampled_from(["seek", "read", "read", "readinto", "read1", "tell"]))
        if verb == "seek":
            target = draw(st.integers(-20, size + 50) | st.sampled_from([0, size, size - 1, size + 1]))
            steps.append((verb, target, draw(st.sampled_from([io.SEEK_SET, io.SEEK_CUR, io.SEEK_END]))))
        else:
            amount = draw(st.sampled_from([-1, 0, 1]) | st.integers(0, size + 20) | st.integers(0, 70_000))
            steps.append((verb, amount, 0))
    return steps


def check_steps(file: io.BufferedReader, content: bytes, steps: list[tuple[str, int, int]]) -> None:
    """Runs ``steps`` on ``file``, holding each result to the slice of ``content`` it must equal."""
    size = len(content)
    position = 0
    for verb, argument, whence in steps:
        if verb == "seek":
            base = {io.SEEK_SET: 0, io.SEEK_CUR: position, io.SEEK_END: size}[whence]
            if argument < 0:
                with pytest.raises(ValueError, match="negative"):
                    file.seek(argument - base, whence)
            else:
                assert file.seek(argument - base, whence) == argument
                position = argument
        elif verb == "tell":
            pass
        elif verb == "read":
            data = file.read(argument)
            end = size if argument < 0 else min(size, position + argument)
            assert data == content[position:end]
            position = max(position, end)
        elif verb == "readinto":
            buffer = bytearray(b"\xaa" * max(argument, 0))
            count = file.readinto(buffer)
            expected = content[position : position + len(buffer)]
            assert count == len(expected)
            assert buffer[:count] == expected
            assert buffer[count:] == b"\xaa" * (len(buffer) - count)
            position += count
        else:
            data = file.read1(argument)
            expected = content[position:] if argument < 0 else content[position : position + argument]
            assert expected.startswith(data)
            assert data or not expected or argument == 0
            position += len(data)
        assert file.tell() == position


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_seeks_and_reads(data: st.DataObject) -> None:
    reader, truth = opened(data.draw(st.sampled_from(CASES)))
    name = data.draw(st.sampled_from(sorted(truth)))
    content = truth[name]
    file = reader.extractfile(name)
    assert file is not None
    with file:
        check_steps(file, content, data.draw(operations(len(content))))


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_two_files_interleaved(data: st.DataObject) -> None:
    """Two open files of one reader never disturb each other's position or cached chunk."""
    reader, truth = opened(data.draw(st.sampled_from(("chunks_4k__cs1000", "up_mixed__mcs16384"))))
    names = data.draw(st.lists(st.sampled_from(sorted(truth)), min_size=2, max_size=2))
    files = [reader.extractfile(name) for name in names]
    positions = [0, 0]
    for _ in range(data.draw(st.integers(1, 20))):
        which = data.draw(st.integers(0, 1))
        file, content = files[which], truth[names[which]]
        assert file is not None
        if data.draw(st.booleans()):
            positions[which] = data.draw(st.integers(0, len(content)))
            file.seek(positions[which])
        amount = data.draw(st.integers(0, 3000))
        assert file.read(amount) == content[positions[which] : positions[which] + amount]
        positions[which] = min(len(content), positions[which] + amount)


def test_bad_whence_and_closed_file() -> None:
    reader, truth = opened("chunks_4k__cs1000")
    file = reader.extractfile("data/multi_3x4096_plus_123.bin")
    assert file is not None
    assert file.read(10) == truth["data/multi_3x4096_plus_123.bin"][:10]
    with pytest.raises(ValueError, match="whence"):
        file.seek(0, 3)
    assert file.tell() == 10
    file.close()
    with pytest.raises(ValueError, match="closed"):
        file.read(1)


def test_whole_files_by_every_route() -> None:
    for case in CASES:
        reader, truth = opened(case)
        assert reader.read_files(list(truth)) == truth
        for name, content in list(truth.items())[:20]:
            file = reader.extractfile(name)
            assert file is not None
            assert file.read() == content
            assert file.read() == b""
