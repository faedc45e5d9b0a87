"""HTTPSource against real HTTP servers on 127.0.0.1, directly and through the fault-injecting proxy.

Every read is compared with slicing the blob: whatever a server or the
network does, a read returns the right bytes or raises SourceError.
"""

from __future__ import annotations

import random
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping

import pytest
import urllib3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pystargz
from pystargz.errors import SourceError
from pystargz.sources import BytesSource, HTTPSource, as_source, read_ranges
from pystargz.sources.http import MAX_RANGE_HEADER, MAX_RANGES_PER_REQUEST, TAIL_PROBE, parse_byteranges
from tests.faultproxy import Fault, FaultProxy
from tests.httpserver import BlobServer, MultiRange
from tests.vectors import VectorCase, read_file, regular_names, vector_params

BLOB = random.Random(5).randbytes(300_000)
MODES: tuple[MultiRange, ...] = ("multipart", "coalesce", "full", "reject")
#: Faults after which a retry gets the right bytes.
RETRIED: tuple[Fault, ...] = ("reset", "status", "truncate", "short_body", "misrange")

module_fixture = pytest.fixture(scope="module")


@module_fixture
def server() -> Iterator[BlobServer]:
    with BlobServer() as blob_server:
        blob_server.add("/blob", BLOB)
        yield blob_server


@module_fixture
def mode_servers() -> Iterator[dict[MultiRange, BlobServer]]:
    """One server per way of answering multi-range requests."""
    servers = {mode: BlobServer(multirange=mode).start() for mode in MODES}
    for blob_server in servers.values():
        blob_server.add("/blob", BLOB)
    yield servers
    for blob_server in servers.values():
        blob_server.close()


@pytest.fixture
def proxy(server: BlobServer) -> Iterator[FaultProxy]:
    """A fresh proxy (no faults, empty log) in front of ``server``."""
    with FaultProxy(server.origin) as fault_proxy:
        yield fault_proxy


@pytest.fixture
def second() -> Iterator[BlobServer]:
    """Another host (another origin), e.g. blob storage that a registry redirects to."""
    with BlobServer() as blob_server:
        yield blob_server


def fast(url: str, *, size: int | None = None, retries: int = 4, timeout: float = 30.0) -> HTTPSource:
    """A source that does not wait between attempts."""
    return HTTPSource(url, backoff=0.001, size=size, retries=retries, timeout=timeout)


def expected(ranges: list[tuple[int, int]], data: bytes = BLOB) -> list[bytes]:
    return [data[offset : offset + length] for offset, length in ranges]


# ---- size, read_at, read_tail ----


def test_size_comes_from_one_suffix_range(server: BlobServer) -> None:
    server.reset_log()
    source = HTTPSource(server.url("/blob"))
    assert source.size == len(BLOB)
    assert source.stats.requests == 1
    assert source.stats.bytes_fetched == TAIL_PROBE
    assert [r.headers["range"] for r in server.requests] == [f"bytes=-{TAIL_PROBE}"]


def test_read_tail_learns_size_in_one_request_and_keeps_the_tail(server: BlobServer) -> None:
    source = HTTPSource(server.url("/blob"))
    assert source.read_tail(1000) == BLOB[-1000:]
    assert source.size == len(BLOB)
    assert source.read_at(len(BLOB) - 600, 500) == BLOB[-600:-100]
    assert source.read_tail(10) == BLOB[-10:]
    assert source.stats.requests == 1
    assert source.read_at(len(BLOB) - 1001, 2) == BLOB[-1001:-999]
    assert source.stats.requests == 2


def test_read_tail_with_a_known_size_asks_a_bounded_range(server: BlobServer) -> None:
    server.reset_log()
    source = HTTPSource(server.url("/blob"), size=len(BLOB))
    assert source.read_tail(100) == BLOB[-100:]
    assert source.read_tail(50) == BLOB[-50:]
    assert source.read_tail(10**9) == BLOB
    assert [r.headers["range"] for r in server.requests] == [
        f"bytes={len(BLOB) - 100}-{len(BLOB) - 1}",
        f"bytes=0-{len(BLOB) - 1}",
    ]
    with pytest.raises(ValueError, match="positive"):
        source.read_tail(0)


