"""Registry credentials from the Docker config, and the challenge/token exchange of the distribution spec.

A registry answers 401 with a ``WWW-Authenticate`` challenge: ``Basic`` asks
for the user's password on every request, ``Bearer`` names a token server
(``realm``) that trades credentials (or nothing, for public images) for a
short-lived token valid for one ``scope``.  Credentials are looked up the way
the Docker CLI does (``credHelpers``, then ``credsStore``, then ``auths`` of
``$DOCKER_CONFIG/config.json``), only when a registry first asks for them, so
anonymous pulls never run a credential helper.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import urllib3

from pystargz.errors import SourceError
from pystargz.sources.base import json_object

__all__ = [
    "Challenge",
    "Credentials",
    "RegistryAuthenticator",
    "docker_config_file",
    "load_credentials",
    "parse_www_authenticate",
]

DOCKER_CONFIG_ENV = "DOCKER_CONFIG"
CONFIG_NAME = "config.json"
HELPER_PREFIX = "docker-credential-"
HELPER_TIMEOUT = 30.0
HELPER_NOT_FOUND = "credentials not found"
# Docker Hub's credentials are filed under the v1 index URL, whatever host the API uses.
DOCKER_HUB_KEY = "https://index.docker.io/v1/"
DOCKER_HUB_HOSTS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
IDENTITY_TOKEN_USER = "<token>"
# The token spec: a missing or shorter expires_in means 60 seconds.
MIN_TOKEN_LIFETIME = 60.0
TOKEN_EXPIRY_MARGIN = 10.0
TOKEN_CLIENT_ID = "pystargz"
TOKEN_TIMEOUT = urllib3.Timeout(connect=10.0, read=30.0)
MAX_TOKEN_RESPONSE = 1 << 20

_AUTH_PARAM = re.compile(r'\s*([!#$%&\'*+.^_`|~0-9A-Za-z-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]*)\s*(?:,|$)')
_AUTH_SCHEME = re.compile(r"\s*,?\s*([!#$%&\'*+.^_`|~0-9A-Za-z-]+)(?=\s|$|,)")
_REPOSITORY_PATH = re.compile(r"^/v2/(.+?)/(?:blobs|manifests|tags)(?:/|$)")


@dataclass(frozen=True)
class Credentials:
    """A user name and password, or an identity (refresh) token; ``origin`` says where they came from."""

    username: str = ""
    password: str = ""
    identity_token: str = ""
    origin: str = ""

    def __repr__(self) -> str:
        secret = "identity_token=<hidden>" if self.identity_token else "password=<hidden>"
        return f"Credentials(username={self.username!r}, {secret}, origin={self.origin!r})"


@dataclass(frozen=True)
class Challenge:
    """One challenge of a ``WWW-Authenticate`` header: a scheme (lower case) and its parameters."""

    scheme: str
    params: Mapping[str, str]


# ---- the Docker config ----


def docker_config_file(docker_config: str | os.PathLike[str] | None = None) -> Path:
    """The config file: ``docker_config`` (a directory or a .json), else $DOCKER_CONFIG, else ~/.docker."""
    if docker_config is None:
        docker_config = os.environ.get(DOCKER_CONFIG_ENV) or Path.home() / ".docker"
    path = Path(docker_config)
    return path if path.suffix == ".json" else path / CONFIG_NAME


def load_credentials(host: str, docker_config: str | os.PathLike[str] | None = None) -> Credentials | None:
    """The credentials the Docker CLI would use for registry ``host`` (``HOST[:PORT]``), or None.

    A per-host ``credHelpers`` entry wins, then the ``credsStore`` helper,
    then the ``auths`` entry; a helper that knows nothing of the host is not
    an error (the next place is tried), a helper that is missing or fails is.
    """
    path = docker_config_file(docker_config)
    config = _read_config(path)
    key = _config_key(host)
    helpers = config.get("credHelpers")
    helper = None
    if isinstance(helpers, dict):
        helper = next((name for server, name in helpers.items() if _config_key(str(server)) == key), None)
    if not helper:
        helper = config.get("credsStore")
    if helper:
        if not isinstance(helper, str):
            raise SourceError(f"{path}: the credential helper name for {host} is not a string")
        found = _run_helper(helper, _helper_server(host), path)
        if found is not None:
            return found
    return _from_auths(config.get("auths"), key, path)


def _read_config(path: Path) -> dict[str, object]:
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise SourceError(f"cannot read the Docker config {path}: {exc.strerror}") from exc
    return json_object(text, f"the Docker config {path}")


def _config_key(server: str) -> str:
    """``HOST[:PORT]`` of a config key or host, Docker Hub's aliases folded into one."""
    if "://" in server:
        server = urlsplit(server).netloc
    host = server.split("/", 1)[0].lower()
    return "index.docker.io" if host in DOCKER_HUB_HOSTS else host


