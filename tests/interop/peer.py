"""Build and drive the "live Go peer" (``tests/interop/esgzpeer``).

The peer is a small Go program of ours that calls the Go reference package
``github.com/containerd/stargz-snapshotter/estargz`` (v0.12, as packaged by
Debian in ``golang-github-containerd-stargz-snapshotter-dev``). It is built in
GOPATH mode against ``/usr/share/gocode`` so that no network access is needed.

Interop tests must *fail* when the peer cannot be built, so nothing here skips:
every problem is raised as :class:`GoPeerError`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

__all__ = ["GOCODE_ROOT", "PEER_SOURCE", "BenchWhat", "GoPeer", "GoPeerError", "build_peer"]

StrPath = str | os.PathLike[str]

#: Source of the peer program.
PEER_SOURCE = Path(__file__).resolve().parent / "esgzpeer" / "main.go"

#: GOPATH entry that holds Debian's packaged Go libraries (estargz and its
#: dependencies: go-digest, tar-split, klauspost/compress, x/sync).
GOCODE_ROOT = Path("/usr/share/gocode")

_ESTARGZ_PKG = "github.com/containerd/stargz-snapshotter/estargz"

BenchWhat = Literal["open", "readall", "readsome"]


class GoPeerError(RuntimeError):
    """The Go peer could not be built, or one of its commands failed.

    ``stderr`` holds the compiler or peer diagnostics; ``result`` the JSON the
    peer printed before failing (``verify`` prints its report, then exits 1),
    when there was one.
    """

    def __init__(
        self,
        message: str,
        *,
        cmd: Sequence[str] = (),
        returncode: int | None = None,
        stderr: str = "",
        result: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.cmd = list(cmd)
        self.returncode = returncode
        self.stderr = stderr
        self.result = result


def _go_env(gopath: Path, gocache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            # GOPATH mode: the packaged sources are laid out as a GOPATH tree,
            # and module mode would try to reach the network.
            "GO111MODULE": "off",
            "GOPATH": f"{gopath}{os.pathsep}{GOCODE_ROOT}",
            "GOCACHE": str(gocache),
            "GOFLAGS": "",
            "GOPROXY": "off",
            "GOTOOLCHAIN": "local",
            # Pure Go: no C compiler needed, and a static binary.
            "CGO_ENABLED": "0",
        }
    )
    return env


def build_peer(workdir: Path, *, go: str | None = None, timeout: float = 600.0) -> Path:
    """Compile the peer inside ``workdir`` and return the binary's path.

    ``go`` is the Go command (default: ``go`` from ``PATH``). Raises
    :class:`GoPeerError` when Go or the packaged estargz sources are missing
    or when compilation fails (with the compiler output).
    """
    go_cmd = go or shutil.which("go")
    if go_cmd is None:
        raise GoPeerError(
            "the Go toolchain ('go') is not on PATH; install Debian's golang-go "
            "(and golang-github-containerd-stargz-snapshotter-dev) to run the Go interop tests"
        )
    if not (GOCODE_ROOT / "src" / _ESTARGZ_PKG).is_dir():
        raise GoPeerError(
            f"{GOCODE_ROOT / 'src' / _ESTARGZ_PKG} not found; install Debian's "
            "golang-github-containerd-stargz-snapshotter-dev"
        )
    workdir = Path(workdir).resolve()
    gopath = workdir / "gopath"
    pkg_dir = gopath / "src" / "esgzpeer"
    pkg_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PEER_SOURCE, pkg_dir / "main.go")
    binary = workdir / "esgzpeer"
    cmd = [go_cmd, "build", "-o", str(binary), "esgzpeer"]
    try:
        proc = subprocess.run(
            cmd,
            cwd=pkg_dir,
            env=_go_env(gopath, workdir / "gocache"),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GoPeerError(f"running {' '.join(cmd)} failed: {exc}", cmd=cmd) from exc
    output = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        raise GoPeerError(
            f"building the Go peer failed (exit {proc.returncode}):\n{output}",
            cmd=cmd,
            returncode=proc.returncode,
            stderr=output,
        )
    if not binary.is_file():
        raise GoPeerError(f"go build succeeded but {binary} is missing:\n{output}", cmd=cmd)
    return binary


def _layout_args(zstdchunked: bool, chunk_size: int | None, level: int | None) -> list[str]:
    """The options ``build`` and ``append`` share: the format, the chunk size, the level."""
    args = ["--zstdchunked"] if zstdchunked else []
    if chunk_size is not None:
        args += ["--chunk-size", str(chunk_size)]
    if level is not None:
        args += ["--level", str(level)]
    return args


class GoPeer:
    """Runs the peer binary; every method returns the peer's parsed JSON."""

    def __init__(self, binary: StrPath, *, timeout: float = 600.0) -> None:
        self.binary = Path(binary)
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"GoPeer({str(self.binary)!r})"

    # -- plumbing ----------------------------------------------------------

    def _run(self, args: Sequence[str]) -> subprocess.CompletedProcess[bytes]:
        # Callers pass: command, flags, "--", positional arguments (so that
        # paths and names starting with "-" are not taken for flags).
        cmd = [str(self.binary), *args]
        try:
            return subprocess.run(cmd, capture_output=True, timeout=self.timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise GoPeerError(f"running {' '.join(cmd)} failed: {exc}", cmd=cmd) from exc

    @staticmethod
    def _parse(stdout: bytes) -> dict[str, Any] | None:
        try:
            value = json.loads(stdout)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def _json(self, args: Sequence[str], *, check: bool = True) -> dict[str, Any]:
        proc = self._run(args)
        result = self._parse(proc.stdout)
        stderr = proc.stderr.decode("utf-8", "replace").strip()
        if proc.returncode != 0 and (check or result is None):
            raise GoPeerError(
                f"esgzpeer {args[0]} failed (exit {proc.returncode}): {stderr}",
                cmd=proc.args,
                returncode=proc.returncode,
                stderr=stderr,
                result=result,
            )
        if result is None:
            raise GoPeerError(
                f"esgzpeer {args[0]} printed no JSON object: {proc.stdout[:200]!r}",
                cmd=proc.args,
                returncode=proc.returncode,
                stderr=stderr,
            )
        return result

    # -- commands ----------------------------------------------------------

    def build(
        self,
        src: StrPath,
        dst: StrPath,
        *,
        chunk_size: int | None = None,
        level: int | None = None,
        prioritized: Iterable[str] = (),
        allow_missing: bool = False,
        procs: int = 1,
        zstdchunked: bool = False,
    ) -> dict[str, Any]:
        """estargz.Build ``src`` (tar, tar.gz or tar.zst) into ``dst``.

        Returns ``toc_digest``, ``diff_id``, ``blob_digest``, ``size``,
        ``seconds`` and, with ``allow_missing``, ``missed_prioritized``.
        ``procs`` is GOMAXPROCS during the build, which changes the output.
        ``zstdchunked`` builds zstd:chunked (``level`` is then the zstd level)
        and adds ``zstd_metadata``, the manifest annotations.
        """
        args = ["build", "--procs", str(procs), *_layout_args(zstdchunked, chunk_size, level)]
        prio = list(prioritized)
        if prio:
            if any("," in p for p in prio):
                raise ValueError("prioritized file names cannot contain ',' (the peer splits on it)")
            args += ["--prioritized", ",".join(prio)]
        if allow_missing:
            args.append("--allow-missing")
        return self._json([*args, "--", os.fspath(src), os.fspath(dst)])

    def append(
        self,
        src: StrPath,
        dst: StrPath,
        *,
        lossless: bool = False,
        zstdchunked: bool = False,
        chunk_size: int | None = None,
        level: int | None = None,
    ) -> dict[str, Any]:
        """The streaming Writer: ``AppendTar`` (``AppendTarLossLess`` with ``lossless``), then Close.

        Returns ``toc_digest``, ``diff_id``, ``blob_digest`` (and ``zstd_metadata``).
        """
        args = ["append", *_layout_args(zstdchunked, chunk_size, level)]
        if lossless:
            args.append("--lossless")
        return self._json([*args, "--", os.fspath(src), os.fspath(dst)])

    def unpack(self, blob: StrPath, dst: StrPath) -> dict[str, Any]:
        """``estargz.Unpack`` into ``dst`` (zstd:chunked by its footer magic): ``size``, ``sha256``."""
        return self._json(["unpack", "--", os.fspath(blob), os.fspath(dst)])

    def tarsplit(self, tar: StrPath, dst: StrPath) -> dict[str, Any]:
        """vbatts/tar-split's JSON-lines stream of ``tar`` into ``dst``; returns ``tar_bytes``."""
        return self._json(["tarsplit", "--", os.fspath(tar), os.fspath(dst)])

    def verify(self, blob: StrPath, toc_digest: str | None = None, *, check: bool = True) -> dict[str, Any]:
        """Open ``blob``, VerifyTOC and check every chunk and file digest.

        Returns ``ok``, ``toc_digest``, ``files``, ``empty_files``, ``chunks``,
        ``bytes``, ``errors`` (and ``verify_toc_error``). A failed
        verification raises :class:`GoPeerError` (its ``result`` holds the
        report) unless ``check`` is false, in which case the report is
        returned with ``ok`` false.
        """
        args = ["verify"]
        if toc_digest is not None:
            args += ["--toc-digest", toc_digest]
        return self._json([*args, "--", os.fspath(blob)], check=check)

    def files(self, blob: StrPath) -> dict[str, Any]:
        """Every regular file Go exposes: name -> {size, sha256, type, chunks}."""
        return self._json(["files", "--", os.fspath(blob)])

    def cat(self, blob: StrPath, name: str) -> bytes:
        """The content of ``name`` read through Reader.OpenFile."""
        proc = self._run(["cat", "--", os.fspath(blob), name])
        if proc.returncode != 0:
            stderr = proc.stderr.decode("utf-8", "replace").strip()
            raise GoPeerError(
                f"esgzpeer cat failed (exit {proc.returncode}): {stderr}",
                cmd=proc.args,
                returncode=proc.returncode,
                stderr=stderr,
            )
        return proc.stdout

    def bench(
        self,
        blob: StrPath,
        what: BenchWhat,
        *,
        names: Iterable[str] | None = None,
        repeat: int = 5,
        chunk_reads: bool = False,
    ) -> dict[str, Any]:
        """Time ``repeat`` runs of open / readall / readsome inside the peer.

        Returns ``what``, ``repeat``, ``seconds`` (one per run) and
        ``median``. ``names`` lists the files for ``readsome``. By default
        files are read with io.Copy (8 KiB reads, each of which v0.12
        re-inflates from the chunk's start); ``chunk_reads`` reads each chunk
        with a single ReadAt instead.
        """
        args = ["bench", "--what", what, "--repeat", str(repeat)]
        if chunk_reads:
            args.append("--chunk-reads")
        if names is None:
            return self._json([*args, "--", os.fspath(blob)])
        with tempfile.TemporaryDirectory(prefix="esgzpeer-") as tmp:
            names_file = Path(tmp) / "names.txt"
            lines = list(names)
            if any("\n" in n or "\r" in n for n in lines):
                raise ValueError("file names with line breaks cannot be passed to bench")
            # surrogateescape: tar names that are not valid UTF-8 round-trip.
            names_file.write_bytes("".join(n + "\n" for n in lines).encode("utf-8", "surrogateescape"))
            return self._json([*args, "--names-file", str(names_file), "--", os.fspath(blob)])