def test_blob_smaller_than_the_tail(server: BlobServer) -> None:
    server.add("/small", b"0123456789")
    source = HTTPSource(server.url("/small"))
    assert source.read_tail(TAIL_PROBE) == b"0123456789"
    assert source.size == 10
    assert source.read_at(3, 4) == b"3456"


def test_empty_blob(server: BlobServer) -> None:
    server.add("/empty", b"")
    source = HTTPSource(server.url("/empty"))
    assert source.size == 0
    assert source.read_at(0, 0) == b""
    assert source.read_tail(5) == b""
    assert source.read_ranges([(0, 0)]) == [b""]


def test_size_from_head_when_suffix_ranges_are_refused() -> None:
    with BlobServer(suffix=False) as blob_server:
        blob_server.add("/blob", BLOB)
        source = HTTPSource(blob_server.url("/blob"))
        assert source.read_tail(100) == BLOB[-100:]
        assert source.size == len(BLOB)
        assert [(r.method, r.status) for r in blob_server.requests] == [
            ("GET", 416),
            ("HEAD", 200),
            ("GET", 206),
        ]


def test_read_at_returns_exact_slices(server: BlobServer) -> None:
    source = HTTPSource(server.url("/blob"))
    for offset, length in [(0, 1), (0, 4096), (12345, 54321), (len(BLOB) - 1, 1), (100, 0)]:
        assert source.read_at(offset, length) == BLOB[offset : offset + length]


@pytest.mark.parametrize(("offset", "length"), [(-1, 2), (0, len(BLOB) + 1), (len(BLOB), 1), (5, -1)])
def test_read_outside_the_blob_is_refused_without_a_request(
    server: BlobServer, offset: int, length: int
) -> None:
    source = HTTPSource(server.url("/blob"), size=len(BLOB))
    with pytest.raises(SourceError, match="outside"):
        source.read_at(offset, length)
    with pytest.raises(SourceError, match="outside"):
        source.read_ranges([(0, 1), (offset, length)])
    assert source.stats.requests == 0


def test_known_size_saves_the_probe_and_is_checked(server: BlobServer) -> None:
    source = HTTPSource(server.url("/blob"), size=len(BLOB))
    assert source.read_at(10, 20) == BLOB[10:30]
    assert source.stats.requests == 1
    wrong = HTTPSource(server.url("/blob"), size=len(BLOB) + 1)
    with pytest.raises(SourceError, match="the blob changed"):
        wrong.read_at(10, 20)


def test_not_found_and_unauthorized_fail_without_retries(server: BlobServer) -> None:
    missing = fast(server.url("/missing"))
    with pytest.raises(SourceError, match=r"HTTP 404 not found .*/missing"):
        _ = missing.size
    assert missing.stats.retries == 0
    server.add("/locked", BLOB, auth="Bearer good")
    locked = fast(server.url("/locked"))
    with pytest.raises(SourceError, match=r"HTTP 401 authentication required \(WWW-Authenticate: Bearer"):
        _ = locked.size
    assert locked.stats.retries == 0


def test_range_beyond_the_served_blob_is_not_retried(server: BlobServer) -> None:
    source = fast(server.url("/blob"), size=len(BLOB) + 10)
    with pytest.raises(
        SourceError, match=r"HTTP 416 range not satisfiable \(Content-Range: bytes \*/300000\)"
    ):
        source.read_at(len(BLOB) + 1, 5)
    assert source.stats.retries == 0


def test_encoded_body_is_refused(server: BlobServer) -> None:
    server.add("/encoded", BLOB, headers={"Content-Encoding": "gzip"})
    with pytest.raises(SourceError, match="Content-Encoding gzip"):
        _ = HTTPSource(server.url("/encoded")).size


