"""Fuzz target: the footer parser (``pystargz.footer.parse_footer``).

Input: the last bytes of a blob.  Besides "only FooterError", it checks what
a parsed footer promises: the TOC offset lies before the footer, and the
footer pystargz would write for that offset parses back to the same thing.
"""

from __future__ import annotations

import atheris

with atheris.instrument_imports(include=["pystargz"]):
    from pystargz import StargzError
    from pystargz.footer import MAX_FOOTER_SIZE, build_footer, parse_footer

from _harness import Seeds, main, split, vectors


def test_one_input(data: bytes) -> None:
    for size in (len(data), len(data) + 1000):  # as the whole blob, and as the tail of a larger one
        try:
            footer = parse_footer(data[-MAX_FOOTER_SIZE:], size)
        except StargzError:
            continue
        if not 0 <= footer.toc_offset <= size - footer.size:
            raise AssertionError(f"{footer} does not fit a {size}-byte blob")
        rebuilt = build_footer(footer.toc_offset, footer.layout)
        if parse_footer(rebuilt, max(size, len(rebuilt))) != footer:
            raise AssertionError(f"{footer} does not survive build_footer + parse_footer")


def seeds() -> Seeds:
    for _, blob in vectors():
        parts = split(blob)
        if parts is not None:
            yield parts[2]
            yield (parts[1] + parts[2])[-MAX_FOOTER_SIZE:]


if __name__ == "__main__":
    main(test_one_input, seeds)
