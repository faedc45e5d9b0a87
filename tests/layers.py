"""Realistic layers for tests and benchmarks: a tar of a real directory tree of this machine.

Kept out of git (tens of MB); made in the test run.  The tree is Debian's
``/usr/lib/python3`` (thousands of files, symlinks, tens of MB) when present,
else this interpreter's standard library, capped in size.
"""

from __future__ import annotations

import os
import pathlib
import sysconfig
import tarfile

DEFAULT_TREES = ("/usr/lib/python3", sysconfig.get_paths()["stdlib"])
MAX_BYTES = 96 << 20


def real_tree() -> pathlib.Path:
    """The first candidate tree that exists here."""
    for candidate in DEFAULT_TREES:
        path = pathlib.Path(candidate)
        if path.is_dir():
            return path
    raise FileNotFoundError(f"none of {DEFAULT_TREES} exists on this machine")


def make_tree_tar(
    dest: pathlib.Path,
    root: pathlib.Path | None = None,
    *,
    max_bytes: int = MAX_BYTES,
    arcname: str = "usr/lib/python3",
) -> pathlib.Path:
    """Writes a PAX tar of ``root`` in sorted order, with whole-second mtimes.

    Whole seconds because the TOC stores RFC 3339 seconds; sockets and
    unreadable files are left out; regular files stop being added once
    ``max_bytes`` of content is in (directories and links still are).
    """
    root = root or real_tree()
    total = 0
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        _add_parents(tar, arcname, root)
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in ["", *sorted(filenames)]:
                path = pathlib.Path(dirpath, name)
                info = _tarinfo(tar, path, root, arcname)
                if info is None:
                    continue
                if info.isreg():
                    if total + info.size > max_bytes:
                        continue
                    total += info.size
                    with path.open("rb") as content:
                        tar.addfile(info, content)
                else:
                    tar.addfile(info)
    return dest


def _add_parents(tar: tarfile.TarFile, arcname: str, root: pathlib.Path) -> None:
    """Directory entries for the parents of ``arcname``, as a real root file system layer has."""
    parts = arcname.split("/")[:-1]
    for depth in range(1, len(parts) + 1):
        info = tarfile.TarInfo("/".join(parts[:depth]))
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        info.mtime = int(root.stat().st_mtime)
        tar.addfile(info)


def _tarinfo(
    tar: tarfile.TarFile, path: pathlib.Path, root: pathlib.Path, arcname: str
) -> tarfile.TarInfo | None:
    relative = path.relative_to(root).as_posix()
    name = arcname if relative == "." else f"{arcname}/{relative}"
    try:
        info = tar.gettarinfo(str(path), name)
    except OSError:
        return None
    if info is None or not (info.isreg() or info.isdir() or info.issym()):
        return None
    if info.isreg() and not os.access(path, os.R_OK):
        return None
    info.mtime = int(info.mtime)
    return info
