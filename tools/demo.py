"""The main job end to end, on a real layer: convert, then read files back lazily.

1. tar a real directory tree of this machine (Debian's /usr/lib/python3);
2. convert it to eStargz with pystargz, and with the Go reference to compare;
3. open the blob with pystargz: facts, a listing, one file read by itself,
   every file read in parallel and checked against the original tar, and a
   safe extraction.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import sys
import tarfile
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.interop.peer import GoPeer, build_peer  # noqa: E402
from tests.layers import make_tree_tar, real_tree  # noqa: E402

import pystargz  # noqa: E402
from pystargz.cli import info_dict  # noqa: E402


def step(text: str) -> None:
    print(f"\n== {text}")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="pystargz-demo-") as tmp:
        work = pathlib.Path(tmp)
        step(f"tar of {real_tree()}")
        tar_path = make_tree_tar(work / "layer.tar")
        print(f"{tar_path.stat().st_size / 1e6:.1f} MB")

        step("convert to eStargz with pystargz.build (gzip level 6, 4 MiB chunks, all cores)")
        blob = work / "layer.esgz"
        started = time.perf_counter()
        built = pystargz.build(tar_path, blob)
        elapsed = time.perf_counter() - started
        print(f"{built.size / 1e6:.1f} MB in {elapsed:.2f} s, TOC digest {built.toc_digest}")
        print(f"DiffID {built.diff_id}")

        step("the same with the Go reference (estargz.Build, gzip level 9), and Go reading our blob")
        peer = GoPeer(build_peer(work / "go"))
        go_built = peer.build(tar_path, work / "go.esgz", procs=os.cpu_count() or 1)
        print(f"Go: {go_built['size'] / 1e6:.1f} MB in {go_built['seconds']:.2f} s")
        report = peer.verify(blob, toc_digest=built.toc_digest)
        print(
            f"Go verifies our blob: {'yes' if report['ok'] else report['errors']} ({report['chunks']} chunks)"
        )

        with pystargz.open(blob) as reader:
            step("pystargz info")
            for key, value in info_dict(reader).items():
                print(f"  {key:<20} {value}")

            step("pystargz ls (first 8 regular files)")
            regular = [m for m in reader if m.isreg() and m.size > 0]
            for member in regular[:8]:
                print(f"  {member.size:>9}  {member.name}")

            step("read one file lazily: only its chunk's gzip member is fetched and inflated")
            some = next((m for m in regular if m.name.endswith(".py") and 200 < m.size < 4000), regular[0])
            source = reader.extractfile(some)
            assert source is not None
            head = source.read(160).decode("utf-8", "replace")
            print(f"  {some.name}:\n    " + head.replace("\n", "\n    "))

            step("read every regular file (inflated on all cores) and compare with the original tar")
            started = time.perf_counter()
            contents = reader.read_files(m.name for m in regular)
            elapsed = time.perf_counter() - started
            total = sum(len(data) for data in contents.values())
            rate = total / 1e6 / elapsed
            print(f"  {len(contents)} files, {total / 1e6:.1f} MB in {elapsed:.3f} s ({rate:.0f} MB/s)")
            mismatches = _compare_with_tar(tar_path, contents)
            print(f"  identical to the input tar: {'yes' if not mismatches else f'NO: {mismatches[:5]}'}")

            step("extract everything with tarfile's 'data' filter")
            dest = work / "rootfs"
            reader.extractall(dest)
            files = sum(1 for path in dest.rglob("*") if path.is_file())
            print(f"  {files} files under {dest.name}/")
        if mismatches:
            raise SystemExit("demo failed: contents differ")
        print("\ndemo OK")


def _compare_with_tar(tar_path: pathlib.Path, contents: dict[str, bytes]) -> list[str]:
    mismatches = []
    with tarfile.open(tar_path) as tar:
        for info in tar:
            if not info.isreg() or info.size == 0:
                continue
            source = tar.extractfile(info)
            expected = hashlib.sha256(source.read() if source else b"").digest()
            name = pystargz.members.clean_name(info.name)
            if hashlib.sha256(contents.get(name, b"?")).digest() != expected:
                mismatches.append(name)
    return mismatches


if __name__ == "__main__":
    main()