def _helper_server(host: str) -> str:
    """What a credential helper is asked for: the host, or Docker Hub's historical URL."""
    return DOCKER_HUB_KEY if _config_key(host) == "index.docker.io" else host


def _from_auths(auths: object, key: str, path: Path) -> Credentials | None:
    if not isinstance(auths, dict):
        return None
    for server, entry in auths.items():
        if not isinstance(server, str) or _config_key(server) != key or not isinstance(entry, dict):
            continue
        where = f"{path} (auths[{server!r}])"
        token = entry.get("identitytoken")
        username, password = _decode_basic(entry.get("auth"), where)
        username = username or str(entry.get("username") or "")
        password = password or str(entry.get("password") or "")
        if isinstance(token, str) and token:
            return Credentials(username=username, identity_token=token, origin=where)
        if username or password:
            return Credentials(username=username, password=password, origin=where)
    return None


def _decode_basic(auth: object, where: str) -> tuple[str, str]:
    """``base64(user:password)`` as Docker stores it in ``auths``."""
    if not auth:
        return "", ""
    try:
        decoded = base64.b64decode(str(auth), validate=True).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise SourceError(f"{where}: 'auth' is not base64 of user:password ({exc})") from exc
    username, sep, password = decoded.partition(":")
    if not sep:
        raise SourceError(f"{where}: 'auth' decodes to no user:password pair")
    return username, password


def _run_helper(name: str, server: str, path: Path) -> Credentials | None:
    """Runs ``docker-credential-NAME get`` (the credential helper protocol); None when it has nothing."""
    program = HELPER_PREFIX + name
    try:
        done = subprocess.run(
            [program, "get"], input=server.encode(), capture_output=True, timeout=HELPER_TIMEOUT, check=False
        )
    except FileNotFoundError as exc:
        raise SourceError(
            f"the credential helper {program} named in {path} for {server} is not on PATH"
        ) from exc
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SourceError(f"cannot run the credential helper {program} for {server}: {exc}") from exc
    output = done.stdout.decode(errors="replace").strip()
    if done.returncode != 0:
        if HELPER_NOT_FOUND in output.lower():
            return None
        details = output or done.stderr.decode(errors="replace").strip()
        raise SourceError(f"the credential helper {program} failed for {server}: {details}")
    try:
        answer = json.loads(output)
        username, secret = str(answer["Username"]), str(answer["Secret"])
    except (ValueError, KeyError, TypeError) as exc:
        raise SourceError(
            f"the credential helper {program} answered {server} with no Username/Secret JSON"
        ) from exc
    origin = f"credential helper {program}"
    if username == IDENTITY_TOKEN_USER:
        return Credentials(identity_token=secret, origin=origin)
    return Credentials(username=username, password=secret, origin=origin)


# ---- challenges ----


def parse_www_authenticate(value: str) -> list[Challenge]:
    """The challenges of a ``WWW-Authenticate`` value (RFC 9110 syntax, several per header allowed)."""
    challenges: list[Challenge] = []
    position = 0
    while position < len(value):
        scheme = _AUTH_SCHEME.match(value, position)
        if scheme is None:
            break
        position = scheme.end()
        params: dict[str, str] = {}
        while (param := _AUTH_PARAM.match(value, position)) is not None:
            raw = param.group(2)
            if raw.startswith('"'):
                raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
            params[param.group(1).lower()] = raw
            position = param.end()
        challenges.append(Challenge(scheme.group(1).lower(), params))
    return challenges


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return ""


@dataclass
class _Token:
    value: str
    expires: float


