"""Writing members to a directory, through tarfile's own extraction filters.

Path safety is tarfile's: each member becomes a TarInfo and passes through
``tarfile.data_filter`` (or the filter the caller names) before anything
touches the disk, so pystargz refuses exactly what tarfile refuses, and says
so with an error that is both a StargzError and tarfile's own class.

Overlay whiteouts (``.wh.NAME`` hides NAME of the layers below, ``.wh..wh..opq``
hides everything the layers below put in its directory) are plain files to
tar; ``whiteouts="apply"`` gives them their overlay meaning against what is
already in the destination.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tarfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from pystargz.errors import ExtractionError, ExtractionFilterError, StargzError, TOCError, filter_error
from pystargz.members import StargzInfo

if TYPE_CHECKING:
    from pystargz.reader import FilterArg, StargzReader, Whiteouts

Filter = Callable[[tarfile.TarInfo, str], "tarfile.TarInfo | None"]
# Regular-file bytes inflated ahead of writing, per batch; a larger file is written as it is inflated.
BATCH_BYTES = 64 << 20
WHITEOUT_PREFIX = ".wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"
# aufs keeps its own metadata under this prefix (.wh..wh.plnk, .wh..wh.aufs); it hides nothing.
AUFS_META_PREFIX = ".wh..wh."


def resolve_filter(filter: FilterArg) -> Filter:
    """tarfile's named filters, or the caller's callable."""
    if callable(filter):
        return filter
    names: dict[str, str] = {
        "data": "data_filter",
        "tar": "tar_filter",
        "fully_trusted": "fully_trusted_filter",
    }
    if filter not in names:
        raise ValueError(f"unknown extraction filter {filter!r}; use one of {sorted(names)} or a callable")
    found: Filter | None = getattr(tarfile, names[filter], None)
    if found is None:
        raise StargzError("this Python's tarfile has no extraction filters (needs 3.10.12, 3.11.4 or newer)")
    return found


def extract_members(
    reader: StargzReader,
    members: Sequence[StargzInfo],
    dest: str,
    filter: FilterArg,
    whiteouts: Whiteouts = "keep",
) -> None:
    """Extracts ``members`` under ``dest``; directory modes and times are set last, deepest first."""
    apply_filter = resolve_filter(filter)
    if whiteouts not in ("keep", "apply"):
        raise ValueError(f"whiteouts must be 'keep' or 'apply', not {whiteouts!r}")
    os.makedirs(dest, exist_ok=True)
    directories: list[tuple[str, tarfile.TarInfo]] = []
    written: set[str] = set()
    for batch in _batches(members):
        small = (m for m in batch if m.isreg() and m.size <= BATCH_BYTES)
        contents = {id(m): data for m, data in reader.iter_contents(small)}
        for member in batch:
            # Filter right before writing, as tarfile does: the filter resolves paths on disk,
            # so it must see the links that earlier members of this batch created.
            info = _filtered(apply_filter, member, dest) if member.name else None
            if info is None:
                continue
            path = os.path.join(dest, info.name)
            with _naming(member, path):
                if whiteouts == "apply" and is_whiteout(info.name):
                    _apply_whiteout(dest, info, written)
                    continue
                written.add(info.name)
                if info.isdir():
                    _make_directory(path)
                    directories.append((path, info))
                    continue
                _write_member(reader, member, info, path, dest, contents.get(id(member)))
                if not info.issym():
                    _set_attributes(info, path)
    for path, info in sorted(directories, key=lambda pair: pair[0], reverse=True):
        # A later member of the layer may have replaced the directory (or a whiteout removed it).
        if os.path.isdir(path) and not os.path.islink(path):
            with _naming(info, path):
                _set_attributes(info, path)


@contextlib.contextmanager
def _naming(member: StargzInfo | tarfile.TarInfo, path: str) -> Iterator[None]:
    """File-system failures say which member they hit; they stay OSErrors for tarfile-style callers."""
    try:
        yield
    except OSError as exc:
        if isinstance(exc, StargzError):
            raise
        raise ExtractionError(
            f"cannot extract {member.name!r} to {path!r}: {exc.strerror or exc}",
            member=member.name,
            errno=exc.errno,
        ) from exc


def _make_directory(path: str) -> None:
    """A directory replaces what an earlier member left at its path, unless that is (a link to) one."""
    if os.path.lexists(path) and not os.path.isdir(path):
        os.unlink(path)
    os.makedirs(path, exist_ok=True)


def _filtered(apply_filter: Filter, member: StargzInfo, dest: str) -> tarfile.TarInfo | None:
    try:
        return apply_filter(member.to_tarinfo(), dest)
    except tarfile.FilterError as exc:
        raise filter_error(exc, member.name) from exc


def is_whiteout(name: str) -> bool:
    """Whether the last component of ``name`` is an overlay whiteout (aufs metadata included)."""
    return name.rpartition("/")[2].startswith(WHITEOUT_PREFIX)


def _apply_whiteout(dest: str, info: tarfile.TarInfo, written: set[str]) -> None:
    """Removes what the whiteout hides from ``dest``, but nothing this extraction wrote.

    The filter has already resolved the whiteout's own path inside ``dest``,
    so its directory is inside too; the removed name is a plain child of it.
    """
    parent, _, base = info.name.rpartition("/")
    directory = os.path.join(dest, parent)
    if base == OPAQUE_WHITEOUT:
        if os.path.isdir(directory):
            for child in os.listdir(directory):
                if (f"{parent}/{child}" if parent else child) not in written:
                    _remove(os.path.join(directory, child))
        return
    if base.startswith(AUFS_META_PREFIX):
        return
    hidden = base[len(WHITEOUT_PREFIX) :]
    if hidden in ("", ".", ".."):
        raise ExtractionFilterError(
            f"refusing to apply whiteout {info.name!r}: it names no sibling", member=info.name, tarinfo=info
        )
    if (f"{parent}/{hidden}" if parent else hidden) not in written:
        _remove(os.path.join(directory, hidden))


def _remove(path: str) -> None:
    """Deletes a file, link or whole directory tree; never follows a symlink."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def _batches(members: Sequence[StargzInfo]) -> Iterator[list[StargzInfo]]:
    batch: list[StargzInfo] = []
    size = 0
    for member in members:
        batch.append(member)
        size += member.size if member.isreg() else 0
        if size >= BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _write_member(
    reader: StargzReader,
    member: StargzInfo,
    info: tarfile.TarInfo,
    path: str,
    dest: str,
    content: bytes | None,
) -> None:
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    _remove(path)  # a later member replaces an earlier one, whatever its type (links are not followed)
    if info.isreg():
        _write_file(path, [content] if content is not None else reader.iter_chunks(member))
    elif info.issym():
        os.symlink(info.linkname, path)
    elif info.islnk():
        _make_hardlink(reader, member, os.path.join(dest, info.linkname), path)
    elif info.isfifo():
        os.mkfifo(path)
    elif info.ischr() or info.isblk():
        kind = stat.S_IFCHR if info.ischr() else stat.S_IFBLK
        try:
            device = os.makedev(info.devmajor, info.devminor)
        except (OverflowError, ValueError):
            raise TOCError(
                f"{member.name!r}: device {info.devmajor},{info.devminor} does not fit this system"
            ) from None
        os.mknod(path, kind | 0o600, device)


