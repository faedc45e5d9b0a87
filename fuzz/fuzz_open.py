"""Fuzz target: a whole blob opened from bytes and read every way.

``pystargz.open(data)``, then every member, every regular file through
``extractfile`` (whole and in small reads after a seek) and ``read_files``,
then ``verify()``.  Only ``StargzError`` may come out; the two read paths must
agree on every file.  A blob that verifies is opened again with its
``toc_digest`` (the verifying reader) and must read back without any error.
"""

from __future__ import annotations

import atheris

with atheris.instrument_imports(include=["pystargz"]):
    import pystargz
    from pystargz import StargzError, StargzReader

from _harness import Seeds, main, vectors


def read_everything(reader: StargzReader) -> None:
    """Reads all there is to read; raises AssertionError when two ways of reading disagree."""
    contents: dict[str, bytes] = {}
    for member in reader.getmembers():
        last = reader.getmember(member.name) is member  # duplicates: the last of a name wins
        file = reader.extractfile(member)
        if file is None:
            continue
        whole = file.read()
        if last:
            contents[member.name] = whole
        if len(whole) > 3:
            file.seek(len(whole) // 3)
            if file.read(7) != whole[len(whole) // 3 : len(whole) // 3 + 7]:
                raise AssertionError(f"{member.name!r}: a read after a seek differs from the whole read")
    _ = reader.prefetch_range, reader.toc_digest, repr(reader)
    bulk = reader.read_files(reader.getnames())
    for name, data in bulk.items():
        if name in contents and contents[name] != data:
            raise AssertionError(f"{name!r}: read_files and extractfile disagree")
    reader.verify()


def test_one_input(data: bytes) -> None:
    try:
        with pystargz.open(data) as reader:
            toc_digest = reader.toc_digest
            read_everything(reader)
    except StargzError:
        return
    # It verified: the verifying reader (every chunk checked as it is inflated) must read it too.
    with pystargz.open(data, toc_digest=toc_digest) as reader:
        read_everything(reader)


def seeds() -> Seeds:
    for _, blob in vectors():
        yield blob


if __name__ == "__main__":
    main(test_one_input, seeds)
