"""Where blob bytes come from.  Format code sees only :class:`RangeSource`."""

from __future__ import annotations

import io
import os

from pystargz.sources.base import MultiRangeSource, RangeSource, SourceStats, read_ranges
from pystargz.sources.http import Authenticator, HTTPSource
from pystargz.sources.local import BytesSource, FileObjectSource, FileSource

__all__ = [
    "Authenticator",
    "BytesSource",
    "FileObjectSource",
    "FileSource",
    "HTTPSource",
    "MultiRangeSource",
    "RangeSource",
    "SourceLike",
    "SourceStats",
    "as_source",
    "read_ranges",
]

SourceLike = str | os.PathLike[str] | bytes | bytearray | memoryview | io.IOBase | RangeSource


def as_source(obj: SourceLike) -> RangeSource:
    """Wraps a path, an ``http(s)://`` URL, a buffer or a binary file object; passes a RangeSource through."""
    if isinstance(obj, str) and obj.startswith(("http://", "https://")):
        return HTTPSource(obj)
    if isinstance(obj, (str, os.PathLike)):
        return FileSource(obj)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return BytesSource(obj)
    if isinstance(obj, RangeSource):
        return obj
    if hasattr(obj, "read") and hasattr(obj, "seek"):
        return FileObjectSource(obj)  # type: ignore[arg-type]
    raise TypeError(
        f"cannot read a blob from {type(obj).__name__}; "
        "pass a path, bytes, a binary file object or a RangeSource"
    )