class RegistryAuthenticator:
    """Answers a registry's 401 challenges; implements the HTTP source's ``Authenticator`` protocol.

    ``headers(url)`` gives the Authorization header for a request to the
    registry (none for other hosts, such as the blob storage a registry
    redirects to, which must not see the credentials).  ``challenge(url,
    response_headers)`` reads a 401's ``WWW-Authenticate``: for Bearer it
    fetches a token for the challenge's scope (cached until it expires), for
    Basic it switches to the configured user; True means "retry once".  A
    challenge that cannot be met (no credentials, credentials refused) raises
    :class:`SourceError` saying so.  Thread-safe.
    """

    def __init__(
        self,
        host: str,
        *,
        credentials: Callable[[], Credentials | None],
        pool: urllib3.PoolManager,
        allow_plain_http: bool = False,
    ) -> None:
        self.host = host
        self._load_credentials = credentials
        self._credentials: Credentials | None = None
        self._credentials_loaded = False
        self._pool = pool
        self._allow_plain_http = allow_plain_http
        self._lock = threading.Lock()
        self._tokens: dict[str, _Token] = {}
        self._scopes: dict[str, str] = {}
        self._basic: str | None = None
        self._requests = 0

    @property
    def requests(self) -> int:
        """Requests sent on the registry's behalf: token fetches and credential checks."""
        with self._lock:
            return self._requests

    def _count(self) -> None:
        with self._lock:
            self._requests += 1

    # ---- the Authenticator protocol ----

    def headers(self, url: str) -> Mapping[str, str]:
        if not self._is_registry(url):
            return {}
        with self._lock:
            scope = self._scopes.get(_repository(url), "")
            token = self._tokens.get(scope)
            if token is not None and token.expires > time.monotonic():
                return {"Authorization": f"Bearer {token.value}"}
            if self._basic is not None:
                return {"Authorization": f"Basic {self._basic}"}
        return {}

    def challenge(self, url: str, response_headers: Mapping[str, str]) -> bool:
        if not self._is_registry(url):
            return False
        try:
            return self._answer(url, parse_www_authenticate(_header(response_headers, "www-authenticate")))
        except SourceError as exc:
            where = urlsplit(url)._replace(query="", fragment="").geturl()
            raise SourceError(f"{where}: {exc}") from exc

    def _answer(self, url: str, challenges: list[Challenge]) -> bool:
        by_scheme = {challenge.scheme: challenge for challenge in challenges}
        if "bearer" in by_scheme:
            return self._bearer(url, by_scheme["bearer"])
        if "basic" in by_scheme:
            return self._use_basic(url, by_scheme["basic"])
        offered = ", ".join(sorted(by_scheme)) or "no WWW-Authenticate challenge"
        raise SourceError(
            f"the registry {self.host} answered 401 with {offered}, which pystargz cannot answer"
        )

    # ---- schemes ----

    def _use_basic(self, url: str, challenge: Challenge) -> bool:
        """Switches to the configured user, once it has passed the registry's ``/v2/`` check.

        The check costs one request per registry, and turns a 401 on the
        retried request (which an HTTP client can only report as such) into
        an error that says whose credentials were refused.
        """
        credentials = self._require_credentials(challenge)
        if credentials.identity_token and not credentials.password:
            raise SourceError(
                f"the registry {self.host} asks for Basic auth, "
                f"but {credentials.origin} holds only an identity token"
            )
        encoded = base64.b64encode(f"{credentials.username}:{credentials.password}".encode()).decode()
        with self._lock:
            if self._basic == encoded:
                return False
        check = f"{urlsplit(url).scheme}://{self.host}/v2/"
        self._count()
        try:
            status = self._pool.request(
                "GET", check, headers={"Authorization": f"Basic {encoded}"}, timeout=TOKEN_TIMEOUT
            ).status
        except urllib3.exceptions.HTTPError as exc:
            raise SourceError(
                f"cannot reach {check} to check the credentials for {self.host}: {exc}"
            ) from exc
        if status in (401, 403):
            raise SourceError(
                f"the registry {self.host} refused user {credentials.username!r} "
                f"(credentials from {credentials.origin}): HTTP {status} from {check}"
            )
        with self._lock:
            self._basic = encoded
        return True

    def _bearer(self, url: str, challenge: Challenge) -> bool:
        realm = challenge.params.get("realm", "")
        if not realm:
            raise SourceError(f"the registry {self.host} sent a Bearer challenge without a realm")
        scope = challenge.params.get("scope") or _default_scope(url)
        token = self._fetch_token(realm, challenge.params.get("service", ""), scope)
        with self._lock:
            self._tokens[scope] = token
            self._scopes[_repository(url)] = scope
        return True

    def _fetch_token(self, realm: str, service: str, scope: str) -> _Token:
        """A token from the realm: anonymous, with Basic credentials, or an OAuth2 identity-token refresh."""
        credentials = self._current_credentials()
        if credentials is not None and urlsplit(realm).scheme != "https" and not self._allow_plain_http:
            raise SourceError(
                f"the token server {realm} of {self.host} is plain HTTP; "
                "pystargz sends credentials there only for a local or insecure registry"
            )
        fields = [("service", service)] if service else []
        fields += [("scope", part) for part in scope.split()]
        started = time.monotonic()
        self._count()
        try:
            if credentials is not None and credentials.identity_token:
                form = [
                    ("grant_type", "refresh_token"),
                    ("refresh_token", credentials.identity_token),
                    ("client_id", TOKEN_CLIENT_ID),
                    *fields,
                ]
                response = self._pool.request(
                    "POST", realm, fields=form, encode_multipart=False, timeout=TOKEN_TIMEOUT, redirect=True
                )
            else:
                headers = {}
                if credentials is not None:
                    pair = f"{credentials.username}:{credentials.password}".encode()
                    headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
                response = self._pool.request(
                    "GET", realm, fields=fields, headers=headers, timeout=TOKEN_TIMEOUT, redirect=True
                )
        except urllib3.exceptions.HTTPError as exc:
            raise SourceError(f"cannot reach the token server {realm} of {self.host}: {exc}") from exc
        return self._token_from(response, realm, credentials, started)

    def _token_from(
        self, response: urllib3.BaseHTTPResponse, realm: str, credentials: Credentials | None, started: float
    ) -> _Token:
        if response.status in (401, 403):
            who = (
                f"the credentials from {credentials.origin}"
                if credentials is not None
                else f"anonymous access (no credentials for {self.host} in the Docker config)"
            )
            raise SourceError(
                f"the token server {realm} of {self.host} refused {who}: HTTP {response.status}"
            )
        if response.status != 200:
            raise SourceError(f"the token server {realm} of {self.host} answered HTTP {response.status}")
        try:
            answer = json.loads(response.data[:MAX_TOKEN_RESPONSE])
            value = answer.get("token") or answer.get("access_token")
            lifetime = float(answer.get("expires_in") or 0)
        except (ValueError, AttributeError, TypeError) as exc:
            raise SourceError(f"the token server {realm} of {self.host} sent no token JSON") from exc
        if not isinstance(value, str) or not value:
            raise SourceError(f"the token server {realm} of {self.host} sent no token")
        return _Token(value, started + max(lifetime, MIN_TOKEN_LIFETIME) - TOKEN_EXPIRY_MARGIN)

    # ---- credentials ----

    def _current_credentials(self) -> Credentials | None:
        with self._lock:
            if not self._credentials_loaded:
                self._credentials = self._load_credentials()
                self._credentials_loaded = True
            return self._credentials

    def identity(self) -> str:
        """Who the requests went out as, for error messages (never the secret)."""
        with self._lock:
            credentials = self._credentials if self._credentials_loaded else None
        if credentials is None:
            return f"anonymously (no credentials for {self.host} were used)"
        who = f"user {credentials.username!r}" if credentials.username else "an identity token"
        return f"as {who} (credentials from {credentials.origin})"

    def _require_credentials(self, challenge: Challenge) -> Credentials:
        credentials = self._current_credentials()
        if credentials is None:
            realm = challenge.params.get("realm", "")
            raise SourceError(
                f"the registry {self.host} requires a login (Basic realm {realm!r}) and the Docker config "
                "has no credentials for it (docker login, or an auths/credHelpers entry)"
            )
        return credentials

    def _is_registry(self, url: str) -> bool:
        return urlsplit(url).netloc.lower() == self.host.lower()


def _repository(url: str) -> str:
    match = _REPOSITORY_PATH.match(urlsplit(url).path)
    return match.group(1) if match else ""


def _default_scope(url: str) -> str:
    """The pull scope of the repository a URL is about, for challenges that name none."""
    repository = _repository(url)
    return f"repository:{repository}:pull" if repository else ""
