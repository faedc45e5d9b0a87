"""Build benchmark: pystargz.build against the Go reference's estargz.Build on a realistic layer.

    python -m benchmarks.bench_build [--repeat N] [--quick] [--json OUT]

Tars a real directory tree (``tests/layers.py``), then converts that same tar
file into an eStargz blob with

- Go's ``estargz.Build`` at its defaults (gzip level 9, 4 MiB chunks), with
  GOMAXPROCS set to the machine's CPU count (Build splits the layer into
  GOMAXPROCS parts and compresses them in parallel) and with GOMAXPROCS 1;
- Go's ``estargz.Build`` at gzip level 1, with the same two settings;
- ``pystargz.build`` at its defaults (libdeflate level 6, 4 MiB chunks) and at
  ``compression_level=1``, on all cores (``workers=None``), and at its defaults
  with ``workers=1`` for reference.

Both sides are timed in-process, without process start-up, from reading the
tar to the last byte of the blob written: Go inside the peer (``esgzpeer
build``), pystargz here.  Each figure is the median of N runs after one untimed
warm-up run; the page cache holds the tar, which was just written.  The
ratios hold pystargz to the faster of the two Go settings.  Targets are
printed as PASS / MISS, never asserted: a busy machine must not fail a
benchmark.  Untimed checks follow: every pystargz blob opens with pystargz and
with the Go reader (which verifies every chunk and the TOC digest), and
pystargz's output is the same bytes whatever its number of workers.  A failed
check makes the exit status 1: a wrong blob is a bug, not noise.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tests.interop.peer import GoPeer, build_peer
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
from pystargz.writer import DEFAULT_LEVEL as PYSTARGZ_DEFAULT_LEVEL

DEFAULT_REPEAT = 5
# --quick: one run on a tree cut to this much file content (a smoke test, not a measurement).
QUICK_MAX_BYTES = 4 << 20
GO_DEFAULT_LEVEL = 9
CHUNK_SIZE = 4 << 20  # both sides' default; neither is given a chunk size

Operation = Literal["defaults", "level1"]
Tool = Literal["go", "pystargz"]

DEFAULTS_KEY = "defaults/pystargz"
LEVEL1_KEY = "level1/pystargz"
WORKERS1_KEY = "defaults/pystargz-workers1"


@dataclass(frozen=True)
class Target:
    """Go time / pystargz time at least ``speedup``; pystargz size / Go size at most ``max_size``."""

    speedup: float
    max_size: float | None = None


TARGETS: dict[str, Target] = {
    DEFAULTS_KEY: Target(speedup=5.0, max_size=1.0),
    LEVEL1_KEY: Target(speedup=8.0),
}


@dataclass(frozen=True)
class Setting:
    """One way of building the blob: which side, which options."""

    key: str
    operation: Operation
    tool: Tool
    label: str
    level: int | None = None  # None: the side's default
    procs: int | None = None  # Go: GOMAXPROCS
    workers: int | None = None  # pystargz: compression workers (None: all cores)

    @property
    def options(self) -> dict[str, int | None]:
        if self.tool == "go":
            return {"level": GO_DEFAULT_LEVEL if self.level is None else self.level, "procs": self.procs}
        return {
            "level": PYSTARGZ_DEFAULT_LEVEL if self.level is None else self.level,
            "workers": self.workers,
        }


@dataclass(frozen=True)
class Row:
    """One setting's timed runs and the blob they wrote."""

    setting: Setting
    seconds: tuple[float, ...]
    cpu_seconds: tuple[float, ...]  # Go: the peer process's, start-up included
    blob: Path
    blob_bytes: int
    digests: tuple[str, ...]  # the blob digest of the warm-up run and of each timed run
    toc_digest: str
    input_bytes: int

    @property
    def key(self) -> str:
        return self.setting.key

    @property
    def tool(self) -> Tool:
        return self.setting.tool

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def mb_per_s(self) -> float:
        """Input tar bytes per second."""
        return self.input_bytes / MB / self.median

    @property
    def cores(self) -> float:
        """CPU time over wall time: how many cores a build kept busy."""
        return statistics.median(self.cpu_seconds) / self.median


@dataclass(frozen=True)
class Layer:
    tree: str
    tar: Path
    tar_bytes: int
    entries: int
    regular_files: int
    content_bytes: int


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Report:
    config: dict[str, Any]
    machine: dict[str, Any]
    layer: Layer
    rows: list[Row]
    checks: list[Check]


# ---- the layer and the settings ----


