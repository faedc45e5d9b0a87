"""Read benchmark: pystargz against the Go reference reader on a realistic layer.

    python -m benchmarks.bench_read [--repeat N] [--quick] [--json OUT]

Builds an eStargz blob of a real directory tree (``tests/layers.py``) with the
Go reference's ``estargz.Build`` (default options, GOMAXPROCS 1), then times
the same work on both sides, on the same blob file:

- open + TOC parse;
- reading every regular file, and 200 random ones (fixed seed, same list);
- for read-all, ``gzip -dc`` and :mod:`tarfile` on the blob (it is a valid
  tar.gz), as what common tools take to get at the same bytes.

Both sides are timed in-process, without process start-up: Go inside the peer
(``esgzpeer bench``), pystargz here.  Like the peer, each pystargz run opens
the blob, lists what it reads (read-all), reads it and closes the blob.  Each
figure is the median of N runs after one untimed warm-up run (for Go, the
first of N + 1 in-process runs is dropped); the page cache is warm because the
blob was just written.  Targets are printed as PASS / MISS, never asserted:
a busy machine must not fail a benchmark.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tests.interop.peer import BenchWhat, GoPeer, build_peer
from tests.layers import MAX_BYTES, make_tree_tar, real_tree

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

# bench_compress imports these two from here; they live in benchmarks.common.
from pystargz.compression import get_backend

DEFAULT_REPEAT = 5
# --quick: one run on a tree cut to this much file content (a smoke test, not a measurement).
QUICK_MAX_BYTES = 4 << 20
SAMPLE_FILES = 200
SAMPLE_SEED = 20240229
BACKENDS = ("native", "python")

OPEN_KEY = "open/pystargz-native"
READ_ALL_KEY = "readall/pystargz-native-read_files"
# Go / pystargz time ratios the library aims for (> 1 means pystargz is faster).
TARGETS: dict[str, float] = {OPEN_KEY: 1.0, READ_ALL_KEY: 5.0}

Tool = Literal["pystargz", "go", "common"]
Run = Callable[[], int]


@dataclass(frozen=True)
class Row:
    """One implementation of one operation: its timed runs and the bytes one run produces."""

    key: str
    operation: BenchWhat
    tool: Tool
    label: str
    seconds: tuple[float, ...]
    output_bytes: int

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def mb_per_s(self) -> float | None:
        return self.output_bytes / MB / self.median if self.output_bytes else None


@dataclass(frozen=True)
class Layer:
    """The blob under test and the facts that size the work."""

    tree: str
    tar_bytes: int
    blob: Path
    blob_bytes: int
    build_seconds: float
    toc_entries: int
    sizes: dict[str, int]
    chunks: int

    @property
    def regular(self) -> list[str]:
        """Regular file names, each once, in blob order."""
        return list(self.sizes)

    @property
    def content_bytes(self) -> int:
        return sum(self.sizes.values())


@dataclass(frozen=True)
class Report:
    config: dict[str, Any]
    machine: dict[str, Any]
    layer: Layer
    rows: list[Row]


# ---- the layer ----


def build_layer(workdir: Path, peer: GoPeer, *, quick: bool) -> Layer:
    """Tars the tree and has Go build the blob, with Build's defaults as a runtime would get them."""
    tar = make_tree_tar(workdir / "tree.tar", max_bytes=QUICK_MAX_BYTES if quick else MAX_BYTES)
    blob = workdir / "tree.esgz"
    built = peer.build(tar, blob, procs=1)
    with pystargz.open(blob) as reader:
        members = [reader.getmember(name) for name in regular_names(reader)]
        toc_entries = len(reader.toc.entries)
    layer = Layer(
        tree=str(real_tree()),
        tar_bytes=tar.stat().st_size,
        blob=blob,
        blob_bytes=blob.stat().st_size,
        build_seconds=float(built["seconds"]),
        toc_entries=toc_entries,
        sizes={m.name: m.size for m in members},
        chunks=sum(len(m.chunks) for m in members),
    )
    check_same_files(peer, layer)
    return layer


def check_same_files(peer: GoPeer, layer: Layer) -> None:
    """Both readers must see the same regular files, or the ratios would compare different work."""
    go_sizes = {name: int(info["size"]) for name, info in peer.files(layer.blob).items()}
    if go_sizes != layer.sizes:
        differ = sorted(set(go_sizes.items()) ^ set(layer.sizes.items()))[:5]
        raise RuntimeError(f"Go and pystargz disagree on the regular files of {layer.blob}: {differ}")


