"""Registry blobs, manifests and images against Debian's distribution registry, run by the tests.

Everything read here was pushed by the tests through the registry API:
eStargz layers built by pystargz from tars made in the test, OCI and Docker
manifests, and an OCI index of two platforms.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import random
import stat
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import pystargz
from pystargz.errors import SourceError
from pystargz.image import open_image
from pystargz.sources.registry import (
    DOCKER_MANIFEST,
    OCI_MANIFEST,
    Platform,
    Reference,
    RegistryClient,
    RegistrySource,
    fetch_manifest,
    parse_reference,
)
from pystargz.writer import ANNOTATION_TOC_DIGEST
from tests.blobs import noise
from tests.httpserver import BlobServer
from tests.registry import TEST_USERS, Layer, RegistryServer, sha256_digest
from tests.test_image import BOTTOM, EXPECTED_DIRS, EXPECTED_FILES, HIDDEN, MIDDLE, TOP

FILES = {
    "etc/": None,
    "etc/os-release": b"ID=pystargz\nVERSION_ID=1\n",
    "usr/bin/app": noise(300_000, seed=5),
    "usr/share/doc/": None,
    "usr/share/doc/README": b"read me\n" * 5000,
    "empty": b"",
}
USER, PASSWORD = next(iter(TEST_USERS.items()))


@pytest.fixture(autouse=True)
def empty_docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test sees this machine's ~/.docker: DOCKER_CONFIG is a fresh directory."""
    config = tmp_path / "docker"
    config.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    return config


@pytest.fixture(scope="module")
def layer() -> Layer:
    return Layer.build(FILES, chunk_size=64 << 10)


def repo() -> str:
    return f"pystargz/{uuid.uuid4().hex[:12]}"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def write_config(directory: Path, config: dict[str, object]) -> None:
    (directory / "config.json").write_text(json.dumps(config))


# ---- references ----


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("busybox", Reference("docker.io", "library/busybox", "latest", "")),
        ("busybox:1.36", Reference("docker.io", "library/busybox", "1.36", "")),
        ("user/app:v2", Reference("docker.io", "user/app", "v2", "")),
        ("docker.io/ubuntu", Reference("docker.io", "library/ubuntu", "latest", "")),
        ("index.docker.io/ubuntu:22.04", Reference("docker.io", "library/ubuntu", "22.04", "")),
        ("ghcr.io/org/team/app:1.0", Reference("ghcr.io", "org/team/app", "1.0", "")),
        ("localhost/app", Reference("localhost", "app", "latest", "")),
        ("localhost:5000/a/b:t", Reference("localhost:5000", "a/b", "t", "")),
        ("127.0.0.1:5000/x@sha256:" + "b" * 64, Reference("127.0.0.1:5000", "x", "", "sha256:" + "b" * 64)),
        ("[::1]:5000/x:y", Reference("[::1]:5000", "x", "y", "")),
        ("r.io/x:t@sha256:" + "c" * 64, Reference("r.io", "x", "t", "sha256:" + "c" * 64)),
        ("r.io/my_app.v-2__x:a.B-c_", Reference("r.io", "my_app.v-2__x", "a.B-c_", "")),
    ],
)
def test_parse_reference(text: str, expected: Reference) -> None:
    reference = parse_reference(text)
    assert reference == expected
    assert reference.manifest_reference == (expected.digest or expected.tag)
    assert parse_reference(str(reference)) == reference


def test_docker_hub_api_host() -> None:
    assert parse_reference("busybox").api_host == "registry-1.docker.io"
    assert str(parse_reference("busybox")) == "docker.io/library/busybox:latest"
    assert parse_reference("quay.io/a/b").api_host == "quay.io"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Upper",
        "r.io/Upper:tag",
        "r.io/a//b",
        "r.io/a:bad tag",
        "r.io/a:" + "t" * 129,
        "r.io/a@sha256:abc",
        "r.io/a@md5:" + "0" * 32,
        "r.io/a@sha256:" + "A" * 64,
        "bad_host:5000/a",
        "r.io/-a",
    ],
)
def test_bad_references_are_source_errors(text: str) -> None:
    with pytest.raises(SourceError, match="reference"):
        parse_reference(text)