def make_layer(workdir: Path, *, quick: bool) -> Layer:
    tar = make_tree_tar(workdir / "tree.tar", max_bytes=QUICK_MAX_BYTES if quick else MAX_BYTES)
    with tarfile.open(tar, "r:") as archive:
        members = archive.getmembers()
    regular = [m for m in members if m.isreg()]
    warm_page_cache(tar)
    return Layer(
        tree=str(real_tree()),
        tar=tar,
        tar_bytes=tar.stat().st_size,
        entries=len(members),
        regular_files=len(regular),
        content_bytes=sum(m.size for m in regular),
    )


def warm_page_cache(path: Path) -> None:
    with path.open("rb") as file:
        while file.read(1 << 20):
            pass


def settings(cpus: int) -> list[Setting]:
    """What is timed, in order; Go with GOMAXPROCS = the CPU count and = 1, pystargz on all cores."""
    go_procs = ((f"GOMAXPROCS {cpus} (all)", "allprocs", cpus), ("GOMAXPROCS 1", "1proc", 1))
    py = PYSTARGZ_DEFAULT_LEVEL
    return [
        *(
            Setting(
                f"defaults/go-{suffix}", "defaults", "go", f"Go Build l{GO_DEFAULT_LEVEL}, {what}", procs=n
            )
            for what, suffix, n in go_procs
        ),
        Setting(DEFAULTS_KEY, "defaults", "pystargz", f"pystargz.build l{py}, all cores"),
        Setting(WORKERS1_KEY, "defaults", "pystargz", f"pystargz.build l{py}, workers=1", workers=1),
        *(
            Setting(f"level1/go-{suffix}", "level1", "go", f"Go Build l1, {what}", level=1, procs=n)
            for what, suffix, n in go_procs
        ),
        Setting(LEVEL1_KEY, "level1", "pystargz", "pystargz.build l1, all cores", level=1),
    ]


# ---- timing ----


@dataclass(frozen=True)
class Built:
    seconds: float
    cpu_seconds: float
    digest: str
    toc_digest: str
    size: int


def go_build(peer: GoPeer, tar: Path, blob: Path, setting: Setting) -> Built:
    """One Build in a fresh peer process; its time is the peer's own, without process start-up."""
    before = os.times()
    result = peer.build(tar, blob, level=setting.level, procs=setting.procs or 1)
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return Built(
        float(result["seconds"]),
        cpu,
        str(result["blob_digest"]),
        str(result["toc_digest"]),
        int(result["size"]),
    )


def pystargz_build(tar: Path, blob: Path, setting: Setting) -> Built:
    kwargs: dict[str, Any] = {"workers": setting.workers}
    if setting.level is not None:
        kwargs["compression_level"] = setting.level
    cpu, start = time.process_time(), time.perf_counter()
    result = pystargz.build(tar, blob, **kwargs)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return Built(seconds, cpu, result.digest, result.toc_digest, result.size)


def time_builds(build: Callable[[], Built], repeat: int) -> list[Built]:
    """One untimed warm-up build, then ``repeat`` timed ones; the warm-up comes first in the list."""
    return [build() for _ in range(repeat + 1)]


def measure_setting(peer: GoPeer, layer: Layer, workdir: Path, setting: Setting, repeat: int) -> Row:
    blob = workdir / (setting.key.replace("/", "-") + ".esgz")
    if setting.tool == "go":
        builds = time_builds(lambda: go_build(peer, layer.tar, blob, setting), repeat)
    else:
        builds = time_builds(lambda: pystargz_build(layer.tar, blob, setting), repeat)
    timed = builds[1:]
    last = builds[-1]
    if blob.stat().st_size != last.size:
        raise RuntimeError(
            f"{setting.key}: the build reported {last.size} bytes, {blob} has {blob.stat().st_size}"
        )
    return Row(
        setting=setting,
        seconds=tuple(b.seconds for b in timed),
        cpu_seconds=tuple(b.cpu_seconds for b in timed),
        blob=blob,
        blob_bytes=last.size,
        digests=tuple(b.digest for b in builds),
        toc_digest=last.toc_digest,
        input_bytes=layer.tar_bytes,
    )


def measure(peer: GoPeer, layer: Layer, workdir: Path, repeat: int) -> list[Row]:
    rows = []
    for setting in settings(os.cpu_count() or 1):
        progress(f"  {setting.key}...")
        rows.append(measure_setting(peer, layer, workdir, setting, repeat))
    return rows


# ---- checks (untimed) ----


