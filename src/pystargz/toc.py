"""The table of contents (``stargz.index.json``): its model, parser and serializer.

The model holds every field the Go reference writes, under Python names, with
the raw values as stored (names are not normalized here; the reader does
that).  Parsing is msgspec's typed JSON decoder: it checks every field's type
and range while it decodes, several times faster than ``json`` plus checks in
Python, which is most of the cost of opening a layer.  :meth:`TOC.to_json`
writes the bytes Go's ``json.MarshalIndent`` writes, so a TOC built here has
the digest Go would compute for it.
"""

from __future__ import annotations

import base64
import datetime
import functools
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import msgspec

from pystargz.errors import TOCError

TOC_TAR_NAME = "stargz.index.json"
TOC_VERSION = 1
PREFETCH_LANDMARK = ".prefetch.landmark"
NO_PREFETCH_LANDMARK = ".no.prefetch.landmark"
LANDMARK_CONTENTS = b"\x0f"
EntryType = Literal["dir", "reg", "symlink", "hardlink", "char", "block", "fifo", "chunk"]
INT64_MAX = (1 << 63) - 1

# A TOC number: sizes, offsets, ids, modes.  Negative or beyond int64 is malformed.
Count = Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]


class TOCEntry(msgspec.Struct, kw_only=True, gc=False, omit_defaults=True):
    """One TOC entry as stored; zero values mean "absent", as Go's ``omitempty`` does.

    Attributes are in the order of the Go struct, which is the order Go writes
    them in; each carries its JSON key.  ``gc=False``: entries hold only
    strings, numbers and a dict of bytes, so they cannot form cycles.
    ``omit_defaults``: encoded by msgspec (:meth:`TOC.to_json`), an entry
    leaves out its zero values as Go does.
    """

    name: str
    type: EntryType
    size: Count = 0
    modtime: str = ""
    link_name: str = msgspec.field(default="", name="linkName")
    mode: Count = 0
    uid: Count = 0
    gid: Count = 0
    user_name: str = msgspec.field(default="", name="userName")
    group_name: str = msgspec.field(default="", name="groupName")
    offset: Count = 0
    inner_offset: Count = msgspec.field(default=0, name="innerOffset")
    dev_major: Count = msgspec.field(default=0, name="devMajor")
    dev_minor: Count = msgspec.field(default=0, name="devMinor")
    xattrs: dict[str, bytes] = msgspec.field(default_factory=dict)
    digest: str = ""
    chunk_offset: Count = msgspec.field(default=0, name="chunkOffset")
    chunk_size: Count = msgspec.field(default=0, name="chunkSize")
    chunk_digest: str = msgspec.field(default="", name="chunkDigest")

    def to_dict(self) -> dict[str, Any]:
        """The JSON object Go writes for this entry (zero values left out)."""
        out: dict[str, Any] = {}
        for attr, key in zip(self.__struct_fields__, self.__struct_encode_fields__, strict=True):
            value = getattr(self, attr)
            if key in ("name", "type") or value:
                out[key] = _encode_xattrs(value) if key == "xattrs" else value
        return out

    @property
    def is_data(self) -> bool:
        """Whether the entry points at payload bytes (a non-empty file or one of its chunks)."""
        return self.type == "chunk" or (self.type == "reg" and self.size > 0)


class _Document(msgspec.Struct, gc=False):
    """The JSON document as decoded; :class:`TOC` is what users get."""

    version: int = 0
    entries: list[TOCEntry] | None = None


_DECODER = msgspec.json.Decoder(_Document)


class _Uncounted(msgspec.Struct, gc=False):
    """An entry decoded only to be counted: no fields, so next to nothing in memory."""


class _Skeleton(msgspec.Struct, gc=False):
    entries: list[_Uncounted] | None = None


_COUNTER = msgspec.json.Decoder(_Skeleton)


def count_entries(data: bytes) -> int | None:
    """How many entries TOC JSON holds, without building them; None when it does not decode.

    A 150 MiB TOC of tiny entries (which gzip shrinks to about 1 MB) would
    take over a gigabyte as entries, so the reader counts first.  Decoding
    errors are left to :meth:`TOC.from_json`, which says where they are.
    """
    try:
        entries = _COUNTER.decode(data).entries
    except (msgspec.DecodeError, RecursionError):
        return None
    return len(entries or ())


