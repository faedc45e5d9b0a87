"""The ``pystargz`` command: list, read, describe and extract blobs from the shell.

``ls``, ``cat``, ``info`` and ``extract`` take a TARGET: a local blob, a blob
URL, a registry blob or an image (see :mod:`pystargz.target`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import stat
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from tqdm import tqdm

import pystargz
from pystargz.fetch import ReadStats
from pystargz.image import Image
from pystargz.members import StargzInfo
from pystargz.reader import StargzReader
from pystargz.target import Target, open_target, target_stats
from pystargz.writer import DEFAULT_CHUNK_SIZE, DEFAULT_LEVEL

TYPE_MODE_BITS = {
    "reg": stat.S_IFREG,
    "dir": stat.S_IFDIR,
    "symlink": stat.S_IFLNK,
    "hardlink": stat.S_IFREG,
    "char": stat.S_IFCHR,
    "block": stat.S_IFBLK,
    "fifo": stat.S_IFIFO,
}
TOC_HELP = "the separate TOC blob of an external-TOC blob"


class CommandError(Exception):
    """A user-facing failure that is not about the blob's format (wrong path, wrong type)."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    command: Callable[[argparse.Namespace], None] = args.func
    try:
        command(args)
    except BrokenPipeError:
        # The reader of our stdout went away (``| head``): not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (pystargz.StargzError, CommandError, OSError) as exc:
        print(f"pystargz: {args.blob}: {exc}", file=sys.stderr)
        return 1
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pystargz", description="Read stargz / eStargz container layers.")
    parser.add_argument("--version", action="version", version=f"pystargz {pystargz.__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    target = _target_options()

    ls = commands.add_parser("ls", parents=[target], help="list the members of a blob or image")
    ls.add_argument("-l", "--long", action="store_true", help="mode, owner, size, time, like tar -tv")
    ls.add_argument("--json", action="store_true", help="one JSON array of members")
    ls.set_defaults(func=_ls)

    cat = commands.add_parser("cat", parents=[target], help="write a file's contents to stdout")
    cat.add_argument("path")
    cat.set_defaults(func=_cat)

    info = commands.add_parser("info", parents=[target], help="format, TOC and prefetch facts of a blob")
    info.add_argument("--json", action="store_true")
    info.set_defaults(func=_info)

    convert = commands.add_parser(
        "convert", help="convert a tar layer (plain, gzip, zstd) to eStargz or zstd:chunked"
    )
    convert.add_argument("blob", metavar="IN", help="input tar layer")
    convert.add_argument("out", metavar="OUT", help="output blob")
    convert.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE, help="bytes per chunk")
    convert.add_argument("--level", type=int, default=DEFAULT_LEVEL, help="gzip compression level")
    convert.add_argument(
        "--prioritize",
        action="append",
        default=[],
        metavar="PATH",
        help="a file to put first (repeatable), for prefetching",
    )
    convert.add_argument(
        "--prioritize-from", metavar="FILE", help="file listing paths to prioritize, one a line"
    )
    convert.add_argument(
        "--allow-missing", action="store_true", help="skip prioritized paths the layer lacks"
    )
    convert.add_argument(
        "--format",
        choices=["estargz", "stargz", "zstdchunked"],
        default="estargz",
        help="output layout (default estargz; zstdchunked: --level is the zstd level)",
    )
    convert.add_argument(
        "--legacy", action="store_true", help="write legacy stargz (same as --format stargz)"
    )
    convert.add_argument(
        "--external-toc", metavar="TOC", help="write the TOC to this separate file, not into the blob"
    )
    convert.add_argument("--workers", type=int, help="compression threads (default: all cores)")
    convert.add_argument(
        "--min-chunk-size",
        type=int,
        default=0,
        metavar="N",
        help="pack small files into one gzip member until it holds N compressed bytes (default 0: off)",
    )
    convert.add_argument("--json", action="store_true")
    convert.set_defaults(func=_convert)

    extract = commands.add_parser("extract", parents=[target], help="extract every member of a blob")
    extract.add_argument("dest")
    extract.add_argument(
        "--filter",
        default="data",
        choices=["data", "tar", "fully_trusted"],
        help="tarfile extraction filter (default: data, the safe one)",
    )
    extract.set_defaults(func=_extract)

    verify = commands.add_parser(
        "verify",
        parents=[target],
        help="check the TOC digest (when given), every chunk and every file against their digests",
    )
    verify.add_argument("--toc-digest", metavar="DIGEST", help="the digest the TOC must have (sha256:...)")
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(func=_verify)
    return parser


