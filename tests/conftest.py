"""Session-wide fixtures and the hypothesis profiles.

``HYPOTHESIS_PROFILE`` picks the profile: ``default`` for local runs, ``ci``
(no deadline, failing examples printed as blobs to reproduce them) and
``thorough`` (many examples, for a scheduled run).  Shared helpers that are not
fixtures live in ``tests/vectors.py``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, settings

from tests.interop.peer import GoPeer, GoPeerError, build_peer
from tests.layers import make_tree_tar
from tests.vectors import BuiltLayer, build_layer

if TYPE_CHECKING:
    # Imported where used: it needs bcrypt and cryptography, which only the registry tests do
    # (the native-module variant runs of tools/variant-tests.sh install neither).
    from tests.registry import RegistryServer

settings.register_profile("default", max_examples=100)
settings.register_profile(
    "ci",
    max_examples=200,
    deadline=None,
    print_blob=True,
    derandomize=False,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("thorough", max_examples=5000, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(scope="session")
def go_peer(tmp_path_factory: pytest.TempPathFactory) -> GoPeer:
    """The Go reference peer, compiled once per session.

    A missing Go toolchain or a compile error fails the tests that need the
    peer (with the compiler output): interop must never be skipped silently.
    """
    try:
        return GoPeer(build_peer(tmp_path_factory.mktemp("esgzpeer")))
    except GoPeerError as exc:
        failure = exc
    details = f"\n{failure.stderr}" if failure.stderr and failure.stderr not in str(failure) else ""
    pytest.fail(f"cannot build the Go reference peer: {failure}{details}", pytrace=False)


@pytest.fixture(scope="session")
def real_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tar of a real directory tree of this machine (thousands of files), made once per session."""
    return make_tree_tar(tmp_path_factory.mktemp("real") / "real.tar")


@pytest.fixture(scope="session")
def real_layer(go_peer: GoPeer, real_tar: Path) -> BuiltLayer:
    """``real_tar`` built by Go's ``estargz.Build`` with its default options (GOMAXPROCS 1)."""
    return build_layer(go_peer, real_tar, real_tar.with_name("real.esgz"), procs=1)


# ---- CI guard: the Go interop tests must have run ----

REQUIRE_GO_ENV = "PYSTARGZ_REQUIRE_GO"
_go_tests_passed: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and report.passed and "go" in report.keywords:
        _go_tests_passed.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """With PYSTARGZ_REQUIRE_GO=1 (the full CI run), a run in which no Go test passed fails.

    Deselecting, skipping or losing the interop tests must not leave CI green.
    """
    if os.environ.get(REQUIRE_GO_ENV) == "1" and exitstatus == 0 and not _go_tests_passed:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print(f"\n{REQUIRE_GO_ENV}=1 but no test marked 'go' passed: the Go reference peer did not run")


# ---- the distribution registry (tests/registry.py) ----

def _start_registry(workdir: Path, *, authenticated: bool = False, token: bool = False) -> RegistryServer:
    """A registry must start: a missing binary or a failed start fails the tests, never skips them.

    ``authenticated``: only the users of ``tests.registry.TEST_USERS`` may read and write.
    """
    from tests.registry import TEST_USERS, RegistryError, RegistryServer

    users = TEST_USERS if authenticated else None
    try:
        return RegistryServer(workdir, users=users, token=token).start()
    except RegistryError as exc:
        pytest.fail(f"cannot start the distribution registry: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """Debian's distribution registry on 127.0.0.1, open to anyone."""
    server = _start_registry(tmp_path_factory.mktemp("registry"))
    yield server
    server.close()


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """The same with htpasswd basic auth: the users of ``TEST_USERS``."""
    server = _start_registry(tmp_path_factory.mktemp("auth-registry"), authenticated=True)
    yield server
    server.close()


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """The same with bearer tokens from a token server that knows ``TEST_USERS`` (``public/`` is open)."""
    server = _start_registry(tmp_path_factory.mktemp("token-registry"), authenticated=True, token=True)
    yield server
    server.close()
