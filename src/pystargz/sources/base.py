"""The one thing format code needs from storage: "give me N bytes at offset O"."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class RangeSource(Protocol):
    """Random access to a blob of known size.

    ``read_at`` returns exactly ``length`` bytes, or raises
    :class:`~pystargz.errors.SourceError` when it cannot; it must be safe to
    call from several threads at once.
    """

    @property
    def size(self) -> int: ...

    def read_at(self, offset: int, length: int) -> bytes: ...
