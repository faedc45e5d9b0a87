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
import datetime
import hashlib
import http.server
import io
import json
import os
import re
import shutil
import socket
import subprocess
import tarfile
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit, urlunsplit

import bcrypt
import urllib3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

import pystargz
from pystargz.sources.registry import OCI_INDEX, OCI_MANIFEST
from pystargz.writer import DEFAULT_CHUNK_SIZE
from tests.httpserver import LocalServer

REGISTRY_BIN_ENV = "PYSTARGZ_REGISTRY_BIN"
BINARY_NAME = "docker-registry"
CACHED_BINARY = Path(__file__).resolve().parent.parent / ".cache" / BINARY_NAME / "usr" / "bin" / BINARY_NAME
START_TIMEOUT = 20.0
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
TOKEN_SERVICE = "pystargz-registry"
TOKEN_ISSUER = "pystargz-tests"
# With token auth, anyone may pull repositories under this prefix; the rest needs a user.
PUBLIC_PREFIX = "public/"
# The users of the registries with auth (htpasswd or tokens): {name: password}.
TEST_USERS = {"alice": "wonderland"}
__all__ = ["TEST_USERS", "Layer", "RegistryError", "RegistryServer", "TokenServer"]


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
    annotations: Mapping[str, str]  # as pushed in the manifest: the build's, unless a test changes them

    @classmethod
    def build(
        cls,
        entries: Mapping[str, bytes | None],
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        prioritized_files: Sequence[str] = (),
    ) -> Layer:
        out = io.BytesIO()
        tar = io.BytesIO(make_tar(entries))
        result = pystargz.build(tar, out, chunk_size=chunk_size, prioritized_files=prioritized_files)
        return cls(out.getvalue(), result, dict(result.annotations))

    @property
    def digest(self) -> str:
        return sha256_digest(self.blob)

    def descriptor(self) -> dict[str, object]:
        return {
            "mediaType": OCI_LAYER_GZIP,
            "digest": self.digest,
            "size": len(self.blob),
            "annotations": dict(self.annotations),
        }


# ---- token auth: a JWT issuer the registry trusts, and its token endpoint ----


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenIssuer:
    """An ES256 key and its self-signed certificate (the registry's ``rootcertbundle``); mints JWTs.

    The tokens carry the certificate in ``x5c``, which is how the distribution
    registry finds the key and checks it against its trusted roots.
    """

    def __init__(self, workdir: Path) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, TOKEN_ISSUER)])
        now = datetime.datetime.now(datetime.timezone.utc)
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self.bundle = workdir / "token-ca.pem"
        self.bundle.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))

    def mint(self, subject: str, access: list[dict[str, object]], lifetime: int = 300) -> str:
        now = int(time.time())
        der = self._cert.public_bytes(serialization.Encoding.DER)
        header = {"typ": "JWT", "alg": "ES256", "x5c": [base64.b64encode(der).decode()]}
        claims = {
            "iss": TOKEN_ISSUER,
            "sub": subject,
            "aud": TOKEN_SERVICE,
            "exp": now + lifetime,
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(self._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


class TokenServer(LocalServer):
    """The token endpoint (GET with optional Basic credentials), as Docker Hub's auth.docker.io.

    A known user gets the actions asked for; anonymous clients get ``pull``
    on repositories under ``public/`` and nothing else; a wrong password is
    a 401.  ``requests`` logs ``(user or "", scopes)``.
    """

    def __init__(self, issuer: TokenIssuer, users: Mapping[str, str]) -> None:
        self.issuer = issuer
        self.users = dict(users)
        self.requests: list[tuple[str, list[str]]] = []
        super().__init__(self._handler(), "TokenServer", poll_interval=0.05)
        self.start()

    @property
    def realm(self) -> str:
        return self.url("/token")

    def grant(self, user: str, scopes: list[str]) -> list[dict[str, object]]:
        access: list[dict[str, object]] = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            allowed = actions.split(",") if user else (["pull"] if name.startswith(PUBLIC_PREFIX) else [])
            if kind == "repository" and allowed:
                access.append({"type": kind, "name": name, "actions": allowed})
        return access

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                """Quiet: the log is ``server.requests``."""

            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                user = server._user(self.headers.get("Authorization", ""))
                scopes = query.get("scope", [])
                server.requests.append((user or "", scopes))
                if user is None or query.get("service") != [TOKEN_SERVICE]:
                    self._send(401, b'{"details": "bad credentials or service"}')
                    return
                token = server.issuer.mint(user, server.grant(user, scopes))
                self._send(200, json.dumps({"token": token, "expires_in": 300}).encode())

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler

    def _user(self, authorization: str) -> str | None:
        """The user named by valid Basic credentials, "" for none, None for wrong ones."""
        if not authorization:
            return ""
        try:
            user, _, password = base64.b64decode(authorization.removeprefix("Basic ")).decode().partition(":")
        except ValueError:
            return None
        return user if self.users.get(user) == password else None


# ---- the server ----


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RegistryServer:
    """One registry process; ``users`` ({name: password}) turns on htpasswd basic auth.

    With ``token=True`` the registry asks for bearer tokens from a
    :class:`TokenServer` instead, which knows ``users``.
    """

    def __init__(self, workdir: Path, *, users: Mapping[str, str] | None = None, token: bool = False) -> None:
        self.workdir = workdir
        self.users = dict(users or {})
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._pool = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5.0, read=30.0))
        self.tokens = TokenServer(TokenIssuer(workdir), self.users) if token else None
        self._auth = basic_header(*next(iter(self.users.items()))) if self.users and not token else {}

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
        if self.tokens is not None:
            config["auth"] = {
                "token": {
                    "realm": self.tokens.realm,
                    "service": TOKEN_SERVICE,
                    "issuer": TOKEN_ISSUER,
                    "rootcertbundle": str(self.tokens.issuer.bundle),
                }
            }
        elif self.users:
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

    def close(self) -> None:
        """Stops the registry and its token server."""
        self.stop()
        if self.tokens is not None:
            self.tokens.close()

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
        self.close()

    # ---- pushing ----

    def request(
        self,
        method: str,
        path_or_url: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> urllib3.BaseHTTPResponse:
        url = path_or_url if "://" in path_or_url else self.url + path_or_url
        auth = self._auth
        if self.tokens is not None:  # the tests push with a token minted for the repository
            match = re.match(r"/v2/(.+?)/(?:blobs|manifests)/", urlsplit(url).path)
            assert match is not None, url
            access: list[dict[str, object]] = [
                {"type": "repository", "name": match.group(1), "actions": ["pull", "push"]}
            ]
            auth = {"Authorization": "Bearer " + self.tokens.issuer.mint("tests", access)}
        return self._pool.request(method, url, body=body, headers={**auth, **(headers or {})})

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