def _write_file(path: str, pieces: Iterable[bytes]) -> None:
    """Writes the pieces as they come; a file whose bytes fail (damage, a digest) is not left half-written."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            for piece in pieces:
                out.write(piece)
    except BaseException:
        os.unlink(path)
        raise


def _make_hardlink(reader: StargzReader, member: StargzInfo, target: str, path: str) -> None:
    """A hard link when the file system allows one, else a copy of the target's bytes (as tarfile does)."""
    try:
        os.link(target, path, follow_symlinks=False)
    except OSError:
        _write_file(path, reader.iter_chunks(member))


def _set_attributes(info: tarfile.TarInfo, path: str) -> None:
    """Owner (as root), mode and mtime, as tarfile sets them; the filter already trimmed the mode.

    An owner id or a time this system cannot represent (the TOC allows any
    int64) is left as the file got it, as GNU tar does, instead of failing
    the whole extraction.
    """
    if hasattr(os, "geteuid") and os.geteuid() == 0 and (info.uid is not None or info.gid is not None):
        with contextlib.suppress(OverflowError):
            os.chown(path, -1 if info.uid is None else info.uid, -1 if info.gid is None else info.gid)
    if info.mode is not None:
        os.chmod(path, info.mode & 0o7777)
    if info.mtime is not None:
        with contextlib.suppress(OverflowError, ValueError):
            os.utime(path, (info.mtime, info.mtime))