@dataclass
class TOC:
    """The whole table of contents: a version and the entries in blob order.

    ``entries_null`` remembers that the JSON said ``"entries": null`` (what
    the Go writer emits for an empty layer) so that serializing round-trips.
    """

    version: int = TOC_VERSION
    entries: list[TOCEntry] = field(default_factory=list)
    entries_null: bool = False

    def __iter__(self) -> Iterator[TOCEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def to_dict(self) -> dict[str, Any]:
        entries = None if self.entries_null and not self.entries else [e.to_dict() for e in self.entries]
        return {"version": self.version, "entries": entries}

    def to_json(self) -> bytes:
        """Go's ``json.MarshalIndent(toc, "", "\\t")``, byte for byte."""
        fast = _indented_go_json(self)
        if fast is not None:
            return fast
        return _go_json(self.to_dict(), "").encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes | str) -> TOC:
        """Parses and type-checks TOC JSON; any defect is a :class:`TOCError` saying where.

        Unknown keys are ignored, as Go's decoder does; a ``null`` where a
        value belongs is refused (Go would take the zero value; no writer emits it).
        """
        try:
            document = _DECODER.decode(data)
        except msgspec.ValidationError as exc:
            raise TOCError(f"malformed TOC: {_describe(str(exc), data)}") from None
        except (msgspec.DecodeError, RecursionError, UnicodeDecodeError) as exc:
            raise TOCError(f"TOC is not valid JSON: {exc}") from None
        entries = document.entries
        return cls(version=document.version, entries=entries or [], entries_null=entries is None)


_ENTRY_PATH = re.compile(r" - at `\$\.entries\[(\d+)\](?:\.(\w+))?(\[\.\.\.\])?`$")


def _describe(message: str, data: bytes | str) -> str:
    """Rewrites msgspec's ``... - at `$.entries[3].size``` as "TOC entry #3 ('name') field 'size': ...".

    The entry's name (and, for xattrs, the offending key) comes from a second,
    untyped decode: this runs only on the error path.
    """
    match = _ENTRY_PATH.search(message)
    if match is None:
        return message
    problem = message[: match.start()]
    index, key = int(match.group(1)), match.group(2)
    raw = _raw_entry(data, index)
    where = f"TOC entry #{index}" + (f" ({raw['name']!r})" if isinstance(raw.get("name"), str) else "")
    if key is None:
        return f"{where}: {problem}"
    if match.group(3):
        key += f"[{_bad_xattr(raw.get(key))!r}]"
    return f"{where} field {key!r}: {problem}"


def _raw_entry(data: bytes | str, index: int) -> dict[str, Any]:
    try:
        raw = msgspec.json.decode(data)["entries"][index]
    except (msgspec.DecodeError, LookupError, TypeError, UnicodeDecodeError):
        # Only for the error message: a TOC too broken to decode again just names less.
        return {}
    return raw if isinstance(raw, dict) else {}


def _bad_xattr(xattrs: object) -> str:
    """The first xattr whose value is not a base64 string (the key msgspec does not name)."""
    for name, value in xattrs.items() if isinstance(xattrs, dict) else ():
        try:
            base64.b64decode(value, validate=True)
        except (TypeError, ValueError):
            return str(name)
    return "?"


def _encode_xattrs(xattrs: dict[str, bytes]) -> dict[str, str]:
    """Go marshals map[string][]byte with sorted keys and standard base64 values."""
    return {key: base64.b64encode(xattrs[key]).decode("ascii") for key in sorted(xattrs)}


# ---- Go-compatible JSON text ----

# Sorted dict keys: Go writes a map's keys (the xattrs) in order; struct fields keep theirs.
_DOCUMENT_ENCODER = msgspec.json.Encoder(order="deterministic")
# What Go's encoder writes differently from msgspec's: any escape (Go escapes the HTML
# characters and U+2028/U+2029, and spells some control characters differently).
_ESCAPED_BY_GO = (b"\\", b"<", b">", b"&", "\u2028".encode(), "\u2029".encode())
# While indenting, the spaces strings hold are DEL (which the compact JSON then lacks): after
# formatting, spaces are indentation (to tabs) or follow a key's colon, DEL is a string's space.
_MARK = b"\x7f"
_TABS_FOR_SPACES = bytes.maketrans(b" " + _MARK, b"\t ")


