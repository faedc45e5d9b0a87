"""OCI distribution registries: image references, manifests, and blobs as range sources.

A layer in a registry is the blob ``/v2/<repository>/blobs/<digest>``, which
registries serve with ``Range`` support (often by redirecting to blob
storage), so a :class:`RegistrySource` is an HTTP source on that URL with the
registry's authentication.  An image reference resolves through the
manifest API: an OCI index or Docker manifest list names one manifest per
platform, and the manifest lists the layers with their annotations
(the eStargz TOC digest among them).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform as host_platform
import re
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NoReturn
from urllib.parse import quote

import urllib3

from pystargz.errors import InternalError, SourceError
from pystargz.sources.auth import RegistryAuthenticator, load_credentials
from pystargz.sources.base import SourceStats, json_object
from pystargz.sources.http import HTTPSource
from pystargz.writer import ANNOTATION_TOC_DIGEST, ANNOTATION_UNCOMPRESSED_SIZE

__all__ = [
    "Descriptor",
    "ImageManifest",
    "Platform",
    "Reference",
    "RegistryClient",
    "RegistrySource",
    "fetch_manifest",
    "parse_reference",
]

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
DOCKER_HUB_NAMESPACE = "library"
DEFAULT_TAG = "latest"
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
MANIFEST_ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST))
# containerd's bound: a manifest is metadata, a bigger one is a mistake or an attack.
MAX_MANIFEST_SIZE = 4 << 20
MAX_INDEX_DEPTH = 4
# Answers to "HEAD manifests/<digest>" that mean "that digest is not a manifest here".
NOT_A_MANIFEST = (400, 404, 500)
REQUEST_TIMEOUT = urllib3.Timeout(connect=10.0, read=60.0)
REQUEST_RETRIES = urllib3.Retry(total=3, backoff_factor=0.2, status_forcelist=(502, 503, 504))

_DOMAIN = re.compile(
    r"^(?:\[[0-9a-fA-F:]+\]|[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*)"
    r"(?::[0-9]+)?$"
)
_PATH_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_HEX_DIGESTS = {"sha256": 64, "sha512": 128}
# uname -m / platform.machine() to OCI architecture and variant.
_MACHINES = {
    "x86_64": ("amd64", ""),
    "amd64": ("amd64", ""),
    "aarch64": ("arm64", ""),
    "arm64": ("arm64", ""),
    "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "i386": ("386", ""),
    "i686": ("386", ""),
    "ppc64le": ("ppc64le", ""),
    "s390x": ("s390x", ""),
    "riscv64": ("riscv64", ""),
}


# ---- references ----


@dataclass(frozen=True)
class Reference:
    """``registry/repository`` plus a tag or a digest (``digest`` wins when both are given)."""

    registry: str
    repository: str
    tag: str = ""
    digest: str = ""

    @property
    def api_host(self) -> str:
        """The host the API lives on (Docker Hub's API is not at docker.io)."""
        return api_host(self.registry)

    @property
    def manifest_reference(self) -> str:
        return self.digest or self.tag or DEFAULT_TAG

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.registry, self.repository, "", digest)

    def __str__(self) -> str:
        tag = f":{self.tag}" if self.tag else ""
        digest = f"@{self.digest}" if self.digest else ""
        return f"{self.registry}/{self.repository}{tag}{digest}"


def parse_reference(text: str) -> Reference:
    """Parses ``[HOST[:PORT]/]REPO[:TAG][@DIGEST]`` as Docker does.

    The first component is a registry host when it has a dot, a port or an
    upper-case letter, or is ``localhost``; otherwise the reference is on Docker Hub (``docker.io``),
    where one-component names live under ``library/``.  Without a tag or a
    digest the tag is ``latest``.
    """
    rest, _, digest = text.partition("@")
    name, tag = rest, ""
    colon = rest.rfind(":")
    if colon > rest.rfind("/"):
        name, tag = rest[:colon], rest[colon + 1 :]
    first, slash, remainder = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        registry, repository = first, remainder
    else:
        registry, repository = DOCKER_HUB, name
    if registry in ("index.docker.io", DOCKER_HUB_API):
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in repository:
        repository = f"{DOCKER_HUB_NAMESPACE}/{repository}"
    _check_reference(text, registry, repository, tag, digest)
    return Reference(registry, repository, tag or ("" if digest else DEFAULT_TAG), digest)


