"""What a command-line TARGET names: a local blob, a blob URL, a registry blob, or an image.

- an existing path: a local blob;
- ``http://`` / ``https://``: a blob at that URL;
- ``HOST/REPO@sha256:…``: a blob of a registry, or an image when the digest
  names a manifest or an index (the registry is asked);
- ``HOST/REPO:TAG`` (or any other reference): the merged view of an image's layers.

A path that does not exist and does not look like a reference stays a path,
so a typo reads "no such file", not a registry error.
"""

from __future__ import annotations

import os
from dataclasses import fields

from pystargz.errors import SourceError
from pystargz.fetch import ReadStats
from pystargz.image import Image, open_image
from pystargz.reader import StargzReader, open_reader
from pystargz.sources.http import HTTPSource
from pystargz.sources.registry import Reference, RegistryClient, RegistrySource, parse_reference

Target = StargzReader | Image


def open_target(
    text: str, *, insecure: bool = False, cache_size: int | None = None, toc: str | None = None
) -> Target:
    """Opens what ``text`` names (see the module docstring); ``insecure`` allows plain HTTP and bad TLS.

    ``toc`` is the separate TOC blob (a path) of an external-TOC blob; an image has none.
    """
    if text.startswith(("http://", "https://")):
        # For a URL, --insecure can only mean "do not check the certificate": its scheme is explicit.
        source = HTTPSource(text, insecure=insecure)
        return open_reader(source, cache_size=cache_size, toc=toc)
    reference = _reference(text)
    if reference is None:
        return open_reader(text, cache_size=cache_size, toc=toc)
    if reference.digest:
        client = RegistryClient(reference.registry, insecure=insecure)
        if not client.has_manifest(reference):
            return open_reader(RegistrySource(reference, client=client), cache_size=cache_size, toc=toc)
    if toc is not None:
        raise SourceError(f"{text}: an image reference has no separate TOC blob to take")
    return open_image(reference, insecure=insecure)


def _reference(text: str) -> Reference | None:
    """The registry reference ``text`` names, or None for a local path."""
    if os.path.exists(text):
        return None
    name = text.partition("@")[0]
    has_tag = name.rfind(":") > name.rfind("/")
    if "@" not in text and not has_tag:
        return None
    return parse_reference(text)


def target_stats(target: Target) -> ReadStats:
    """What reading has cost: the reader's counters, or the sum over an image's opened layers.

    Manifest requests of an image are not counted (the registry client
    does not count them); blob requests are.
    """
    if isinstance(target, StargzReader):
        return target.stats
    opened = [layer.reader.stats for layer in target.layers if layer.opened]
    return ReadStats(*(sum(getattr(s, f.name) for s in opened) for f in fields(ReadStats)))
