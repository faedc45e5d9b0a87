"""pystargz: read stargz / eStargz container layers, a file at a time.

>>> import pystargz
>>> with pystargz.open("layer.esgz") as blob:          # doctest: +SKIP
...     print(blob.getnames()[:3], blob.toc_digest)
...     data = blob.extractfile("etc/os-release").read()
"""

from __future__ import annotations

import os
from typing import Any, BinaryIO, Literal, overload

from pystargz.cache import ChunkCache
from pystargz.compression import native_backend
from pystargz.errors import (
    AbsoluteLinkError,
    AbsolutePathError,
    CompressionError,
    CorruptDataError,
    ExtractionError,
    ExtractionFilterError,
    FooterError,
    FormatError,
    InternalError,
    LimitError,
    LinkOutsideDestinationError,
    OutsideDestinationError,
    SourceError,
    SpecialFileError,
    StargzError,
    TOCError,
    VerificationError,
)
from pystargz.footer import Footer, Layout
from pystargz.lossless import unpack
from pystargz.members import Chunk, StargzInfo
from pystargz.reader import Limits, StargzReader, open_reader
from pystargz.sources import RangeSource, SourceLike
from pystargz.storagechunked import build_zstd_chunked_storage
from pystargz.toc import TOC, TOCEntry
from pystargz.verify import Verification
from pystargz.writer import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_LEVEL,
    BuildError,
    BuildResult,
    Format,
    StargzWriter,
    build,
)

__version__ = "0.1.0"

__all__ = [
    "TOC",
    "AbsoluteLinkError",
    "AbsolutePathError",
    "BuildError",
    "BuildResult",
    "Chunk",
    "CompressionError",
    "CorruptDataError",
    "ExtractionError",
    "ExtractionFilterError",
    "Footer",
    "FooterError",
    "FormatError",
    "InternalError",
    "Layout",
    "LimitError",
    "Limits",
    "LinkOutsideDestinationError",
    "OutsideDestinationError",
    "RangeSource",
    "SourceError",
    "SpecialFileError",
    "StargzError",
    "StargzInfo",
    "StargzReader",
    "StargzWriter",
    "TOCEntry",
    "TOCError",
    "Verification",
    "VerificationError",
    "__version__",
    "build",
    "build_zstd_chunked_storage",
    "is_stargz",
    "native_backend",
    "open",
    "unpack",
]


@overload
def open(
    source: SourceLike,
    mode: Literal["r"] = "r",
    *,
    limits: Limits | None = None,
    backend: str | None = None,
    toc: bytes | str | os.PathLike[str] | None = None,
    toc_digest: str | None = None,
    cache_size: int | None = None,
    cache: ChunkCache | None = None,
) -> StargzReader: ...


@overload
def open(
    source: str | os.PathLike[str] | BinaryIO,
    mode: Literal["w"],
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    compression_level: int = DEFAULT_LEVEL,
    format: Format = "estargz",
    workers: int | None = None,
    backend: str | None = None,
    min_chunk_size: int = 0,
    external_toc: bool = False,
) -> StargzWriter: ...


def open(source: Any, mode: str = "r", **options: Any) -> StargzReader | StargzWriter:
    """Opens a blob for reading (mode "r") or writing (mode "w"), like :func:`tarfile.open`.

    Reading: ``source`` is a path, ``bytes``, a seekable binary file object or
    any :class:`RangeSource`; ``limits`` bounds what an untrusted blob may
    cost; ``backend`` picks the inflate code ("native" or "python"; default
    from ``PYSTARGZ_BACKEND``; zstd:chunked blobs always use zstd); ``toc``
    is the separate TOC blob (bytes or a path) of an external-TOC blob, which
    cannot be read without it; ``toc_digest`` (the manifest's
    ``containerd.io/snapshot/stargz/toc.digest``) makes the reader check the
    TOC on open and every chunk as it is inflated, so that no byte it returns
    is unverified (a mismatch raises :class:`VerificationError`); ``cache_size``
    bounds the inflated chunks kept (default 64 MiB for remote sources, none
    for local ones) and ``cache`` shares one :class:`~pystargz.cache.ChunkCache`
    between readers.  Writing: ``source`` is a path or a binary
    file; the options are those of :class:`StargzWriter`.
    """
    if mode == "r":
        return open_reader(source, **options)
    if mode == "w":
        return StargzWriter(source, **options)
    raise ValueError(f"mode must be 'r' or 'w', not {mode!r}")


def is_stargz(source: SourceLike) -> bool:
    """Whether ``source`` opens as a stargz / eStargz blob (footer and TOC read cleanly)."""
    try:
        open(source).close()
    except StargzError:
        return False
    return True