def api_host(registry: str) -> str:
    return DOCKER_HUB_API if registry == DOCKER_HUB else registry


def _check_reference(text: str, registry: str, repository: str, tag: str, digest: str) -> None:
    if not _DOMAIN.match(registry):
        raise SourceError(f"{text!r} is not an image reference: bad registry host {registry!r}")
    if not repository or not all(_PATH_COMPONENT.match(part) for part in repository.split("/")):
        raise SourceError(
            f"{text!r} is not an image reference: the repository {repository!r} must be "
            "lower-case components ([a-z0-9] with . _ - separators) joined by /"
        )
    if tag and not _TAG.match(tag):
        raise SourceError(f"{text!r} is not an image reference: bad tag {tag!r}")
    if digest:
        check_digest(digest, f"the reference {text!r}")


def check_digest(digest: str, where: str) -> None:
    """A well-formed ``algorithm:hex`` digest of an algorithm pystargz can verify."""
    algorithm, _, value = digest.partition(":")
    if len(value) != _HEX_DIGESTS.get(algorithm) or value.strip("0123456789abcdef"):
        raise SourceError(f"{where}: {digest!r} is not a sha256 or sha512 digest")


def _digest_of(data: bytes, algorithm: str) -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def is_plain_http_allowed(registry: str, insecure: bool) -> bool:
    """Plain HTTP only for a loopback registry or when the caller asked for it."""
    host = registry.rsplit(":", 1)[0] if not registry.endswith("]") else registry
    return insecure or host.lower() in LOOPBACK_HOSTS


# ---- platforms and descriptors ----


@dataclass(frozen=True)
class Platform:
    """An OCI platform: ``os/architecture[/variant]``."""

    os: str
    architecture: str
    variant: str = ""

    @classmethod
    def parse(cls, text: str) -> Platform:
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise SourceError(f"{text!r} is not a platform: expected os/architecture[/variant]")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else "")

    @classmethod
    def current(cls) -> Platform:
        """This machine as an image platform (Linux images on other systems too, as Docker does)."""
        machine = host_platform.machine().lower()
        architecture, variant = _MACHINES.get(machine, (machine, ""))
        system = "windows" if sys.platform == "win32" else "linux"
        return cls(system, architecture, variant)

    def matches(self, other: Platform) -> bool:
        """Same os and architecture; variants compare only when this platform names one."""
        if (self.os, self.architecture) != (other.os, other.architecture):
            return False
        return not self.variant or self.variant == other.variant

    def __str__(self) -> str:
        return "/".join(part for part in (self.os, self.architecture, self.variant) if part)


@dataclass(frozen=True)
class Descriptor:
    """A content descriptor of a manifest: a layer, a config, or an index entry."""

    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)
    platform: Platform | None = None

    @property
    def toc_digest(self) -> str | None:
        """The eStargz TOC digest annotation, None for layers that are not eStargz."""
        return self.annotations.get(ANNOTATION_TOC_DIGEST)

    @property
    def uncompressed_size(self) -> int | None:
        value = self.annotations.get(ANNOTATION_UNCOMPRESSED_SIZE)
        return int(value) if value is not None and value.isdigit() else None


@dataclass(frozen=True)
class ImageManifest:
    """One platform's image manifest: the reference asked for, the manifest's digest, config and layers.

    ``layers`` are bottom first; ``platform`` is the index entry's platform
    when the reference named an index, None when it named the manifest itself.
    """

    reference: Reference
    digest: str
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    annotations: Mapping[str, str]
    platform: Platform | None = None


# ---- the registry API ----


