"""TOC JSON: the msgspec-made text is the Go encoder's, byte for byte, or is not used.

``TOC.to_json`` takes msgspec's encoding, re-indented, whenever no string
needs an escape; the vectors (``test_vectors.py``) compare the result with
Go's own bytes, and here random TOCs compare it with the exact Go encoder of
``pystargz.toc`` that writes the other TOCs.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pystargz.toc import TOC, TOCEntry, _go_json, _indented_go_json

# Plain text plus what Go escapes or msgspec spells differently, spaces and the DEL mark.
TEXT = st.one_of(
    st.text(st.sampled_from("ab/. :-_é€"), max_size=10),
    st.text(st.sampled_from('ab :"\\<>&\x00\x01\x08\x0c\n\t\x7f\u2028\u2029\ud800'), max_size=6),
    st.text(max_size=8),
)
COUNT = st.one_of(st.just(0), st.integers(1, 2**63 - 1))


@st.composite
def entries(draw: st.DrawFn) -> TOCEntry:
    return TOCEntry(
        name=draw(TEXT),
        type=draw(st.sampled_from(["dir", "reg", "symlink", "hardlink", "char", "block", "fifo", "chunk"])),
        size=draw(COUNT),
        modtime=draw(st.sampled_from(["", "2024-01-02T03:04:05Z"])),
        link_name=draw(TEXT),
        mode=draw(COUNT),
        uid=draw(COUNT),
        gid=draw(COUNT),
        user_name=draw(TEXT),
        group_name=draw(TEXT),
        offset=draw(COUNT),
        inner_offset=draw(COUNT),
        dev_major=draw(COUNT),
        dev_minor=draw(COUNT),
        xattrs=draw(st.dictionaries(TEXT, st.binary(max_size=8), max_size=3)),
        digest=draw(st.sampled_from(["", "sha256:" + "ab" * 32])),
        chunk_offset=draw(COUNT),
        chunk_size=draw(COUNT),
        chunk_digest=draw(st.sampled_from(["", "sha256:" + "cd" * 32])),
    )


@given(toc_entries=st.lists(entries(), max_size=5), version=st.integers(0, 3), null=st.booleans())
def test_to_json_is_the_go_encoders_text(toc_entries: list[TOCEntry], version: int, null: bool) -> None:
    toc = TOC(version=version, entries=toc_entries, entries_null=null)
    expected = _go_json(toc.to_dict(), "").encode("utf-8")
    fast = _indented_go_json(toc)
    assert fast is None or fast == expected
    assert toc.to_json() == expected


def test_the_usual_toc_takes_msgspecs_way() -> None:
    """Names with spaces and colons, xattrs, non-ASCII text: no escape, so msgspec writes them."""
    toc = TOC(
        entries=[
            TOCEntry(name="a dir: x/", type="dir", mode=0o755, xattrs={"user.b": b"\x00", "user.a": b"1"}),
            TOCEntry(name="é €", type="reg", size=3, digest="sha256:" + "ab" * 32, user_name="root"),
        ]
    )
    assert _indented_go_json(toc) == _go_json(toc.to_dict(), "").encode("utf-8")
