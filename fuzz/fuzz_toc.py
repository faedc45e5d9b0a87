"""Fuzz target: the TOC parser and the path from TOC member to index.

The first input byte picks what the rest is:

- 0: TOC JSON for ``TOC.from_json``; a TOC that parses must serialize
  (``to_json``) to JSON that parses back to an equal TOC;
- 1: TOC JSON put behind the payload of one real blob (``BASE``), opened and
  read as a whole blob: the index checks (offsets, chunks, hardlinks) run on it;
- 2: the compressed TOC member itself (gzip of a tar holding the JSON) behind
  that payload: inflating it, the tar, the JSON and the index.
"""

from __future__ import annotations

import functools
import re

import atheris

with atheris.instrument_imports(include=["pystargz"]):
    import pystargz
    from pystargz import TOC, StargzError
    from pystargz.footer import build_footer
    from pystargz.testing import assemble

from _harness import Seeds, main, split, vectors
from fuzz_open import read_everything

# innerOffset packing, chunked files, symlinks and hardlinks: the richest small vector.
BASE = "up_mixed__mcs16384"
_SURROGATE = re.compile("[\ud800-\udfff]")


@functools.cache
def base_payload() -> bytes:
    parts = split(dict(vectors())[BASE])
    assert parts is not None
    return parts[0]


def has_lone_surrogate(toc: TOC) -> bool:
    texts = (
        text
        for e in toc.entries
        for text in (
            e.name,
            e.modtime,
            e.link_name,
            e.user_name,
            e.group_name,
            e.digest,
            e.chunk_digest,
            *e.xattrs,
        )
    )
    return any(_SURROGATE.search(text) for text in texts)


def round_trip(toc_json: bytes) -> None:
    toc = TOC.from_json(toc_json)
    if has_lone_surrogate(toc):
        return  # JSON can escape one ("\ud800"); to_json writes U+FFFD for it, as Go does: no round trip
    again = TOC.from_json(toc.to_json())
    if again != toc:
        raise AssertionError("TOC.from_json(toc.to_json()) differs from the TOC")


def open_blob(blob: bytes) -> None:
    with pystargz.open(blob) as reader:
        read_everything(reader)


def test_one_input(data: bytes) -> None:
    if not data:
        return
    mode, rest = data[0] % 3, data[1:]
    payload = base_payload()
    try:
        if mode == 0:
            round_trip(rest)
        elif mode == 1:
            open_blob(assemble(payload, rest))
        else:
            open_blob(payload + rest + build_footer(len(payload)))
    except StargzError:
        pass


def seeds() -> Seeds:
    for name, blob in vectors():
        parts = split(blob)
        if parts is None:
            continue
        toc_json = pystargz.open(blob).toc_json
        yield b"\x00" + toc_json
        yield b"\x01" + toc_json
        if name == BASE:
            yield b"\x02" + parts[1]


if __name__ == "__main__":
    main(test_one_input, seeds)
