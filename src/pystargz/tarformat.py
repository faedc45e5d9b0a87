"""Tar headers without tarfile's per-member machinery: the writer's hot path.

Converting a layer reads every tar header and writes every one again.  With
:mod:`tarfile` that is most of the Python time of a build: ``TarFile.next``
reads each header with a seek and a read and decodes every field through
general helpers, and ``TarInfo.tobuf`` builds a dictionary per header and
checks every field for every special case.

:func:`scan` reads all the headers of a tar held in a buffer (an mmap of the
file), and :func:`header_bytes` writes one header, for what layers are made
of: ustar, PAX and GNU headers of files, directories, links, devices and
fifos, with well-formed PAX records or GNU long names.  Each gives what
tarfile gives, field for field (``scan``: every TarInfo attribute, offsets
and PAX records included) or byte for byte (``header_bytes``:
``TarInfo.tobuf(PAX_FORMAT, "utf-8", "surrogateescape")``); the tests hold
them to tarfile on random tars and TarInfos, on every input tar of the
vectors and on a real layer.  Whatever else they meet they leave to tarfile:
``scan`` returns None for the whole tar (global PAX headers, sparse files,
malformed or truncated headers, unknown entry types...) and ``header_bytes``
calls ``tobuf`` (binary PAX values, numbers that do not fit...).
"""

from __future__ import annotations

import math
import struct
import tarfile
import zlib
from collections.abc import Callable
from typing import NamedTuple

from pystargz.members import clean_name

BLOCK = tarfile.BLOCKSIZE
# What tarfile.open decodes names with by default.
ENCODING = tarfile.ENCODING
ERRORS = "surrogateescape"
USTAR_MAGIC = b"ustar\x00"

# Entry types a plain header describes (no extension headers, no sparse map).
PLAIN_TYPES = frozenset(
    (
        tarfile.REGTYPE,
        tarfile.AREGTYPE,
        tarfile.LNKTYPE,
        tarfile.SYMTYPE,
        tarfile.CHRTYPE,
        tarfile.BLKTYPE,
        tarfile.DIRTYPE,
        tarfile.FIFOTYPE,
        tarfile.CONTTYPE,
    )
)
REGULAR_TYPES = frozenset((tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE))
DEVICE_TYPES = frozenset((tarfile.CHRTYPE, tarfile.BLKTYPE))
GNU_LONG_TYPES = frozenset((tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK))

# name, numbers (mode uid gid size mtime chksum), type, linkname, magic, uname + gname, devices, prefix
_LAYOUT = struct.Struct("100s56sc100s6s2x64s16s155s")
# Where each number is in the numbers field.
_NUMBER_FIELDS = ((0, 8), (8, 16), (16, 24), (24, 36), (36, 48), (48, 56))
_ZERO_BLOCK = bytes(BLOCK)


class Scanned(NamedTuple):
    """One member as tarfile reads it, and its name as the tar spells it (the TOC's name)."""

    info: tarfile.TarInfo
    raw_name: str


# ---- reading ----


def scan(
    buffer: bytes | memoryview, start: int = 0, moved_to: Callable[[int], None] | None = None
) -> list[Scanned] | None:
    """Every member of the tar in ``buffer`` from ``start``, as tarfile would read them; None: use tarfile.

    Like tarfile, the members end at the first zero block.  None means the
    tar holds something outside the common cases, or ends without its
    end-of-archive block: tarfile then reads it (or reports what is wrong).
    ``moved_to(position)`` is called as the scan moves on (a mapping can let
    go of the pages behind it).
    """
    with memoryview(buffer) as view:
        members: list[Scanned] = []
        position = start
        while True:
            if position + BLOCK > len(view):
                return None
            if view[position] == 0 and view[position : position + BLOCK] == _ZERO_BLOCK:
                return members
            member = _member_at(view, position)
            if member is None:
                return None
            scanned, position = member
            members.append(scanned)
            if moved_to is not None:
                moved_to(position)


