"""Code as a user writes it; ``mypy --strict`` must accept it unchanged (run by tools/test.sh).

Not collected by pytest: it documents that the public API is typed well enough
that a strict user needs no casts or ignores.
"""

from __future__ import annotations

import io
import tarfile

import pystargz


def list_files(path: str) -> dict[str, int]:
    with pystargz.open(path) as blob:
        return {member.name: member.size for member in blob if member.isreg()}


def read_one(data: bytes, name: str) -> bytes | None:
    with pystargz.open(data, backend="python") as blob:
        source = blob.extractfile(name)
        return source.read() if source is not None else None


def chunk_table(path: str, name: str) -> list[tuple[int, int, int]]:
    with pystargz.open(path) as blob:
        member: pystargz.StargzInfo = blob.getmember(name)
        return [(chunk.offset, chunk.chunk_offset, chunk.size) for chunk in member.chunks]


class MemorySource:
    """A user-written RangeSource."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    @property
    def size(self) -> int:
        return len(self._data)

    def read_at(self, offset: int, length: int) -> bytes:
        return self._data[offset : offset + length]


def from_custom_source(data: bytes) -> str:
    source: pystargz.RangeSource = MemorySource(data)
    with pystargz.open(source) as blob:
        return blob.toc_digest


def safe_extract(path: str, dest: str) -> list[str]:
    refused: list[str] = []
    with pystargz.open(io.BytesIO(open(path, "rb").read())) as blob:
        try:
            blob.extractall(dest, filter="data")
        except tarfile.FilterError as exc:
            refused.append(str(exc))
        except pystargz.StargzError as exc:
            refused.append(f"bad blob: {exc}")
    return refused


def toc_facts(path: str) -> tuple[str, int, tuple[int, int] | None]:
    with pystargz.open(path) as blob:
        toc: pystargz.TOC = blob.toc
        entry: pystargz.TOCEntry = toc.entries[0]
        return entry.name, len(blob.toc_json), blob.prefetch_range


def zstd_and_external_toc(tar: str) -> tuple[str, str, int]:
    zstd = pystargz.build(tar, "layer.zst", format="zstdchunked", compression_level=3)
    external = pystargz.build(tar, "layer.esgz", external_toc=True)
    toc_blob: bytes | None = external.toc_blob
    with pystargz.open("layer.esgz", toc=toc_blob) as blob:
        layout: str = blob.format
    with pystargz.open("lossless.esgz", "w") as writer:
        writer.append_tar(tar, lossless=True)
    written: int = pystargz.unpack("lossless.esgz", "again.tar")
    return zstd.annotations["io.containers.zstd-chunked.manifest-checksum"], layout, written
def verified_bytes(path: str, toc_digest: str, name: str) -> bytes:
    try:
        with pystargz.open(path, toc_digest=toc_digest) as blob:
            result: pystargz.Verification = blob.verify(toc_digest)
            assert result.toc_checked
            return blob.read_files([name])[name]
    except pystargz.VerificationError as exc:
        raise RuntimeError(f"{exc.entry} at {exc.offset}: {exc.expected} != {exc.actual}") from exc


def unpack_layer(path: str, rootfs: str) -> None:
    limits = pystargz.Limits(max_entries=100_000, max_total_size=1 << 30)
    with pystargz.open(path, limits=limits) as blob:
        try:
            blob.extractall(rootfs, whiteouts="apply")
        except tarfile.LinkOutsideDestinationError as refusal:
            raise SystemExit(f"refused: {refusal}") from refusal