def regular_names(reader: pystargz.StargzReader) -> list[str]:
    """Each regular file once, in blob order: the files Go's readall walks the tree for."""
    return list(dict.fromkeys(member.name for member in reader if member.isreg()))


def sample_names(layer: Layer) -> list[str]:
    """The random files both sides read, the same on every run of the benchmark."""
    names = sorted(layer.regular)
    return random.Random(SAMPLE_SEED).sample(names, min(SAMPLE_FILES, len(names)))


# ---- the work each side does ----


def open_run(blob: Path, backend: str) -> Run:
    def run() -> int:
        pystargz.open(blob, backend=backend).close()
        return 0

    return run


def read_files_run(blob: Path, backend: str, names: Sequence[str] | None) -> Run:
    """One ``read_files`` batch (the parallel path); None means every regular file, listed in the run."""

    def run() -> int:
        with pystargz.open(blob, backend=backend) as reader:
            contents = reader.read_files(regular_names(reader) if names is None else names)
        return sum(len(data) for data in contents.values())

    return run


def extractfile_run(blob: Path, backend: str, names: Sequence[str] | None) -> Run:
    """``extractfile(name).read()`` file after file, as code written for tarfile would do."""

    def run() -> int:
        with pystargz.open(blob, backend=backend) as reader:
            return sum(read_one(reader, name) for name in (regular_names(reader) if names is None else names))

    return run


def read_one(reader: pystargz.StargzReader, name: str) -> int:
    file = reader.extractfile(name)
    if file is None:
        raise RuntimeError(f"{name!r} is not a regular file")
    with file:
        return len(file.read())


def gzip_run(gzip: str, blob: Path, output: int) -> Run:
    """``gzip -dc blob > /dev/null``; the one timing here that includes a process start (about 1 ms)."""

    def run() -> int:
        subprocess.run([gzip, "-dc", "--", str(blob)], stdout=output, check=True)
        return 0

    return run


def gzip_output_bytes(gzip: str, blob: Path) -> int:
    return len(subprocess.run([gzip, "-dc", "--", str(blob)], stdout=subprocess.PIPE, check=True).stdout)


def tarfile_run(blob: Path) -> Run:
    """Every regular file through ``tarfile.open(blob, "r:gz")``, which inflates the whole stream."""

    def run() -> int:
        total = 0
        with tarfile.open(blob, "r:gz") as tar:
            for info in tar:
                file = tar.extractfile(info) if info.isreg() else None
                if file is not None:
                    total += len(file.read())
        return total

    return run


# ---- timing ----


def time_runs(run: Run, repeat: int, *, expect: int | None = None) -> tuple[tuple[float, ...], int]:
    """One untimed warm-up run, then ``repeat`` timed ones; returns the times and what a run produced.

    ``expect`` checks that the run read every byte it was meant to.
    """
    produced = run()
    if expect is not None and produced != expect:
        raise RuntimeError(f"a benchmark run read {produced} bytes, not the {expect} it should have")
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - start)
    return tuple(seconds), produced


def time_go(
    peer: GoPeer,
    blob: Path,
    what: BenchWhat,
    repeat: int,
    *,
    names: Sequence[str] | None = None,
    chunk_reads: bool = False,
) -> tuple[float, ...]:
    """The peer's in-process times; its first run is the warm-up and is dropped."""
    result = peer.bench(blob, what, names=names, repeat=repeat + 1, chunk_reads=chunk_reads)
    return tuple(float(s) for s in result["seconds"][1:])


def measure(peer: GoPeer, layer: Layer, repeat: int) -> list[Row]:
    sample = sample_names(layer)
    sample_bytes = sum(layer.sizes[name] for name in sample)
    return [
        *measure_open(peer, layer.blob, repeat),
        *measure_reads(peer, layer.blob, "readall", None, layer.content_bytes, repeat),
        *measure_common_tools(layer, repeat),
        *measure_reads(peer, layer.blob, "readsome", sample, sample_bytes, repeat),
    ]


def measure_open(peer: GoPeer, blob: Path, repeat: int) -> list[Row]:
    rows = [Row("open/go", "open", "go", "Go estargz.Open", time_go(peer, blob, "open", repeat), 0)]
    for backend in BACKENDS:
        seconds, _ = time_runs(open_run(blob, backend), repeat)
        label = f"pystargz {_backend_label(backend)}"
        rows.append(Row(f"open/pystargz-{backend}", "open", "pystargz", label, seconds, 0))
    return rows


