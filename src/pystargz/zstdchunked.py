"""zstd:chunked: the TOC in a skippable zstd frame, every chunk its own zstd frame.

Two variants share the idea and differ in the details (``docs/format.md``):
the Go estargz package's (``estargz/zstdchunked``: the eStargz TOC JSON,
indented, and a 40-byte footer) and containers/storage's (``pkg/chunked``:
compact JSON with extra fields, a tar-split frame, a 64-byte footer).  Both
keep the TOC as one zstd frame wrapped in a skippable frame, so a plain zstd
decoder sees only the tar stream, and both footers record the TOC's offset
and sizes, so it is read without guessing.

The annotations registries carry for the Go variant are written here too:
``manifest-checksum`` is the digest of the *compressed* TOC, and
``manifest-position`` is ``offset:compressed:raw:1``.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

from pystargz.compression.base import Backend, SpanFailure, error_for
from pystargz.compression.zstd import SKIPPABLE_HEADER_SIZE, ZSTD, decompress_frames, skippable_frame
from pystargz.errors import LimitError, TOCError
from pystargz.footer import MANIFEST_TYPE_CRFS, Footer, Layout, build_footer

ANNOTATION_MANIFEST_CHECKSUM = "io.containers.zstd-chunked.manifest-checksum"
ANNOTATION_MANIFEST_POSITION = "io.containers.zstd-chunked.manifest-position"
STORAGE_ANNOTATION_MANIFEST_CHECKSUM = "io.github.containers.zstd-chunked.manifest-checksum"
STORAGE_ANNOTATION_MANIFEST_POSITION = "io.github.containers.zstd-chunked.manifest-position"
STORAGE_ANNOTATION_TAR_SPLIT_POSITION = "io.github.containers.zstd-chunked.tarsplit-position"


class RawSink(Protocol):
    """Where the writer puts finished bytes: the member pipeline's ``write_raw`` and running size."""

    size: int

    def write_raw(self, data: bytes) -> None: ...


def toc_json_from_frame(frame: bytes, footer: Footer, max_toc_size: int) -> bytes:
    """The TOC JSON from its compressed bytes (``footer.toc_size`` of them at ``footer.toc_offset``).

    The footer records the raw size, so a TOC over the limit is refused before
    it is decompressed, and one that decompresses to another size is refused after.
    """
    if footer.toc_raw_size > max_toc_size:
        raise LimitError(f"TOC of {footer.toc_raw_size} bytes exceeds the limit of {max_toc_size}")
    limit = footer.toc_raw_size or max_toc_size
    try:
        toc_json = decompress_frames(frame, limit)
    except SpanFailure as failure:
        cause = error_for(failure.status, footer.toc_offset + failure.offset, limit, codec=ZSTD)
        raise TOCError(f"cannot decompress the TOC at offset {footer.toc_offset}: {cause}") from None
    if footer.toc_raw_size and len(toc_json) != footer.toc_raw_size:
        raise TOCError(
            f"TOC at offset {footer.toc_offset} decompresses to {len(toc_json)} bytes, "
            f"the footer says {footer.toc_raw_size}"
        )
    return toc_json


def write_toc_and_footer(sink: RawSink, toc_json: bytes, backend: Backend, level: int) -> dict[str, str]:
    """Appends the TOC frame and the 40-byte footer, as Go's ``zstdchunked.Compressor``.

    Returns the annotations for the layer descriptor.
    """
    (compressed,) = backend.compress_batch([toc_json], level)
    toc_offset = sink.size + SKIPPABLE_HEADER_SIZE
    sink.write_raw(skippable_frame(compressed))
    sink.write_raw(
        build_footer(toc_offset, Layout.ZSTD_CHUNKED, toc_size=len(compressed), toc_raw_size=len(toc_json))
    )
    return {
        ANNOTATION_MANIFEST_CHECKSUM: "sha256:" + hashlib.sha256(compressed).hexdigest(),
        ANNOTATION_MANIFEST_POSITION: f"{toc_offset}:{len(compressed)}:{len(toc_json)}:{MANIFEST_TYPE_CRFS}",
    }