def test_platforms() -> None:
    assert Platform.parse("linux/arm64/v8") == Platform("linux", "arm64", "v8")
    assert str(Platform.parse("linux/amd64")) == "linux/amd64"
    assert Platform("linux", "arm64").matches(Platform("linux", "arm64", "v8"))
    assert not Platform("linux", "arm", "v7").matches(Platform("linux", "arm", "v6"))
    assert not Platform("linux", "amd64").matches(Platform("windows", "amd64"))
    assert Platform.current().os in ("linux", "windows")
    with pytest.raises(SourceError, match="not a platform"):
        Platform.parse("linux")


# ---- blobs ----


def test_blob_reads_equal_local_reads(registry: RegistryServer, layer: Layer) -> None:
    name = repo()
    registry.push_blob(name, layer.blob)
    source = RegistrySource(f"{registry.host}/{name}@{layer.digest}")
    assert source.url == f"http://{registry.host}/v2/{name}/blobs/{layer.digest}"
    assert source.size == len(layer.blob)
    rng = random.Random(7)
    ranges = []
    for _ in range(40):
        offset = rng.randrange(len(layer.blob))
        ranges.append((offset, rng.randrange(min(70_000, len(layer.blob) - offset) + 1)))
    for offset, length in ranges:
        assert source.read_at(offset, length) == layer.blob[offset : offset + length]
    expected = [layer.blob[offset : offset + length] for offset, length in ranges]
    assert source.read_ranges(ranges) == expected


def test_open_a_registry_blob_lists_and_reads_files(registry: RegistryServer, layer: Layer) -> None:
    name = repo()
    registry.push_blob(name, layer.blob)
    with (
        pystargz.open(RegistrySource(f"{registry.host}/{name}@{layer.digest}")) as remote,
        pystargz.open(layer.blob) as local,
    ):
        assert remote.getnames() == local.getnames()
        assert remote.toc_digest == layer.result.toc_digest
        regular = [member.name for member in local if member.isreg()]
        assert remote.read_files(regular) == local.read_files(regular)
        for name, content in FILES.items():
            if content is not None:
                file = remote.extractfile(name)
                assert file is not None
                assert file.read() == content


def test_layer_size_from_the_manifest_is_checked(registry: RegistryServer, layer: Layer) -> None:
    name = repo()
    registry.push_blob(name, layer.blob)
    source = RegistrySource(f"{registry.host}/{name}@{layer.digest}", size=len(layer.blob) + 1)
    with pytest.raises(SourceError):
        source.read_at(0, 10)


def test_unknown_blob_is_a_clear_error(registry: RegistryServer, layer: Layer) -> None:
    name = repo()
    registry.push_blob(name, layer.blob)
    missing = sha256_digest(b"never pushed")
    with pytest.raises(SourceError, match=r"404") as caught:
        RegistrySource(f"{registry.host}/{name}@{missing}").read_at(0, 1)
    assert missing in str(caught.value)


def test_a_blob_is_named_by_digest(registry: RegistryServer) -> None:
    with pytest.raises(SourceError, match="named by digest"):
        RegistrySource(f"{registry.host}/some/repo:latest")


# ---- manifests ----