def _member_at(view: memoryview, offset: int) -> tuple[Scanned, int] | None:
    """The member whose first header is at ``offset`` and where the next one starts."""
    parsed = _parse_header(view, offset)
    if parsed is None:
        return None
    info, spelled = parsed
    kind = info.type
    if kind in PLAIN_TYPES:
        return _finish(view, info, spelled, offset)
    if kind == tarfile.XHDTYPE:
        return _with_pax_records(view, info, offset)
    if kind in GNU_LONG_TYPES:
        return _with_gnu_long_name(view, info, offset)
    return None  # global PAX headers, sparse files, unknown types: tarfile's business


def _finish(view: memoryview, info: tarfile.TarInfo, spelled: str, offset: int) -> tuple[Scanned, int] | None:
    """Sets where the member starts and finds the next header (tarfile skips data of regular files only).

    ``spelled`` is the name field of the member's own header (after the
    ustar prefix); a PAX path is the name as spelled when there is one.
    """
    info.offset = offset
    data_at = info.offset_data
    following = data_at + _blocks(info.size) if info.type in REGULAR_TYPES else data_at
    if info.size < 0 or following + BLOCK > len(view):
        return None
    raw_name = info.pax_headers["path"] if "path" in info.pax_headers else raw_name_of(spelled, info)
    return Scanned(info, raw_name), following


def _with_pax_records(view: memoryview, pax: tarfile.TarInfo, offset: int) -> tuple[Scanned, int] | None:
    """A PAX extended header, then the member it describes, as tarfile's ``_proc_pax``."""
    records_at = pax.offset_data
    if pax.size < 0 or records_at + _blocks(pax.size) + BLOCK > len(view):
        return None
    records = _pax_records(view, records_at, pax.size)
    if records is None:
        return None
    parsed = _parse_header(view, records_at + _blocks(pax.size))
    if parsed is None or parsed[0].type not in PLAIN_TYPES:
        return None
    info, spelled = parsed
    _apply_pax(info, records)
    return _finish(view, info, spelled, offset)


def _with_gnu_long_name(view: memoryview, gnu: tarfile.TarInfo, offset: int) -> tuple[Scanned, int] | None:
    """A GNU long name or long link name, then the member it names, as tarfile's ``_proc_gnulong``."""
    named = _gnu_named(view, gnu, _GNU_CHAIN_LIMIT)
    if named is None:
        return None
    info, spelled = named
    return _finish(view, info, spelled, offset)


def _gnu_named(view: memoryview, gnu: tarfile.TarInfo, chain: int) -> tuple[tarfile.TarInfo, str] | None:
    """The member after a GNU long name or link header, that text applied (a long link name and a long
    name come as two headers in a row: the later one is applied first, as tarfile's recursion does)."""
    text_at = gnu.offset_data
    if chain == 0 or gnu.size < 0 or text_at + _blocks(gnu.size) + BLOCK > len(view):
        return None
    text = _nts(bytes(view[text_at : text_at + _blocks(gnu.size)]))
    parsed = _parse_header(view, text_at + _blocks(gnu.size))
    if parsed is not None and parsed[0].type in GNU_LONG_TYPES:
        parsed = _gnu_named(view, parsed[0], chain - 1)
    if parsed is None or parsed[0].type not in PLAIN_TYPES:
        return None
    info, spelled = parsed
    if gnu.type == tarfile.GNUTYPE_LONGNAME:
        info.name = text
    else:
        info.linkname = text
    if info.type == tarfile.DIRTYPE:
        info.name = info.name.removesuffix("/")
    return info, spelled


