"""The pystargz exception tree.

Every failure the public API reports on bad input is a :class:`StargzError`,
as every failure of :mod:`tarfile` is a ``TarError``; messages say what went
wrong and where (blob offset, entry name) so that a log line is enough to
find the bad byte.
"""

from __future__ import annotations

import tarfile


class StargzError(Exception):
    """Base class of every error pystargz raises on purpose."""


class FormatError(StargzError):
    """The blob is not a well-formed stargz / eStargz layer."""


class FooterError(FormatError):
    """The footer at the end of the blob is missing or malformed."""


class TOCError(FormatError):
    """The table of contents (``stargz.index.json``) cannot be read or is inconsistent."""


class CorruptDataError(FormatError):
    """A gzip member is damaged: bad header, bad deflate data, wrong CRC or length.

    ``offset`` is the blob offset of the member that failed when known, and
    ``entry`` the TOC entry being read.
    """

    def __init__(self, message: str, *, offset: int | None = None, entry: str | None = None) -> None:
        super().__init__(message)
        self.offset = offset
        self.entry = entry


class LimitError(FormatError):
    """The blob asks for more than the configured limits allow (size, memory, depth)."""


class VerificationError(StargzError):
    """A digest does not match: the bytes are not the ones the TOC promised."""

    def __init__(self, message: str, *, expected: str, actual: str, entry: str | None = None) -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual
        self.entry = entry


class CompressionError(StargzError):
    """A compression codec the blob needs is not available."""


class SourceError(StargzError, OSError):
    """Reading bytes from the source (file, URL, registry) failed."""


class ExtractionFilterError(StargzError, tarfile.FilterError):
    """The extraction filter refused a member (absolute path, ``..``, escaping link, device...).

    Also a :class:`tarfile.FilterError`, so code written for tarfile catches it.
    ``member`` names the member; the filter's own exception is the ``__cause__``.
    """

    def __init__(self, message: str, *, member: str) -> None:
        super().__init__(message)
        self.member = member


class InternalError(StargzError):
    """pystargz broke one of its own invariants; please report it."""
