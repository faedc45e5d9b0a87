"""Hypothesis strategies for testing code that reads or writes stargz / eStargz blobs.

For other projects' property and fuzz tests as much as for pystargz's own:

- :func:`tar_layers`: random layer trees as a plain tar (unicode, long and deep
  names, directories, files of varied sizes, symlinks, hardlinks, devices,
  fifos, xattrs, modes, owners, times);
- :func:`stargz_blobs`: valid blobs built from them with :func:`pystargz.build`
  (eStargz or legacy, chunk sizes, ``min_chunk_size`` packing, prioritized
  files), each with the contents a reader must return;
- :func:`malformed_blobs`: targeted damage to such a blob, labelled with its
  class (:data:`MALFORMATIONS`) and with what a careful reader must do about it
  (:data:`Expectation`).

hypothesis is not a dependency of pystargz itself: ``pip install "pystargz[testing]"``.
"""

from __future__ import annotations

try:
    from hypothesis import assume
    from hypothesis import strategies as st
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "pystargz.testing needs hypothesis, which is not installed: pip install 'pystargz[testing]'"
    ) from exc

import gzip
import io
import json
import random
import tarfile
from dataclasses import dataclass, field
from typing import Any, Literal

from pystargz.footer import MAX_FOOTER_SIZE, Layout, build_footer, parse_footer
from pystargz.members import clean_name
from pystargz.toc import INT64_MAX, LANDMARK_CONTENTS, NO_PREFETCH_LANDMARK, PREFETCH_LANDMARK, TOC_TAR_NAME
from pystargz.writer import Format, build

__all__ = [
    "MALFORMATIONS",
    "BuiltBlob",
    "Expectation",
    "Malformation",
    "assemble",
    "file_contents",
    "flip_bit",
    "malformed_blobs",
    "noise",
    "stargz_blobs",
    "tar_contents",
    "tar_layers",
    "toc_member",
    "toc_tar",
]

BLOCK = tarfile.BLOCKSIZE
# Names the writer drops or adds itself: a layer holding them would not read back as it went in.
RESERVED_NAMES = frozenset({TOC_TAR_NAME, PREFETCH_LANDMARK, NO_PREFETCH_LANDMARK})
# Text that compresses well, to vary compression ratios.
TEXT = b"".join(b"line %d of some text that compresses well\n" % i for i in range(400))
# The last second the TOC's RFC 3339 modtime can hold (9999-12-31T23:59:59Z).
MAX_MTIME = 253402300799
MAX_DEVICE_NUMBER = 0o7777777  # what a ustar header holds; tarfile has no PAX key for it


# ---- file contents and names ----


def noise(size: int, seed: int = 0) -> bytes:
    """Incompressible bytes, the same for the same seed (cheaper to draw than ``st.binary``)."""
    return random.Random(seed).randbytes(size)


