"""An image as one file tree: the merged view of its layers, as a container runtime mounts them.

Layers stack bottom to top; a path belongs to the top-most layer that has
it.  An upper layer hides lower content three ways (the OCI image spec's
layer rules, as overlayfs applies them): a whiteout file ``DIR/.wh.NAME``
hides ``DIR/NAME`` and everything under it; an opaque marker
``DIR/.wh..wh..opq`` hides everything the lower layers have under ``DIR``;
and a non-directory at ``A`` hides lower entries under ``A/``.  Whiteouts
apply only to lower layers and are not part of the view, nor are the
eStargz landmark files at the root.

Each layer's blob is opened (its footer and TOC read) only when a lookup
reaches it: reading a file of the top layer costs that layer's TOC only.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType

import urllib3

from pystargz.cache import DEFAULT_CACHE_SIZE, ChunkCache
from pystargz.members import StargzInfo, clean_name
from pystargz.reader import StargzReader, open_reader
from pystargz.sources import SourceLike
from pystargz.sources.registry import (
    Descriptor,
    ImageManifest,
    Platform,
    Reference,
    RegistryClient,
    RegistrySource,
    parse_reference,
)
from pystargz.toc import NO_PREFETCH_LANDMARK, PREFETCH_LANDMARK

__all__ = ["Image", "ImageLayer", "open_image"]

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
# eStargz bookkeeping, not image content: runtimes (stargz-snapshotter) hide them from the root.
HIDDEN_NAMES = frozenset({PREFETCH_LANDMARK, NO_PREFETCH_LANDMARK})

LayerOpener = Callable[[], StargzReader]


@dataclass(frozen=True)
class _LayerIndex:
    """What one layer contributes to the view, and what it hides below it."""

    entries: dict[str, StargzInfo]  # every name the layer has (implicit parents too), whiteouts excluded
    whiteouts: frozenset[str]  # names hidden, with their subtrees, in lower layers
    opaque: frozenset[str]  # directories whose lower contents are hidden

    @classmethod
    def of(cls, reader: StargzReader) -> _LayerIndex:
        entries: dict[str, StargzInfo] = {}
        whiteouts: set[str] = set()
        opaque: set[str] = set()
        for member in reader:
            parent, _, base = member.name.rpartition("/")
            if member.name in HIDDEN_NAMES:
                continue
            if base == OPAQUE_MARKER:
                opaque.add(parent)
            elif base.startswith(WHITEOUT_PREFIX):
                whiteouts.add(f"{parent}/{base[len(WHITEOUT_PREFIX) :]}".lstrip("/"))
            else:
                entries[member.name] = reader.getmember(member.name)
            while parent and parent not in entries:
                entries[parent] = reader.getmember(parent)
                parent = parent.rpartition("/")[0]
        return cls(entries, frozenset(whiteouts), frozenset(opaque))

    def hides(self, name: str) -> bool:
        """Whether this layer hides ``name`` of the layers below it."""
        if name in self.whiteouts or "" in self.opaque:
            return True
        for ancestor in _ancestors(name):
            if ancestor in self.whiteouts or ancestor in self.opaque:
                return True
            entry = self.entries.get(ancestor)
            if entry is not None and not entry.isdir():
                return True
        return False


class ImageLayer:
    """One layer of an image: its manifest descriptor (if any) and its reader, opened on first use."""

    def __init__(self, opener: LayerOpener, *, position: int, descriptor: Descriptor | None = None) -> None:
        self.position = position
        self.descriptor = descriptor
        self._opener = opener
        self._lock = threading.Lock()
        self._reader: StargzReader | None = None
        self._index: _LayerIndex | None = None

    @property
    def opened(self) -> bool:
        return self._reader is not None

    @property
    def reader(self) -> StargzReader:
        """The layer's reader; the first access reads the blob's footer and TOC."""
        return self._open()[0]

    def _open(self) -> tuple[StargzReader, _LayerIndex]:
        with self._lock:
            if self._reader is None or self._index is None:
                reader = self._opener()
                self._index = _LayerIndex.of(reader)
                self._reader = reader
            return self._reader, self._index

    def close(self) -> None:
        with self._lock:
            if self._reader is not None:
                self._reader.close()

    def __repr__(self) -> str:
        what = self.descriptor.digest if self.descriptor else f"layer {self.position}"
        return f"<ImageLayer {self.position} {what}{' open' if self.opened else ''}>"


class Image:
    """The merged file tree of layers (bottom first), with tarfile's reading names.

    Build one with :func:`open_image` (a registry reference) or
    :meth:`from_blobs` (local blobs); ``layers`` are :class:`ImageLayer`,
    ``manifest`` the registry manifest and ``client`` the registry client
    (its ``stats`` count the manifest requests) when there are.  Thread-safe.
    """

    def __init__(
        self,
        openers: Sequence[LayerOpener],
        *,
        manifest: ImageManifest | None = None,
        client: RegistryClient | None = None,
        close: Callable[[], None] | None = None,
    ) -> None:
        descriptors: Sequence[Descriptor | None] = manifest.layers if manifest else [None] * len(openers)
        self.layers = tuple(
            ImageLayer(opener, position=i, descriptor=descriptor)
            for i, (opener, descriptor) in enumerate(zip(openers, descriptors, strict=True))
        )
        self.manifest = manifest
        self.client = client
        self._close_hook = close
        self._merged: dict[str, tuple[ImageLayer, StargzInfo]] | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_blobs(cls, blobs: Sequence[SourceLike]) -> Image:
        """The merged view of local blobs (paths, bytes, files or range sources), bottom layer first."""
        return cls([_opener(blob) for blob in blobs])

    # ---- lookups ----

    def lookup(self, name: str) -> tuple[ImageLayer, StargzInfo]:
        """The layer that provides ``name`` and its member there; KeyError when the view has no such path.

        Layers are opened from the top down, only as far as the answer needs.
        """
        path = clean_name(name)
        for layer in reversed(self.layers):
            _, index = layer._open()
            member = index.entries.get(path)
            if member is not None:
                return layer, member
            if index.hides(path):
                break
        raise KeyError(f"{name!r} not found in the image")

    def getmember(self, name: str) -> StargzInfo:
        return self.lookup(name)[1]

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        try:
            self.lookup(name)
        except KeyError:
            return False
        return True

    def getmembers(self) -> list[StargzInfo]:
        """Members of the whole view (every layer opened), lower layers' names first.

        A name keeps the place where it first appeared; the member is the top-most one.
        """
        return [member for _, member in self._merge().values()]

    def getnames(self) -> list[str]:
        return list(self._merge())

    def __iter__(self) -> Iterator[StargzInfo]:
        return iter(self.getmembers())

    def __len__(self) -> int:
        return len(self._merge())

    def extractfile(self, member: str | StargzInfo) -> io.BufferedReader | None:
        """A seekable binary file over ``member``, read from its layer; None for non-regular members."""
        name = member if isinstance(member, str) else member.name
        layer, info = self.lookup(name)
        return layer.reader.extractfile(info)

    def _merge(self) -> dict[str, tuple[ImageLayer, StargzInfo]]:
        """Applies the layers bottom up: each one removes what it hides, then adds its entries."""
        with self._lock:
            if self._merged is None:
                merged: dict[str, tuple[ImageLayer, StargzInfo]] = {}
                for layer in self.layers:
                    _, index = layer._open()
                    for name in [name for name in merged if index.hides(name)]:
                        del merged[name]
                    for name, member in index.entries.items():
                        merged[name] = (layer, member)
                self._merged = merged
            return self._merged

    # ---- life cycle ----

    def close(self) -> None:
        for layer in self.layers:
            layer.close()
        if self._close_hook is not None:
            self._close_hook()

    def __enter__(self) -> Image:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        where = str(self.manifest.reference) if self.manifest else "local blobs"
        return f"<Image {where} {len(self.layers)} layers>"


def open_image(
    reference: str | Reference,
    *,
    platform: str | Platform | None = None,
    insecure: bool = False,
    docker_config: str | os.PathLike[str] | None = None,
    pool: urllib3.PoolManager | None = None,
    cache_size: int | None = None,
    cache: ChunkCache | None = None,
) -> Image:
    """The merged view of a registry image (``HOST/REPO:TAG`` or ``@sha256:``) for ``platform``.

    The manifest is fetched now (through an index to this machine's
    platform, or ``platform`` such as ``"linux/arm64"``); each layer blob is
    opened lazily as a :class:`RegistrySource`, all layers sharing one
    connection pool, one set of tokens and one chunk cache: ``cache``, or a
    new one of ``cache_size`` bytes (the reader's default size when None), so
    the bound holds for the image, not for each layer.
    """
    ref = parse_reference(reference) if isinstance(reference, str) else reference
    wanted = Platform.parse(platform) if isinstance(platform, str) else platform
    client = RegistryClient(ref.registry, insecure=insecure, docker_config=docker_config, pool=pool)
    manifest = client.resolve(ref, wanted)
    shared = (
        cache if cache is not None else ChunkCache(DEFAULT_CACHE_SIZE if cache_size is None else cache_size)
    )
    openers = [_registry_opener(client, ref, layer, shared) for layer in manifest.layers]
    return Image(openers, manifest=manifest, client=client, close=None if pool else client.pool.clear)


def _registry_opener(
    client: RegistryClient, reference: Reference, layer: Descriptor, cache: ChunkCache
) -> LayerOpener:
    def open_layer() -> StargzReader:
        source = RegistrySource(reference.with_digest(layer.digest), client=client, size=layer.size)
        # The manifest's TOC digest annotation makes the reader check the TOC and every chunk it inflates.
        return open_reader(source, cache=cache, toc_digest=layer.toc_digest or None)

    return open_layer


def _opener(blob: SourceLike) -> LayerOpener:
    return lambda: open_reader(blob)


def _ancestors(name: str) -> Iterator[str]:
    """``a``, ``a/b`` for ``a/b/c``: the directories a path lies under, top first."""
    position = name.find("/")
    while position != -1:
        yield name[:position]
        position = name.find("/", position + 1)
