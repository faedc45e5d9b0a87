"""Each benchmark runs once, in its quick mode, so that none of them rots.

Only completion and the shape of the results are checked, never speed: a
busy machine must not fail the test run.  The read and build benchmarks need
the Go peer, which must build: a missing Go toolchain fails these tests, as it
fails the interop tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent

READ_ROWS = {
    "open/go",
    "open/pystargz-native",
    "open/pystargz-python",
    "readall/go-copy",
    "readall/go-chunk",
    "readall/pystargz-native-read_files",
    "readall/pystargz-native-extractfile",
    "readall/pystargz-python-read_files",
    "readall/pystargz-python-extractfile",
    "readall/gzip",
    "readall/tarfile",
    "readsome/go-copy",
    "readsome/go-chunk",
    "readsome/pystargz-native-read_files",
    "readsome/pystargz-native-extractfile",
    "readsome/pystargz-python-read_files",
    "readsome/pystargz-python-extractfile",
}

BUILD_ROWS = {
    "defaults/go-allprocs",
    "defaults/go-1proc",
    "defaults/pystargz",
    "defaults/pystargz-workers1",
    "level1/go-allprocs",
    "level1/go-1proc",
    "level1/pystargz",
}


def run_quick(module: str, tmp_path: Path, *options: str) -> dict[str, Any]:
    """Runs ``python -m benchmarks.MODULE --quick --json OUT [OPTIONS]`` and returns its report.

    A non-zero exit (for bench_build: a check failed) fails the test with the output.
    """
    out = tmp_path / f"{module}.json"
    proc = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{module}", "--quick", "--json", str(out), *options],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, f"the benchmark failed:\n{proc.stdout}\n{proc.stderr}"
    report: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return report


def timed_rows(report: dict[str, Any], expected: set[str]) -> dict[str, dict[str, Any]]:
    """The report's rows by key, checked to be exactly ``expected``, each with positive timings."""
    rows = {row["key"]: row for row in report["rows"]}
    assert set(rows) == expected
    for key, row in rows.items():
        assert row["seconds"], key
        assert all(seconds > 0 for seconds in row["seconds"]), key
        assert row["median"] > 0, key
    return rows


@pytest.mark.go
def test_bench_read_quick(tmp_path: Path) -> None:
    report = run_quick("bench_read", tmp_path)
    timed_rows(report, READ_ROWS)


@pytest.mark.go
def test_bench_build_quick(tmp_path: Path) -> None:
    report = run_quick("bench_build", tmp_path)
    for key, row in timed_rows(report, BUILD_ROWS).items():
        assert row["blob_bytes"] > 0, key
    assert {target["key"] for target in report["targets"]} == {"defaults/pystargz", "level1/pystargz"}
    assert report["checks"]
    assert all(check["ok"] for check in report["checks"]), report["checks"]


def test_bench_compress_quick(tmp_path: Path) -> None:
    report = run_quick("bench_compress", tmp_path)
    assert report["rows"]
    for row in report["rows"]:
        assert row["compressed_bytes"] > 0, row
        assert row["seconds"] > 0, row


def test_bench_remote_quick(tmp_path: Path) -> None:
    """Needs the distribution registry, as the registry tests do: a missing binary fails it."""
    png = tmp_path / "remote.png"
    report = run_quick("bench_remote", tmp_path, "--png", str(png))
    rows = {row["key"]: row for row in report["rows"]}
    assert set(rows) == {"pull", "lazy", "prefetch"}
    for key, row in rows.items():
        assert row["median"] > 0, key
        assert row["requests"] >= 1, key
        assert row["bytes_fetched"] > 0, key
    assert rows["pull"]["bytes_fetched"] == report["layer"]["blob_bytes"]
    assert rows["lazy"]["bytes_fetched"] < rows["pull"]["bytes_fetched"]
    assert len(report["targets"]) == 2
    assert all(check["ok"] for check in report["checks"]), report["checks"]
    assert png.read_bytes().startswith(b"\x89PNG")