def test_bad_urls_are_refused() -> None:
    with pytest.raises(SourceError, match="not an http"):
        HTTPSource("ftp://example.com/blob")
    with pytest.raises(SourceError, match="not an http"):
        HTTPSource("http:///blob")
    with pytest.raises(SourceError, match="not an http"):
        HTTPSource("http://127.0.0.1:port/blob")


def test_bad_redirect_is_a_source_error(server: BlobServer) -> None:
    url = server.redirect("/to-ftp", "ftp://127.0.0.1/blob")
    with pytest.raises(SourceError, match=r"bad redirect from http://127\.0\.0\.1:\d+/to-ftp: 'ftp://"):
        _ = HTTPSource(url).size


# ---- several ranges ----

range_lists = st.lists(
    st.integers(0, len(BLOB) - 1).flatmap(lambda o: st.tuples(st.just(o), st.integers(0, len(BLOB) - o))),
    max_size=40,
) | st.lists(
    st.integers(0, len(BLOB) - 300).flatmap(lambda o: st.tuples(st.just(o), st.integers(0, 300))),
    min_size=1,
    max_size=200,
)


@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ranges=range_lists)
def test_read_ranges_equal_slices(
    mode_servers: dict[MultiRange, BlobServer], mode: MultiRange, ranges: list[tuple[int, int]]
) -> None:
    source = HTTPSource(mode_servers[mode].url("/blob"), size=len(BLOB))
    assert source.read_ranges(ranges) == expected(ranges)
    assert source.read_ranges(ranges) == expected(ranges)


def test_many_ranges_in_one_multipart_request(server: BlobServer) -> None:
    source = HTTPSource(server.url("/blob"), size=len(BLOB))
    ranges = [(i * 10_000, 100 + i) for i in range(20)]
    assert source.read_ranges(ranges) == expected(ranges)
    assert source.stats.requests == 1


def test_overlapping_and_touching_ranges_are_merged(server: BlobServer) -> None:
    server.reset_log()
    source = HTTPSource(server.url("/blob"), size=len(BLOB))
    ranges = [(100, 50), (120, 10), (150, 5), (90, 11), (5000, 1), (5000, 1)]
    assert source.read_ranges(ranges) == expected(ranges)
    assert [r.headers["range"] for r in server.requests] == ["bytes=90-154,5000-5000"]


def test_ranges_per_request_and_header_length_are_capped(server: BlobServer) -> None:
    server.reset_log()
    source = HTTPSource(server.url("/blob"), size=len(BLOB))
    ranges = [(i * 1900, 7) for i in range(150)]
    assert source.read_ranges(ranges) == expected(ranges)
    headers = [r.headers["range"] for r in server.requests]
    assert len(headers) == 3
    assert all(h.count(",") < MAX_RANGES_PER_REQUEST and len(h) <= MAX_RANGE_HEADER for h in headers)


@pytest.mark.parametrize(("mode", "status"), [("reject", 400), ("full", 200)])
def test_multirange_refused_once_means_single_ranges_after(
    mode_servers: dict[MultiRange, BlobServer], mode: MultiRange, status: int
) -> None:
    blob_server = mode_servers[mode]
    blob_server.reset_log()
    source = HTTPSource(blob_server.url("/blob"), size=len(BLOB))
    ranges = [(0, 10), (50_000, 10), (100_000, 10)]
    assert source.read_ranges(ranges) == expected(ranges)
    assert blob_server.requests[0].status == status
    blob_server.reset_log()
    assert source.read_ranges(ranges) == expected(ranges)
    assert [r.headers["range"].count(",") for r in blob_server.requests] == [0, 0, 0]


