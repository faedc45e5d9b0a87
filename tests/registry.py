"""A real OCI registry for tests: the CNCF distribution registry (Debian's ``docker-registry``).

:class:`RegistryServer` runs the binary on 127.0.0.1 on a free port with a
temporary storage directory and config (optionally htpasswd basic auth with
bcrypt hashes) and stops it at the end; the ``push_*`` methods upload blobs
and manifests through the distribution API as a client would.  The binary is
found through ``$PYSTARGZ_REGISTRY_BIN``, then ``PATH``, then the copy that
``tools/setup.sh`` extracts into ``.cache/docker-registry`` (``apt-get
download`` + ``dpkg-deb -x``, so no service is started).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

import bcrypt
import urllib3

import pystargz
from pystargz.sources.registry import DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST

REGISTRY_BIN_ENV = "PYSTARGZ_REGISTRY_BIN"
BINARY_NAME = "docker-registry"
CACHED_BINARY = Path(__file__).resolve().parent.parent / ".cache" / BINARY_NAME / "usr" / "bin" / BINARY_NAME
START_TIMEOUT = 20.0
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
__all__ = ["DOCKER_MANIFEST", "OCI_INDEX", "OCI_MANIFEST", "Layer", "RegistryError", "RegistryServer"]


class RegistryError(Exception):
    """The registry binary is missing, did not start, or refused an upload."""


def find_registry_binary() -> Path:
    candidates = [os.environ.get(REGISTRY_BIN_ENV), shutil.which(BINARY_NAME), str(CACHED_BINARY)]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise RegistryError(
        f"no {BINARY_NAME} binary (tried ${REGISTRY_BIN_ENV}, PATH and {CACHED_BINARY}); "
        "run tools/setup.sh, which extracts Debian's docker-registry package"
    )


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def basic_header(username: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


# ---- layers made in the tests ----


def make_tar(entries: Mapping[str, bytes | None]) -> bytes:
    """A tar of ``entries``: bytes are regular files, None (or a name ending in /) a directory."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in entries.items():
            info = tarfile.TarInfo(name.rstrip("/"))
            info.mtime = 1_700_000_000
            if content is None or name.endswith("/"):
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(content), 0o644
                tar.addfile(info, io.BytesIO(content))
    return out.getvalue()


@dataclass(frozen=True)
class Layer:
    """An eStargz blob built by pystargz from a tar made in the test, with its manifest descriptor."""

    blob: bytes
    result: pystargz.BuildResult

    @classmethod
    def build(cls, entries: Mapping[str, bytes | None], **options: object) -> Layer:
        out = io.BytesIO()
        result = pystargz.build(io.BytesIO(make_tar(entries)), out, **options)  # type: ignore[arg-type]
        return cls(out.getvalue(), result)

    @property
    def digest(self) -> str:
        return sha256_digest(self.blob)

    def descriptor(self) -> dict[str, object]:
        return {
            "mediaType": OCI_LAYER_GZIP,
            "digest": self.digest,
            "size": len(self.blob),
            "annotations": dict(self.result.annotations),
        }