def _target_options() -> argparse.ArgumentParser:
    """TARGET and the options of reading it, shared by the reading commands."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "blob",
        metavar="TARGET",
        help="a blob path, an http(s):// blob URL, HOST/REPO@sha256:... or an image HOST/REPO:TAG",
    )
    options.add_argument("--toc", metavar="FILE", help=TOC_HELP)
    options.add_argument(
        "--insecure",
        action="store_true",
        help="plain HTTP to a registry; no TLS certificate check for an https:// URL",
    )
    options.add_argument(
        "--stats", action="store_true", help="print requests, bytes fetched and cache hits to stderr"
    )
    return options


@contextmanager
def _open(args: argparse.Namespace) -> Iterator[Target]:
    """The target, closed afterwards; with ``--stats`` its costs go to stderr, even after a failure."""
    target = open_target(args.blob, insecure=args.insecure, toc=args.toc)
    try:
        with target:
            yield target
    finally:
        if args.stats:
            print(stats_line(target_stats(target)), file=sys.stderr)


def stats_line(stats: ReadStats) -> str:
    return (
        f"requests {stats.requests}, bytes fetched {stats.bytes_fetched}, retries {stats.retries}, "
        f"cache hits {stats.cache_hits}, cache misses {stats.cache_misses}"
    )


def _blob(target: Target) -> StargzReader:
    if isinstance(target, Image):
        raise CommandError("this command reads one blob; an image has several layers")
    return target


def _ls(args: argparse.Namespace) -> None:
    with _open(args) as reader:
        members = reader.getmembers()
        if args.json:
            json.dump([_member_json(m) for m in members], sys.stdout, indent=1)
            sys.stdout.write("\n")
            return
        for member in members:
            print(_long_line(member) if args.long else member.name)


def _member_json(member: StargzInfo) -> dict[str, Any]:
    return {
        "name": member.name,
        "type": member.entry.type,
        "size": member.size,
        "mode": member.mode,
        "mtime": member.mtime,
        "uid": member.uid,
        "gid": member.gid,
        "uname": member.uname,
        "gname": member.gname,
        "linkname": member.linkname,
        "devmajor": member.devmajor,
        "devminor": member.devminor,
        "digest": member.digest,
        "chunks": len(member.chunks),
        "xattrs": sorted(member.xattrs),
    }


def _long_line(member: StargzInfo) -> str:
    kind = member.entry.type
    mode = stat.filemode(TYPE_MODE_BITS.get(kind, 0) | (member.mode & 0o7777))
    owner = f"{member.uname or member.uid}/{member.gname or member.gid}"
    size = f"{member.devmajor},{member.devminor}" if member.ischr() or member.isblk() else str(member.size)
    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(member.mtime))
    line = f"{mode} {owner:>17} {size:>10} {when} {member.name}"
    if member.issym():
        line += f" -> {member.linkname}"
    elif member.islnk():
        line += f" link to {member.linkname}"
    return line


def _cat(args: argparse.Namespace) -> None:
    with _open(args) as reader:
        try:
            source = reader.extractfile(args.path)
        except KeyError:
            raise CommandError(f"{args.path!r}: no such member") from None
        if source is None:
            raise CommandError(f"{args.path!r} is not a regular file")
        out = sys.stdout.buffer
        while block := source.read(1 << 20):
            out.write(block)
        out.flush()


def info_dict(reader: StargzReader) -> dict[str, Any]:
    """The facts ``pystargz info`` prints, as a dict (also used by tests)."""
    size = reader.source.size
    return {
        "format": reader.format,
        "blob_size": size,
        "footer_size": reader.footer.size,
        "toc_offset": reader.toc_offset,
        "toc_compressed_size": reader.footer.toc_size,
        "toc_size": len(reader.toc_json),
        "toc_digest": reader.toc_digest,
        "toc_entries": len(reader.toc),
        "members": len(reader),
        "regular_files": sum(1 for m in reader if m.isreg()),
        "prefetch_size": reader.prefetch_size,
        "native_backend": pystargz.native_backend,
    }


def image_info_dict(image: Image) -> dict[str, Any]:
    """The facts ``pystargz info`` prints for an image: its manifest, then each layer's blob facts."""
    manifest = image.manifest
    layers = []
    for layer in image.layers:
        descriptor = layer.descriptor
        facts = {
            "digest": descriptor.digest if descriptor else None,
            "annotated_toc_digest": descriptor.toc_digest if descriptor else None,
        }
        layers.append({**facts, **info_dict(layer.reader)})
    return {
        "reference": str(manifest.reference) if manifest else None,
        "manifest_digest": manifest.digest if manifest else None,
        "platform": str(manifest.platform) if manifest and manifest.platform else None,
        "layers": layers,
    }