def test_image_by_tag_and_by_digest(registry: RegistryServer, layer: Layer) -> None:
    name = repo()
    digest = registry.push_image(name, "v1", [layer])
    by_tag = fetch_manifest(f"{registry.host}/{name}:v1")
    by_digest = fetch_manifest(f"{registry.host}/{name}@{digest}")
    for manifest in (by_tag, by_digest):
        assert manifest.digest == digest
        assert manifest.media_type == OCI_MANIFEST
        assert manifest.config.media_type == "application/vnd.oci.image.config.v1+json"
        [descriptor] = manifest.layers
        assert descriptor.digest == layer.digest
        assert descriptor.size == len(layer.blob)
        assert descriptor.toc_digest == layer.result.toc_digest
        assert descriptor.uncompressed_size == layer.result.uncompressed_size
    assert str(by_tag.reference) == f"{registry.host}/{name}:v1"
    assert by_digest.reference.digest == digest


def test_docker_v2_manifest(registry: RegistryServer, layer: Layer) -> None:
    name = repo()
    digest = registry.push_image(name, "docker", [layer], media_type=DOCKER_MANIFEST)
    manifest = fetch_manifest(f"{registry.host}/{name}:docker")
    assert (manifest.digest, manifest.media_type) == (digest, DOCKER_MANIFEST)
    assert [d.digest for d in manifest.layers] == [layer.digest]


@pytest.fixture(scope="module")
def multi_platform(registry: RegistryServer) -> tuple[str, dict[str, Layer]]:
    """An OCI index of linux/amd64 and linux/arm64/v8, each image with its own layer."""
    name = repo()
    layers, images = {}, {}
    for platform in ("linux/amd64", "linux/arm64/v8"):
        layers[platform] = Layer.build({"arch": platform.encode()})
        os_name, architecture = platform.split("/")[:2]
        digest = registry.push_image(name, "", [layers[platform]], platform=(os_name, architecture))
        images[platform] = (digest, registry.manifest_size(name, digest))
    registry.push_index(name, "multi", images)
    return name, layers


@pytest.mark.parametrize(
    ("platform", "expected"),
    [("linux/amd64", "linux/amd64"), ("linux/arm64", "linux/arm64/v8"), ("linux/arm64/v8", "linux/arm64/v8")],
)
def test_index_resolves_to_the_platform(
    registry: RegistryServer, multi_platform: tuple[str, dict[str, Layer]], platform: str, expected: str
) -> None:
    name, layers = multi_platform
    manifest = fetch_manifest(f"{registry.host}/{name}:multi", platform=platform)
    assert [d.digest for d in manifest.layers] == [layers[expected].digest]
    assert str(manifest.platform) == expected
    with open_image(f"{registry.host}/{name}:multi", platform=platform) as image:
        file = image.extractfile("arch")
        assert file is not None
        assert file.read() == expected.encode()


def test_index_default_platform_is_this_machine(
    registry: RegistryServer, multi_platform: tuple[str, dict[str, Layer]]
) -> None:
    name, layers = multi_platform
    current = Platform.current()
    matching = [p for p in layers if current.matches(Platform.parse(p))]
    if not matching:
        with pytest.raises(SourceError, match=f"no image for platform {current}"):
            fetch_manifest(f"{registry.host}/{name}:multi")
        return
    assert fetch_manifest(f"{registry.host}/{name}:multi").layers[0].digest == layers[matching[0]].digest


def test_index_without_the_platform(
    registry: RegistryServer, multi_platform: tuple[str, dict[str, Layer]]
) -> None:
    name, _ = multi_platform
    with pytest.raises(SourceError, match=r"no image for platform linux/s390x .*linux/amd64, linux/arm64/v8"):
        fetch_manifest(f"{registry.host}/{name}:multi", platform="linux/s390x")


def test_has_manifest_tells_images_from_blobs(
    registry: RegistryServer, multi_platform: tuple[str, dict[str, Layer]], private_image: str, layer: Layer
) -> None:
    name, layers = multi_platform
    client = RegistryClient(registry.host)
    index = fetch_manifest(f"{registry.host}/{name}:multi", platform="linux/amd64")
    assert client.has_manifest(parse_reference(f"{registry.host}/{name}:multi"))
    assert client.has_manifest(parse_reference(f"{registry.host}/{name}@{index.digest}"))
    assert not client.has_manifest(parse_reference(f"{registry.host}/{name}@{layers['linux/amd64'].digest}"))
    private = parse_reference(f"{private_image}@{layer.digest}")
    with pytest.raises(SourceError, match="requires a login"):
        RegistryClient(private.registry).has_manifest(private)