def _parse_header(view: memoryview, offset: int) -> tuple[tarfile.TarInfo, str] | None:
    """One header block as tarfile's ``frombuf`` + ``_proc_builtin`` read it, and its name field as spelled.

    None when the block is not a valid header or is one tarfile must read.
    """
    block = view[offset : offset + BLOCK]
    name_field, numbers, kind, link_field, magic, owners, devices, prefix_field = _LAYOUT.unpack_from(block)
    values = _numbers(numbers)
    if values is None or values[5] != _unsigned_checksum(block):
        return None  # a signed checksum or a bad header: tarfile decides
    device_numbers = _devices(devices)
    if device_numbers is None or kind == tarfile.GNUTYPE_SPARSE:
        return None
    info = tarfile.TarInfo()
    info.mode, info.uid, info.gid, info.size, info.mtime, info.chksum = values
    info.linkname = _nts(link_field) if link_field[0] else ""
    info.uname, info.gname = _owners(owners)
    info.devmajor, info.devminor = device_numbers
    info.offset_data = offset + BLOCK
    spelled = name = _nts(name_field)
    prefix = _nts(prefix_field) if prefix_field[0] else ""
    if kind == tarfile.AREGTYPE and name.endswith("/"):
        kind = tarfile.DIRTYPE  # old V7 tars mark directories by the slash only
    if kind == tarfile.DIRTYPE:
        name = name.rstrip("/")
    if prefix and kind not in GNU_LONG_TYPES:
        name = prefix + "/" + name
        if kind == tarfile.DIRTYPE:
            name = name.rstrip("/")
        if magic == USTAR_MAGIC:
            spelled = f"{prefix}/{spelled}"
    info.type = kind
    info.name = name
    return info, spelled


def raw_name_of(spelled: str, info: tarfile.TarInfo) -> str:
    """The name as the tar spells it, given its header's name field (after the ustar prefix).

    tarfile drops a directory's trailing "/", which Go's TOC keeps.  When the
    header's name is not the member's (a GNU long name: the header holds a cut
    one), the member's name is spelled as GNU tar writes it.
    """
    name = info.name
    if spelled == name or spelled.rstrip("/") == name or clean_name(spelled) == clean_name(name):
        return spelled
    return name + "/" if info.type == tarfile.DIRTYPE else name


def _nts(field: bytes) -> str:
    """tarfile's ``nts``: the text up to the first NUL."""
    return field.split(b"\0", 1)[0].decode(ENCODING, ERRORS)


