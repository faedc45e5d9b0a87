"""Remote benchmark: what starting from a registry costs, pulled whole or read lazily.

    python -m benchmarks.bench_remote [--repeat N] [--quick] [--json OUT] [--png OUT]

In the spirit of the stargz seed's HelloBench figure (pull time dominates
container start): a realistic layer (``tests/layers.py``: a tar of a real
directory tree) is converted by ``pystargz.build`` with a prioritized-files
list, pushed to a local CNCF distribution registry (``tests/registry.py``:
Debian's ``docker-registry`` on 127.0.0.1), and then read three ways:

(a) pull: download the whole blob (one request) and extract it to disk with
    :mod:`tarfile` (gunzip + untar, as ``docker pull`` does);
(b) lazy: open the blob (footer + TOC) and read one small file;
(c) prefetch: open, ``prefetch()`` the prioritized files in one request,
    then read every prioritized file (from the cache).

Each case uses a fresh :class:`~pystargz.sources.registry.RegistrySource`
(new connections) with the blob's size from the manifest, as a runtime has it
after resolving the image; the manifest request, the same for all three, is
not counted.  Time is the median of N runs on loopback, so it is CPU time
more than network time; bytes and requests are what a real network would
carry, and the table adds what they would cost on a modelled link
(``LINK_MBIT`` Mbit/s, ``LINK_RTT_MS`` ms per request).  The prioritized
files stand for an application's start: the ``__init__.py`` of every
package at most two levels under the tree's root (what importing each
top-level package reads first).

Target for (b): at most 3 requests and at most compressed TOC + footer +
64 KiB + the file's gzip member bytes, printed as PASS / MISS.  Untimed
checks (the bytes read equal the tar's) make the exit status 1 when they
fail.  The chart goes to ``--png`` (default ``benchmarks/results/bench_remote.png``).
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.layers import MAX_BYTES, make_tree_tar, real_tree
from tests.registry import Layer as RegistryLayer
from tests.registry import RegistryServer

import pystargz
from benchmarks.common import (
    MB,
    add_run_options,
    machine_facts,
    noise_line,
    progress,
    repeat_count,
    with_noise,
    write_json,
)
from pystargz.reader import TAIL_WINDOW
from pystargz.sources.registry import RegistrySource, parse_reference

DEFAULT_REPEAT = 5
QUICK_MAX_BYTES = 4 << 20
REPOSITORY = "bench/layer"
DEFAULT_PNG = Path(__file__).resolve().parent / "results" / "bench_remote.png"
MAX_PRIORITIZED = 200
# (b) reads a file of about this size from the middle of the blob.
SMALL_FILE_SIZES = range(1000, 4097)
LINK_MBIT = 100
LINK_RTT_MS = 20
TARGET_REQUESTS = 3

CASES = {
    "pull": "(a) download + extract the whole layer",
    "lazy": "(b) lazy open + read one small file",
    "prefetch": "(c) prefetch + read the prioritized files",
}


@dataclass(frozen=True)
class Layer:
    """The blob under test, where it lives in the registry, and the files the cases read."""

    tree: str
    tar: Path
    tar_bytes: int
    blob: bytes
    reference: str
    files: int
    toc_and_footer: int
    prefetch_bytes: int
    prioritized: tuple[str, ...]
    small_file: str
    small_member: int

    @property
    def lazy_bound(self) -> int:
        """(b)'s byte target: compressed TOC + footer + the tail window + the file's member."""
        return self.toc_and_footer + TAIL_WINDOW + self.small_member


@dataclass(frozen=True)
class Row:
    key: str
    seconds: tuple[float, ...]
    bytes_fetched: int
    requests: int

    @property
    def label(self) -> str:
        return CASES[self.key]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def modelled(self) -> float:
        """Seconds the same requests and bytes would take on the modelled link (no CPU time)."""
        return self.requests * LINK_RTT_MS / 1e3 + self.bytes_fetched * 8 / (LINK_MBIT * 1e6)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool


@dataclass(frozen=True)
class Report:
    config: dict[str, Any]
    machine: dict[str, Any]
    layer: Layer
    rows: list[Row]
    checks: list[Check]


# ---- the layer ----


def prioritized_files(tar: Path) -> list[str]:
    """``__init__.py`` files at most two directories under the tree's root, sorted, bounded."""
    with tarfile.open(tar) as archive:
        names = [m.name for m in archive if m.isreg() and m.name.endswith("/__init__.py")]
    root_depth = min((name.count("/") for name in names), default=0) - 1
    return sorted(n for n in names if n.count("/") - root_depth <= 2)[:MAX_PRIORITIZED]


