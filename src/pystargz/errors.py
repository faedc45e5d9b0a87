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
    """A digest does not match: the bytes are not the ones the TOC (or the caller) promised.

    ``entry`` names the TOC entry (``stargz.index.json`` for the TOC itself),
    ``offset`` is the blob offset of the bytes checked, ``expected`` and
    ``actual`` are the two digests (``expected`` is "" when there was nothing
    to check against).
    """

    def __init__(
        self,
        message: str,
        *,
        expected: str,
        actual: str,
        entry: str | None = None,
        offset: int | None = None,
    ) -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual
        self.entry = entry
        self.offset = offset


class CompressionError(StargzError):
    """A compression codec the blob needs is not available."""


class SourceError(StargzError, OSError):
    """Reading bytes from the source (file, URL, registry) failed."""


class ExtractionFilterError(StargzError, tarfile.FilterError):
    """The extraction filter refused a member (absolute path, ``..``, escaping link, device...).

    Also a :class:`tarfile.FilterError`, so code written for tarfile catches it.
    ``member`` names the member; ``tarinfo`` is the TarInfo the filter saw
    (as on tarfile's own errors); the filter's exception is the ``__cause__``.
    Each of tarfile's refusals has a subclass below that is also tarfile's
    class of the same name.
    """

    def __init__(self, message: str, *, member: str, tarinfo: tarfile.TarInfo | None = None) -> None:
        # tarfile's subclasses take (tarinfo[, path]) and build their own message: skip their __init__.
        Exception.__init__(self, message)
        self.member = member
        self.tarinfo = tarinfo if tarinfo is not None else tarfile.TarInfo(member)


class AbsolutePathError(ExtractionFilterError, tarfile.AbsolutePathError):
    """The member's name is absolute even after stripping leading slashes."""


class OutsideDestinationError(ExtractionFilterError, tarfile.OutsideDestinationError):
    """The member would land outside the destination (``..`` or through a symlink)."""


class SpecialFileError(ExtractionFilterError, tarfile.SpecialFileError):
    """The member is a device or FIFO, which the ``data`` filter refuses."""


class AbsoluteLinkError(ExtractionFilterError, tarfile.AbsoluteLinkError):
    """A symlink or hardlink target is an absolute path."""


class LinkOutsideDestinationError(ExtractionFilterError, tarfile.LinkOutsideDestinationError):
    """A symlink or hardlink target leads outside the destination."""


class ExtractionError(StargzError, OSError):
    """Writing a member to the destination failed (a file-system error); also an :class:`OSError`.

    ``member`` names the member, ``errno`` is the file system's; the OSError is the ``__cause__``.
    """

    def __init__(self, message: str, *, member: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.member = member
        self.errno = errno


# tarfile's own classes and ours, most specific first; LinkFallbackError exists from 3.12.11 / 3.13.4.
FILTER_ERRORS: list[tuple[type[tarfile.FilterError], type[ExtractionFilterError]]] = [
    (tarfile.AbsolutePathError, AbsolutePathError),
    (tarfile.OutsideDestinationError, OutsideDestinationError),
    (tarfile.SpecialFileError, SpecialFileError),
    (tarfile.AbsoluteLinkError, AbsoluteLinkError),
    (tarfile.LinkOutsideDestinationError, LinkOutsideDestinationError),
]
_tar_link_fallback: type[tarfile.FilterError] | None = getattr(tarfile, "LinkFallbackError", None)
if _tar_link_fallback is not None:

    class LinkFallbackError(ExtractionFilterError, _tar_link_fallback):  # type: ignore[misc,valid-type]
        """A hardlink could not be made and its fallback copy would be unsafe."""

    FILTER_ERRORS.append((_tar_link_fallback, LinkFallbackError))


def filter_error(refusal: tarfile.FilterError, member: str) -> ExtractionFilterError:
    """Our subclass matching tarfile's ``refusal`` (the base class for filters' own FilterErrors)."""
    kind = next((ours for theirs, ours in FILTER_ERRORS if isinstance(refusal, theirs)), None)
    error = (kind or ExtractionFilterError)(
        f"refusing to extract {member!r}: {refusal}", member=member, tarinfo=getattr(refusal, "tarinfo", None)
    )
    path = getattr(refusal, "_path", None)
    if path is not None:
        error._path = path  # type: ignore[attr-defined]
    return error


class InternalError(StargzError):
    """pystargz broke one of its own invariants; please report it."""
