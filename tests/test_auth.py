"""Credentials from the Docker config, WWW-Authenticate parsing, and the Bearer token exchange.

The token exchange runs over real HTTP on 127.0.0.1: the "registry" is the
test BlobServer (401 + ``Bearer realm=...`` until the right token is sent),
the token server a small handler here that checks what a client must send
(Basic credentials, or an OAuth2 refresh token) and counts its tokens.
"""

from __future__ import annotations

import base64
import http.server
import json
import stat
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import urllib3

from pystargz.errors import SourceError
from pystargz.sources import auth
from pystargz.sources.auth import (
    Challenge,
    Credentials,
    RegistryAuthenticator,
    docker_config_file,
    load_credentials,
    parse_www_authenticate,
)
from pystargz.sources.http import HTTPSource
from tests.blobs import noise
from tests.httpserver import BlobServer

BLOB = noise(50_000, seed=3)
BLOB_PATH = "/v2/team/app/blobs/sha256:" + "d" * 64


# ---- WWW-Authenticate ----


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
            'scope="repository:library/busybox:pull"',
            [
                Challenge(
                    "bearer",
                    {
                        "realm": "https://auth.docker.io/token",
                        "service": "registry.docker.io",
                        "scope": "repository:library/busybox:pull",
                    },
                )
            ],
        ),
        ('Basic realm="Registry Realm"', [Challenge("basic", {"realm": "Registry Realm"})]),
        (
            'Basic realm="a, b", Bearer realm="https://t/x",scope="repository:a:pull,push"',
            [
                Challenge("basic", {"realm": "a, b"}),
                Challenge("bearer", {"realm": "https://t/x", "scope": "repository:a:pull,push"}),
            ],
        ),
        (
            "BEARER Realm=https://t/token, error=invalid_token",
            [Challenge("bearer", {"realm": "https://t/token", "error": "invalid_token"})],
        ),
        ('Basic realm="quoted \\"q\\""', [Challenge("basic", {"realm": 'quoted "q"'})]),
        ("Negotiate", [Challenge("negotiate", {})]),
        ("", []),
    ],
)
def test_parse_www_authenticate(header: str, expected: list[Challenge]) -> None:
    assert parse_www_authenticate(header) == expected


# ---- the Docker config ----


def write_config(directory: Path, config: object) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config))
    return directory


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def install_helper(directory: Path, monkeypatch: pytest.MonkeyPatch, name: str, body: str) -> None:
    script = directory / f"docker-credential-{name}"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{directory}:/usr/bin:/bin")


def test_config_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "d"))
    assert docker_config_file() == tmp_path / "d" / "config.json"
    assert docker_config_file(tmp_path / "x.json") == tmp_path / "x.json"
    assert docker_config_file(tmp_path) == tmp_path / "config.json"
    monkeypatch.delenv("DOCKER_CONFIG")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert docker_config_file() == tmp_path / "home" / ".docker" / "config.json"


def test_auths_forms(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        {
            "auths": {
                "https://r.example.com/v1/": {"auth": b64("u1:p:with:colons")},
                "other.example.com:5000": {"username": "u2", "password": "p2"},
                "https://index.docker.io/v1/": {"auth": b64("hub:secret")},
                "tokens.example.com": {"auth": b64("u3:"), "identitytoken": "refresh-me"},
            }
        },
    )
    assert load_credentials("r.example.com", config) == Credentials(
        "u1", "p:with:colons", origin=f"{config / 'config.json'} (auths['https://r.example.com/v1/'])"
    )
    found = load_credentials("other.example.com:5000", config)
    assert found is not None
    assert (found.username, found.password) == ("u2", "p2")
    for hub in ("docker.io", "registry-1.docker.io", "index.docker.io"):
        found = load_credentials(hub, config)
        assert found is not None
        assert (found.username, found.password) == ("hub", "secret")
    found = load_credentials("tokens.example.com", config)
    assert found is not None
    assert (found.username, found.identity_token) == ("u3", "refresh-me")
    assert load_credentials("other.example.com", config) is None
    assert load_credentials("nowhere.example.com", tmp_path / "missing") is None
    assert "p2" not in repr(load_credentials("other.example.com:5000", config))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1]", "not a JSON object"),
        (json.dumps({"auths": {"r.io": {"auth": "%%%"}}}), "not base64"),
        (json.dumps({"auths": {"r.io": {"auth": b64("no-colon")}}}), "no user:password"),
        (json.dumps({"credsStore": 7}), "not a string"),
    ],
)
def test_malformed_configs_are_source_errors(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "config.json").write_text(content)
    with pytest.raises(SourceError, match=message) as caught:
        load_credentials("r.io", tmp_path)
    assert str(tmp_path / "config.json") in str(caught.value)