def pick_small_file(reader: pystargz.StargzReader, prioritized: Sequence[str]) -> str:
    """A one-chunk file of 1-4 KiB nearest the middle of the blob, not prefetched."""
    skip = set(prioritized)
    middle = reader.toc_offset // 2
    candidates = [
        m
        for m in reader
        if m.isreg() and m.size in SMALL_FILE_SIZES and len(m.chunks) == 1 and m.name not in skip
    ]
    if not candidates:
        raise RuntimeError("the layer has no regular file of 1-4 KiB to read")
    return min(candidates, key=lambda m: abs(m.chunks[0].offset - middle)).name


def build_layer(workdir: Path, registry: RegistryServer, *, quick: bool) -> Layer:
    tar = make_tree_tar(workdir / "tree.tar", max_bytes=QUICK_MAX_BYTES if quick else MAX_BYTES)
    prioritized = prioritized_files(tar)
    out = io.BytesIO()
    result = pystargz.build(tar, out, prioritized_files=prioritized)
    blob = out.getvalue()
    layer = RegistryLayer(blob, result, dict(result.annotations))
    registry.push_image(REPOSITORY, "v1", [layer])
    with pystargz.open(blob) as reader:
        small = pick_small_file(reader, prioritized)
        (chunk,) = reader.getmember(small).chunks
        return Layer(
            tree=str(real_tree()),
            tar=tar,
            tar_bytes=tar.stat().st_size,
            blob=blob,
            reference=f"{registry.host}/{REPOSITORY}@{layer.digest}",
            files=sum(1 for m in reader if m.isreg()),
            toc_and_footer=len(blob) - reader.toc_offset,
            prefetch_bytes=reader.prefetch_size,
            prioritized=tuple(prioritized),
            small_file=small,
            small_member=chunk.end - chunk.offset,
        )


def tar_contents(tar: Path, names: Sequence[str]) -> dict[str, bytes]:
    wanted = set(names)
    with tarfile.open(tar) as archive:
        found = {}
        for member in archive:
            if member.name in wanted:
                file = archive.extractfile(member)
                assert file is not None
                found[member.name] = file.read()
    return found


# ---- the three cases ----

Run = Callable[[], tuple[int, int, Any]]


def source_for(layer: Layer) -> RegistrySource:
    return RegistrySource(parse_reference(layer.reference), size=len(layer.blob))


def pull_run(layer: Layer, workdir: Path) -> Run:
    """(a): the whole blob in one request, then gunzip + untar to a fresh directory."""

    def run() -> tuple[int, int, Any]:
        source = source_for(layer)
        try:
            data = source.read_at(0, source.size)
            stats = source.stats
        finally:
            source.close()
        with tempfile.TemporaryDirectory(dir=workdir) as dest:
            # r:gz, not the r|gz stream: tarfile's stream reads one gzip member only.
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
                archive.extractall(dest, filter="data")
            extracted = sum(1 for path in Path(dest).rglob("*") if path.is_file() and not path.is_symlink())
        return stats.requests, stats.bytes_fetched, extracted

    return run


def lazy_run(layer: Layer) -> Run:
    """(b): open (footer + TOC) and read one small file."""

    def run() -> tuple[int, int, Any]:
        with pystargz.open(source_for(layer)) as reader:
            file = reader.extractfile(layer.small_file)
            assert file is not None
            data = file.read()
            stats = reader.stats
        return stats.requests, stats.bytes_fetched, data

    return run


def prefetch_run(layer: Layer) -> Run:
    """(c): open, prefetch the landmark range, read every prioritized file."""

    def run() -> tuple[int, int, Any]:
        with pystargz.open(source_for(layer)) as reader:
            reader.prefetch()
            contents = reader.read_files(layer.prioritized)
            stats = reader.stats
        return stats.requests, stats.bytes_fetched, contents

    return run


