"""Compression benchmark: gzip members of a real layer, native and pure backends, and Go's gzip.

    python -m benchmarks.bench_compress [--repeat N] [--quick] [--levels 1,6,9] [--no-go] [--json OUT]

Tars a real directory tree (``tests/layers.py``) and cuts it as a layer
writer would: each regular file's data is one piece, so one gzip member.
Each piece list is then compressed

- by each backend's ``compress_batch`` on the calling thread (one core), and
  by ``compress_parallel`` (all cores);
- by Go's ``compress/gzip`` (one goroutine, a ``gzip.Writer`` reset per
  piece, as the Go reference's writer does), when ``go`` is on PATH;

and the table shows MB/s of input and the total compressed size against
zlib level 9 (the pure backend) and Go level 9.  A second table sweeps every
native level to show which one first matches zlib level 9's size.  Figures are
medians of N runs (Go times itself in-process); nothing is asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tests.layers import MAX_BYTES, make_tree_tar, real_tree

from benchmarks.common import busy_cpu_seconds, own_cpu_seconds, repeat_count, write_json
from pystargz.compression import Backend, compress_parallel, get_backend

DEFAULT_REPEAT = 3
DEFAULT_LEVELS = (1, 6, 9)
QUICK_MAX_BYTES = 4 << 20
BACKENDS = ("native", "python")
MODES = ("1 thread", "parallel")
MB = 1_000_000
REFERENCE_LEVEL = 9

# Compresses length-prefixed pieces (u64 LE) one gzip member each, as estargz's writer does;
# prints {"seconds": [...], "bytes": N} with each run timed in-process.
GO_SOURCE = """package main

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"os"
	"strconv"
	"time"
)

func main() {
	raw, err := os.ReadFile(os.Args[1])
	if err != nil {
		panic(err)
	}
	level, _ := strconv.Atoi(os.Args[2])
	repeat, _ := strconv.Atoi(os.Args[3])
	var pieces [][]byte
	for len(raw) > 0 {
		n := binary.LittleEndian.Uint64(raw)
		pieces = append(pieces, raw[8:8+n])
		raw = raw[8+n:]
	}
	var out bytes.Buffer
	w, err := gzip.NewWriterLevel(&out, level)
	if err != nil {
		panic(err)
	}
	seconds := []float64{}
	total := 0
	for run := 0; run < repeat; run++ {
		total = 0
		start := time.Now()
		for _, piece := range pieces {
			out.Reset()
			w.Reset(&out)
			w.Write(piece)
			w.Close()
			total += out.Len()
		}
		seconds = append(seconds, time.Since(start).Seconds())
	}
	json.NewEncoder(os.Stdout).Encode(map[string]interface{}{"seconds": seconds, "bytes": total})
}
"""


@dataclass(frozen=True)
class Row:
    """One implementation at one level: its timed runs and what it wrote."""

    key: str
    implementation: str
    mode: str
    level: int
    runs: tuple[float, ...]
    input_bytes: int
    compressed_bytes: int
    digest: str  # of the members, in order: single-thread and parallel must agree

    @property
    def seconds(self) -> float:
        return statistics.median(self.runs)

    @property
    def mb_per_s(self) -> float:
        return self.input_bytes / MB / self.seconds


# ---- the layer ----


def layer_pieces(workdir: Path, *, quick: bool) -> tuple[list[bytes], int]:
    """Each regular file's data as one piece, in tar order; and the tar's size."""
    tar_path = make_tree_tar(workdir / "tree.tar", max_bytes=QUICK_MAX_BYTES if quick else MAX_BYTES)
    pieces = []
    with tarfile.open(tar_path) as tar:
        for info in tar:
            file = tar.extractfile(info) if info.isreg() else None
            if file is not None:
                pieces.append(file.read())
    return pieces, tar_path.stat().st_size


# ---- timing ----


def time_runs(run: Callable[[], list[bytes]], repeat: int) -> tuple[tuple[float, ...], list[bytes]]:
    seconds = []
    members: list[bytes] = []
    for _ in range(repeat):
        start = time.perf_counter()
        members = run()
        seconds.append(time.perf_counter() - start)
    return tuple(seconds), members


def digest(members: Sequence[bytes]) -> str:
    sha = hashlib.sha256()
    for member in members:
        sha.update(member)
    return sha.hexdigest()[:16]


def measure_backend(
    backend: Backend, key: str, pieces: list[bytes], level: int, repeat: int, modes: Sequence[str] = MODES
) -> list[Row]:
    """``compress_batch`` on this thread ("1 thread") and ``compress_parallel`` ("parallel")."""
    size = sum(map(len, pieces))
    rows = []
    for mode in modes:
        if mode == "parallel":
            runs, members = time_runs(lambda: compress_parallel(backend, pieces, level), repeat)
        else:
            runs, members = time_runs(lambda: backend.compress_batch(pieces, level), repeat)
        total = sum(map(len, members))
        label = _label(key, backend)
        rows.append(Row(f"{key}/{mode}/{level}", label, mode, level, runs, size, total, digest(members)))
    return rows


def _label(key: str, backend: Backend) -> str:
    """The deflate each backend uses: the pure one's name is its inflate (isal), but it deflates with zlib."""
    return f"{key} ({backend.name if key == 'native' else 'stdlib zlib'})"