def test_whole_body_answer_reads_only_what_it_needs(mode_servers: dict[MultiRange, BlobServer]) -> None:
    source = HTTPSource(mode_servers["full"].url("/blob"), size=len(BLOB))
    assert source.read_ranges([(0, 10), (1000, 10)]) == [BLOB[:10], BLOB[1000:1010]]
    assert source.stats.bytes_fetched < 64 * 1024


def test_read_ranges_function_on_any_source(server: BlobServer) -> None:
    ranges = [(7, 3), (0, 2), (200_000, 50)]
    assert read_ranges(BytesSource(BLOB), ranges) == expected(ranges)
    source = HTTPSource(server.url("/blob"), size=len(BLOB))
    assert read_ranges(source, ranges) == expected(ranges)
    assert source.stats.requests == 1


def test_parse_byteranges_cuts_by_content_range_not_by_boundary() -> None:
    boundary = b"XYZ"
    data = b"a--XYZ\r\nb"
    body = (
        b"preamble\r\n--XYZ\r\nContent-Range: bytes 10-18/100\r\n\r\n" + data + b"\r\n"
        b"--XYZ  \r\ncontent-range: bytes 50-50/100\r\nContent-Type: x\r\n\r\nZ\r\n--XYZ--\r\n"
    )
    assert parse_byteranges(body, boundary) == [(10, 19, 100, data), (50, 51, 100, b"Z")]