def measure_reads(
    peer: GoPeer, blob: Path, what: BenchWhat, names: list[str] | None, count: int, repeat: int
) -> list[Row]:
    """Both Go read modes, then read_files and an extractfile loop on each backend; ``count`` bytes each."""
    rows = []
    for mode, chunk_reads, label in (("copy", False, "Go io.Copy"), ("chunk", True, "Go ReadAt per chunk")):
        seconds = time_go(peer, blob, what, repeat, names=names, chunk_reads=chunk_reads)
        rows.append(Row(f"{what}/go-{mode}", what, "go", label, seconds, count))
    for backend in BACKENDS:
        for way, make in (("read_files", read_files_run), ("extractfile", extractfile_run)):
            seconds, _ = time_runs(make(blob, backend, names), repeat, expect=count)
            label = f"pystargz {way} {_backend_label(backend)}"
            rows.append(Row(f"{what}/pystargz-{backend}-{way}", what, "pystargz", label, seconds, count))
    return rows


def measure_common_tools(layer: Layer, repeat: int) -> list[Row]:
    gzip = shutil.which("gzip")
    if gzip is None:
        raise RuntimeError("gzip is not on PATH; the common-tools baseline needs it")
    stream_bytes = gzip_output_bytes(gzip, layer.blob)
    with open(os.devnull, "wb") as devnull:
        gzip_seconds, _ = time_runs(gzip_run(gzip, layer.blob, devnull.fileno()), repeat)
    tar_seconds, tar_bytes = time_runs(tarfile_run(layer.blob), repeat)
    return [
        Row("readall/gzip", "readall", "common", "gzip -dc > /dev/null", gzip_seconds, stream_bytes),
        Row("readall/tarfile", "readall", "common", 'tarfile.open(blob, "r:gz")', tar_seconds, tar_bytes),
    ]


def _backend_label(backend: str) -> str:
    return f"{backend} ({get_backend(backend).name})"


# ---- results ----


def go_reference(rows: Sequence[Row], operation: BenchWhat) -> Row:
    """The faster Go mode: the ratios hold pystargz to the best the Go reader can do."""
    return min(
        (row for row in rows if row.tool == "go" and row.operation == operation), key=lambda r: r.median
    )


def go_ratio(rows: Sequence[Row], row: Row) -> float | None:
    """Go time / pystargz time for a pystargz row (> 1: pystargz is faster)."""
    if row.tool != "pystargz":
        return None
    return go_reference(rows, row.operation).median / row.median


def target_met(rows: Sequence[Row], key: str) -> bool:
    row = next(r for r in rows if r.key == key)
    ratio = go_ratio(rows, row)
    return ratio is not None and ratio >= TARGETS[key]


def measure_with_noise(peer: GoPeer, layer: Layer, repeat: int) -> tuple[list[Row], float | None]:
    """The rows, and the share of the machine's CPUs other processes used meanwhile.

    This machine may be shared: a share above a few percent means the figures are noisy.
    """
    return with_noise(lambda: measure(peer, layer, repeat))


def to_json(report: Report) -> dict[str, Any]:
    layer = report.layer
    return {
        "config": report.config,
        "machine": report.machine,
        "layer": {
            "tree": layer.tree,
            "tar_bytes": layer.tar_bytes,
            "blob_bytes": layer.blob_bytes,
            "build_seconds": layer.build_seconds,
            "toc_entries": layer.toc_entries,
            "regular_files": len(layer.regular),
            "content_bytes": layer.content_bytes,
            "chunks": layer.chunks,
        },
        "rows": [
            {
                "key": row.key,
                "operation": row.operation,
                "tool": row.tool,
                "label": row.label,
                "seconds": list(row.seconds),
                "median": row.median,
                "output_bytes": row.output_bytes,
                "mb_per_s": row.mb_per_s,
                "go_over_pystargz": go_ratio(report.rows, row),
                "target": TARGETS.get(row.key),
            }
            for row in report.rows
        ],
        "targets": [
            {
                "key": key,
                "target": target,
                "ratio": go_ratio(report.rows, _row(report.rows, key)),
                "met": target_met(report.rows, key),
            }
            for key, target in TARGETS.items()
        ],
    }


def _row(rows: Sequence[Row], key: str) -> Row:
    return next(row for row in rows if row.key == key)


