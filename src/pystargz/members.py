"""Members of a blob as users see them: TarInfo's names plus the format's chunks and digests."""

from __future__ import annotations

import tarfile
from typing import NamedTuple

from pystargz.errors import TOCError
from pystargz.toc import EntryType, TOCEntry, parse_modtime

TAR_TYPES: dict[EntryType, bytes] = {
    "reg": tarfile.REGTYPE,
    "dir": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "hardlink": tarfile.LNKTYPE,
    "char": tarfile.CHRTYPE,
    "block": tarfile.BLKTYPE,
    "fifo": tarfile.FIFOTYPE,
}
IMPLICIT_DIR_MODE = 0o755


def clean_name(name: str) -> str:
    """A TOC name as the Go reader normalizes it: ``path.Clean("/" + name)`` minus the "/".

    So "./a//b/" is "a/b", "../x" is "x" and the root ("./", "/") is "".
    """
    if name and name[0] not in "./" and name[-1] != "/" and "//" not in name and "/." not in name:
        return name  # already clean: the common case, worth a fast path at open
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/".join(parts)


class Chunk(NamedTuple):
    """Where one piece of a regular file lives.

    Inflate the gzip members starting at blob offset ``offset`` (they end
    before ``end``), skip ``inner_offset`` bytes, and the next ``size`` bytes
    are the file's bytes ``[chunk_offset, chunk_offset + size)``.  Fields are
    ordered so that chunks sort in blob order.
    """

    offset: int
    inner_offset: int
    end: int
    chunk_offset: int
    size: int
    digest: str
    name: str


class StargzInfo:
    """A member of a blob, named and shaped like :class:`tarfile.TarInfo` (read-only).

    ``type`` is a tarfile type flag (``tarfile.REGTYPE``...); ``entry`` is the
    TOC entry it came from (a made-up ``dir`` entry for an implicit parent).
    Attributes the TOC stores as they are (size, mode, ids...) are read from
    the entry, so building a member at open costs little.
    """

    __slots__ = ("_chunks", "entry", "gname", "mtime", "name", "type", "uname")

    def __init__(self, name: str, type: bytes, mtime: int, uname: str, gname: str, entry: TOCEntry) -> None:
        self.name = name
        self.type = type
        self.mtime = mtime
        self.uname = uname
        self.gname = gname
        self.entry = entry
        self._chunks: tuple[Chunk, ...] = ()

    @property
    def size(self) -> int:
        return self.entry.size

    @property
    def mode(self) -> int:
        return self.entry.mode

    @property
    def linkname(self) -> str:
        return self.entry.link_name

    @property
    def uid(self) -> int:
        return self.entry.uid

    @property
    def gid(self) -> int:
        return self.entry.gid

    @property
    def devmajor(self) -> int:
        return self.entry.dev_major

    @property
    def devminor(self) -> int:
        return self.entry.dev_minor

    @property
    def xattrs(self) -> dict[str, bytes]:
        return self.entry.xattrs

    @property
    def digest(self) -> str:
        """``sha256:<hex>`` of a regular file's contents, as the TOC records it ("" if absent)."""
        return self.entry.digest

    @property
    def chunks(self) -> tuple[Chunk, ...]:
        """The file's chunks in file order (empty for everything but non-empty regular files)."""
        return self._chunks

    def set_chunks(self, chunks: list[Chunk]) -> None:
        """Attaches chunks after checking they tile the file exactly, so reads cannot go astray."""
        ordered = chunks if len(chunks) < 2 else sorted(chunks, key=lambda c: c.chunk_offset)
        position = 0
        for chunk in ordered:
            if chunk.chunk_offset != position:
                raise TOCError(
                    f"{self.name!r}: chunk at file offset {chunk.chunk_offset} should start at "
                    f"{position} (chunks must cover the file without gaps or overlaps)"
                )
            position += chunk.size
        if position != (self.size if self.isreg() else 0):
            raise TOCError(f"{self.name!r}: chunks cover {position} bytes of a {self.size}-byte file")
        self._chunks = tuple(ordered)

    def isfile(self) -> bool:
        return self.type == tarfile.REGTYPE

    isreg = isfile

    def isdir(self) -> bool:
        return self.type == tarfile.DIRTYPE

    def issym(self) -> bool:
        return self.type == tarfile.SYMTYPE

    def islnk(self) -> bool:
        return self.type == tarfile.LNKTYPE

    def ischr(self) -> bool:
        return self.type == tarfile.CHRTYPE

    def isblk(self) -> bool:
        return self.type == tarfile.BLKTYPE

    def isfifo(self) -> bool:
        return self.type == tarfile.FIFOTYPE

    def isdev(self) -> bool:
        return self.type in (tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE)

    def to_tarinfo(self) -> tarfile.TarInfo:
        """An equivalent TarInfo, for tarfile's extraction filters or for writing a tar."""
        info = tarfile.TarInfo(self.name)
        info.type = self.type
        info.size = self.size if self.isreg() else 0
        info.mtime = self.mtime
        info.mode = self.mode
        info.linkname = self.linkname
        info.uid, info.gid = self.uid, self.gid
        info.uname, info.gname = self.uname, self.gname
        info.devmajor, info.devminor = self.devmajor, self.devminor
        if self.xattrs:
            info.pax_headers = {
                f"SCHILY.xattr.{key}": value.decode("utf-8", "surrogateescape")
                for key, value in self.xattrs.items()
            }
        return info

    def __repr__(self) -> str:
        return f"<StargzInfo {self.name!r} {self.entry.type} size={self.size}>"


def member_from_entry(
    entry: TOCEntry, index: int, unames: dict[int, str], gnames: dict[int, str]
) -> StargzInfo:
    """Builds the member for a non-chunk TOC entry.

    Owner names are written only when they change for an id, so the last
    name seen for each id fills the gaps (``unames`` / ``gnames`` carry that
    state across entries).
    """
    try:
        mtime = parse_modtime(entry.modtime)
    except ValueError as exc:
        raise TOCError(f"TOC entry #{index} ({entry.name!r}): {exc}") from None
    return StargzInfo(
        clean_name(entry.name),
        TAR_TYPES[entry.type],
        mtime,
        _backfill(unames, entry.uid, entry.user_name),
        _backfill(gnames, entry.gid, entry.group_name),
        entry,
    )


def _backfill(names: dict[int, str], owner_id: int, name: str) -> str:
    if name:
        names[owner_id] = name
        return name
    return names.get(owner_id, "")


def implicit_dir(name: str) -> StargzInfo:
    """A directory that exists only because something inside it does."""
    return StargzInfo(
        name, tarfile.DIRTYPE, 0, "", "", TOCEntry(name=name, type="dir", mode=IMPLICIT_DIR_MODE)
    )
