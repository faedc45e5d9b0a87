"""The one thing format code needs from storage: "give me N bytes at offset O"."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from pystargz.errors import SourceError


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


def check_range(offset: int, length: int, size: int, what: str) -> None:
    """Refuses a read outside ``what`` (a blob of ``size`` bytes) before any I/O."""
    if offset < 0 or length < 0 or offset + length > size:
        raise SourceError(f"read of {length} bytes at offset {offset} is outside {what} of {size} bytes")


def json_object(data: bytes, what: str) -> dict[str, object]:
    """``data`` parsed as a JSON object (a Docker config, a manifest); SourceError naming ``what`` if not."""
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SourceError(f"{what}: not valid JSON ({exc})") from exc
    if not isinstance(document, dict):
        raise SourceError(f"{what}: not a JSON object")
    return document


@runtime_checkable
class MultiRangeSource(RangeSource, Protocol):
    """A source that can fetch several ranges at once (one HTTP request for many ranges)."""

    def read_ranges(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]: ...


def read_ranges(source: RangeSource, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
    """The bytes of each ``(offset, length)`` range, in the order asked.

    Lets the reader batch its reads on any source: a network source answers
    them in as few requests as it can, a local one reads each range in turn.
    """
    if isinstance(source, MultiRangeSource):
        return source.read_ranges(ranges)
    return [source.read_at(offset, length) for offset, length in ranges]


@dataclass(frozen=True)
class SourceStats:
    """What a network source has cost so far.

    ``requests`` counts every request sent (redirects, retries and HEAD
    included), ``bytes_fetched`` the response body bytes received, and
    ``retries`` the requests repeated after a transient failure.
    """

    requests: int
    bytes_fetched: int
    retries: int