class RegistryClient:
    """The distribution API of one registry host, with its authentication and connection pool."""

    def __init__(
        self,
        registry: str,
        *,
        insecure: bool = False,
        docker_config: str | os.PathLike[str] | None = None,
        pool: urllib3.PoolManager | None = None,
    ) -> None:
        self.registry = registry
        self.api_host = api_host(registry)
        plain = is_plain_http_allowed(self.api_host, insecure)
        self.base_url = f"{'http' if plain else 'https'}://{self.api_host}"
        self.pool = pool or urllib3.PoolManager(
            num_pools=16, maxsize=16, retries=REQUEST_RETRIES, timeout=REQUEST_TIMEOUT
        )
        self._lock = threading.Lock()
        self._requests = 0
        self._bytes = 0
        self.authenticator = RegistryAuthenticator(
            self.api_host,
            credentials=lambda: load_credentials(registry, docker_config),
            pool=self.pool,
            allow_plain_http=plain,
        )

    @property
    def stats(self) -> SourceStats:
        """What the manifest API has cost: manifest requests (and HEADs), token fetches, manifest bytes.

        Blob reads are counted by each :class:`RegistrySource`.
        """
        with self._lock:
            requests, received = self._requests, self._bytes
        return SourceStats(requests + self.authenticator.requests, received, 0)

    def blob_url(self, repository: str, digest: str) -> str:
        return f"{self.base_url}/v2/{repository}/blobs/{quote(digest, safe=':')}"

    def manifest_url(self, repository: str, reference: str) -> str:
        return f"{self.base_url}/v2/{repository}/manifests/{quote(reference, safe=':')}"

    def get(
        self,
        url: str,
        what: str,
        *,
        headers: Mapping[str, str] | None = None,
        method: str = "GET",
        allow: tuple[int, ...] = (),
    ) -> urllib3.BaseHTTPResponse:
        """One request with the registry's auth (a 401 challenge answered, then retried once).

        The response is returned unread (``preload_content=False``) so the
        caller bounds how much it reads; statuses other than 2xx and
        ``allow`` raise :class:`SourceError` naming ``what``.
        """
        for attempt in range(2):
            sent = {**(headers or {}), **self.authenticator.headers(url)}
            with self._lock:
                self._requests += 1
            try:
                response = self.pool.request(method, url, headers=sent, preload_content=False, redirect=True)
            except urllib3.exceptions.HTTPError as exc:
                raise SourceError(f"{what}: cannot reach {self.base_url}: {exc}{self._https_hint()}") from exc
            if response.status == 401 and attempt == 0:
                response.drain_conn()
                if self.authenticator.challenge(url, response.headers):
                    continue
                self._fail(response, what)
            if 200 <= response.status < 300 or response.status in allow:
                return response
            self._fail(response, what)
        raise InternalError(f"{what}: the request loop of {url} ended without an answer")

    def _https_hint(self) -> str:
        if not self.base_url.startswith("https:"):
            return ""
        return (
            f" (pystargz speaks HTTPS to {self.api_host}; if that registry serves plain HTTP, "
            "pass insecure=True, or --insecure on the command line)"
        )

    def _fail(self, response: urllib3.BaseHTTPResponse, what: str) -> NoReturn:
        detail = _registry_errors(response)
        response.release_conn()
        if response.status == 401:
            raise SourceError(
                f"{what}: the registry {self.registry} refused access {self.authenticator.identity()} "
                f"(HTTP 401){detail}"
            )
        if response.status == 404:
            raise SourceError(f"{what}: not found in the registry {self.registry} (HTTP 404){detail}")
        raise SourceError(f"{what}: the registry {self.registry} answered HTTP {response.status}{detail}")

    def fetch_manifest(self, reference: Reference) -> tuple[str, bytes, str]:
        """``(media type, body, digest)`` of a manifest; a digest reference is verified."""
        url = self.manifest_url(reference.repository, reference.manifest_reference)
        response = self.get(url, f"manifest {reference}", headers={"Accept": MANIFEST_ACCEPT})
        try:
            body = response.read(MAX_MANIFEST_SIZE + 1)
        except urllib3.exceptions.HTTPError as exc:
            raise SourceError(f"manifest {reference}: the download failed: {exc}") from exc
        finally:
            response.release_conn()
        with self._lock:
            self._bytes += len(body)
        if len(body) > MAX_MANIFEST_SIZE:
            raise SourceError(f"manifest {reference}: larger than {MAX_MANIFEST_SIZE} bytes")
        algorithm = (reference.digest or "sha256:").partition(":")[0]
        digest = _digest_of(body, algorithm)
        if reference.digest and digest != reference.digest:
            raise SourceError(
                f"manifest {reference}: the registry sent a manifest whose digest is {digest}, "
                "not the one asked for"
            )
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        return media_type, body, digest

    def has_manifest(self, reference: Reference) -> bool:
        """Whether a manifest (image or index) exists under this reference, as opposed to a plain blob.

        "No" is a 404, or the 400 or 500 that some registries (distribution
        2.8) answer when the digest names a blob that does not parse as a
        manifest; a refusal or a network failure is raised.
        """
        url = self.manifest_url(reference.repository, reference.manifest_reference)
        what = f"manifest {reference}"
        response = self.get(
            url, what, headers={"Accept": MANIFEST_ACCEPT}, method="HEAD", allow=NOT_A_MANIFEST
        )
        response.release_conn()
        return response.status not in NOT_A_MANIFEST

    def resolve(self, reference: Reference, platform: Platform | None = None) -> ImageManifest:
        """The image manifest of ``reference`` for ``platform`` (default: this machine), through indexes."""
        wanted = platform or Platform.current()
        current, chosen_platform = reference, None
        for _ in range(MAX_INDEX_DEPTH):
            media_type, body, digest = self.fetch_manifest(current)
            document = json_object(body, f"manifest {current}")
            media_type = _media_type(document, media_type, current)
            if media_type in MANIFEST_TYPES:
                return _image_manifest(reference, current, digest, media_type, document, chosen_platform)
            entry = _select_platform(_index_entries(document, current), wanted, current)
            current, chosen_platform = reference.with_digest(entry.digest), entry.platform
        raise SourceError(f"manifest {reference}: indexes nested more than {MAX_INDEX_DEPTH} deep")


