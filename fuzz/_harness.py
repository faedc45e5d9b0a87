"""What every fuzz target shares: the seed vectors, the crash rule, the command line.

A target is ``python fuzz/<target>.py [libFuzzer options] [CORPUS_DIR ...]``;
``--make-seeds DIR`` writes its seed inputs (made from ``tests/data``, so no
corpus lives in git) and exits.  An input crashes a target when the code under
test raises anything but :class:`pystargz.StargzError` (or what the target
documents), or when a target's own invariant check fails.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import atheris

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
# Seeds larger than this slow every mutation down without reaching more code.
MAX_SEED_SIZE = 40_000

Seeds = Iterator[bytes]


def vectors(max_size: int = MAX_SEED_SIZE) -> Iterator[tuple[str, bytes]]:
    """The Go-made blobs of ``tests/data`` that open on their own, up to ``max_size`` bytes, by name.

    External-TOC blobs (and their TOC blobs) are left out: they open only as a pair.
    """
    for path in sorted(DATA.glob("*.esgz")):
        if path.stat().st_size <= max_size and "__ext" not in path.name:
            yield path.stem, path.read_bytes()


def split(blob: bytes) -> tuple[bytes, bytes, bytes] | None:
    """A gzip blob as (payload, TOC member, footer); None for other layouts or no footer at all."""
    from pystargz import StargzError
    from pystargz.footer import MAX_FOOTER_SIZE, Layout, parse_footer

    try:
        footer = parse_footer(blob[-MAX_FOOTER_SIZE:], len(blob))
    except StargzError:
        return None
    if footer.layout not in (Layout.ESTARGZ, Layout.LEGACY):
        return None
    end = len(blob) - footer.size
    return blob[: footer.toc_offset], blob[footer.toc_offset : end], blob[end:]


def write_seeds(directory: Path, seeds: Seeds) -> int:
    """Writes each seed under its sha1 (as libFuzzer names corpus files); returns how many."""
    directory.mkdir(parents=True, exist_ok=True)
    count = 0
    for seed in seeds:
        (directory / hashlib.sha1(seed).hexdigest()).write_bytes(seed)
        count += 1
    return count


def main(test_one_input: Callable[[bytes], None], seeds: Callable[[], Seeds]) -> None:
    """Runs the fuzzer (libFuzzer's command line), or writes the seeds with ``--make-seeds DIR``."""
    if len(sys.argv) == 3 and sys.argv[1] == "--make-seeds":
        count = write_seeds(Path(sys.argv[2]), seeds())
        print(f"{Path(sys.argv[0]).name}: {count} seeds in {sys.argv[2]}")
        return
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