@pytest.mark.parametrize("missing", ["repository", "tag", "digest"])
def test_unknown_repository_tag_or_digest(registry: RegistryServer, layer: Layer, missing: str) -> None:
    name = repo()
    registry.push_image(name, "v1", [layer])
    reference = {
        "repository": f"{registry.host}/{name}-nothing:v1",
        "tag": f"{registry.host}/{name}:v2",
        "digest": f"{registry.host}/{name}@{sha256_digest(b'no such manifest')}",
    }[missing]
    with pytest.raises(SourceError, match=r"HTTP 404.*(MANIFEST_UNKNOWN|NAME_UNKNOWN)") as caught:
        fetch_manifest(reference)
    assert str(parse_reference(reference)) in str(caught.value)


# ---- manifests a registry should not send (served by a plain test server) ----


def _serve_manifest(server: BlobServer, reference: str, body: bytes) -> str:
    server.add(f"/v2/bad/repo/manifests/{reference}", body)
    return f"127.0.0.1:{server.port}/bad/repo"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "not a JSON object"),
        (
            json.dumps({"mediaType": OCI_MANIFEST, "config": {}, "layers": []}).encode(),
            "config has no string",
        ),
        (
            json.dumps({"mediaType": OCI_MANIFEST, "config": None, "layers": 3}).encode(),
            "config is not a descriptor",
        ),
        (
            json.dumps({"mediaType": "application/vnd.docker.distribution.manifest.v1+json"}).encode(),
            "unsupported",
        ),
        (
            json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": "x", "digest": "sha256:" + "a" * 64, "size": 1},
                    "layers": [{"mediaType": "x", "digest": "sha256:short", "size": 1}],
                }
            ).encode(),
            "not a sha256 or sha512 digest",
        ),
        (b" " * (4 << 20) + b"{}", "larger than"),
    ],
)
def test_malformed_manifests_are_clear_errors(body: bytes, message: str) -> None:
    with BlobServer() as server:
        name = _serve_manifest(server, "t", body)
        with pytest.raises(SourceError, match=message) as caught:
            fetch_manifest(f"{name}:t")
    assert f"{name}:t" in str(caught.value)


def test_a_manifest_fetched_by_digest_is_verified() -> None:
    wanted = sha256_digest(b"the manifest asked for")
    with BlobServer() as server:
        name = _serve_manifest(server, wanted, json.dumps({"manifests": []}).encode())
        with pytest.raises(SourceError, match=r"whose digest is sha256:.*not the one asked for"):
            fetch_manifest(f"{name}@{wanted}")


# ---- the merged view of an image ----


def test_merged_view_of_a_registry_image(registry: RegistryServer) -> None:
    name = repo()
    layers = [Layer.build(entries) for entries in (BOTTOM, MIDDLE, TOP)]
    digest = registry.push_image(name, "merged", layers)
    for reference in (f"{registry.host}/{name}:merged", f"{registry.host}/{name}@{digest}"):
        with open_image(reference) as image:
            assert image.manifest is not None
            assert image.manifest.digest == digest
            top = image.extractfile("etc/b")
            assert top is not None
            assert top.read() == EXPECTED_FILES["etc/b"]
            assert [layer.opened for layer in image.layers] == [False, False, True]
            assert set(image.getnames()) == set(EXPECTED_FILES) | EXPECTED_DIRS
            for path, content in EXPECTED_FILES.items():
                file = image.extractfile(path)
                assert file is not None
                assert file.read() == content
            for path in HIDDEN:
                assert path not in image
            assert [layer.descriptor.digest for layer in image.layers if layer.descriptor] == [
                layer.digest for layer in layers
            ]
            assert [layer.reader.toc_digest for layer in image.layers] == [
                layer.result.toc_digest for layer in layers
            ]
            caches = {id(layer.reader.cache) for layer in image.layers}
            assert len(caches) == 1  # one bound for the whole image
            assert image.layers[0].reader.cache is not None


