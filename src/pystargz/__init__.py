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
    CompressionError,
    CorruptDataError,
    ExtractionFilterError,
    FooterError,
    FormatError,
    InternalError,
    LimitError,
    SourceError,
    StargzError,
    TOCError,
    VerificationError,
)
from pystargz.footer import Footer, Layout
from pystargz.members import Chunk, StargzInfo
from pystargz.reader import Limits, StargzReader, open_reader
from pystargz.sources import RangeSource, SourceLike
from pystargz.toc import TOC, TOCEntry
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
    "BuildError",
    "BuildResult",
    "Chunk",
    "CompressionError",
    "CorruptDataError",
    "ExtractionFilterError",
    "Footer",
    "FooterError",
    "FormatError",
    "InternalError",
    "Layout",
    "LimitError",
    "Limits",
    "RangeSource",
    "SourceError",
    "StargzError",
    "StargzInfo",
    "StargzReader",
    "StargzWriter",
    "TOCEntry",
    "TOCError",
    "VerificationError",
    "__version__",
    "build",
    "is_stargz",
    "native_backend",
    "open",
]


@overload
def open(
    source: SourceLike,
    mode: Literal["r"] = "r",
    *,
    limits: Limits | None = None,
    backend: str | None = None,
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
) -> StargzWriter: ...


def open(source: Any, mode: str = "r", **options: Any) -> StargzReader | StargzWriter:
    """Opens a blob for reading (mode "r") or writing (mode "w"), like :func:`tarfile.open`.

    Reading: ``source`` is a path, ``bytes``, a seekable binary file object or
    any :class:`RangeSource`; ``limits`` bounds what an untrusted blob may
    cost; ``backend`` picks the inflate code ("native" or "python"; default
    from ``PYSTARGZ_BACKEND``); ``cache_size`` bounds the inflated chunks kept
    (default 64 MiB for remote sources, none for local ones) and ``cache``
    shares one :class:`~pystargz.cache.ChunkCache` between readers.  Writing: ``source`` is a path or a binary
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
