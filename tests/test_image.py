"""The merged view of an image's layers, on blobs built here (no registry): whiteouts, opaque dirs, laziness.

The property test checks the view against an independent model: layers
*extracted* one over the other into a dict, as ``docker load`` writes them to
disk (whiteouts delete, a file written over a directory replaces it), while
:class:`pystargz.image.Image` *hides* lower entries without copying anything.
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pystargz.image import Image
from tests.registry import Layer

Entries = Mapping[str, bytes | None]

BOTTOM: Entries = {
    "etc/": None,
    "etc/a": b"a from layer 0",
    "etc/b": b"b from layer 0",
    "etc/sub/": None,
    "etc/sub/x": b"x from layer 0",
    "opt/": None,
    "opt/keep": b"kept",
    "opt/drop/": None,
    "opt/drop/f": b"dropped",
    "usr/lib/": None,
    "usr/lib/z": b"hidden by an opaque dir",
    "home/": None,
    "home/u": b"under a dir that becomes a file",
    "var/data": b"untouched",
}
MIDDLE: Entries = {
    "etc/a": b"a from layer 1",
    "etc/.wh.b": b"",
    "opt/.wh.drop": b"",
    "usr/lib/": None,
    "usr/lib/.wh..wh..opq": b"",
    "usr/lib/new": b"new in layer 1",
}
TOP: Entries = {
    "etc/b": b"b again in layer 2",
    "etc/sub/.wh.x": b"",
    "home": b"home is a file now",
}
EXPECTED_FILES = {
    "etc/a": b"a from layer 1",
    "etc/b": b"b again in layer 2",
    "opt/keep": b"kept",
    "usr/lib/new": b"new in layer 1",
    "home": b"home is a file now",
    "var/data": b"untouched",
}
EXPECTED_DIRS = {"etc", "etc/sub", "opt", "usr", "usr/lib", "var"}
HIDDEN = ["etc/sub/x", "opt/drop", "opt/drop/f", "usr/lib/z", "home/u", "etc/.wh.b", ".no.prefetch.landmark"]


def image_of(*layers: Entries) -> Image:
    return Image.from_blobs([Layer.build(entries).blob for entries in layers])


@pytest.fixture
def image() -> Image:
    return image_of(BOTTOM, MIDDLE, TOP)


def test_names_respect_whiteouts_opaque_dirs_and_replacements(image: Image) -> None:
    assert set(image.getnames()) == set(EXPECTED_FILES) | EXPECTED_DIRS
    assert len(image) == len(EXPECTED_FILES) + len(EXPECTED_DIRS)
    assert [member.name for member in image] == image.getnames()


def test_files_come_from_the_top_most_layer(image: Image) -> None:
    for name, content in EXPECTED_FILES.items():
        file = image.extractfile(name)
        assert file is not None, name
        assert file.read() == content, name
    assert image.lookup("etc/a")[0].position == 1
    assert image.lookup("etc/b")[0].position == 2
    assert image.lookup("var/data")[0].position == 0
    assert image.getmember("home").isreg()
    assert image.getmember("etc/sub").isdir()
    assert image.extractfile("etc") is None


@pytest.mark.parametrize("name", HIDDEN)
def test_hidden_paths_are_not_found(image: Image, name: str) -> None:
    assert name not in image
    with pytest.raises(KeyError, match="not found in the image"):
        image.getmember(name)
    with pytest.raises(KeyError):
        image.extractfile(name)


def test_names_are_normalized(image: Image) -> None:
    assert image.getmember("./etc//a").name == "etc/a"
    assert "/opt/keep" in image


def test_a_lookup_opens_layers_only_down_to_the_answer(image: Image) -> None:
    file = image.extractfile("etc/b")
    assert file is not None
    assert file.read() == b"b again in layer 2"
    assert [layer.opened for layer in image.layers] == [False, False, True]
    assert "usr/lib/z" not in image  # the opaque dir of layer 1 ends the search
    assert [layer.opened for layer in image.layers] == [False, True, True]
    image.getnames()
    assert all(layer.opened for layer in image.layers)


def test_root_opaque_marker_hides_every_lower_layer() -> None:
    image = image_of(BOTTOM, {".wh..wh..opq": b"", "only": b"this"})
    assert image.getnames() == ["only"]
    assert "var/data" not in image


def test_whiteout_hides_only_lower_layers() -> None:
    image = image_of({"a": b"lower"}, {"a": b"same layer", ".wh.a": b""})
    file = image.extractfile("a")
    assert file is not None
    assert file.read() == b"same layer"


def test_directory_over_a_file_shows_the_directory() -> None:
    image = image_of({"p": b"a file"}, {"p/": None, "p/q": b"inside"})
    assert image.getmember("p").isdir()
    assert set(image.getnames()) == {"p", "p/q"}


def test_single_layer_and_empty_image() -> None:
    assert set(image_of({"d/": None, "d/f": b"x"}).getnames()) == {"d", "d/f"}
    empty = Image.from_blobs([])
    assert empty.getnames() == []
    assert "x" not in empty


# ---- the model: layers extracted one over another ----

PATHS = ["a", "a/b", "a/b/c", "a/d", "e", "e/f"]
Action = str  # "file", "dir", "whiteout", "opaque"


def extract(layers: list[dict[str, Action]]) -> dict[str, tuple[int, Action]]:
    """The tree after extracting each layer over the previous ones, the way image unpackers do."""
    tree: dict[str, tuple[int, Action]] = {}

    def remove(path: str, *, keep_root: bool = False) -> None:
        for name in list(tree):
            if (name == path and not keep_root) or name.startswith(path + "/") or path == "":
                del tree[name]

    for number, layer in enumerate(layers):
        for path, action in layer.items():
            if action == "whiteout":
                remove(path)
            elif action == "opaque":
                remove(path, keep_root=True)
        for path, action in layer.items():
            parts = path.split("/")
            for depth in range(1, len(parts)):  # parents become directories of this layer
                parent = "/".join(parts[:depth])
                if tree.get(parent, (0, "dir"))[1] != "dir":
                    remove(parent)
                tree[parent] = (number, "dir")
            if action != "whiteout":  # an opaque marker's directory is an entry of its layer too
                kind = "file" if action == "file" else "dir"
                if kind == "file" or tree.get(path, (0, "dir"))[1] != "dir":
                    remove(path)
                tree[path] = (number, kind)
    return tree


def layer_entries(layer: dict[str, Action], number: int) -> dict[str, bytes | None]:
    entries: dict[str, bytes | None] = {}
    for path, action in layer.items():
        parent, _, base = path.rpartition("/")
        prefix = f"{parent}/" if parent else ""
        if action == "file":
            entries[path] = f"{path} in layer {number}".encode()
        elif action == "dir":
            entries[path + "/"] = None
        elif action == "whiteout":
            entries[f"{prefix}.wh.{base}"] = b""
        else:
            entries[f"{path}/.wh..wh..opq"] = b""
    return entries


@st.composite
def layer_stacks(draw: st.DrawFn) -> list[dict[str, Action]]:
    """1-3 layers; in each, a path is absent, a file, a dir, a whiteout or an opaque dir, consistently."""
    layers = []
    for _ in range(draw(st.integers(1, 3))):
        layer: dict[str, Action] = {}
        for path in PATHS:
            parents = ["/".join(path.split("/")[:depth]) for depth in range(1, path.count("/") + 1)]
            if any(layer.get(parent) in ("file", "whiteout") for parent in parents):
                continue  # a file cannot have children in the same tar, nor can a whited-out name
            action = draw(st.sampled_from(["absent", "file", "dir", "whiteout", "opaque"]))
            if action != "absent":
                layer[path] = action
        layers.append(layer)
    return layers


@settings(max_examples=60, deadline=None)
@given(layer_stacks())
def test_merged_view_equals_layers_extracted_one_over_another(layers: list[dict[str, Action]]) -> None:
    expected = extract(layers)
    image = Image.from_blobs([Layer.build(layer_entries(layer, i)).blob for i, layer in enumerate(layers)])
    assert set(image.getnames()) == set(expected)
    for path in PATHS:
        if path not in expected:
            assert path not in image
            continue
        layer, member = image.lookup(path)
        number, kind = expected[path]
        assert member.isdir() == (kind == "dir"), path
        if kind == "file":
            assert layer.position == number, path
            file = image.extractfile(path)
            assert file is not None
            assert file.read() == f"{path} in layer {number}".encode()