def test_a_layer_whose_toc_digest_annotation_lies_is_refused(registry: RegistryServer, layer: Layer) -> None:
    name = repo()
    wrong = {**layer.annotations, ANNOTATION_TOC_DIGEST: sha256_digest(b"another TOC")}
    registry.push_image(name, "liar", [dataclasses.replace(layer, annotations=wrong)])
    with open_image(f"{registry.host}/{name}:liar") as image, pytest.raises(pystargz.VerificationError):
        image.layers[0].reader  # noqa: B018 - opening the layer is the point


def test_layers_of_an_image_are_read_verified(registry: RegistryServer, layer: Layer) -> None:
    """The TOC digest annotation turns verification on: every chunk read from the registry is checked."""
    name = repo()
    registry.push_image(name, "checked", [layer])
    with open_image(f"{registry.host}/{name}:checked") as image:
        assert image.layers[0].reader.verifying


# ---- authentication (htpasswd registry) ----


@pytest.fixture(scope="module")
def private_image(auth_registry: RegistryServer, layer: Layer) -> str:
    name = repo()
    auth_registry.push_image(name, "v1", [layer])
    return f"{auth_registry.host}/{name}"


def _read_private(private_image: str, layer: Layer) -> None:
    source = RegistrySource(f"{private_image}@{layer.digest}")
    assert source.read_at(0, 100) == layer.blob[:100]
    manifest = fetch_manifest(f"{private_image}:v1")
    assert manifest.layers[0].digest == layer.digest
    with open_image(f"{private_image}:v1") as image:
        file = image.extractfile("etc/os-release")
        assert file is not None
        assert file.read() == FILES["etc/os-release"]


def test_basic_auth_with_auths_base64(
    auth_registry: RegistryServer, private_image: str, layer: Layer, empty_docker_config: Path
) -> None:
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    write_config(empty_docker_config, {"auths": {f"http://{auth_registry.host}/v2/": {"auth": auth}}})
    _read_private(private_image, layer)


def test_basic_auth_with_username_and_password(
    auth_registry: RegistryServer, private_image: str, layer: Layer, tmp_path: Path
) -> None:
    config = tmp_path / "elsewhere"
    config.mkdir()
    write_config(config, {"auths": {auth_registry.host: {"username": USER, "password": PASSWORD}}})
    source = RegistrySource(f"{private_image}@{layer.digest}", docker_config=config)
    assert source.read_at(len(layer.blob) - 51, 51) == layer.blob[-51:]


def _credential_helper(directory: Path, monkeypatch: pytest.MonkeyPatch, host: str) -> Path:
    """``docker-credential-test`` on PATH: answers ``get`` for ``host`` only, logging each question."""
    log = directory / "helper.log"
    script = directory / "docker-credential-test"
    answer = json.dumps({"ServerURL": host, "Username": USER, "Secret": PASSWORD})
    script.write_text(
        "#!/bin/sh\n"
        '[ "$1" = get ] || exit 2\n'
        "read -r server\n"
        f'echo "$server" >> "{log}"\n'
        f'if [ "$server" = "{host}" ]; then echo \'{answer}\'; exit 0; fi\n'
        "echo 'credentials not found in native keychain'; exit 1\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{directory}:{os.environ['PATH']}")
    return log