def check(peer: GoPeer, rows: Sequence[Row]) -> list[Check]:
    checks: list[Check] = []
    for row in (r for r in rows if r.tool == "pystargz"):
        with pystargz.open(row.blob) as reader:
            opened = reader.toc_digest
        checks.append(
            Check(
                f"{row.key}: pystargz.open(blob).toc_digest == BuildResult.toc_digest",
                opened == row.toc_digest,
                f"{_short(opened)} vs {_short(row.toc_digest)}",
            )
        )
        verified = peer.verify(row.blob, toc_digest=row.toc_digest, check=False)
        errors = verified.get("errors") or []
        checks.append(
            Check(
                f"{row.key}: Go peer verifies the blob (TOC digest, every chunk and file)",
                bool(verified.get("ok")),
                f"{verified.get('files')} files, {verified.get('chunks')} chunks"
                + (f"; errors: {errors[:3]}" if errors else ""),
            )
        )
    for row in rows:
        if row.tool == "pystargz":
            checks.append(
                Check(
                    f"{row.key}: every run wrote the same bytes",
                    len(set(row.digests)) == 1,
                    f"{len(set(row.digests))} distinct digest(s) over {len(row.digests)} runs",
                )
            )
    one, every = _row(rows, WORKERS1_KEY), _row(rows, DEFAULTS_KEY)
    checks.append(
        Check(
            "deterministic: workers=1 and workers=None give the same blob",
            one.digests[-1] == every.digests[-1],
            f"{_short(one.digests[-1])} vs {_short(every.digests[-1])}",
        )
    )
    return checks


def _short(digest: str) -> str:
    return digest[: len("sha256:") + 12]


# ---- results ----


def go_reference(rows: Sequence[Row], operation: Operation) -> Row:
    """The faster Go setting: the ratios hold pystargz to the best Go's Build does here."""
    return min(
        (r for r in rows if r.tool == "go" and r.setting.operation == operation), key=lambda r: r.median
    )


def speedup(rows: Sequence[Row], row: Row) -> float | None:
    """Go time / pystargz time for a pystargz row (> 1: pystargz is faster)."""
    if row.tool != "pystargz":
        return None
    return go_reference(rows, row.setting.operation).median / row.median


def size_ratio(rows: Sequence[Row], row: Row) -> float | None:
    """pystargz blob size / Go blob size for a pystargz row (<= 1: no larger)."""
    if row.tool != "pystargz":
        return None
    return row.blob_bytes / go_reference(rows, row.setting.operation).blob_bytes


def target_met(rows: Sequence[Row], key: str) -> bool:
    target, row = TARGETS[key], _row(rows, key)
    fast = speedup(rows, row)
    size = size_ratio(rows, row)
    if fast is None or size is None or fast < target.speedup:
        return False
    return target.max_size is None or size <= target.max_size


def _row(rows: Sequence[Row], key: str) -> Row:
    return next(row for row in rows if row.key == key)


def to_json(report: Report) -> dict[str, Any]:
    layer, rows = report.layer, report.rows
    return {
        "config": report.config,
        "machine": report.machine,
        "layer": {
            "tree": layer.tree,
            "tar_bytes": layer.tar_bytes,
            "entries": layer.entries,
            "regular_files": layer.regular_files,
            "content_bytes": layer.content_bytes,
        },
        "rows": [
            {
                "key": row.key,
                "operation": row.setting.operation,
                "tool": row.tool,
                "label": row.setting.label,
                "options": row.setting.options,
                "seconds": list(row.seconds),
                "median": row.median,
                "cpu_seconds": list(row.cpu_seconds),
                "cores": row.cores,
                "mb_per_s": row.mb_per_s,
                "blob_bytes": row.blob_bytes,
                "blob_digest": row.digests[-1],
                "toc_digest": row.toc_digest,
                "go_over_pystargz": speedup(rows, row),
                "size_over_go": size_ratio(rows, row),
            }
            for row in rows
        ],
        "targets": [
            {
                "key": key,
                "speedup": target.speedup,
                "max_size": target.max_size,
                "reference": go_reference(rows, _row(rows, key).setting.operation).key,
                "go_over_pystargz": speedup(rows, _row(rows, key)),
                "size_over_go": size_ratio(rows, _row(rows, key)),
                "met": target_met(rows, key),
            }
            for key, target in TARGETS.items()
        ],
        "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in report.checks],
    }


OPERATION_TITLES: dict[Operation, str] = {
    "defaults": "defaults",
    "level1": "gzip level 1",
}
TABLE_FORMAT = "{:<20} {:<31} {:>8} {:>8} {:>8} {:>5} {:>5} {:>11} {:>7}  {}"