def _info(args: argparse.Namespace) -> None:
    with _open(args) as target:
        facts = image_info_dict(target) if isinstance(target, Image) else info_dict(target)
    if args.json:
        print(json.dumps(facts, indent=1))
        return
    _print_facts(facts)


def _print_facts(facts: dict[str, Any], indent: str = "") -> None:
    width = max(len(key) for key in facts)
    for key, value in facts.items():
        if isinstance(value, list):
            for index, item in enumerate(value):
                print(f"{indent}{key.rstrip('s')} {index}")
                _print_facts(item, indent + "  ")
            continue
        print(f"{indent}{key.replace('_', ' '):<{width}}  {value}")


def _convert(args: argparse.Namespace) -> None:
    prioritized = list(args.prioritize)
    if args.prioritize_from:
        with open(args.prioritize_from, encoding="utf-8") as listing:
            prioritized += [line.strip() for line in listing if line.strip()]
    # The bar goes to stderr, and only when a person is watching it.
    with tqdm(desc="converting", unit=" entries", file=sys.stderr, disable=not sys.stderr.isatty()) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        try:
            result = pystargz.build(
                args.blob,
                args.out,
                chunk_size=args.chunk_size,
                compression_level=args.level,
                prioritized_files=prioritized,
                allow_missing_prioritized=args.allow_missing,
                format="stargz" if args.legacy else args.format,
                workers=args.workers,
                progress=progress,
                min_chunk_size=args.min_chunk_size,
                external_toc=args.external_toc is not None,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
    if result.toc_blob is not None:
        with open(args.external_toc, "wb") as toc_file:
            toc_file.write(result.toc_blob)
    facts = dataclasses.asdict(result)
    del facts["toc_blob"]
    if result.toc_blob_digest is not None:
        facts["toc_blob_digest"] = result.toc_blob_digest
    if args.json:
        print(json.dumps(facts, indent=1))
        return
    for key in ("toc_digest", "diff_id", "digest", "size", "uncompressed_size", "toc_blob_digest"):
        if key in facts:
            print(f"{key.replace('_', ' '):<18} {facts[key]}")
    for key, value in result.annotations.items():
        print(f"annotation         {key}={value}")


def _extract(args: argparse.Namespace) -> None:
    with _open(args) as target:
        _blob(target).extractall(args.dest, filter=args.filter)


def _verify(args: argparse.Namespace) -> None:
    """Exit 0 only when everything matched; a mismatch is a StargzError, reported by main()."""
    with _open(args) as target:
        result = _blob(target).verify(args.toc_digest)
    facts = dataclasses.asdict(result)
    if args.json:
        print(json.dumps(facts, indent=1))
        return
    toc = "TOC digest matches" if result.toc_checked else "TOC digest not given"
    counts = f"{result.files} files, {result.chunks} chunks, {result.bytes} bytes"
    print(f"ok: {result.toc_digest} ({toc}); {counts}")


if __name__ == "__main__":
    sys.exit(main())
