"""The table of contents (``stargz.index.json``): its model, parser and serializer.

The model holds every field the Go reference writes, under Python names, with
the raw values as stored (names are not normalized here; the reader does
that).  :meth:`TOC.to_json` writes the bytes Go's ``json.MarshalIndent``
writes, so a TOC built here has the digest Go would compute for it.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pystargz.errors import TOCError

TOC_TAR_NAME = "stargz.index.json"
TOC_VERSION = 1
PREFETCH_LANDMARK = ".prefetch.landmark"
NO_PREFETCH_LANDMARK = ".no.prefetch.landmark"
LANDMARK_CONTENTS = b"\x0f"
ENTRY_TYPES = frozenset({"dir", "reg", "symlink", "hardlink", "char", "block", "fifo", "chunk"})
DIGEST_PATTERN = re.compile(r"sha256:[0-9a-f]{64}")
INT64_MAX = (1 << 63) - 1

# JSON key, Python attribute, kind; in the order of the Go struct, which is
# the order Go writes them in.
_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("name", "name", "str"),
    ("type", "type", "str"),
    ("size", "size", "int"),
    ("modtime", "modtime", "str"),
    ("linkName", "link_name", "str"),
    ("mode", "mode", "int"),
    ("uid", "uid", "int"),
    ("gid", "gid", "int"),
    ("userName", "user_name", "str"),
    ("groupName", "group_name", "str"),
    ("offset", "offset", "int"),
    ("innerOffset", "inner_offset", "int"),
    ("devMajor", "dev_major", "int"),
    ("devMinor", "dev_minor", "int"),
    ("xattrs", "xattrs", "xattrs"),
    ("digest", "digest", "str"),
    ("chunkOffset", "chunk_offset", "int"),
    ("chunkSize", "chunk_size", "int"),
    ("chunkDigest", "chunk_digest", "str"),
)
_FIELD_BY_KEY: dict[str, tuple[str, str]] = {key: (attr, kind) for key, attr, kind in _FIELDS}


@dataclass
class TOCEntry:
    """One TOC entry as stored; zero values mean "absent", as Go's ``omitempty`` does.

    Not slotted on purpose: the parser fills an instance's ``__dict__`` in one
    step and leaves absent fields to the class defaults, which makes opening a
    layer of 100,000 entries several times cheaper than calling ``__init__``.
    """

    name: str
    type: str
    size: int = 0
    modtime: str = ""
    link_name: str = ""
    mode: int = 0
    uid: int = 0
    gid: int = 0
    user_name: str = ""
    group_name: str = ""
    offset: int = 0
    inner_offset: int = 0
    dev_major: int = 0
    dev_minor: int = 0
    xattrs: dict[str, bytes] = field(default_factory=dict)
    digest: str = ""
    chunk_offset: int = 0
    chunk_size: int = 0
    chunk_digest: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The JSON object Go writes for this entry (zero values left out)."""
        out: dict[str, Any] = {}
        for key, attr, kind in _FIELDS:
            value = getattr(self, attr)
            if key in ("name", "type") or value:
                out[key] = _encode_xattrs(value) if kind == "xattrs" else value
        return out

    @property
    def is_data(self) -> bool:
        """Whether the entry points at payload bytes (a non-empty file or one of its chunks)."""
        return self.type == "chunk" or (self.type == "reg" and self.size > 0)


@dataclass(slots=True)
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
        return _go_json(self.to_dict(), "").encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes | str) -> TOC:
        """Parses and type-checks TOC JSON; any defect is a :class:`TOCError`."""
        try:
            doc = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise TOCError(f"TOC is not valid JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise TOCError(f"TOC JSON must be an object, not {type(doc).__name__}")
        version = doc.get("version", 0)
        if type(version) is not int:
            raise TOCError(f"TOC version must be an integer, not {version!r}")
        raw_entries = doc.get("entries")
        if raw_entries is not None and not isinstance(raw_entries, list):
            raise TOCError(f"TOC entries must be a list, not {type(raw_entries).__name__}")
        entries = [_entry_from_dict(raw, index) for index, raw in enumerate(raw_entries or ())]
        return cls(version=version, entries=entries, entries_null=raw_entries is None)


def _entry_from_dict(raw: object, index: int) -> TOCEntry:
    """One entry, type-checked field by field; runs once per entry, so it stays lean."""
    if not isinstance(raw, dict):
        raise TOCError(f"TOC entry #{index} must be an object, not {type(raw).__name__}")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        spec = _FIELD_BY_KEY.get(key)
        if spec is None or value is None:
            continue  # unknown keys are ignored, as Go's decoder does; null means absent
        attr, kind = spec
        if kind == "int":
            if type(value) is not int or not 0 <= value <= INT64_MAX:
                raise TOCError(
                    f"{_where(raw, index, key)} must be a non-negative 64-bit integer, not {value!r}"
                )
        elif kind == "str":
            if type(value) is not str:
                raise TOCError(f"{_where(raw, index, key)} must be a string, not {value!r}")
        else:
            value = _decode_xattrs(value, _where(raw, index, key))
        values[attr] = value
    if "name" not in values:
        raise TOCError(f"TOC entry #{index} has no name")
    if values.get("type", "") not in ENTRY_TYPES:
        raise TOCError(f"TOC entry #{index} ({values['name']!r}) has unknown type {values.get('type', '')!r}")
    if "xattrs" not in values:
        values["xattrs"] = {}  # the one field whose default is not a class attribute
    entry: TOCEntry = object.__new__(TOCEntry)
    entry.__dict__.update(values)
    return entry


def _where(raw: dict[str, Any], index: int, key: str) -> str:
    return f"TOC entry #{index} ({raw.get('name')!r}) field {key!r}"


def _decode_xattrs(value: object, where: str) -> dict[str, bytes]:
    if not isinstance(value, dict):
        raise TOCError(f"{where} must be an object of base64 strings")
    return {k: _decode_base64(v, f"{where}[{k!r}]") for k, v in value.items()}


def _decode_base64(value: object, where: str) -> bytes:
    if not isinstance(value, str):
        raise TOCError(f"{where} must be a base64 string, not {value!r}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise TOCError(f"{where} is not valid base64: {exc}") from None


def _encode_xattrs(xattrs: dict[str, bytes]) -> dict[str, str]:
    """Go marshals map[string][]byte with sorted keys and standard base64 values."""
    return {key: base64.b64encode(xattrs[key]).decode("ascii") for key in sorted(xattrs)}


# ---- Go-compatible JSON text ----

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


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 in the proleptic Gregorian calendar (any year)."""
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468