class GoGzip:
    """Go's compress/gzip, built from GO_SOURCE (standard library only, no network)."""

    def __init__(self, workdir: Path, pieces: list[bytes]) -> None:
        go = shutil.which("go")
        if go is None:
            raise FileNotFoundError("go is not on PATH")
        source = workdir / "gogzip" / "main.go"
        source.parent.mkdir()
        source.write_text(GO_SOURCE, encoding="utf-8")
        self.binary = workdir / "gogzip" / "gogzip"
        env = {**os.environ, "GO111MODULE": "off", "GOCACHE": str(workdir / "gocache"), "GOFLAGS": ""}
        subprocess.run([go, "build", "-o", str(self.binary), str(source)], env=env, check=True)
        self.input = workdir / "pieces.bin"
        with self.input.open("wb") as out:
            for piece in pieces:
                out.write(struct.pack("<Q", len(piece)))
                out.write(piece)
        self.size = sum(map(len, pieces))

    def measure(self, level: int, repeat: int) -> Row:
        proc = subprocess.run(
            [str(self.binary), str(self.input), str(level), str(repeat)],
            capture_output=True,
            check=True,
        )
        result = json.loads(proc.stdout)
        runs = tuple(float(s) for s in result["seconds"])
        total = int(result["bytes"])
        return Row(f"go/1 thread/{level}", "Go compress/gzip", "1 thread", level, runs, self.size, total, "")


def measure(
    pieces: list[bytes], levels: Sequence[int], repeat: int, go: GoGzip | None
) -> tuple[list[Row], list[Row]]:
    """The main rows (levels x implementations x modes), then the native level sweep (parallel)."""
    compress_parallel(get_backend("native"), pieces[:200], 1)  # warm up: the pool, the allocator
    rows = []
    for level in levels:
        for key in BACKENDS:
            backend = get_backend(key)
            if level <= backend.max_level:
                rows.extend(measure_backend(backend, key, pieces, level, repeat))
        if go is not None and level <= REFERENCE_LEVEL:
            rows.append(go.measure(level, repeat))
    native = get_backend("native")
    sweep = [
        row
        for level in range(1, native.max_level + 1)
        for row in measure_backend(native, "native", pieces, level, 1, modes=("parallel",))
    ]
    return rows, sweep


def reference_sizes(rows: Sequence[Row], pieces: list[bytes], go: GoGzip | None) -> dict[str, int]:
    """Total compressed bytes at level 9 with zlib (the pure backend) and with Go, when measured."""
    refs = {}
    zlib_row = next((r for r in rows if r.key == f"python/1 thread/{REFERENCE_LEVEL}"), None)
    if zlib_row is None:
        zlib_row = measure_backend(get_backend("python"), "python", pieces, REFERENCE_LEVEL, 1)[0]
    refs["zlib"] = zlib_row.compressed_bytes
    if go is not None:
        go_row = next((r for r in rows if r.key == f"go/1 thread/{REFERENCE_LEVEL}"), None)
        refs["go"] = (go_row or go.measure(REFERENCE_LEVEL, 1)).compressed_bytes
    return refs


# ---- results ----

TABLE = "{:<7} {:<24} {:<9} {:>8} {:>9} {:>13} {:>9} {:>9}  {}"


def render(report: dict[str, Any], rows: Sequence[Row], sweep: Sequence[Row]) -> str:
    refs = report["reference_bytes"]
    layer, machine = report["layer"], report["machine"]
    lines = [
        f"layer: {layer['tree']}: {layer['pieces']} pieces (one per regular file), "
        f"{layer['input_bytes'] / MB:.1f} MB of data (tar {layer['tar_bytes'] / MB:.1f} MB)",
        f"machine: {machine['cpu_count']} CPUs, native backend {machine['native_backend']}, "
        f"Python {machine['python']} (zlib {machine['zlib']}), {machine['go'] or 'no Go'}",
        f"         {_noise(machine['other_cpu_share'])}",
        f"median of {report['config']['repeat']} run(s); sizes are totals of all members",
        "",
        _header("median"),
    ]
    for row in rows:
        lines.append(_line(row, refs, rows))
    lines += ["", "native level sweep (parallel, one run each):"]
    lines.append(_header("time"))
    first_match = next((row.level for row in sweep if row.compressed_bytes <= refs["zlib"]), None)
    for row in sweep:
        lines.append(_line(row, refs, rows))
    lines += [
        "",
        f"smallest native level whose total is <= zlib level 9's: {first_match or 'none'}",
        "/zlib-9, /Go-9: total compressed size over that of zlib level 9 (pure backend) and Go level 9.",
        "'same' checks that compress_parallel wrote the bytes compress_batch wrote.",
    ]
    return "\n".join(lines)


