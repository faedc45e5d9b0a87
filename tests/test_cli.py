"""The ``pystargz`` command: output shapes, and one clean line on stderr for bad input."""

from __future__ import annotations

import hashlib
import json
import pathlib
import subprocess
import sys

import pytest

import pystargz
from pystargz.cli import main

DATA = pathlib.Path(__file__).parent / "data"
MIXED = DATA / "mixed__default.esgz"
MIXED_CASE = json.loads((DATA / "mixed__default.json").read_text())


def run_cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "pystargz", *args], capture_output=True, check=False)


def test_ls_lists_names_in_toc_order(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ls", str(MIXED)]) == 0
    names = capsys.readouterr().out.splitlines()
    assert names[0] == ".no.prefetch.landmark"
    assert set(MIXED_CASE["files"]) <= set(names)


def test_ls_long_shows_modes_links_and_devices(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ls", "-l", str(DATA / "devices__default.esgz")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("c") and "4095,1048575" in line for line in lines)
    assert any(line.startswith("p") for line in lines)
    assert main(["ls", "-l", str(DATA / "symlinks__default.esgz")]) == 0
    assert any(line.startswith("l") and " -> " in line for line in capsys.readouterr().out.splitlines())


def test_ls_json_describes_every_member(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ls", "--json", str(MIXED)]) == 0
    members = json.loads(capsys.readouterr().out)
    by_name = {m["name"]: m for m in members}
    for name, expected in MIXED_CASE["files"].items():
        assert by_name[name]["type"] == "reg"
        assert by_name[name]["size"] == expected["size"]


def test_cat_writes_exact_bytes() -> None:
    name, expected = max(MIXED_CASE["files"].items(), key=lambda item: item[1]["size"])
    result = run_cli("cat", str(MIXED), name)
    assert result.returncode == 0
    assert "sha256:" + hashlib.sha256(result.stdout).hexdigest() == expected["sha256"]


def test_info_json_matches_the_vector(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "--json", str(DATA / "mixed__prio.esgz")]) == 0
    facts = json.loads(capsys.readouterr().out)
    recorded = json.loads((DATA / "mixed__prio.json").read_text())["toc"]
    assert facts["format"] == "estargz"
    assert facts["footer_size"] == recorded["footer_size"]
    assert facts["toc_offset"] == recorded["toc_offset"]
    assert facts["toc_digest"] == recorded["toc_digest"]
    assert facts["toc_compressed_size"] == recorded["toc_compressed_size"]
    assert facts["toc_size"] == recorded["toc_json_size"]
    assert facts["prefetch_size"] > 0


def test_info_text_names_the_legacy_format(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(DATA / "mixed__legacy.esgz")]) == 0
    out = capsys.readouterr().out
    assert "stargz" in out
    assert "47" in out


def test_extract_writes_the_files(tmp_path: pathlib.Path) -> None:
    assert main(["extract", "--filter", "tar", str(MIXED), str(tmp_path / "root")]) == 0
    for name, expected in MIXED_CASE["files"].items():
        content = (tmp_path / "root" / name).read_bytes()
        assert "sha256:" + hashlib.sha256(content).hexdigest() == expected["sha256"]


@pytest.mark.parametrize(
    ("blob", "expected"),
    [
        (lambda tmp: tmp / "missing.esgz", "cannot open"),
        (lambda tmp: _write(tmp / "short.esgz", b"\x1f\x8b"), "too small"),
        (lambda tmp: _write(tmp / "cut.esgz", MIXED.read_bytes()[:-10]), "footer"),
        (lambda tmp: _write(tmp / "ext.esgz", (DATA / "up_mixed__ext.esgz").read_bytes()), "external TOC"),
    ],
)
def test_bad_blobs_exit_1_with_one_line(tmp_path: pathlib.Path, blob: object, expected: str) -> None:
    path = blob(tmp_path)  # type: ignore[operator]
    for command in (["ls"], ["info"], ["cat"], ["extract"]):
        extra = (
            ["etc/os-release"]
            if command == ["cat"]
            else [str(tmp_path / "out")]
            if command == ["extract"]
            else []
        )
        result = run_cli(*command, str(path), *extra)
        assert result.returncode == 1
        lines = result.stderr.decode().splitlines()
        assert len(lines) == 1, lines
        assert expected in lines[0]


def test_cat_of_missing_or_non_regular_member_fails_cleanly() -> None:
    missing = run_cli("cat", str(MIXED), "no/such/file")
    assert missing.returncode == 1
    assert "no such member" in missing.stderr.decode()
    directory = run_cli("cat", str(MIXED), "etc")
    assert directory.returncode == 1
    assert "not a regular file" in directory.stderr.decode()


def test_extract_refusal_by_the_data_filter_is_one_line(tmp_path: pathlib.Path) -> None:
    result = run_cli("extract", str(MIXED), str(tmp_path / "root"))  # mixed holds a FIFO
    assert result.returncode == 1
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1
    assert "home/user/pipe" in lines[0]


def _write(path: pathlib.Path, data: bytes) -> pathlib.Path:
    path.write_bytes(data)
    return path


def test_convert_prints_what_the_blob_is(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "mixed.esgz"
    listing = tmp_path / "prio.txt"
    listing.write_text("etc/os-release\n\n")
    args = ["convert", str(DATA / "mixed.tar"), str(out), "--chunk-size", "4096", "--level", "1"]
    assert main([*args, "--prioritize", "usr/bin/app", "--prioritize-from", str(listing), "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["size"] == out.stat().st_size
    assert facts["annotations"]["containerd.io/snapshot/stargz/toc.digest"] == facts["toc_digest"]
    assert main(["info", "--json", str(out)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["toc_digest"] == facts["toc_digest"]
    assert info["prefetch_size"] > 0
    assert main(["ls", str(out)]) == 0
    names = capsys.readouterr().out.splitlines()
    assert names.index(".prefetch.landmark") > names.index("etc/os-release")


def test_convert_legacy_and_text_output(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "mixed.stargz"
    assert main(["convert", "--legacy", str(DATA / "mixed.tar"), str(out)]) == 0
    text = capsys.readouterr().out
    assert "toc digest" in text
    assert "io.containers.estargz.uncompressed-size=" in text
    assert main(["info", "--json", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["format"] == "stargz"


def test_convert_min_chunk_size_packs_small_files(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    packed, plain = tmp_path / "packed.esgz", tmp_path / "plain.esgz"
    assert main(["convert", str(DATA / "up_tree300.tar"), str(packed), "--min-chunk-size", "16384"]) == 0
    assert main(["convert", str(DATA / "up_tree300.tar"), str(plain)]) == 0
    capsys.readouterr()
    assert packed.stat().st_size < plain.stat().st_size
    with pystargz.open(packed) as reader:
        assert any(entry.inner_offset for entry in reader.toc.entries)
        assert main(["cat", str(packed), reader.getnames()[-1]]) == 0


def test_convert_refusals_are_one_line(tmp_path: pathlib.Path) -> None:
    missing = run_cli("convert", str(DATA / "mixed.tar"), str(tmp_path / "x.esgz"), "--prioritize", "nope")
    assert missing.returncode == 1
    assert len(missing.stderr.decode().splitlines()) == 1
    assert "nope" in missing.stderr.decode()
    bad_level = run_cli("convert", str(DATA / "mixed.tar"), str(tmp_path / "y.esgz"), "--level", "99")
    assert bad_level.returncode == 1
    assert len(bad_level.stderr.decode().splitlines()) == 1