def test_cred_helpers_win_and_creds_store_falls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_helper(
        tmp_path,
        monkeypatch,
        "per-host",
        'read -r s; echo "{\\"ServerURL\\":\\"$s\\",\\"Username\\":\\"helper-$s\\",\\"Secret\\":\\"pw\\"}"\n',
    )
    install_helper(
        tmp_path,
        monkeypatch,
        "store",
        "read -r s\n"
        'if [ "$s" = stored.io ]; then echo \'{"Username":"<token>","Secret":"idt"}\'; exit 0; fi\n'
        "echo 'credentials not found in native keychain'; exit 1\n",
    )
    config = write_config(
        tmp_path / "cfg",
        {
            "credHelpers": {"helped.io": "per-host", "docker.io": "per-host"},
            "credsStore": "store",
            "auths": {"fallback.io": {"auth": b64("f:g")}, "helped.io": {"auth": b64("not:used")}},
        },
    )
    found = load_credentials("helped.io", config)
    assert found is not None
    assert (found.username, found.password, found.origin) == (
        "helper-helped.io",
        "pw",
        "credential helper docker-credential-per-host",
    )
    hub = load_credentials("registry-1.docker.io", config)
    assert hub is not None
    assert hub.username == "helper-https://index.docker.io/v1/"
    stored = load_credentials("stored.io", config)
    assert stored is not None
    assert (stored.username, stored.identity_token) == ("", "idt")
    fallback = load_credentials("fallback.io", config)
    assert fallback is not None
    assert (fallback.username, fallback.password) == ("f", "g")
    assert load_credentials("unknown.io", config) is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("echo 'helper exploded' >&2; exit 3\n", "failed for r.io: helper exploded"),
        ("echo 'not json'\n", "no Username/Secret JSON"),
        ('echo \'{"Username": "u"}\'\n', "no Username/Secret JSON"),
    ],
)
def test_failing_helpers_are_source_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str, message: str
) -> None:
    install_helper(tmp_path, monkeypatch, "bad", body)
    config = write_config(tmp_path / "cfg", {"credHelpers": {"r.io": "bad"}})
    with pytest.raises(SourceError, match=message):
        load_credentials("r.io", config)


def test_missing_helper_is_a_source_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"credsStore": "pystargz-absent"})
    with pytest.raises(SourceError, match=r"docker-credential-pystargz-absent named in .* is not on PATH"):
        load_credentials("r.io", config)


# ---- the Bearer token exchange ----


@dataclass
class TokenServer:
    """A token endpoint: GET with optional Basic credentials, or POST with an OAuth2 refresh token."""

    token: str = "t0k"
    basic: str | None = None  # the Authorization a GET must carry, when set
    refresh_token: str | None = None  # the refresh token a POST must carry, when set
    expires_in: int = 300
    requests: list[tuple[str, dict[str, list[str]], dict[str, str]]] = field(default_factory=list)

    def serve(self) -> Generator[str, None, None]:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                """Quiet."""

            def do_GET(self) -> None:
                fields = parse_qs(urlsplit(self.path).query)
                server.requests.append(("GET", fields, dict(self.headers)))
                ok = server.basic is None or self.headers.get("Authorization") == server.basic
                self._answer(ok)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                fields = parse_qs(self.rfile.read(length).decode())
                server.requests.append(("POST", fields, dict(self.headers)))
                ok = fields.get("grant_type") == ["refresh_token"] and fields.get("refresh_token") == [
                    server.refresh_token
                ]
                self._answer(ok, key="access_token")

            def _answer(self, ok: bool, key: str = "token") -> None:
                body = (
                    json.dumps({key: server.token, "expires_in": server.expires_in}).encode() if ok else b"{}"
                )
                self.send_response(200 if ok else 401)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{httpd.server_address[1]}/token"
        finally:
            httpd.shutdown()
            httpd.server_close()
            thread.join()


@dataclass
class BearerSetup:
    registry: BlobServer
    tokens: TokenServer
    pool: urllib3.PoolManager

    def authenticator(self, credentials: Credentials | None) -> RegistryAuthenticator:
        host = f"127.0.0.1:{self.registry.port}"
        return RegistryAuthenticator(
            host, credentials=lambda: credentials, pool=self.pool, allow_plain_http=True
        )

    def source(self, authenticator: RegistryAuthenticator) -> HTTPSource:
        return HTTPSource(
            self.registry.url(BLOB_PATH), authenticator=authenticator, pool=self.pool, retries=0
        )


@pytest.fixture
def bearer() -> Iterator[BearerSetup]:
    tokens = TokenServer()
    serving = tokens.serve()
    realm = next(serving)
    with BlobServer(realm=realm) as registry:
        registry.add(BLOB_PATH, BLOB, auth=f"Bearer {tokens.token}")
        yield BearerSetup(registry, tokens, urllib3.PoolManager())
    serving.close()