OPERATION_TITLES: dict[BenchWhat, str] = {
    "open": "open + TOC parse",
    "readall": "read all {files} files",
    "readsome": "read {sample} random files",
}
TABLE_FORMAT = "{:<24} {:<42} {:>11} {:>7} {:>12}  {}"


def render(report: Report) -> str:
    layer, rows, machine = report.layer, report.rows, report.machine
    lines = [
        f"pystargz read benchmark: median of {report.config['repeat']} run(s) after one warm-up, in-process",
        f"layer: {layer.tree} ({'cut down, --quick' if report.config['quick'] else 'whole'}): "
        f"{len(layer.regular)} regular files, {layer.content_bytes / MB:.1f} MB of contents, "
        f"{layer.toc_entries} TOC entries, {layer.chunks} chunks",
        f"       tar {layer.tar_bytes / MB:.1f} MB -> eStargz {layer.blob_bytes / MB:.1f} MB "
        f"(Go estargz.Build, default options, GOMAXPROCS 1: {layer.build_seconds:.2f} s)",
        f"machine: {machine['cpu_count']} CPUs, native backend {machine['native_backend']}, "
        f"Python {machine['python']} ({machine['python_backend']}), {machine['go']}",
        f"         {noise_line(machine)}",
        "",
        _table_cells("operation", "implementation", "median", "MB/s", "Go/pystargz", "target"),
    ]
    for operation, title in OPERATION_TITLES.items():
        shown = title.format(files=len(layer.regular), sample=len(sample_names(layer)))
        for row in (r for r in rows if r.operation == operation):
            lines.append(_table_line(rows, row, shown))
            shown = ""
    lines += ["", *_notes(rows)]
    return "\n".join(lines)


def _table_line(rows: Sequence[Row], row: Row, title: str) -> str:
    ratio = go_ratio(rows, row)
    mb_per_s = row.mb_per_s
    target = ""
    if row.key in TARGETS:
        target = f">= {TARGETS[row.key]:.1f}x {'PASS' if target_met(rows, row.key) else 'MISS'}"
    elif row.tool == "go" and row is go_reference(rows, row.operation):
        target = "(faster Go mode: the reference)"
    elif row.tool == "common":
        target = f"(context: {row.median / _row(rows, READ_ALL_KEY).median:.1f}x pystargz's time)"
    return _table_cells(
        title,
        row.label,
        f"{row.median * 1e3:.1f} ms",
        "-" if mb_per_s is None else f"{mb_per_s:.0f}",
        "" if ratio is None else f"{ratio:.2f}x",
        target,
    )


def _table_cells(*cells: str) -> str:
    return TABLE_FORMAT.format(*cells).rstrip()


def _notes(rows: Sequence[Row]) -> list[str]:
    notes = ["Go/pystargz: the faster Go mode's time over pystargz's; > 1 means pystargz is faster."]
    for key, target in TARGETS.items():
        row = _row(rows, key)
        ratio = go_ratio(rows, row)
        verdict = "PASS" if target_met(rows, key) else "MISS"
        notes.append(
            f"target {key}: {ratio:.2f}x vs {go_reference(rows, row.operation).label} "
            f"(want >= {target:.1f}x): {verdict}"
        )
    notes.append(
        "MB/s: uncompressed bytes produced per second (gzip: the whole tar stream, tarfile: every "
        "regular file incl. the TOC)."
    )
    return notes


# ---- command line ----


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_read", description=__doc__.splitlines()[0]
    )
    add_run_options(parser, default_repeat=DEFAULT_REPEAT, quick_max_bytes=QUICK_MAX_BYTES)
    return parser.parse_args(argv)


def run(workdir: Path, *, repeat: int, quick: bool) -> Report:
    progress("building the Go peer...")
    peer = GoPeer(build_peer(workdir / "peer"))
    progress("building the layer (tar, then estargz.Build)...")
    layer = build_layer(workdir, peer, quick=quick)
    progress(f"timing ({repeat} run(s) per figure)...")
    rows, others = measure_with_noise(peer, layer, repeat)
    config = {"repeat": repeat, "quick": quick, "sample_files": SAMPLE_FILES, "sample_seed": SAMPLE_SEED}
    return Report(
        config=config, machine={**machine_facts(), "other_cpu_share": others}, layer=layer, rows=rows
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    repeat = repeat_count(args, DEFAULT_REPEAT)
    with tempfile.TemporaryDirectory(prefix="pystargz-bench-") as tmp:
        report = run(Path(tmp), repeat=repeat, quick=args.quick)
        print(render(report))
    write_json(args.json, to_json(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