def fetch_manifest(
    reference: str | Reference,
    *,
    platform: str | Platform | None = None,
    insecure: bool = False,
    docker_config: str | os.PathLike[str] | None = None,
    pool: urllib3.PoolManager | None = None,
) -> ImageManifest:
    """The image manifest of an image reference, for ``platform`` (default: this machine's)."""
    ref = parse_reference(reference) if isinstance(reference, str) else reference
    wanted = Platform.parse(platform) if isinstance(platform, str) else platform
    client = RegistryClient(ref.registry, insecure=insecure, docker_config=docker_config, pool=pool)
    return client.resolve(ref, wanted)


# ---- blobs ----


class RegistrySource(HTTPSource):
    """A blob of a registry (``HOST[:PORT]/REPO@sha256:…``) as a :class:`RangeSource`.

    Authentication follows the registry's challenges with the Docker
    config's credentials; plain HTTP is used only for a loopback registry or
    with ``insecure=True``, HTTPS otherwise.  ``client`` shares one registry
    connection and its tokens between the layers of an image; ``size`` (from
    the manifest) saves the request that would learn it.
    """

    def __init__(
        self,
        ref_or_blob: str | Reference,
        *,
        insecure: bool = False,
        docker_config: str | os.PathLike[str] | None = None,
        pool: urllib3.PoolManager | None = None,
        client: RegistryClient | None = None,
        size: int | None = None,
    ) -> None:
        reference = parse_reference(ref_or_blob) if isinstance(ref_or_blob, str) else ref_or_blob
        if not reference.digest:
            raise SourceError(
                f"{ref_or_blob}: a blob is named by digest (HOST/REPO@sha256:...), not by tag; "
                "open a tagged image with pystargz.image.open_image"
            )
        self.reference = reference
        self.client = client or RegistryClient(
            reference.registry, insecure=insecure, docker_config=docker_config, pool=pool
        )
        super().__init__(
            self.client.blob_url(reference.repository, reference.digest),
            authenticator=self.client.authenticator,
            pool=self.client.pool,
            size=size,
        )
        # A client made here made its pool too: close() must clear it, as for any source's own pool.
        self._own_pool = client is None and pool is None

    def __repr__(self) -> str:
        return f"RegistrySource({str(self.reference)!r})"


# ---- manifest documents ----