@pytest.mark.parametrize(
    "body",
    [
        b"no delimiter at all",
        b"--XYZ\r\nContent-Range: bytes 0-4/10\r\n\r\n0123",  # truncated part
        b"--XYZ\r\nContent-Range: bytes 0-4/10\r\n\r\n01234\r\n",  # no closing delimiter
        b"--XYZ\r\nContent-Type: x\r\n\r\n01234\r\n--XYZ--",  # no Content-Range
        b"--XYZ\r\nContent-Range: bytes 4-0/10\r\n\r\n\r\n--XYZ--",  # backwards range
        b"--XYZ\r\nContent-Range: bytes 0-4/10\r\n\r\n0123456\r\n--XYZ--",  # longer than its range
    ],
)
def test_parse_byteranges_refuses_malformed_bodies(body: bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        parse_byteranges(body, b"XYZ")


# ---- faults ----


@pytest.mark.parametrize("fault", RETRIED)
def test_one_fault_is_retried(proxy: FaultProxy, fault: Fault) -> None:
    source = fast(proxy.url("/blob"), size=len(BLOB))
    proxy.schedule([fault])
    assert source.read_at(1000, 5000) == BLOB[1000:6000]
    assert source.stats.retries == 1
    assert source.stats.requests == 2
    proxy.schedule([fault])
    ranges = [(0, 100), (150_000, 100), (299_000, 1000)]
    assert source.read_ranges(ranges) == expected(ranges)
    assert proxy.faults(fault) == 2
    if fault == "misrange":  # the parts came back shifted: none is used, each range is asked alone
        assert source.stats.requests == 6
    else:
        assert source.stats.retries == 2
        assert source.stats.requests == 4


@pytest.mark.parametrize("fault", RETRIED)
def test_a_fault_that_persists_is_a_source_error(proxy: FaultProxy, fault: Fault) -> None:
    proxy.inject(fault)
    source = fast(proxy.url("/blob"), size=len(BLOB), retries=2)
    with pytest.raises(SourceError, match="failed after 3 attempts") as info:
        source.read_at(1000, 5000)
    assert "/blob" in str(info.value)
    assert source.stats.retries == 2
    assert source.stats.requests == 3


def test_backoff_doubles_between_attempts(proxy: FaultProxy) -> None:
    proxy.schedule(["status", "status", "status"])
    source = HTTPSource(proxy.url("/blob"), size=len(BLOB), backoff=0.05)
    started = time.monotonic()
    assert source.read_at(0, 10) == BLOB[:10]
    assert time.monotonic() - started >= 0.05 + 0.1 + 0.2
    assert source.stats.retries == 3


def test_timeout_is_retried_then_reported(proxy: FaultProxy) -> None:
    source = fast(proxy.url("/blob"), size=len(BLOB), timeout=0.2, retries=1)
    proxy.schedule(["delay"], delay=1.0)
    assert source.read_at(0, 10) == BLOB[:10]
    assert source.stats.retries == 1
    proxy.inject("delay", delay=1.0)
    with pytest.raises(SourceError, match=r"failed after 2 attempts.*timed out"):
        source.read_at(0, 10)


def test_server_ignoring_range_gives_the_right_bytes(proxy: FaultProxy) -> None:
    proxy.inject("ignore_range")
    source = fast(proxy.url("/blob"))
    assert source.size == len(BLOB)
    assert source.read_at(1000, 10) == BLOB[1000:1010]
    ranges = [(5, 5), (200_000, 5)]
    assert source.read_ranges(ranges) == expected(ranges)
    assert source.read_tail(7) == BLOB[-7:]
    assert source.stats.retries == 0


def test_multirange_rejected_by_a_proxy_falls_back(proxy: FaultProxy) -> None:
    proxy.inject("reject_multirange")
    source = fast(proxy.url("/blob"), size=len(BLOB))
    ranges = [(5, 5), (100_000, 5), (200_000, 5)]
    assert source.read_ranges(ranges) == expected(ranges)
    assert source.read_ranges(ranges) == expected(ranges)
    assert proxy.faults("reject_multirange") == 1
    assert source.stats.requests == 7


def test_error_body_of_a_single_range_is_not_mistaken_for_the_blob(proxy: FaultProxy) -> None:
    """A 200 whose length is not the blob's (an error page, another blob) is never sliced."""
    source = fast(proxy.url("/blob"), size=len(BLOB) + 5, retries=1)
    proxy.inject("ignore_range")
    with pytest.raises(SourceError, match=f"sent {len(BLOB)} bytes; the blob has {len(BLOB) + 5}"):
        source.read_at(0, 10)


faults = st.sampled_from((*RETRIED, "ignore_range", "reject_multirange", None))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(schedule=st.lists(faults, max_size=10), ranges=range_lists, known_size=st.booleans())
def test_any_fault_schedule_gives_right_bytes_or_source_error(
    proxy: FaultProxy, schedule: list[Fault | None], ranges: list[tuple[int, int]], known_size: bool
) -> None:
    proxy.schedule(schedule)
    source = fast(proxy.url("/blob"), size=len(BLOB) if known_size else None, retries=2)
    try:
        got = source.read_ranges(ranges)
    except SourceError:
        return
    assert got == expected(ranges)


# ---- redirects and credentials ----


def test_redirect_is_followed_and_remembered(server: BlobServer, second: BlobServer) -> None:
    second.add("/storage/blob", BLOB)
    url = server.redirect("/v2/blob", second.url("/storage/blob"))
    server.reset_log()
    source = HTTPSource(url)
    assert source.size == len(BLOB)
    for offset in range(0, 200_000, 40_000):
        assert source.read_at(offset, 100) == BLOB[offset : offset + 100]
    assert server.count(path="/v2/blob") == 1
    assert second.count(path="/storage/blob") == 6


def test_expired_signed_url_is_resolved_again(server: BlobServer, second: BlobServer) -> None:
    second.add("/signed", BLOB, expire_after=2)
    url = server.redirect("/v2/signed", second.url("/signed"), sign=True)
    server.reset_log()
    source = HTTPSource(url, size=len(BLOB))
    for offset in range(0, 100_000, 10_000):
        assert source.read_at(offset, 10) == BLOB[offset : offset + 10]
    assert server.count(path="/v2/signed") == 5
    assert second.count(path="/signed") == 14
    assert [r.status for r in second.requests].count(403) == 4
    assert source.stats.retries == 0


def test_expired_url_resolved_again_only_once(server: BlobServer, second: BlobServer) -> None:
    second.add("/once", BLOB, expire_after=1)
    url = server.redirect("/v2/once", second.url("/once"))
    source = HTTPSource(url, size=len(BLOB))
    assert source.read_at(0, 10) == BLOB[:10]
    with pytest.raises(SourceError, match=r"HTTP 403 access denied .*/once"):
        source.read_at(0, 10)


def test_redirect_loop_is_an_error(server: BlobServer) -> None:
    url = server.redirect("/loop", server.url("/loop"))
    with pytest.raises(SourceError, match="more than 10 redirects"):
        _ = HTTPSource(url).size


class TokenAuthenticator:
    """Gets its token on the first challenge, as a registry client would."""

    def __init__(self, token: str, *, grant: bool = True) -> None:
        self.token = token
        self.grant = grant
        self.current: str | None = None
        self.asked: list[str] = []
        self.challenges: list[str] = []

    def headers(self, url: str) -> Mapping[str, str]:
        self.asked.append(url)
        return {"Authorization": f"Bearer {self.current}"} if self.current else {}

    def challenge(self, url: str, response_headers: Mapping[str, str]) -> bool:
        self.challenges.append(response_headers["WWW-Authenticate"])
        if self.grant:
            self.current = self.token
        return self.grant


def test_authenticator_answers_the_challenge(server: BlobServer) -> None:
    server.add("/private", BLOB, auth="Bearer good")
    auth = TokenAuthenticator("good")
    source = HTTPSource(server.url("/private"), authenticator=auth)
    assert source.read_at(100, 10) == BLOB[100:110]
    assert auth.challenges == ['Bearer realm="test",service="blobserver"']
    assert source.stats.requests == 3
    assert source.stats.retries == 0


def test_authenticator_without_credentials_gives_a_source_error(server: BlobServer) -> None:
    server.add("/private2", BLOB, auth="Bearer good")
    auth = TokenAuthenticator("good", grant=False)
    with pytest.raises(SourceError, match="HTTP 401"):
        _ = HTTPSource(server.url("/private2"), authenticator=auth).size
    assert len(auth.challenges) == 1


class GivingUpAuthenticator(TokenAuthenticator):
    """Raises on a challenge it cannot meet, as the registry authenticator does."""

    def challenge(self, url: str, response_headers: Mapping[str, str]) -> bool:
        raise SourceError(f"{url}: no credentials")


def test_an_authenticator_that_gives_up_leaves_no_connection_checked_out(server: BlobServer) -> None:
    server.add("/private3", BLOB, auth="Bearer good")
    pool = urllib3.PoolManager()
    with pytest.raises(SourceError, match="no credentials"):
        _ = HTTPSource(server.url("/private3"), authenticator=GivingUpAuthenticator("good"), pool=pool).size
    connections = pool.connection_from_url(server.url("/private3"))
    assert connections.pool is not None
    assert connections.pool.qsize() == connections.pool.maxsize  # the refused response's connection came back


def test_credentials_never_go_to_another_host(server: BlobServer, second: BlobServer) -> None:
    second.add("/storage/blob2", BLOB)
    url = server.redirect("/v2/blob2", second.url("/storage/blob2"))
    auth = TokenAuthenticator("good")
    auth.current = "good"
    server.reset_log()
    source = HTTPSource(url, headers={"Authorization": "Basic dXNlcg==", "X-Trace": "t1"}, authenticator=auth)
    assert source.read_ranges([(0, 10), (1000, 10)]) == [BLOB[:10], BLOB[1000:1010]]
    assert [r.headers.get("authorization") for r in server.requests] == ["Bearer good"]
    assert second.requests
    for record in second.requests:
        assert "authorization" not in record.headers
        assert record.headers["x-trace"] == "t1"
    assert auth.asked == [url]


# ---- concurrency, TLS, the reader ----


def test_eight_threads_share_one_source(proxy: FaultProxy) -> None:
    source = fast(proxy.url("/blob"), retries=6)
    proxy.inject("reset", every=7)
    proxy.inject("truncate", every=5)
    failures: list[str] = []

    def work(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(25):
            ranges = [(o, rng.randrange(1, 3000)) for o in rng.sample(range(len(BLOB) - 3000), 3)]
            if rng.random() < 0.5:
                got = [source.read_at(*ranges[0])]
                ranges = ranges[:1]
            else:
                got = source.read_ranges(ranges)
            if got != expected(ranges):
                failures.append(f"thread {seed}: wrong bytes for {ranges}")

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert proxy.faults() > 0
    assert source.stats.retries == proxy.faults()
    assert source.stats.requests == len(proxy.applied)


def test_threads_that_need_the_size_share_one_request(server: BlobServer) -> None:
    source = HTTPSource(server.url("/blob"))
    sizes: list[int] = []
    threads = [threading.Thread(target=lambda: sizes.append(source.size)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sizes == [len(BLOB)] * 8
    assert source.stats.requests == 1


@module_fixture
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1, made with the openssl command."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return str(cert), str(key)


def test_https_self_signed_needs_insecure(certificate: tuple[str, str]) -> None:
    with BlobServer(tls=certificate) as blob_server:
        url = blob_server.add("/blob", BLOB)
        assert url.startswith("https://")
        with pytest.raises(SourceError, match="TLS failure"):
            _ = fast(url).size
        source = HTTPSource(url, insecure=True)
        with pytest.warns(urllib3.exceptions.InsecureRequestWarning):
            assert source.read_at(10, 10) == BLOB[10:20]


def test_insecure_applies_to_tls_only(server: BlobServer) -> None:
    """``insecure=True`` on a plain-HTTP URL reads normally (urllib3 refuses TLS options for HTTP)."""
    assert HTTPSource(server.url("/blob"), insecure=True).read_at(5, 10) == BLOB[5:15]


def test_sources_share_a_pool(server: BlobServer, second: BlobServer) -> None:
    second.add("/blob", BLOB[::-1])
    pool = urllib3.PoolManager()
    first, other = HTTPSource(server.url("/blob"), pool=pool), HTTPSource(second.url("/blob"), pool=pool)
    assert first.read_at(0, 10) == BLOB[:10]
    assert other.read_at(0, 10) == BLOB[::-1][:10]
    first.close()  # a shared pool belongs to its owner: closing a source leaves it open
    assert len(pool.pools) == 2
    assert other.read_at(10, 10) == BLOB[::-1][10:20]


def test_as_source_makes_http_sources_without_a_request() -> None:
    source = as_source("https://127.0.0.1:9/blob")
    assert isinstance(source, HTTPSource)
    assert source.url == "https://127.0.0.1:9/blob"
    assert source.stats.requests == 0
    assert repr(HTTPSource("http://u:p@127.0.0.1:9/b?sig=secret")) == "HTTPSource('http://127.0.0.1:9/b')"


@module_fixture
def vector_server() -> Iterator[BlobServer]:
    with BlobServer() as blob_server:
        for param in vector_params():
            case: VectorCase = param.values[0]
            blob_server.add(f"/{case.name}", case.blob.read_bytes())
        yield blob_server


@pytest.mark.parametrize("case", vector_params())
def test_reader_over_http_equals_local_read(vector_server: BlobServer, case: VectorCase) -> None:
    source = HTTPSource(vector_server.url(f"/{case.name}"))
    with pystargz.open(source) as remote, pystargz.open(case.blob) as local:
        assert remote.getnames() == local.getnames()
        for name in regular_names(local):
            assert read_file(remote, name) == read_file(local, name), name
    assert source.stats.retries == 0


def test_open_takes_a_url(vector_server: BlobServer) -> None:
    case: VectorCase = vector_params()[0].values[0]
    with pystargz.open(vector_server.url(f"/{case.name}")) as remote, pystargz.open(case.blob) as local:
        assert isinstance(remote.source, HTTPSource)
        assert remote.getnames() == local.getnames()