@st.composite
def file_contents(draw: st.DrawFn, max_size: int = 640_000) -> bytes:
    """File data of several shapes: empty, arbitrary, repetitive, incompressible, text.

    The shapes matter to inflate code: repetitive data makes long matches and
    high ratios, noise makes stored blocks, text makes dynamic Huffman blocks.
    """
    kind = draw(st.sampled_from(["empty", "binary", "repeat", "noise", "text"]))
    if kind == "empty" or max_size <= 0:
        return b""
    if kind == "binary":
        return draw(st.binary(max_size=min(2000, max_size)))
    if kind == "repeat":
        unit = draw(st.binary(min_size=1, max_size=min(16, max_size)))
        return unit * draw(st.integers(1, max(1, min(40_000, max_size // len(unit)))))
    if kind == "noise":
        return noise(draw(st.integers(1, min(100_000, max_size))), draw(st.integers(0, 1 << 30)))
    start = draw(st.integers(0, len(TEXT)))
    return TEXT[start : start + draw(st.integers(0, min(len(TEXT), max_size)))]


_COMPONENT_CHARS = st.characters(exclude_categories=["Cs"], exclude_characters="/\x00")
_components = st.one_of(
    st.text(_COMPONENT_CHARS, min_size=1, max_size=12),
    st.text("abcdefghijklmnopqrstuvwxyz0123456789._-", min_size=1, max_size=12),
    st.text("abcdefghij", min_size=100, max_size=200),  # long: needs a PAX path record
).filter(lambda part: part not in (".", ".."))
_xattr_keys = st.text("abcdefghijklmnopqrstuvwxyz0123456789._-", min_size=1, max_size=20)
_owner_names = st.text(st.characters(exclude_categories=["Cs", "Cc"]), max_size=12)


@dataclass
class _Tree:
    """The entries drawn so far: tar headers with their data, and the names taken."""

    entries: list[tuple[tarfile.TarInfo, bytes]]
    dirs: list[str]
    regular: list[str]
    taken: set[str]
    users: dict[int, str]
    groups: dict[int, str]

    def add(self, info: tarfile.TarInfo, data: bytes = b"") -> None:
        self.entries.append((info, data))
        self.taken.add(clean_name(info.name))


def _free_name(draw: st.DrawFn, tree: _Tree, parent: str) -> str | None:
    name = f"{parent}/{draw(_components)}" if parent else draw(_components)
    key = clean_name(name)
    if not key or key in tree.taken or key in RESERVED_NAMES:
        return None
    return name


def _attributes(draw: st.DrawFn, tree: _Tree, info: tarfile.TarInfo, kind: str) -> tarfile.TarInfo:
    """Mode, owner, time and xattrs: what a tar header carries besides name and type."""
    info.mode = draw(st.integers(0, 0o7777))
    if kind == "dir":
        info.type = tarfile.DIRTYPE
        info.mode |= 0o700  # keep the tree traversable when a test extracts it
    info.uid = draw(st.sampled_from([0, 1000]) | st.integers(0, (1 << 31) - 1))
    info.gid = draw(st.sampled_from([0, 1000]) | st.integers(0, (1 << 31) - 1))
    # One name per id, as on a real system: the TOC records a name only where it changes.
    info.uname = tree.users.setdefault(info.uid, draw(_owner_names))
    info.gname = tree.groups.setdefault(info.gid, draw(_owner_names))
    info.mtime = draw(st.integers(1_500_000_000, 1_800_000_000) | st.integers(0, MAX_MTIME))
    xattrs = draw(st.dictionaries(_xattr_keys, st.text(_COMPONENT_CHARS, max_size=30), max_size=2))
    info.pax_headers = {f"SCHILY.xattr.user.{key}": value for key, value in xattrs.items()}
    return info


def _draw_dirs(draw: st.DrawFn, tree: _Tree) -> None:
    """Directories whose parents come first; sometimes one chain many levels deep."""
    for _ in range(draw(st.integers(0, 4))):
        name = _free_name(draw, tree, draw(st.sampled_from(["", *tree.dirs])))
        if name is not None:
            tree.add(_attributes(draw, tree, tarfile.TarInfo(name), "dir"))
            tree.dirs.append(name)
    if draw(st.integers(0, 4)) == 0:
        parent = draw(st.sampled_from(["", *tree.dirs]))
        for depth in range(draw(st.integers(8, 40))):
            name = f"{parent}/d{depth}" if parent else f"d{depth}"
            if clean_name(name) in tree.taken:
                return
            tree.add(_attributes(draw, tree, tarfile.TarInfo(name), "dir"))
            tree.dirs.append(name)
            parent = name


def _draw_entry(
    draw: st.DrawFn, tree: _Tree, kind: str, max_file_size: int, *, nonempty: bool = False
) -> int:
    """Adds one entry of ``kind`` (unless its name is taken); returns how many data bytes it has.

    A ``nonempty`` file is always added: a name drawn twice (hypothesis draws "0" again and
    again when it runs out of data) falls back to one made unique by the entry count.
    """
    name = _free_name(draw, tree, draw(st.sampled_from(["", *tree.dirs])))
    if name is None and nonempty:
        name = f"file.{len(tree.entries)}"
        while clean_name(name) in tree.taken:
            name += "_"
    if name is None:
        return 0
    info = _attributes(draw, tree, tarfile.TarInfo(name), kind)
    data = b""
    if kind == "reg":
        contents = file_contents(max_size=max_file_size)
        data = draw(contents.filter(bool) if nonempty else contents)
        info.size = len(data)
        tree.regular.append(name)
    elif kind == "symlink":
        info.type = tarfile.SYMTYPE
        targets = st.text(_COMPONENT_CHARS, max_size=40)
        if tree.regular or tree.dirs:
            targets |= st.sampled_from(tree.regular + tree.dirs)
        info.linkname = draw(targets)
    elif kind == "hardlink":
        info.type = tarfile.LNKTYPE
        info.linkname = draw(st.sampled_from(tree.regular))
    elif kind in ("char", "block"):
        info.type = tarfile.CHRTYPE if kind == "char" else tarfile.BLKTYPE
        info.devmajor = draw(st.integers(0, MAX_DEVICE_NUMBER))
        info.devminor = draw(st.integers(0, MAX_DEVICE_NUMBER))
    else:
        info.type = tarfile.FIFOTYPE
    tree.add(info, data)
    return len(data)


@st.composite
def tar_layers(
    draw: st.DrawFn, *, max_entries: int = 10, max_file_size: int = 64 << 10, min_data_files: int = 0
) -> bytes:
    """A random layer tree as a plain (PAX) tar: directories first, parents before children.

    Names are unique after normalization and avoid the names the writer
    reserves (the TOC, the landmarks), so every file reads back as it went in.
    ``min_data_files`` regular files of at least one byte are always added.
    """
    tree = _Tree([], [], [], set(), {}, {})
    _draw_dirs(draw, tree)
    kinds = ["reg", "reg", "reg", "symlink", "char", "block", "fifo"]
    data_files = 0
    for _ in range(draw(st.integers(0, max_entries))):
        kind = draw(st.sampled_from(kinds + (["hardlink"] if tree.regular else [])))
        data_files += _draw_entry(draw, tree, kind, max_file_size) > 0
    while data_files < min_data_files:
        data_files += _draw_entry(draw, tree, "reg", max_file_size, nonempty=True) > 0
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in tree.entries:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return out.getvalue()


def tar_contents(data: bytes) -> dict[str, bytes]:
    """The regular files of a tar or tar.gz (a blob is one) as :mod:`tarfile` reads them.

    Names are normalized as the reader does, the last entry of a name wins
    and the TOC member is left out: what a stargz reader must return, from an
    independent implementation.
    """
    contents: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        for info in tar:
            name = clean_name(info.name)
            contents.pop(name, None)
            if info.isreg() and name != TOC_TAR_NAME:
                extracted = tar.extractfile(info)
                assert extracted is not None
                contents[name] = extracted.read()
    return contents


# ---- valid blobs ----


@dataclass(frozen=True)
class BuiltBlob:
    """A blob :func:`pystargz.build` made from ``tar``, and what reading it must give.

    ``contents`` maps each regular file (normalized name) to its bytes: the
    files of the input tar (from :func:`tar_contents`, an independent reader)
    plus the landmark file eStargz blobs carry; hardlinks are not in it (they
    read as their target).  ``toc_offset`` and ``footer_size`` split the blob
    into payload, TOC member and footer.  The repr leaves the bytes out.
    """

    blob: bytes = field(repr=False)
    tar: bytes = field(repr=False)
    contents: dict[str, bytes] = field(repr=False)
    format: Format
    chunk_size: int
    min_chunk_size: int
    prioritized_files: tuple[str, ...]
    toc_digest: str
    toc_offset: int
    footer_size: int

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """hypothesis prints examples with this: the short repr, not megabytes of blob."""
        printer.text(repr(self))

    @property
    def payload(self) -> bytes:
        return self.blob[: self.toc_offset]

    @property
    def toc_member(self) -> bytes:
        return self.blob[self.toc_offset : len(self.blob) - self.footer_size]

    @property
    def footer(self) -> bytes:
        return self.blob[len(self.blob) - self.footer_size :]


@st.composite
def stargz_blobs(
    draw: st.DrawFn,
    layers: st.SearchStrategy[bytes] | None = None,
    *,
    formats: tuple[Format, ...] = ("estargz", "stargz"),
    chunk_sizes: st.SearchStrategy[int] | None = None,
) -> BuiltBlob:
    """Valid blobs built from ``layers`` (default :func:`tar_layers`) with random build options.

    eStargz blobs sometimes pack small files into shared members
    (``min_chunk_size``, ``innerOffset``) and sometimes prioritize files
    (``.prefetch.landmark``); legacy ones can do neither.
    """
    tar = draw(layers if layers is not None else tar_layers())
    contents = tar_contents(tar)
    layout_format = draw(st.sampled_from(formats))
    chunk_size = draw(chunk_sizes if chunk_sizes is not None else st.sampled_from([512, 1000, 4096, 4 << 20]))
    min_chunk_size = 0
    prioritized: tuple[str, ...] = ()
    if layout_format == "estargz":
        min_chunk_size = draw(st.sampled_from([0, 0, 64, 16384]))
        if contents:
            prioritized = tuple(draw(st.lists(st.sampled_from(sorted(contents)), max_size=3, unique=True)))
        contents[PREFETCH_LANDMARK if prioritized else NO_PREFETCH_LANDMARK] = LANDMARK_CONTENTS
    out = io.BytesIO()
    result = build(
        io.BytesIO(tar),
        out,
        chunk_size=chunk_size,
        format=layout_format,
        prioritized_files=prioritized,
        min_chunk_size=min_chunk_size,
        workers=1,
    )
    blob = out.getvalue()
    footer = parse_footer(blob[-MAX_FOOTER_SIZE:], len(blob))
    return BuiltBlob(
        blob=blob,
        tar=tar,
        contents=contents,
        format=layout_format,
        chunk_size=chunk_size,
        min_chunk_size=min_chunk_size,
        prioritized_files=prioritized,
        toc_digest=result.toc_digest,
        toc_offset=footer.toc_offset,
        footer_size=footer.size,
    )


def toc_tar(toc_json: bytes, name: str = TOC_TAR_NAME) -> bytes:
    """The uncompressed TOC member: one USTAR entry (``name``) holding the bytes, then the end blocks."""
    info = tarfile.TarInfo(name)
    info.size = len(toc_json)
    info.mode = 0
    return info.tobuf(format=tarfile.USTAR_FORMAT) + toc_json + bytes(-len(toc_json) % BLOCK + 2 * BLOCK)


def toc_member(toc_json: bytes) -> bytes:
    """gzip(tar(``stargz.index.json``)): the TOC member for any TOC bytes, valid JSON or not."""
    return gzip.compress(toc_tar(toc_json), mtime=0)


def assemble(payload: bytes, toc_json: bytes, layout: Layout = Layout.ESTARGZ) -> bytes:
    """payload + TOC member + footer: a blob around any payload and any TOC bytes."""
    return payload + toc_member(toc_json) + build_footer(len(payload), layout)


def flip_bit(data: bytes, position: int, bit: int) -> bytes:
    """``data`` with bit ``bit`` (0-7) of byte ``position`` inverted."""
    changed = bytearray(data)
    changed[position] ^= 1 << bit
    return bytes(changed)


# ---- malformed blobs ----

Expectation = Literal["error", "verify", "any"]
"""What a careful reader must do with a malformed blob.

- ``"error"``: opening it, or reading every file, raises ``StargzError``;
- ``"verify"``: that, or else ``verify()`` (no TOC digest needed) raises it:
  the TOC lies about bytes only digests can check;
- ``"any"``: the damage may be harmless (a gzip header's MTIME, a splice that
  rebuilt a valid blob): either a ``StargzError`` from opening, reading or
  ``verify(toc_digest=original.toc_digest)``, or every file reads back as
  ``original.contents``.
"""


@dataclass(frozen=True)
class Malformation:
    """A damaged blob: ``kind`` is its class (one of :data:`MALFORMATIONS`), ``detail`` says where."""

    kind: str
    blob: bytes = field(repr=False)
    original: BuiltBlob
    expect: Expectation
    detail: str

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


_Entries = list[dict[str, Any]]


def _entries(original: BuiltBlob) -> _Entries:
    """The TOC entries of a valid blob, as JSON objects to damage."""
    member = gzip.decompress(original.toc_member)
    with tarfile.open(fileobj=io.BytesIO(member), mode="r:") as tar:
        extracted = tar.extractfile(TOC_TAR_NAME)
        assert extracted is not None
        entries: _Entries = json.loads(extracted.read())["entries"] or []
    return entries


def _with_entries(original: BuiltBlob, entries: _Entries) -> bytes:
    layout = Layout.ESTARGZ if original.format == "estargz" else Layout.LEGACY
    return assemble(original.payload, json.dumps({"version": 1, "entries": entries}).encode(), layout)


def _data_entry(draw: st.DrawFn, entries: _Entries) -> int:
    """The index of an entry that points at payload bytes (the blobs drawn always have one)."""
    return draw(st.sampled_from([i for i, e in enumerate(entries) if e["type"] == "chunk" or e.get("size")]))


def _truncate(draw: st.DrawFn, blob: BuiltBlob) -> tuple[bytes, Expectation, str]:
    keep = draw(st.integers(0, len(blob.blob) - 1))
    return blob.blob[:keep], "error", f"cut to {keep} of {len(blob.blob)} bytes"


def _bit_flip(draw: st.DrawFn, blob: BuiltBlob) -> tuple[bytes, Expectation, str]:
    position, bit = draw(st.integers(0, len(blob.blob) - 1)), draw(st.integers(0, 7))
    region = (
        "payload"
        if position < blob.toc_offset
        else "footer"
        if position >= len(blob.blob) - blob.footer_size
        else "TOC member"
    )
    return flip_bit(blob.blob, position, bit), "any", f"bit {bit} of byte {position} ({region})"


def _splice(draw: st.DrawFn, blob: BuiltBlob) -> tuple[bytes, Expectation, str]:
    other = draw(stargz_blobs(st.just(blob.tar) | tar_layers(max_entries=3)))
    cut, resume = draw(st.integers(0, len(blob.blob))), draw(st.integers(0, len(other.blob)))
    spliced = blob.blob[:cut] + other.blob[resume:]
    return spliced, "any", f"bytes [0, {cut}) of the blob then bytes [{resume}, end) of another"


def _footer_offset(draw: st.DrawFn, blob: BuiltBlob) -> tuple[bytes, Expectation, str]:
    offset = draw(st.integers(0, len(blob.blob) * 2).filter(lambda o: o != blob.toc_offset))
    layout = Layout.ESTARGZ if blob.footer_size == Layout.ESTARGZ.footer_size else Layout.LEGACY
    damaged = blob.blob[: len(blob.blob) - blob.footer_size] + build_footer(offset, layout)
    return damaged, "error", f"footer points at {offset} instead of {blob.toc_offset}"


def _footer_garbage(draw: st.DrawFn, blob: BuiltBlob) -> tuple[bytes, Expectation, str]:
    garbage = draw(st.binary(min_size=blob.footer_size, max_size=blob.footer_size))
    damaged = blob.blob[: len(blob.blob) - blob.footer_size] + garbage
    return damaged, "error", f"footer replaced by {garbage!r}"


def _toc_offset_out_of_range(draw: st.DrawFn, blob: BuiltBlob) -> tuple[bytes, Expectation, str]:
    entries = _entries(blob)
    index = _data_entry(draw, entries)
    entries[index]["offset"] = draw(st.integers(blob.toc_offset, INT64_MAX))
    return _with_entries(blob, entries), "error", f"entry #{index} offset {entries[index]['offset']}"


def _toc_chunk_overlap(draw: st.DrawFn, blob: BuiltBlob) -> tuple[bytes, Expectation, str]:
    entries = _entries(blob)
    index = _data_entry(draw, entries)
    entry = entries[index]
    duplicate: dict[str, Any] = {"type": "chunk"}
    duplicate.update(
        (key, entry[key]) for key in ("name", "offset", "innerOffset", "chunkOffset") if key in entry
    )
    entries.insert(index + 1, duplicate)
    return _with_entries(blob, entries), "error", f"entry #{index} ({entry['name']!r}) read twice"


def _toc_size_lie(draw: st.DrawFn, blob: BuiltBlob) -> tuple[bytes, Expectation, str]:
    entries = _entries(blob)
    index = draw(st.sampled_from([i for i, e in enumerate(entries) if e["type"] == "reg" and e.get("size")]))
    size = entries[index]["size"]
    entries[index]["size"] = draw(st.integers(1, size + 4096).filter(lambda s: s != size))
    detail = f"entry #{index} ({entries[index]['name']!r}) says {entries[index]['size']} bytes, has {size}"
    return _with_entries(blob, entries), "verify", detail


def _toc_digest_lie(draw: st.DrawFn, blob: BuiltBlob) -> tuple[bytes, Expectation, str]:
    entries = _entries(blob)
    keys = [(i, key) for i, e in enumerate(entries) for key in ("digest", "chunkDigest") if e.get(key)]
    index, key = draw(st.sampled_from(keys))
    digest = entries[index][key]
    position = draw(st.integers(len("sha256:"), len(digest) - 1))
    replacement = "0" if digest[position] != "0" else "1"
    entries[index][key] = digest[:position] + replacement + digest[position + 1 :]
    return _with_entries(blob, entries), "verify", f"entry #{index} {key} changed at character {position}"


def _toc_hardlink_cycle(draw: st.DrawFn, blob: BuiltBlob) -> tuple[bytes, Expectation, str]:
    entries = _entries(blob)
    length = draw(st.integers(1, 3))
    names = [f"cycle.{step}" for step in range(length)]
    for step, name in enumerate(names):
        entries.append({"name": name, "type": "hardlink", "linkName": names[(step + 1) % length]})
    return _with_entries(blob, entries), "error", f"hardlink cycle of {length}"


def _toc_huge_size(draw: st.DrawFn, blob: BuiltBlob) -> tuple[bytes, Expectation, str]:
    entries = _entries(blob)
    index = _data_entry(draw, entries)
    key = "size" if entries[index]["type"] == "reg" else "chunkSize"
    entries[index][key] = draw(st.integers(1 << 40, INT64_MAX))
    return _with_entries(blob, entries), "error", f"entry #{index} {key} {entries[index][key]}"


_MALFORMERS = {
    "truncate": _truncate,
    "bit_flip": _bit_flip,
    "splice": _splice,
    "footer_offset": _footer_offset,
    "footer_garbage": _footer_garbage,
    "toc_offset_out_of_range": _toc_offset_out_of_range,
    "toc_chunk_overlap": _toc_chunk_overlap,
    "toc_size_lie": _toc_size_lie,
    "toc_digest_lie": _toc_digest_lie,
    "toc_hardlink_cycle": _toc_hardlink_cycle,
    "toc_huge_size": _toc_huge_size,
}
MALFORMATIONS: tuple[str, ...] = tuple(_MALFORMERS)
"""The malformation classes :func:`malformed_blobs` draws from."""


def malformed_blobs(
    kinds: tuple[str, ...] = MALFORMATIONS, blobs: st.SearchStrategy[BuiltBlob] | None = None
) -> st.SearchStrategy[Malformation]:
    """A valid blob (default: :func:`stargz_blobs` of small trees with a non-empty file) damaged one way.

    ``kinds`` restricts the classes drawn from :data:`MALFORMATIONS`; an
    unknown class is a ValueError here, when the strategy is made.
    """
    unknown = set(kinds) - set(_MALFORMERS)
    if unknown:
        raise ValueError(f"unknown malformation classes {sorted(unknown)}; known: {MALFORMATIONS}")
    default = stargz_blobs(tar_layers(max_entries=6, max_file_size=16 << 10, min_data_files=1))
    return _malformed(kinds, blobs if blobs is not None else default)


@st.composite
def _malformed(draw: st.DrawFn, kinds: tuple[str, ...], blobs: st.SearchStrategy[BuiltBlob]) -> Malformation:
    original = draw(blobs)
    kind = draw(st.sampled_from(kinds))
    blob, expect, detail = _MALFORMERS[kind](draw, original)
    assume(blob != original.blob)  # a splice can rebuild the blob it cut; that is no malformation
    return Malformation(kind=kind, blob=blob, original=original, expect=expect, detail=detail)
