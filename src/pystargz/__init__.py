"""pystargz: read stargz / eStargz container layers, a file at a time.

>>> import pystargz
>>> with pystargz.open("layer.esgz") as blob:          # doctest: +SKIP
...     print(blob.getnames()[:3], blob.toc_digest)
...     data = blob.extractfile("etc/os-release").read()
"""

from __future__ import annotations

from typing import Literal

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

__version__ = "0.1.0"

__all__ = [
    "TOC",
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
    "TOCEntry",
    "TOCError",
    "VerificationError",
    "__version__",
    "is_stargz",
    "native_backend",
    "open",
]


def open(
    source: SourceLike,
    mode: Literal["r"] = "r",
    *,
    limits: Limits | None = None,
    backend: str | None = None,
) -> StargzReader:
    """Opens a stargz / eStargz blob for reading.

    ``source`` is a path, ``bytes``, a seekable binary file object or any
    :class:`RangeSource`.  ``backend`` picks the inflate code ("native" or
    "python"; default from ``PYSTARGZ_BACKEND``).  Only mode "r" exists yet.
    """
    if mode != "r":
        raise ValueError(f"mode must be 'r', not {mode!r}")
    return open_reader(source, limits=limits, backend=backend)


def is_stargz(source: SourceLike) -> bool:
    """Whether ``source`` opens as a stargz / eStargz blob (footer and TOC read cleanly)."""
    try:
        open(source).close()
    except StargzError:
        return False
    return True
