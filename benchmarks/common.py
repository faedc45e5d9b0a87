"""What the benchmarks share: the machine they ran on, how busy it was, their command-line options."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pystargz
from pystargz.compression import get_backend

MB = 1_000_000

T = TypeVar("T")


def progress(message: str) -> None:
    """A status line on stderr, so that stdout holds only the report."""
    print(message, file=sys.stderr, flush=True)


# ---- how busy the machine was ----


def busy_cpu_seconds() -> float | None:
    """CPU time every process on the machine has used since boot (Linux ``/proc/stat``); None elsewhere."""
    try:
        fields = Path("/proc/stat").read_text(encoding="ascii").split("\n", 1)[0].split()
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """CPU time of this process and the children it waited for (the Go peer, gzip)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def with_noise(work: Callable[[], T]) -> tuple[T, float | None]:
    """What ``work`` returns, and the share of the machine's CPUs other processes used meanwhile.

    None when the machine cannot tell (not Linux).
    """
    busy, own, start = busy_cpu_seconds(), own_cpu_seconds(), time.perf_counter()
    result = work()
    busy_after, wall = busy_cpu_seconds(), time.perf_counter() - start
    if busy is None or busy_after is None:
        return result, None
    others = (busy_after - busy) - (own_cpu_seconds() - own)
    return result, max(0.0, others / (wall * (os.cpu_count() or 1)))


def noise_line(machine: dict[str, Any]) -> str:
    """The report line for ``machine["other_cpu_share"]`` (from :func:`with_noise`)."""
    share = machine["other_cpu_share"]
    if share is None:
        return "other load unknown"
    return f"other processes used {share:.0%} of the CPUs while timing{' (noisy!)' if share > 0.05 else ''}"


# ---- the machine ----


def machine_facts() -> dict[str, Any]:
    go = shutil.which("go") or "go"
    go_version = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=False).stdout
    return {
        "cpu_count": os.cpu_count(),
        "native_backend": pystargz.native_backend,
        "python_backend": get_backend("python").name,
        "python": platform.python_version(),
        "go": go_version.strip(),
        "platform": platform.platform(),
    }


# ---- command line ----


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def add_run_options(parser: argparse.ArgumentParser, *, default_repeat: int, quick_max_bytes: int) -> None:
    """``--repeat N``, ``--quick`` and ``--json OUT``, as every benchmark takes them."""
    parser.add_argument(
        "--repeat",
        type=positive,
        default=None,
        help=f"timed runs per figure (default {default_repeat}; 1 with --quick)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke test: a tree cut to {quick_max_bytes >> 20} MiB of files, one run",
    )
    parser.add_argument("--json", type=Path, default=None, metavar="OUT", help="also write the results here")


def repeat_count(args: argparse.Namespace, default_repeat: int) -> int:
    """The timed runs per figure that the options of :func:`add_run_options` ask for."""
    return int(args.repeat or (1 if args.quick else default_repeat))


def write_json(out: Path | None, results: Any) -> None:
    """Writes the results to ``--json``'s file, when one was given."""
    if out is not None:
        out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