def _blocks(size: int) -> int:
    """Bytes of ``size`` rounded up to whole blocks."""
    return -(-size // BLOCK) * BLOCK


def _numbers(field: bytes) -> tuple[int, int, int, int, int, int] | None:
    """mode, uid, gid, size, mtime and checksum (bytes 100-156 of a header), as tarfile's ``nti`` reads them.

    Usually each number is text ending in a NUL: then ``int`` of the text
    alone, when it accepts it, is what ``nti`` gives (the same grammar after
    the same stripping).
    """
    if field[7] == field[15] == field[23] == field[35] == field[47] == field[54] == 0:
        try:
            return (
                int(field[0:7], 8),
                int(field[8:15], 8),
                int(field[16:23], 8),
                int(field[24:35], 8),
                int(field[36:47], 8),
                int(field[48:54], 8),
            )
        except ValueError:
            pass
    mode, uid, gid, size, mtime, checksum = (_number(field[start:end]) for start, end in _NUMBER_FIELDS)
    if mode is None or uid is None or gid is None or size is None or mtime is None or checksum is None:
        return None
    return mode, uid, gid, size, mtime, checksum


def _number(field: bytes) -> int | None:
    """tarfile's ``nti`` for octal text; None for base-256 numbers and invalid fields (tarfile decides)."""
    if field[0] in (0o200, 0o377):
        return None
    try:
        return int(field.split(b"\0", 1)[0].decode("ascii").strip() or "0", 8)
    except ValueError:
        return None


def _unsigned_checksum(block: memoryview) -> int:
    """The header's byte sum with the checksum field as spaces (tarfile's unsigned one).

    Adler-32's first half is 1 + the byte sum modulo 65521: exact for runs of
    at most 256 bytes, so three runs give the sum without a Python loop.
    """
    total = (
        (zlib.adler32(block[0:148]) & 0xFFFF)
        + (zlib.adler32(block[156:400]) & 0xFFFF)
        + (zlib.adler32(block[400:512]) & 0xFFFF)
    )
    return total - 3 + 8 * 0x20


# Owner names and device numbers: a layer spells the same few over and over.
_CACHE_LIMIT = 1024
_OWNERS_CACHE: dict[bytes, tuple[str, str]] = {}
_DEVICE_CACHE: dict[bytes, tuple[int, int]] = {}


def _owners(field: bytes) -> tuple[str, str]:
    """uname and gname."""
    cached = _OWNERS_CACHE.get(field)
    if cached is not None:
        return cached
    owners = _nts(field[:32]), _nts(field[32:])
    if len(_OWNERS_CACHE) < _CACHE_LIMIT:
        _OWNERS_CACHE[field] = owners
    return owners


def _devices(field: bytes) -> tuple[int, int] | None:
    """devmajor and devminor (the same few spellings over and over: cached)."""
    cached = _DEVICE_CACHE.get(field)
    if cached is not None:
        return cached
    major, minor = _number(field[0:8]), _number(field[8:16])
    if major is None or minor is None:
        return None
    if len(_DEVICE_CACHE) < _CACHE_LIMIT:
        _DEVICE_CACHE[field] = (major, minor)
    return major, minor


# ---- PAX records ----

# PAX records that set a TarInfo attribute, and how tarfile converts their value.
_PAX_ATTRIBUTES: dict[str, tuple[str, Callable[[str], object] | None]] = {
    "path": ("name", None),
    "linkpath": ("linkname", None),
    "size": ("size", int),
    "mtime": ("mtime", float),
    "uid": ("uid", int),
    "gid": ("gid", int),
    "uname": ("uname", None),
    "gname": ("gname", None),
}
# GNU long name headers read in a row at most (a long link name and a long name make two).
_GNU_CHAIN_LIMIT = 4
# Longest length field tarfile (3.13) accepts: 20 digits.
_MAX_LENGTH_DIGITS = 20


def _pax_records(view: memoryview, start: int, size: int) -> dict[str, str] | None:
    """The records of a PAX extended header when every one is well formed and UTF-8; else None.

    Each record is ``"<length> <keyword>=<value>\\n"``; they must fill the
    header's size exactly and the rest of its last block must be NUL, so that
    every Python version's tarfile reads the same records.  ``hdrcharset`` and
    GNU sparse records are left to tarfile.
    """
    data = bytes(view[start : start + size])
    if view[start + size : start + _blocks(size)].tobytes().strip(b"\0") or b"hdrcharset" in data:
        return None
    records: dict[str, str] = {}
    position = 0
    while position < size:
        space = data.find(b" ", position, position + _MAX_LENGTH_DIGITS + 1)
        if space <= position or not data[position:space].isdigit():
            return None
        end = position + int(data[position:space])
        equals = data.find(b"=", space + 1, end - 1)
        if end > size or end - position < 5 or data[end - 1] != 0x0A or equals <= space + 1:
            return None
        try:
            keyword = data[space + 1 : equals].decode("utf-8")
            value = data[equals + 1 : end - 1].decode("utf-8")
        except UnicodeDecodeError:
            return None
        if keyword.startswith("GNU.sparse."):
            return None
        records[keyword] = value
        position = end
    return records


def _apply_pax(info: tarfile.TarInfo, records: dict[str, str]) -> None:
    """tarfile's ``_apply_pax_info``: records override the header's fields (numbers: 0 when invalid)."""
    for keyword, value in records.items():
        target = _PAX_ATTRIBUTES.get(keyword)
        if target is None:
            continue
        attribute, convert = target
        converted: object = value
        if convert is not None:
            try:
                converted = convert(value)
            except ValueError:
                converted = 0
        elif keyword == "path":
            converted = value.rstrip("/")
        setattr(info, attribute, converted)
    info.pax_headers = dict(records)


# ---- writing ----

_PAX_HEADER_NAME = b"././@PaxHeader".ljust(100, b"\0")
_NO_DEVICES = bytes(16)
_EMPTY_PREFIX_AND_PAD = bytes(155 + 12)
_POSIX_MAGIC = b"ustar\x0000"
# Largest values (exclusive) of 8- and 12-byte octal fields.
_MAX_ID = 8**7
_MAX_SIZE = 8**11
_TAILS: dict[tuple[bytes, bytes, bytes, bytes, bytes], tuple[bytes, int]] = {}


def header_bytes(info: tarfile.TarInfo) -> bytes:
    """``info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")``, byte for byte, faster.

    The usual entries are written here; any other (binary PAX values, numbers
    that do not fit, unusual types) by ``tobuf``, which also raises what it
    raises for values it cannot write.
    """
    header = _lean_header(info)
    if header is None:
        return info.tobuf(tarfile.PAX_FORMAT, "utf-8", ERRORS)
    return header


def _lean_header(info: tarfile.TarInfo) -> bytes | None:
    """``create_pax_header`` for plain types, int/float numbers, str texts and UTF-8 PAX values."""
    kind, mode, devmajor, devminor = info.type, info.mode, info.devmajor, info.devminor
    name, linkname, uname, gname = info.name, info.linkname, info.uname, info.gname
    if (
        info.chksum is None  # tobuf refuses any None
        or kind not in PLAIN_TYPES
        or type(mode) is not int
        or type(devmajor) is not int
        or type(devminor) is not int
        or type(name) is not str
        or type(linkname) is not str
        or type(uname) is not str
        or type(gname) is not str
    ):
        return None
    if kind == tarfile.DIRTYPE and not name.endswith("/"):
        name += "/"
    if kind in DEVICE_TYPES:
        if not (0 <= devmajor < _MAX_ID and 0 <= devminor < _MAX_ID):
            return None
        devices = b"%07o\0%07o\0" % (devmajor, devminor)
    else:
        devices = _NO_DEVICES
    uid, gid, size, mtime = info.uid, info.gid, info.size, info.mtime
    if (
        not info.pax_headers
        and type(uid) is int
        and type(gid) is int
        and type(size) is int
        and type(mtime) is int
        and 0 <= uid < _MAX_ID
        and 0 <= gid < _MAX_ID
        and 0 <= size < _MAX_SIZE
        and 0 <= mtime < _MAX_SIZE
        and len(name) <= 100
        and len(linkname) <= 100
        and len(uname) <= 32
        and len(gname) <= 32
        and name.isascii()
        and linkname.isascii()
        and uname.isascii()
        and gname.isascii()
    ):
        # Nothing needs a PAX record: one ustar block.
        return _ustar_block(
            name.encode("ascii"),
            mode & 0o7777,
            uid,
            gid,
            size,
            mtime,
            kind,
            linkname.encode("ascii"),
            uname.encode("ascii"),
            gname.encode("ascii"),
            devices,
        )
    return _header_with_records(info, name, mode, kind, devices)


def _header_with_records(
    info: tarfile.TarInfo, name: str, mode: int, kind: bytes, devices: bytes
) -> bytes | None:
    """The rest of ``create_pax_header``: PAX records for what the ustar block cannot hold."""
    linkname, uname, gname = info.linkname, info.uname, info.gname
    pax = dict(info.pax_headers)
    for text, keyword, room in (
        (name, "path", 100),
        (linkname, "linkpath", 100),
        (uname, "uname", 32),
        (gname, "gname", 32),
    ):
        if keyword not in pax and (not text.isascii() or len(text) > room):
            pax[keyword] = text
    numbers = []
    for keyword, value, digits in (
        ("uid", info.uid, 8),
        ("gid", info.gid, 8),
        ("size", info.size, 12),
        ("mtime", info.mtime, 12),
    ):
        field = _ustar_number(value, digits)
        if field is None:
            return None
        if (field != value or type(value) is float) and keyword not in pax:
            pax[keyword] = str(value)
        numbers.append(field)
    extended = _pax_block(pax) if pax else b""
    if extended is None:
        return None
    uid, gid, size, mtime = numbers
    return extended + _ustar_block(
        name.encode("ascii", "replace"),
        mode & 0o7777,
        uid,
        gid,
        size,
        mtime,
        kind,
        linkname.encode("ascii", "replace"),
        uname.encode("ascii", "replace"),
        gname.encode("ascii", "replace"),
        devices,
    )


def _ustar_number(value: object, digits: int) -> int | None:
    """What ``create_pax_header`` puts in a ustar number field: the value rounded, 0 when it does not fit."""
    if type(value) is int:
        number = value
    elif type(value) is float and math.isfinite(value):
        number = round(value)
    else:
        return None
    return number if 0 <= number < 8 ** (digits - 1) else 0


def _pax_block(pax: dict[str, str]) -> bytes | None:
    """``_create_pax_generic_header`` for UTF-8 keywords and values; None when one is not (hdrcharset)."""
    records = []
    for keyword, value in pax.items():
        if type(keyword) is not str or type(value) is not str:
            return None
        try:
            key_bytes, value_bytes = keyword.encode("utf-8"), value.encode("utf-8")
        except UnicodeEncodeError:
            return None
        records.append(
            b"%d %s=%s\n" % (_record_length(len(key_bytes) + len(value_bytes)), key_bytes, value_bytes)
        )
    payload = b"".join(records)
    header = _ustar_block(
        _PAX_HEADER_NAME, 0, 0, 0, len(payload), 0, tarfile.XHDTYPE, b"", b"", b"", _NO_DEVICES
    )
    return header + payload + bytes(-len(payload) % BLOCK)


def _record_length(text: int) -> int:
    """A PAX record's length, its own digits included: the fixed point tarfile iterates to."""
    fixed = 0
    while True:
        length = text + 3 + len(str(fixed))  # " ", "=" and "\n"
        if length == fixed:
            return length
        fixed = length


def _ustar_block(
    name: bytes,
    mode: int,
    uid: int,
    gid: int,
    size: int,
    mtime: int,
    kind: bytes,
    linkname: bytes,
    uname: bytes,
    gname: bytes,
    devices: bytes,
) -> bytes:
    """tarfile's ``_create_header`` for ASCII texts and numbers that fit.

    The checksum is the byte sum with its own field as spaces.  Every byte is
    ASCII, so the 148 bytes before the field and the 356 after each sum to less
    than 65521: Adler-32's first half (1 + the sum) gives each sum exactly.
    The part after the field repeats (type, owners) and is kept with its sum.
    """
    head = b"%s%07o\0%07o\0%07o\0%011o\0%011o\0" % (name[:100].ljust(100, b"\0"), mode, uid, gid, size, mtime)
    key = (kind, linkname, uname, gname, devices)
    tail_and_sum = _TAILS.get(key)
    if tail_and_sum is None:
        tail = b"".join(
            (
                kind,
                linkname[:100].ljust(100, b"\0"),
                _POSIX_MAGIC,
                uname[:32].ljust(32, b"\0"),
                gname[:32].ljust(32, b"\0"),
                devices,
                _EMPTY_PREFIX_AND_PAD,
            )
        )
        tail_and_sum = tail, (zlib.adler32(tail) & 0xFFFF) - 1
        if not linkname and len(_TAILS) < _CACHE_LIMIT:  # link targets rarely repeat
            _TAILS[key] = tail_and_sum
    tail, tail_sum = tail_and_sum
    checksum = (zlib.adler32(head) & 0xFFFF) - 1 + tail_sum + 8 * 0x20
    return head + b"%06o\0 " % checksum + tail