def _media_type(document: Mapping[str, object], header: str, reference: Reference) -> str:
    """The document's own mediaType, else the Content-Type; an OCI manifest may carry neither."""
    declared = document.get("mediaType")
    media_type = declared if isinstance(declared, str) and declared else header
    if media_type in INDEX_TYPES or media_type in MANIFEST_TYPES:
        return media_type
    if "manifests" in document:
        return OCI_INDEX
    if "layers" in document and "config" in document:
        return OCI_MANIFEST
    raise SourceError(
        f"manifest {reference}: unsupported media type {media_type or '(none)'!r} "
        "(pystargz reads OCI and Docker v2 manifests and indexes)"
    )


def _descriptor(value: object, reference: Reference, where: str) -> Descriptor:
    if not isinstance(value, dict):
        raise SourceError(f"manifest {reference}: {where} is not a descriptor object")
    media_type, digest, size = value.get("mediaType", ""), value.get("digest"), value.get("size")
    annotations = value.get("annotations") or {}
    if not isinstance(media_type, str) or not isinstance(digest, str):
        raise SourceError(f"manifest {reference}: {where} has no string mediaType and digest")
    check_digest(digest, f"manifest {reference}, {where}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise SourceError(f"manifest {reference}: {where} has no valid size")
    if not isinstance(annotations, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()
    ):
        raise SourceError(f"manifest {reference}: {where} has annotations that are not strings")
    return Descriptor(
        media_type, digest, size, dict(annotations), _platform(value.get("platform"), reference)
    )


def _platform(value: object, reference: Reference) -> Platform | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise SourceError(f"manifest {reference}: a platform is not an object")
    os_name, architecture, variant = value.get("os"), value.get("architecture"), value.get("variant", "")
    if not isinstance(os_name, str) or not isinstance(architecture, str) or not isinstance(variant, str):
        raise SourceError(f"manifest {reference}: a platform lacks os or architecture")
    return Platform(os_name, architecture, variant)


def _descriptor_list(document: Mapping[str, object], key: str, reference: Reference) -> list[Descriptor]:
    values = document.get(key)
    if not isinstance(values, list):
        raise SourceError(f"manifest {reference}: '{key}' is not a list")
    return [_descriptor(value, reference, f"{key}[{i}]") for i, value in enumerate(values)]


def _index_entries(document: Mapping[str, object], reference: Reference) -> list[Descriptor]:
    return _descriptor_list(document, "manifests", reference)


def _select_platform(entries: list[Descriptor], wanted: Platform, reference: Reference) -> Descriptor:
    """The first entry for ``wanted``; an exact variant match is preferred over a variant-less one."""
    candidates = [entry for entry in entries if entry.platform is not None and wanted.matches(entry.platform)]
    exact = [entry for entry in candidates if entry.platform == wanted]
    if exact or candidates:
        return (exact or candidates)[0]
    offered = ", ".join(sorted({str(entry.platform) for entry in entries if entry.platform})) or "none"
    raise SourceError(f"manifest {reference}: no image for platform {wanted} (the index has: {offered})")


def _image_manifest(
    reference: Reference,
    fetched: Reference,
    digest: str,
    media_type: str,
    document: Mapping[str, object],
    platform: Platform | None,
) -> ImageManifest:
    config = _descriptor(document.get("config"), fetched, "config")
    layers = _descriptor_list(document, "layers", fetched)
    annotations = document.get("annotations") or {}
    if not isinstance(annotations, dict):
        raise SourceError(f"manifest {fetched}: annotations are not an object")
    return ImageManifest(
        reference,
        digest,
        media_type,
        config,
        tuple(layers),
        {str(k): str(v) for k, v in annotations.items()},
        platform,
    )


def _registry_errors(response: urllib3.BaseHTTPResponse) -> str:
    """The registry's own error codes (``{"errors": [{"code", "message"}]}``), for the message."""
    try:
        document = json.loads(response.read(64 << 10))
        errors = document["errors"]
        text = "; ".join(f"{error['code']}: {error.get('message', '')}".strip(": ") for error in errors)
    except (ValueError, KeyError, TypeError, urllib3.exceptions.HTTPError):
        return ""
    return f" ({text})" if text else ""