def time_case(key: str, run: Run, repeat: int) -> tuple[Row, Any]:
    """One untimed warm-up run, then ``repeat`` timed ones; the counts are the last run's."""
    run()
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        requests, fetched, result = run()
        seconds.append(time.perf_counter() - start)
    return Row(key, tuple(seconds), fetched, requests), result


def measure(layer: Layer, workdir: Path, repeat: int) -> tuple[list[Row], list[Check]]:
    expected = tar_contents(layer.tar, [layer.small_file, *layer.prioritized])
    pull, extracted = time_case("pull", pull_run(layer, workdir), repeat)
    lazy, small = time_case("lazy", lazy_run(layer), repeat)
    prefetch, contents = time_case("prefetch", prefetch_run(layer), repeat)
    checks = [
        # The blob holds the layer's files plus the TOC and the landmark: at least the files.
        Check(f"(a) extracted at least the layer's {layer.files - 1} files", extracted >= layer.files - 1),
        Check("(b) the small file's bytes equal the tar's", small == expected[layer.small_file]),
        Check(
            "(c) every prioritized file's bytes equal the tar's",
            contents == {name: expected[name] for name in layer.prioritized},
        ),
        Check("(c) at most 3 requests: the tail, the rest of the TOC, the prefetch", prefetch.requests <= 3),
    ]
    return [pull, lazy, prefetch], checks


def lazy_targets(layer: Layer, rows: Sequence[Row]) -> dict[str, bool]:
    lazy = next(row for row in rows if row.key == "lazy")
    return {
        f"(b) requests <= {TARGET_REQUESTS}": lazy.requests <= TARGET_REQUESTS,
        f"(b) bytes <= TOC + footer + 64 KiB + member = {layer.lazy_bound}": lazy.bytes_fetched
        <= layer.lazy_bound,
    }


# ---- results ----


def to_json(report: Report) -> dict[str, Any]:
    layer = report.layer
    return {
        "config": report.config,
        "machine": report.machine,
        "layer": {
            "tree": layer.tree,
            "tar_bytes": layer.tar_bytes,
            "blob_bytes": len(layer.blob),
            "regular_files": layer.files,
            "toc_and_footer_bytes": layer.toc_and_footer,
            "prefetch_bytes": layer.prefetch_bytes,
            "prioritized_files": len(layer.prioritized),
            "small_file": layer.small_file,
            "small_member_bytes": layer.small_member,
        },
        "rows": [
            {
                "key": row.key,
                "label": row.label,
                "seconds": list(row.seconds),
                "median": row.median,
                "bytes_fetched": row.bytes_fetched,
                "requests": row.requests,
                "modelled_seconds": row.modelled,
            }
            for row in report.rows
        ],
        "targets": [{"name": name, "ok": ok} for name, ok in lazy_targets(layer, report.rows).items()],
        "checks": [{"name": check.name, "ok": check.ok} for check in report.checks],
    }


TABLE = "{:<44} {:>10} {:>12} {:>9} {:>16}"


def render(report: Report) -> str:
    layer, machine = report.layer, report.machine
    lines = [
        f"pystargz remote benchmark: median of {report.config['repeat']} run(s) after one warm-up, "
        "local distribution registry on loopback",
        f"layer: {layer.tree} ({'cut down, --quick' if report.config['quick'] else 'whole'}): "
        f"{layer.files} regular files, tar {layer.tar_bytes / MB:.1f} MB -> eStargz "
        f"{len(layer.blob) / MB:.1f} MB, TOC + footer {layer.toc_and_footer / 1e3:.0f} kB",
        f"       {len(layer.prioritized)} prioritized files, "
        f"prefetch range {layer.prefetch_bytes / 1e3:.0f} kB; "
        f"(b) reads {layer.small_file} (member {layer.small_member} bytes)",
        f"machine: {machine['cpu_count']} CPUs, native backend {machine['native_backend']}, "
        f"Python {machine['python']}; {noise_line(machine)}",
        "",
        TABLE.format("case", "time", "bytes", "requests", f"@{LINK_MBIT}Mbit,{LINK_RTT_MS}ms"),
    ]
    for row in report.rows:
        lines.append(
            TABLE.format(
                row.label,
                f"{row.median * 1e3:.1f} ms",
                f"{row.bytes_fetched:,}",
                str(row.requests),
                f"{row.modelled * 1e3:.0f} ms",
            )
        )
    lines.append("")
    for name, ok in lazy_targets(layer, report.rows).items():
        lines.append(f"target {name}: {'PASS' if ok else 'MISS'}")
    lines += [f"check {check.name}: {'ok' if check.ok else 'FAILED'}" for check in report.checks]
    lines.append(
        f"time: measured on loopback; last column: the same bytes and requests on a {LINK_MBIT} Mbit/s "
        f"link with {LINK_RTT_MS} ms per request (a model, no CPU time)."
    )
    return "\n".join(lines)