def render(report: Report) -> str:
    layer, rows, machine = report.layer, report.rows, report.machine
    lines = [
        f"pystargz build benchmark: median of {report.config['repeat']} run(s) after one warm-up, in-process",
        f"layer: {layer.tree} ({'cut down, --quick' if report.config['quick'] else 'whole'}): "
        f"tar {layer.tar_bytes / MB:.1f} MB, {layer.entries} entries, {layer.regular_files} regular files "
        f"({layer.content_bytes / MB:.1f} MB); 4 MiB chunks on both sides",
        f"machine: {machine['cpu_count']} CPUs, native backend {machine['native_backend']}, "
        f"Python {machine['python']}, {machine['go']}",
        f"         {noise_line(machine)}",
        "",
        _table_cells(
            "build",
            "implementation",
            "median",
            "CPU",
            "blob MB",
            "MB/s",
            "cores",
            "Go/pystargz",
            "size/Go",
            "target",
        ),
    ]
    for operation, title in OPERATION_TITLES.items():
        shown = title
        for row in (r for r in rows if r.setting.operation == operation):
            lines.append(_table_line(rows, row, shown))
            shown = ""
    lines += ["", *_notes(rows), "", *(_check_line(c) for c in report.checks)]
    return "\n".join(lines)


def _table_line(rows: Sequence[Row], row: Row, title: str) -> str:
    fast, size = speedup(rows, row), size_ratio(rows, row)
    target = ""
    if row.key in TARGETS:
        target = f"{_want(TARGETS[row.key])} {'PASS' if target_met(rows, row.key) else 'MISS'}"
    elif row.tool == "go" and row is go_reference(rows, row.setting.operation):
        target = "(faster Go setting: the reference)"
    return _table_cells(
        title,
        row.setting.label,
        f"{row.median * 1e3:.0f} ms",
        f"{statistics.median(row.cpu_seconds) * 1e3:.0f} ms",
        f"{row.blob_bytes / MB:.3f}",
        f"{row.mb_per_s:.0f}",
        f"{row.cores:.1f}",
        "" if fast is None else f"{fast:.2f}x",
        "" if size is None else f"{size:.4f}",
        target,
    )


def _want(target: Target) -> str:
    size = "" if target.max_size is None else f", size <= {target.max_size:g}"
    return f">= {target.speedup:.1f}x{size}"


def _table_cells(*cells: str) -> str:
    return TABLE_FORMAT.format(*cells).rstrip()


def _notes(rows: Sequence[Row]) -> list[str]:
    notes = [
        "Go/pystargz: the faster Go setting's time over pystargz's (> 1: pystargz is faster);",
        "size/Go: pystargz's blob size over that Go setting's (<= 1: no larger).",
        "CPU: median CPU time of the runs, all threads (Go's includes its process start); on a busy machine",
        "the wall-time ratios shrink toward the CPU-time ratios. MB/s: input tar bytes per second;",
        "cores: CPU time over wall time.",
    ]
    for key, target in TARGETS.items():
        row = _row(rows, key)
        reference = go_reference(rows, row.setting.operation)
        notes.append(
            f"target {key}: {speedup(rows, row):.2f}x, size {size_ratio(rows, row):.4f} vs "
            f"{reference.setting.label} (want {_want(target)}): {'PASS' if target_met(rows, key) else 'MISS'}"
        )
    return notes


def _check_line(check: Check) -> str:
    return f"check {'OK  ' if check.ok else 'FAIL'} {check.name} ({check.detail})"


# ---- command line ----


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_build", description=__doc__.splitlines()[0]
    )
    add_run_options(parser, default_repeat=DEFAULT_REPEAT, quick_max_bytes=QUICK_MAX_BYTES)
    return parser.parse_args(argv)


def run(workdir: Path, *, repeat: int, quick: bool) -> Report:
    progress("building the Go peer...")
    peer = GoPeer(build_peer(workdir / "peer"))
    progress("making the layer tar...")
    layer = make_layer(workdir, quick=quick)
    progress(f"timing ({repeat} run(s) per figure, after a warm-up)...")
    rows, others = with_noise(lambda: measure(peer, layer, workdir, repeat))
    progress("checking the blobs (untimed)...")
    checks = check(peer, rows)
    config = {"repeat": repeat, "quick": quick, "chunk_size": CHUNK_SIZE}
    return Report(
        config=config,
        machine={**machine_facts(), "other_cpu_share": others},
        layer=layer,
        rows=rows,
        checks=checks,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    repeat = repeat_count(args, DEFAULT_REPEAT)
    with tempfile.TemporaryDirectory(prefix="pystargz-bench-") as tmp:
        report = run(Path(tmp), repeat=repeat, quick=args.quick)
        print(render(report))
    write_json(args.json, to_json(report))
    return 0 if all(c.ok for c in report.checks) else 1


if __name__ == "__main__":
    sys.exit(main())