# ---- the server ----


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RegistryServer:
    """One registry process; ``users`` ({name: password}) turns on htpasswd basic auth."""

    def __init__(self, workdir: Path, *, users: Mapping[str, str] | None = None) -> None:
        self.workdir = workdir
        self.users = dict(users or {})
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._pool = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5.0, read=30.0))
        self._auth = basic_header(*next(iter(self.users.items()))) if self.users else {}

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    # ---- life cycle ----

    def start(self) -> RegistryServer:
        binary = find_registry_binary()
        failures = []
        for _ in range(3):  # another process may take the free port between the probe and the bind
            self.port = _free_port()
            config = self._write_config()
            log = (self.workdir / "registry.log").open("wb")
            env = {key: value for key, value in os.environ.items() if not key.startswith("REGISTRY_")}
            self._process = subprocess.Popen(
                [str(binary), "serve", str(config)], stdout=log, stderr=subprocess.STDOUT, env=env
            )
            log.close()
            if self._wait_ready():
                return self
            failures.append((self.workdir / "registry.log").read_text(errors="replace")[-2000:])
            self.stop()
        raise RegistryError(f"{binary} did not answer /v2/ within {START_TIMEOUT}s:\n" + "\n".join(failures))

    def _write_config(self) -> Path:
        storage = self.workdir / "storage"
        storage.mkdir(exist_ok=True)
        config: dict[str, object] = {
            "version": "0.1",
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(storage)}, "delete": {"enabled": True}},
            "http": {"addr": self.host, "secret": "pystargz-tests"},
        }
        if self.users:
            htpasswd = self.workdir / "htpasswd"
            lines = [f"{name}:{_bcrypt(password)}\n" for name, password in self.users.items()]
            htpasswd.write_text("".join(lines))
            config["auth"] = {"htpasswd": {"realm": "pystargz-tests", "path": str(htpasswd)}}
        path = self.workdir / "config.yml"
        path.write_text(json.dumps(config))  # JSON is YAML
        return path

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                return False
            with contextlib.suppress(urllib3.exceptions.HTTPError):
                if self._pool.request("GET", self.url + "/v2/").status in (200, 401):
                    return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def __enter__(self) -> RegistryServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ---- pushing ----

    def request(
        self,
        method: str,
        path_or_url: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> urllib3.BaseHTTPResponse:
        url = path_or_url if "://" in path_or_url else self.url + path_or_url
        return self._pool.request(method, url, body=body, headers={**self._auth, **(headers or {})})

    def push_blob(self, repository: str, data: bytes) -> str:
        """A monolithic upload: POST for an upload URL, then PUT the bytes with their digest."""
        digest = sha256_digest(data)
        started = self.request("POST", f"/v2/{repository}/blobs/uploads/")
        if started.status != 202:
            raise RegistryError(f"upload to {repository} refused: HTTP {started.status} {started.data!r}")
        location = urljoin(self.url + "/", started.headers["Location"])
        parts = urlsplit(location)
        query = "&".join(part for part in (parts.query, urlencode({"digest": digest})) if part)
        target = urlunsplit(parts._replace(query=query))
        headers = {"Content-Type": "application/octet-stream"}
        done = self.request("PUT", target, body=data, headers=headers)
        if done.status != 201:
            raise RegistryError(f"upload of {digest} refused: HTTP {done.status} {done.data!r}")
        return digest

    def push_manifest(self, repository: str, reference: str, document: Mapping[str, object]) -> str:
        """PUTs a manifest or index under a tag (or its digest); returns its digest."""
        body = json.dumps(document, indent=2).encode()
        headers = {"Content-Type": str(document["mediaType"])}
        done = self.request("PUT", f"/v2/{repository}/manifests/{reference}", body=body, headers=headers)
        if done.status != 201:
            raise RegistryError(
                f"manifest {repository}:{reference} refused: HTTP {done.status} {done.data!r}"
            )
        return sha256_digest(body)

    def push_image(
        self,
        repository: str,
        tag: str,
        layers: Sequence[Layer],
        *,
        platform: tuple[str, str] = ("linux", "amd64"),
        media_type: str = OCI_MANIFEST,
    ) -> str:
        """Pushes the layers, a config and a manifest (by digest if ``tag`` is empty); returns its digest."""
        for layer in layers:
            self.push_blob(repository, layer.blob)
        config = {
            "architecture": platform[1],
            "os": platform[0],
            "rootfs": {"type": "layers", "diff_ids": [layer.result.diff_id for layer in layers]},
        }
        config_blob = json.dumps(config).encode()
        self.push_blob(repository, config_blob)
        config_type = (
            OCI_CONFIG if media_type == OCI_MANIFEST else "application/vnd.docker.container.image.v1+json"
        )
        manifest = {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {
                "mediaType": config_type,
                "digest": sha256_digest(config_blob),
                "size": len(config_blob),
            },
            "layers": [layer.descriptor() for layer in layers],
        }
        body_digest = sha256_digest(json.dumps(manifest, indent=2).encode())
        return self.push_manifest(repository, tag or body_digest, manifest)

    def push_index(self, repository: str, tag: str, images: Mapping[str, tuple[str, int]]) -> str:
        """An OCI index of ``{"os/arch[/variant]": (manifest digest, manifest size)}``, tagged ``tag``."""
        manifests = []
        for platform, (digest, size) in images.items():
            os_name, architecture, *variant = platform.split("/")
            entry: dict[str, object] = {"os": os_name, "architecture": architecture}
            if variant:
                entry["variant"] = variant[0]
            manifests.append({"mediaType": OCI_MANIFEST, "digest": digest, "size": size, "platform": entry})
        return self.push_manifest(
            repository, tag, {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
        )

    def manifest_size(self, repository: str, digest: str) -> int:
        response = self.request(
            "GET", f"/v2/{repository}/manifests/{digest}", headers={"Accept": OCI_MANIFEST}
        )
        return len(response.data)


def _bcrypt(password: str) -> str:
    """htpasswd's bcrypt line; cost 4 (the minimum Go accepts) keeps the tests fast."""
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