def test_basic_auth_with_a_credential_helper(
    auth_registry: RegistryServer,
    private_image: str,
    layer: Layer,
    empty_docker_config: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log = _credential_helper(tmp_path, monkeypatch, auth_registry.host)
    write_config(empty_docker_config, {"credHelpers": {auth_registry.host: "test"}})
    _read_private(private_image, layer)
    assert set(log.read_text().split()) == {auth_registry.host}


def test_credentials_are_looked_up_only_when_asked(
    registry: RegistryServer,
    layer: Layer,
    empty_docker_config: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log = _credential_helper(tmp_path, monkeypatch, registry.host)
    write_config(empty_docker_config, {"credsStore": "test"})
    name = repo()
    registry.push_image(name, "v1", [layer])
    with open_image(f"{registry.host}/{name}:v1") as image:
        assert "etc/os-release" in image
    assert not log.exists()  # an open registry never challenged, so the helper never ran


def test_no_credentials_is_a_clear_error(private_image: str, layer: Layer) -> None:
    source = RegistrySource(f"{private_image}@{layer.digest}")
    with pytest.raises(SourceError, match=r"requires a login .* no credentials for it") as blob_error:
        source.read_at(0, 1)
    source.close()  # its pool holds the refused request's connection
    assert f"{private_image.partition('/')[2]}/blobs/{layer.digest}" in str(blob_error.value)
    with pytest.raises(SourceError, match="requires a login") as manifest_error:
        fetch_manifest(f"{private_image}:v1")
    assert f"{private_image.partition('/')[2]}/manifests/v1" in str(manifest_error.value)


def test_wrong_credentials_are_a_clear_error(
    auth_registry: RegistryServer, private_image: str, layer: Layer, empty_docker_config: Path
) -> None:
    write_config(
        empty_docker_config, {"auths": {auth_registry.host: {"username": USER, "password": "wrong"}}}
    )
    with pytest.raises(SourceError, match=f"refused user '{USER}'.*auths"):
        RegistrySource(f"{private_image}@{layer.digest}").read_at(0, 1)
    with pytest.raises(SourceError, match=f"refused user '{USER}'"):
        fetch_manifest(f"{private_image}:v1")


def test_missing_credential_helper_is_a_clear_error(
    auth_registry: RegistryServer, private_image: str, layer: Layer, empty_docker_config: Path
) -> None:
    write_config(empty_docker_config, {"credsStore": "pystargz-no-such-helper"})
    with pytest.raises(SourceError, match=r"docker-credential-pystargz-no-such-helper .* is not on PATH"):
        RegistrySource(f"{private_image}@{layer.digest}").read_at(0, 1)


# ---- bearer tokens (the registry trusts a token server run by the tests) ----


def test_bearer_tokens_anonymous_pull(token_registry: RegistryServer, layer: Layer) -> None:
    assert token_registry.tokens is not None
    name = "public/" + repo()
    digest = token_registry.push_image(name, "v1", [layer])
    with open_image(f"{token_registry.host}/{name}:v1") as image:
        assert image.manifest is not None
        assert image.manifest.digest == digest
        file = image.extractfile("etc/os-release")
        assert file is not None
        assert file.read() == FILES["etc/os-release"]
    asked = [scopes for user, scopes in token_registry.tokens.requests if f"repository:{name}:pull" in scopes]
    assert asked  # the scope came from the registry's challenge
    assert all(user == "" for user, scopes in token_registry.tokens.requests if scopes in asked)


def test_bearer_tokens_for_a_user(
    token_registry: RegistryServer, layer: Layer, empty_docker_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert token_registry.tokens is not None
    name = repo()
    token_registry.push_image(name, "v1", [layer])
    with pytest.raises(SourceError, match=r"refused access anonymously .*HTTP 401.*UNAUTHORIZED"):
        fetch_manifest(f"{token_registry.host}/{name}:v1")
    write_config(empty_docker_config, {"auths": {token_registry.host: {"auth": b64(f"{USER}:{PASSWORD}")}}})
    client = RegistryClient(token_registry.host)
    manifest = client.resolve(parse_reference(f"{token_registry.host}/{name}:v1"))
    before = len(token_registry.tokens.requests)
    source = RegistrySource(f"{token_registry.host}/{name}@{layer.digest}", client=client)
    with pystargz.open(source) as blob:
        assert blob.toc_digest == manifest.layers[0].toc_digest
        assert blob.read_files(["etc/os-release"]) == {"etc/os-release": FILES["etc/os-release"]}
    assert len(token_registry.tokens.requests) == before  # the manifest's token serves the blob too
    # the manifest GET answered 401, one token fetch, the GET again; the blob's requests are the source's
    assert client.stats.requests == 3
    assert client.stats.bytes_fetched == token_registry.manifest_size(name, manifest.digest)
    assert (USER, [f"repository:{name}:pull"]) in token_registry.tokens.requests


def test_bearer_tokens_from_many_threads_at_once(
    token_registry: RegistryServer, layer: Layer, empty_docker_config: Path
) -> None:
    """Eight threads meet the first 401 together; each read still returns its bytes."""
    name = repo()
    token_registry.push_image(name, "v1", [layer])
    write_config(
        empty_docker_config,
        {"credHelpers": {}, "auths": {token_registry.host: {"auth": b64(f"{USER}:{PASSWORD}")}}},
    )
    source = RegistrySource(f"{token_registry.host}/{name}@{layer.digest}", size=len(layer.blob))
    ranges = [(i * 9_000, 7_000) for i in range(32)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda r: source.read_at(*r), ranges))
    assert results == [layer.blob[offset : offset + length] for offset, length in ranges]


def test_bearer_tokens_wrong_password(
    token_registry: RegistryServer, layer: Layer, empty_docker_config: Path
) -> None:
    name = repo()
    token_registry.push_image(name, "v1", [layer])
    write_config(empty_docker_config, {"auths": {token_registry.host: {"auth": b64(f"{USER}:nope")}}})
    with pytest.raises(SourceError, match=r"token server .* refused the credentials from .*auths"):
        RegistrySource(f"{token_registry.host}/{name}@{layer.digest}").read_at(0, 1)


# ---- plain HTTP only for loopback, or when asked ----


@pytest.mark.parametrize(
    ("registry_host", "insecure", "scheme"),
    [
        ("registry.example.com", False, "https"),
        ("registry.example.com:5000", False, "https"),
        ("10.0.0.7:5000", False, "https"),
        ("registry.example.com", True, "http"),
        ("localhost:5000", False, "http"),
        ("127.0.0.1:5000", False, "http"),
        ("[::1]:5000", False, "http"),
        ("docker.io", False, "https"),
    ],
)
def test_scheme_rule(registry_host: str, insecure: bool, scheme: str) -> None:
    reference = parse_reference(f"{registry_host}/some/repo@{sha256_digest(b'x')}")
    source = RegistrySource(reference, insecure=insecure)
    host = "registry-1.docker.io" if registry_host == "docker.io" else registry_host
    assert source.url == f"{scheme}://{host}/v2/{reference.repository}/blobs/{reference.digest}"


def test_a_plain_http_registry_needs_insecure(registry: RegistryServer, layer: Layer) -> None:
    """127.1 is 127.0.0.1 to the resolver but not a loopback name: HTTPS is tried, and fails clearly."""
    name = repo()
    registry.push_image(name, "v1", [layer])
    aliased = f"127.1:{registry.port}/{name}:v1"
    with pytest.raises(SourceError, match=r"speaks HTTPS to 127\.1:\d+; .* pass insecure=True"):
        fetch_manifest(aliased)
    assert fetch_manifest(aliased, insecure=True).layers[0].digest == layer.digest
    with pytest.raises(SourceError, match="TLS"):
        RegistrySource(Reference("127.1:" + str(registry.port), name, digest=layer.digest)).read_at(0, 1)
    client = RegistryClient(f"127.1:{registry.port}", insecure=True)
    assert (
        RegistrySource(f"127.1:{registry.port}/{name}@{layer.digest}", client=client).read_at(0, 2)
        == b"\x1f\x8b"
    )