def draw(report: Report, png: Path) -> None:
    """Panels like the seed's HelloBench figure: time, bytes fetched, requests, modelled network time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    rows = report.rows
    labels = [row.label.replace(" + ", " +\n", 1) for row in rows]
    colors = ["#c44e52", "#4c72b0", "#55a868"]
    figure, axes = plt.subplots(1, 4, figsize=(14, 3.2), sharey=True)
    panels: list[tuple[str, list[float], str]] = [
        ("time on loopback (ms)", [row.median * 1e3 for row in rows], "{:.0f}"),
        ("bytes fetched (MB)", [row.bytes_fetched / MB for row in rows], "{:.2f}"),
        ("requests", [float(row.requests) for row in rows], "{:.0f}"),
        (
            f"model: {LINK_MBIT} Mbit/s, {LINK_RTT_MS} ms RTT (ms)",
            [row.modelled * 1e3 for row in rows],
            "{:.0f}",
        ),
    ]
    for axis, (title, values, fmt) in zip(axes, panels, strict=True):
        bars = axis.barh(labels, values, color=colors)
        axis.bar_label(bars, labels=[fmt.format(v) for v in values], padding=3, fontsize=8)
        axis.set_title(title, fontsize=10)
        axis.set_xlim(0, max(values) * 1.3 or 1)
        axis.tick_params(labelsize=8)
    axes[2].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].invert_yaxis()
    layer = report.layer
    figure.suptitle(
        f"eStargz layer of {layer.files} files ({len(layer.blob) / MB:.1f} MB) from a local registry",
        fontsize=10,
    )
    figure.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(png, dpi=80)
    plt.close(figure)


# ---- command line ----


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_remote", description=__doc__.splitlines()[0]
    )
    add_run_options(parser, default_repeat=DEFAULT_REPEAT, quick_max_bytes=QUICK_MAX_BYTES)
    parser.add_argument("--png", type=Path, default=DEFAULT_PNG, help=f"the chart (default {DEFAULT_PNG})")
    return parser.parse_args(argv)


def run(workdir: Path, *, repeat: int, quick: bool) -> Report:
    progress("starting the registry...")
    with RegistryServer(workdir / "registry") as registry:
        progress("building and pushing the layer...")
        layer = build_layer(workdir, registry, quick=quick)
        progress(f"timing ({repeat} run(s) per case)...")
        (rows, checks), others = with_noise(lambda: measure(layer, workdir, repeat))
    config = {"repeat": repeat, "quick": quick, "link_mbit": LINK_MBIT, "link_rtt_ms": LINK_RTT_MS}
    return Report(config, {**machine_facts(), "other_cpu_share": others}, layer, rows, checks)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    repeat = repeat_count(args, DEFAULT_REPEAT)
    with tempfile.TemporaryDirectory(prefix="pystargz-bench-") as tmp:
        workdir = Path(tmp)
        (workdir / "registry").mkdir()
        report = run(workdir, repeat=repeat, quick=args.quick)
    print(render(report))
    draw(report, args.png)
    progress(f"chart: {args.png}")
    write_json(args.json, to_json(report))
    return 0 if all(check.ok for check in report.checks) else 1


if __name__ == "__main__":
    sys.exit(main())