def _indented_go_json(toc: TOC) -> bytes | None:
    """Go's MarshalIndent text made by msgspec, when no string in the TOC needs an escape.

    msgspec encodes the document (entries leave out their zero values, as
    Go's ``omitempty``), its formatter indents it one space per level, and
    the spaces become the tabs Go writes: strings' own spaces are marked
    first (see ``_MARK``), so that every other space is indentation or
    follows a key's colon.  None when Go's bytes could differ: any escape,
    lone surrogates, no entries; :func:`_go_json` writes those.
    """
    if not toc.entries:
        return None
    try:
        compact = _DOCUMENT_ENCODER.encode(_Document(version=toc.version, entries=toc.entries))
    except (msgspec.EncodeError, UnicodeEncodeError):
        return None
    if any(token in compact for token in _ESCAPED_BY_GO):
        return None
    if _MARK in compact:
        return None
    text = msgspec.json.format(compact.replace(b" ", _MARK), indent=1)
    return text.translate(_TABS_FOR_SPACES).replace(b":\t", b": ")


_GO_ESCAPE = re.compile('[\x00-\x1f"\\\\<>&\u2028\u2029\ud800-\udfff]')
_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _go_escape_char(match: re.Match[str]) -> str:
    char = match.group()
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    if "\ud800" <= char <= "\udfff":
        return "\\ufffd"  # a lone surrogate cannot be UTF-8; Go writes U+FFFD for invalid text
    return f"\\u{ord(char):04x}"


def go_quote(text: str) -> str:
    """A JSON string as Go's encoder writes it: HTML-safe, raw UTF-8 otherwise."""
    return '"' + _GO_ESCAPE.sub(_go_escape_char, text) + '"'


def _go_json(value: Any, indent: str) -> str:
    inner = indent + "\t"
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{inner}{go_quote(k)}: {_go_json(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(value, list):
        if not value:
            return "[]"
        return "[\n" + ",\n".join(inner + _go_json(v, inner) for v in value) + "\n" + indent + "]"
    if isinstance(value, str):
        return go_quote(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    raise TypeError(f"cannot encode {type(value).__name__} as TOC JSON")


# ---- modtime ----

_RFC3339 = re.compile(
    r"(-?\d{4,})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.(\d+))?(?:([Zz])|([+-])(\d\d):(\d\d))"
)


@functools.lru_cache(maxsize=4096)
def parse_modtime(text: str) -> int:
    """Seconds since the epoch of an RFC 3339 ``modtime``; 0 when absent.

    Written by hand rather than with ``datetime`` because Go writes years
    outside datetime's 1..9999 for extreme tar mtimes.  Fractions are
    dropped: Go rounds to the second when writing.  Cached: a layer's files
    share few distinct times.
    """
    if not text:
        return 0
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError(f"modtime {text!r} is not RFC 3339")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 61):
        raise ValueError(f"modtime {text!r} is out of range")
    days = _days_from_civil(year, month, day)
    seconds = days * 86400 + hour * 3600 + minute * 60 + second
    if match.group(9):
        sign = 1 if match.group(9) == "+" else -1
        seconds -= sign * (int(match.group(10)) * 3600 + int(match.group(11)) * 60)
    return seconds


def format_modtime(mtime: float) -> str:
    """The ``modtime`` Go writes: UTC, rounded to the nearest second (halves up), "" for the epoch."""
    if not math.isfinite(mtime):
        raise ValueError(f"mtime {mtime} cannot be written as RFC 3339 (years 1 to 9999)")
    seconds = math.floor(mtime + 0.5)
    if seconds == 0:
        return ""
    try:
        moment = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    except (OverflowError, OSError, ValueError) as exc:
        raise ValueError(f"mtime {mtime} cannot be written as RFC 3339 (years 1 to 9999)") from exc
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 in the proleptic Gregorian calendar (any year)."""
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468