def _header(time_title: str) -> str:
    return TABLE.format(
        "level", "implementation", "mode", time_title, "MB/s", "compressed", "/zlib-9", "/Go-9", ""
    ).rstrip()


def _line(row: Row, refs: dict[str, int], rows: Sequence[Row]) -> str:
    go_ratio = f"{row.compressed_bytes / refs['go']:.4f}" if "go" in refs else "-"
    same = ""
    if row.mode == "parallel":
        single = next((r for r in rows if r.key == row.key.replace("/parallel/", "/1 thread/")), None)
        if single is not None:
            same = "same" if single.digest == row.digest else "DIFFERENT BYTES"
    return TABLE.format(
        row.level,
        row.implementation,
        row.mode,
        f"{row.seconds * 1e3:.0f} ms",
        f"{row.mb_per_s:.1f}",
        f"{row.compressed_bytes:,}",
        f"{row.compressed_bytes / refs['zlib']:.4f}",
        go_ratio,
        same,
    ).rstrip()


def _noise(share: float | None) -> str:
    if share is None:
        return "other load unknown"
    return f"other processes used {share:.0%} of the CPUs while timing{' (noisy!)' if share > 0.05 else ''}"


def _row_json(row: Row) -> dict[str, Any]:
    return {**asdict(row), "seconds": row.seconds, "mb_per_s": row.mb_per_s}


# ---- command line ----


def _levels(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"levels must be comma-separated integers, not {text!r}") from None


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_compress", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--repeat",
        type=_positive,
        default=None,
        help=f"runs per figure (default {DEFAULT_REPEAT}; 1 with --quick)",
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"smoke test: {QUICK_MAX_BYTES >> 20} MiB of files, one run"
    )
    parser.add_argument(
        "--levels", type=_levels, default=DEFAULT_LEVELS, help="levels for the main table (default 1,6,9)"
    )
    parser.add_argument("--no-go", action="store_true", help="leave Go's compress/gzip out")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT", help="also write the results here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    repeat = repeat_count(args, DEFAULT_REPEAT)
    with tempfile.TemporaryDirectory(prefix="pystargz-bench-") as tmp:
        workdir = Path(tmp)
        print("tarring the tree...", file=sys.stderr, flush=True)
        pieces, tar_bytes = layer_pieces(workdir, quick=args.quick)
        go = None if args.no_go or shutil.which("go") is None else GoGzip(workdir, pieces)
        print(f"timing ({repeat} run(s) per figure)...", file=sys.stderr, flush=True)
        busy, own, start = busy_cpu_seconds(), own_cpu_seconds(), time.perf_counter()
        rows, sweep = measure(pieces, args.levels, repeat, go)
        refs = reference_sizes(rows, pieces, go)
        busy_after, wall = busy_cpu_seconds(), time.perf_counter() - start
    others = None
    if busy is not None and busy_after is not None:
        others = max(0.0, ((busy_after - busy) - (own_cpu_seconds() - own)) / (wall * (os.cpu_count() or 1)))
    go_version = ""
    if go is not None:
        go_version = subprocess.run(
            ["go", "env", "GOVERSION"], capture_output=True, text=True, check=False
        ).stdout.strip()
    report: dict[str, Any] = {
        "config": {"repeat": repeat, "quick": args.quick, "levels": list(args.levels)},
        "machine": {
            "cpu_count": os.cpu_count(),
            "native_backend": get_backend("native").name,
            "python": platform.python_version(),
            "zlib": zlib.ZLIB_RUNTIME_VERSION,
            "go": go_version,
            "other_cpu_share": others,
        },
        "layer": {
            "tree": str(real_tree()),
            "pieces": len(pieces),
            "input_bytes": sum(map(len, pieces)),
            "tar_bytes": tar_bytes,
        },
        "reference_bytes": refs,
        "rows": [_row_json(row) for row in rows],
        "sweep": [_row_json(row) for row in sweep],
    }
    print(render(report, rows, sweep))
    write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
