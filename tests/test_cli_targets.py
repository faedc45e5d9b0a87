"""The reading commands on every kind of TARGET: a blob URL, a registry blob, an image (merged view).

The registry is the real distribution registry of ``tests/registry.py``
(the ``registry`` fixture fails, never skips, when it cannot start).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pystargz.cli import main
from pystargz.reader import TAIL_WINDOW
from pystargz.sources.registry import Reference
from pystargz.target import _reference
from tests.httpserver import BlobServer
from tests.registry import Layer, RegistryServer

STATS = re.compile(
    r"^requests (\d+), bytes fetched (\d+), retries (\d+), cache hits (\d+), cache misses (\d+)$", re.M
)

BASE = {"etc/": None, "etc/os-release": b"ID=base\n", "etc/passwd": b"root:x:0:0\n", "usr/": None}
TOP = {"etc/": None, "etc/os-release": b"ID=top\n", "etc/.wh.passwd": b"", "usr/": None, "usr/app": b"app"}


def stats_of(stderr: str) -> tuple[int, ...]:
    match = STATS.search(stderr)
    assert match is not None, stderr
    return tuple(int(group) for group in match.groups())


@pytest.fixture(scope="module")
def layers() -> tuple[Layer, Layer]:
    return Layer.build(BASE), Layer.build(TOP, prioritized_files=["usr/app"])


@pytest.fixture(scope="module")
def image(registry: RegistryServer, layers: tuple[Layer, Layer]) -> str:
    """A two-layer image in the registry; returns its manifest digest."""
    return registry.push_image("cli/image", "v1", list(layers))


# ---- blob URLs ----


def test_cat_of_a_blob_url_prints_the_file_and_its_cost(
    layers: tuple[Layer, Layer], capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    with BlobServer() as server:
        url = server.add("/layer", layers[0].blob)
        assert main(["cat", "--stats", url, "etc/passwd"]) == 0
        captured = capsysbinary.readouterr()
        assert captured.out == b"root:x:0:0\n"
        requests, fetched, retries, hits, misses = stats_of(captured.err.decode())
        assert requests == server.count() == 1  # the whole small blob came with the tail
        assert fetched == len(layers[0].blob) <= TAIL_WINDOW
        assert (retries, hits, misses) == (0, 0, 1)


def test_ls_and_info_of_a_blob_url(layers: tuple[Layer, Layer], capsys: pytest.CaptureFixture[str]) -> None:
    with BlobServer() as server:
        url = server.add("/layer", layers[1].blob)
        assert main(["ls", "--insecure", url]) == 0
        assert "usr/app" in capsys.readouterr().out.splitlines()
        assert main(["info", "--json", url]) == 0
        facts = json.loads(capsys.readouterr().out)
        assert facts["toc_digest"] == layers[1].result.toc_digest
        assert facts["blob_size"] == len(layers[1].blob)


def test_a_missing_url_is_one_line_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    with BlobServer() as server:
        url = server.url("/nothing-here")
        assert main(["ls", url]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"pystargz: {url}: ")
    assert len(err.splitlines()) == 1


# ---- registry blobs and images ----


def test_cat_of_a_registry_blob(
    registry: RegistryServer,
    layers: tuple[Layer, Layer],
    image: str,
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    target = f"{registry.host}/cli/image@{layers[0].digest}"
    assert main(["cat", "--stats", target, "etc/passwd"]) == 0
    captured = capsysbinary.readouterr()
    assert captured.out == b"root:x:0:0\n"
    assert stats_of(captured.err.decode())[0] <= 3


def test_image_by_tag_is_the_merged_view(
    registry: RegistryServer, image: str, capsys: pytest.CaptureFixture[str]
) -> None:
    target = f"{registry.host}/cli/image:v1"
    assert main(["ls", target]) == 0
    names = capsys.readouterr().out.splitlines()
    assert "etc/os-release" in names
    assert "usr/app" in names
    assert "etc/passwd" not in names  # whited out by the top layer
    assert not any(".wh." in name or "landmark" in name for name in names)


def test_cat_of_an_image_reads_the_top_most_layer_only(
    registry: RegistryServer, image: str, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    assert main(["cat", "--stats", f"{registry.host}/cli/image:v1", "etc/os-release"]) == 0
    captured = capsysbinary.readouterr()
    assert captured.out == b"ID=top\n"
    requests, *_ = stats_of(captured.err.decode())
    assert requests == 1  # one small layer blob: its tail holds everything


def test_cat_of_a_whited_out_file_fails(
    registry: RegistryServer, image: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["cat", f"{registry.host}/cli/image:v1", "etc/passwd"]) == 1
    assert "no such member" in capsys.readouterr().err


def test_info_of_an_image_by_digest_lists_its_layers(
    registry: RegistryServer, layers: tuple[Layer, Layer], image: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["info", "--json", f"{registry.host}/cli/image@{image}"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["manifest_digest"] == image
    assert [layer["digest"] for layer in facts["layers"]] == [layer.digest for layer in layers]
    for shown, layer in zip(facts["layers"], layers, strict=True):
        assert shown["toc_digest"] == shown["annotated_toc_digest"] == layer.result.toc_digest
    assert facts["layers"][1]["prefetch_size"] > 0
    assert main(["info", f"{registry.host}/cli/image@{image}"]) == 0
    assert "layer 1" in capsys.readouterr().out


def test_extract_of_an_image_is_refused(
    registry: RegistryServer, image: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["extract", f"{registry.host}/cli/image:v1", str(tmp_path / "out")]) == 1
    assert "an image has several layers" in capsys.readouterr().err


def test_extract_of_a_registry_blob(
    registry: RegistryServer, layers: tuple[Layer, Layer], image: str, tmp_path: Path
) -> None:
    assert main(["extract", f"{registry.host}/cli/image@{layers[1].digest}", str(tmp_path)]) == 0
    assert (tmp_path / "usr" / "app").read_bytes() == b"app"


# ---- what a TARGET names ----


def test_targets_that_are_paths_stay_paths(tmp_path: Path) -> None:
    existing = tmp_path / "host:5000" / "repo:tag"
    existing.parent.mkdir()
    existing.write_bytes(b"")
    assert _reference(str(existing)) is None
    assert _reference("layer.esgz") is None
    assert _reference("/no/such/dir/layer.esgz") is None


def test_targets_that_are_references() -> None:
    assert _reference("localhost:5000/repo:v1") == Reference("localhost:5000", "repo", "v1", "")
    assert _reference("ubuntu:22.04") == Reference("docker.io", "library/ubuntu", "22.04", "")
    digest = "sha256:" + "a" * 64
    assert _reference(f"example.com/a/b@{digest}") == Reference("example.com", "a/b", "", digest)