def test_anonymous_token(bearer: BearerSetup) -> None:
    authenticator = bearer.authenticator(None)
    assert bearer.source(authenticator).read_at(100, 50) == BLOB[100:150]
    [(method, fields, headers)] = bearer.tokens.requests
    assert method == "GET"
    assert fields == {"service": ["blobserver"], "scope": ["repository:team/app:pull"]}
    assert "Authorization" not in headers


def test_token_with_basic_credentials_is_cached_per_scope(bearer: BearerSetup) -> None:
    bearer.tokens.basic = "Basic " + b64("u:p")
    authenticator = bearer.authenticator(Credentials("u", "p", origin="test"))
    assert bearer.source(authenticator).read_at(0, 10) == BLOB[:10]
    assert bearer.source(authenticator).read_at(10, 10) == BLOB[10:20]  # a second source, same token
    assert len(bearer.tokens.requests) == 1
    assert authenticator.headers(bearer.registry.url(BLOB_PATH)) == {"Authorization": "Bearer t0k"}
    assert authenticator.headers(bearer.registry.url("/v2/other/repo/blobs/x")) == {}


def test_identity_token_is_an_oauth2_refresh(bearer: BearerSetup) -> None:
    bearer.tokens.refresh_token = "idt-123"
    authenticator = bearer.authenticator(Credentials(identity_token="idt-123", origin="test"))
    assert bearer.source(authenticator).read_at(0, 5) == BLOB[:5]
    [(method, fields, _)] = bearer.tokens.requests
    assert method == "POST"
    assert fields["grant_type"] == ["refresh_token"]
    assert fields["client_id"] == ["pystargz"]
    assert fields["scope"] == ["repository:team/app:pull"]


def test_expired_tokens_are_fetched_again(bearer: BearerSetup, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "MIN_TOKEN_LIFETIME", 0.5)
    monkeypatch.setattr(auth, "TOKEN_EXPIRY_MARGIN", 0.0)
    bearer.tokens.expires_in = 0
    authenticator = bearer.authenticator(None)
    assert bearer.source(authenticator).read_at(0, 5) == BLOB[:5]
    time.sleep(0.6)
    assert authenticator.headers(bearer.registry.url(BLOB_PATH)) == {}
    assert bearer.source(authenticator).read_at(5, 5) == BLOB[5:10]
    assert len(bearer.tokens.requests) == 2


def test_refused_credentials_name_their_origin(bearer: BearerSetup) -> None:
    bearer.tokens.basic = "Basic " + b64("u:right")
    authenticator = bearer.authenticator(Credentials("u", "wrong", origin="the test config"))
    with pytest.raises(SourceError, match=r"token server .* refused the credentials from the test config"):
        bearer.source(authenticator).read_at(0, 1)


def test_refused_anonymous_access_says_so(bearer: BearerSetup) -> None:
    bearer.tokens.basic = "Basic " + b64("u:p")
    with pytest.raises(SourceError, match="refused anonymous access"):
        bearer.source(bearer.authenticator(None)).read_at(0, 1)


def test_credentials_never_go_to_a_plain_http_realm_of_a_remote_registry(bearer: BearerSetup) -> None:
    host = f"127.0.0.1:{bearer.registry.port}"
    authenticator = RegistryAuthenticator(
        host, credentials=lambda: Credentials("u", "p", origin="test"), pool=bearer.pool
    )
    with pytest.raises(SourceError, match="plain HTTP"):
        bearer.source(authenticator).read_at(0, 1)
    assert bearer.tokens.requests == []


def test_other_hosts_get_no_credentials() -> None:
    authenticator = RegistryAuthenticator(
        "r.example.com", credentials=lambda: None, pool=urllib3.PoolManager()
    )
    assert authenticator.headers("https://storage.example.com/blob?sig=1") == {}
    assert not authenticator.challenge("https://storage.example.com/blob", {"WWW-Authenticate": "Basic"})


def test_unanswerable_challenges_are_source_errors() -> None:
    authenticator = RegistryAuthenticator(
        "r.example.com", credentials=lambda: None, pool=urllib3.PoolManager()
    )
    url = "https://r.example.com/v2/a/blobs/x"
    with pytest.raises(SourceError, match="negotiate"):
        authenticator.challenge(url, {"WWW-Authenticate": "Negotiate"})
    with pytest.raises(SourceError, match="no WWW-Authenticate challenge"):
        authenticator.challenge(url, {})
    with pytest.raises(SourceError, match="without a realm"):
        authenticator.challenge(url, {"www-authenticate": 'Bearer service="x"'})
    with pytest.raises(SourceError, match="requires a login"):
        authenticator.challenge(url, {"WWW-Authenticate": 'Basic realm="r"'})
