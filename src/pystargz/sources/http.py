"""Blobs over HTTP(S): byte ranges fetched with urllib3.

The reader needs a handful of ranges of a blob (its tail, then gzip members),
so this source asks for exactly those: a suffix range first (which also tells
the blob's size), then single or multi-range requests.  Servers and proxies
in the wild answer Range in many ways (206, 200 with the whole body, 400 to
several ranges, signed redirects that expire), and networks drop or cut
responses; every answer is checked against what was asked, transient
failures are retried with backoff, and anything else becomes a
:class:`~pystargz.errors.SourceError` — a wrong byte is never returned.
"""

from __future__ import annotations

import re
import threading
import time
import urllib.parse
from bisect import bisect_right
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

import urllib3
from urllib3.exceptions import HTTPError, IncompleteRead, ProtocolError, SSLError
from urllib3.exceptions import TimeoutError as URLLib3TimeoutError

from pystargz.errors import InternalError, SourceError
from pystargz.sources.base import SourceStats, check_range

#: How many ranges one multi-range request may ask for, and how long its Range header may be.
MAX_RANGES_PER_REQUEST = 64
MAX_RANGE_HEADER = 4000
#: The suffix range asked when only the size is wanted: on a layer it usually brings footer and TOC too.
TAIL_PROBE = 64 * 1024
MAX_REDIRECTS = 10
#: The longest pause between two attempts, in seconds.
MAX_BACKOFF = 10.0

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)\s*$", re.IGNORECASE)
_BOUNDARY = re.compile(r';\s*boundary\s*=\s*(?:"([^"]+)"|([^\s;]+))', re.IGNORECASE)
#: Drained to keep a connection alive rather than closed (error pages, unread rest of a short body).
_DRAIN_LIMIT = 64 * 1024
_STREAM_CHUNK = 1024 * 1024

_T = TypeVar("_T")


class Authenticator(Protocol):
    """Supplies credentials for the requests of an :class:`HTTPSource`.

    ``headers`` gives the headers to add to a request for ``url`` (e.g. a
    bearer token); ``challenge`` is called on a 401 with that response's
    headers (``WWW-Authenticate``) and returns True when it obtained new
    credentials, so that the request is sent once more.  Both are asked only
    for URLs of the source's own origin: redirect targets on other hosts
    (blob storage) get no credentials.
    """

    def headers(self, url: str) -> Mapping[str, str]: ...

    def challenge(self, url: str, response_headers: Mapping[str, str]) -> bool: ...


class _Transient(Exception):
    """A failure that another attempt may not have: connection lost, 5xx, short or mismatched answer."""


class HTTPSource:
    """A blob at an ``http://`` or ``https://`` URL, read with Range requests.

    ``headers`` are sent with every request (credential headers only to the
    URL's own origin); ``authenticator`` adds credentials and answers 401
    challenges; ``pool`` shares one :class:`urllib3.PoolManager` between
    sources (one is made otherwise); ``timeout`` bounds connecting and each
    read, in seconds; ``retries`` is how many times a request is repeated
    after a transient failure (connection error, timeout, truncated or
    mismatched body, 5xx, 429), waiting ``backoff * 2**n`` seconds before the
    n-th; ``insecure`` skips TLS certificate checks; ``size``, when known
    (from a manifest), saves the request that would learn it and is checked
    against every response.  Thread-safe.
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        authenticator: Authenticator | None = None,
        pool: urllib3.PoolManager | None = None,
        timeout: float = 30.0,
        retries: int = 4,
        backoff: float = 0.2,
        insecure: bool = False,
        size: int | None = None,
    ) -> None:
        _check_url(url, "not an http(s) URL")
        if retries < 0 or backoff < 0 or timeout <= 0:
            raise ValueError("retries and backoff must not be negative, timeout must be positive")
        if size is not None and size < 0:
            raise ValueError(f"size must not be negative, not {size}")
        self._url = url
        self._origin = _origin(url)
        self._headers = dict(headers or {})
        self._auth = authenticator
        self._own_pool = pool is None
        self._pool = pool if pool is not None else urllib3.PoolManager(num_pools=16, maxsize=16)
        self._pool_kwargs: dict[str, Any] | None = (
            {"cert_reqs": "CERT_NONE", "assert_hostname": False} if insecure else None
        )
        self._timeout = urllib3.Timeout(connect=timeout, read=timeout)
        self._retries = retries
        self._backoff = backoff
        self._lock = threading.Lock()
        self._probe_lock = threading.Lock()
        self._size = size
        self._tail: tuple[int, bytes] | None = None
        self._resolved: str | None = None
        self._multirange = True
        self._requests = 0
        self._bytes = 0
        self._retried = 0

    # ---- public API ----

    @property
    def url(self) -> str:
        return self._url

    @property
    def size(self) -> int:
        """The blob's size; learned from the first response (a suffix range of :data:`TAIL_PROBE` bytes)."""
        if self._size is None:
            with self._probe_lock:  # threads that all need the size share one request
                if self._size is None:
                    self.read_tail(TAIL_PROBE)
        if self._size is None:
            raise InternalError(f"the size of {_display(self._url)} is still unknown after reading its tail")
        return self._size

    @property
    def stats(self) -> SourceStats:
        """Requests sent, body bytes received and retries, so far."""
        with self._lock:
            return SourceStats(self._requests, self._bytes, self._retried)

    def read_at(self, offset: int, length: int) -> bytes:
        check_range(offset, length, self.size, _display(self._url))
        if length == 0:
            return b""
        kept = self._from_tail(offset, length)
        if kept is not None:
            return kept
        return self._fetch_span(offset, length)

    def read_tail(self, n: int) -> bytes:
        """The last ``min(n, size)`` bytes, in one request; learns the size if it is not known yet.

        The tail is kept (the largest one asked), so that reads inside it,
        such as a TOC right before the footer, cost no further request.
        """
        if n <= 0:
            raise ValueError(f"read_tail needs a positive length, not {n}")
        size = self._size
        if size is None:
            what = f"reading the last {n} bytes of {_display(self._url)}"
            tail = self._attempts(what, lambda: self._suffix(n))
            if tail is not None:
                return tail
            size = self._head_size()
        length = min(n, size)
        kept = self._from_tail(size - length, length)
        if kept is not None:
            return kept
        data = self._fetch_span(size - length, length) if length else b""
        self._keep_tail(size - length, data)
        return data

    def read_ranges(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        """The bytes of each ``(offset, length)`` range, in the order asked, in as few requests as it can.

        Overlapping and touching ranges are merged, then asked up to
        :data:`MAX_RANGES_PER_REQUEST` at a time in ``multipart/byteranges``
        requests; a server that refuses those (400, 416, or 200 with the
        whole body) is asked one range at a time from then on.
        """
        size = self.size
        for offset, length in ranges:
            check_range(offset, length, size, _display(self._url))
        results: list[bytes | None] = [self._from_tail(o, n) if n else b"" for o, n in ranges]
        wanted = [(o, o + n) for (o, n), got in zip(ranges, results, strict=True) if got is None]
        spans = _merge(wanted)
        fetched = self._fetch_spans(spans)
        starts = [start for start, _ in spans]
        out = []
        for (offset, length), got in zip(ranges, results, strict=True):
            if got is None:
                span = spans[bisect_right(starts, offset) - 1]
                got = fetched[span][offset - span[0] : offset - span[0] + length]
            out.append(got)
        return out

    def close(self) -> None:
        """Closes the pooled connections if this source made the pool."""
        if self._own_pool:
            self._pool.clear()

    def __repr__(self) -> str:
        return f"HTTPSource({_display(self._url)!r})"

    # ---- reading ----

    def _from_tail(self, offset: int, length: int) -> bytes | None:
        with self._lock:
            tail = self._tail
        if tail is None or offset < tail[0] or offset + length > tail[0] + len(tail[1]):
            return None
        return tail[1][offset - tail[0] : offset - tail[0] + length]

    def _keep_tail(self, start: int, data: bytes) -> None:
        with self._lock:
            if self._tail is None or len(data) > len(self._tail[1]):
                self._tail = (start, data)

    def _learn_size(self, total: int, url: str) -> None:
        with self._lock:
            if self._size is None:
                self._size = total
                return
            known = self._size
        if total != known:
            raise SourceError(f"{_display(url)} has {total} bytes, not {known}: the blob changed")

    def _suffix(self, n: int) -> bytes | None:
        """One attempt at ``bytes=-n``; None when the server does not do suffix ranges."""
        with self._exchange("GET", f"bytes=-{n}") as (response, url):
            status = response.status
            if status == 206:
                start, end, total = self._content_range(response.headers.get("Content-Range"), url)
                if end != total or start != total - min(n, total):
                    raise _Transient(f"asked for the last {n} bytes, got bytes {start}-{end - 1}/{total}")
                data = self._read(response, url, end - start)
                self._learn_size(total, url)
            elif status == 200:
                start, data = self._stream_tail(response, url, n)
                self._learn_size(start + len(data), url)
            elif status == 416 and _unsatisfied_total(response.headers.get("Content-Range")) == 0:
                self._learn_size(0, url)
                return b""
            elif status in (400, 416, 501):
                return None
            else:
                raise self._status_error(response, url, f"the last {n} bytes")
        self._keep_tail(start, data)
        return data

    def _stream_tail(self, response: urllib3.BaseHTTPResponse, url: str, n: int) -> tuple[int, bytes]:
        """The whole body of a server that ignored Range: keeps only its last ``n`` bytes."""
        declared = _content_length(response)
        tail = b""
        total = 0
        while True:
            chunk = self._read_some(response, url, _STREAM_CHUNK)
            if not chunk:
                break
            total += len(chunk)
            tail = (tail + chunk)[-n:]
        if declared is not None and declared != total:
            raise _Transient(f"the body ended after {total} of {declared} bytes")
        return total - len(tail), tail

    def _head_size(self) -> int:
        def attempt() -> int:
            with self._exchange("HEAD", None) as (response, url):
                if response.status != 200:
                    raise self._status_error(response, url, "its size")
                size = _content_length(response)
                if size is None:
                    raise SourceError(f"{_display(url)} tells neither Content-Range nor Content-Length")
                self._learn_size(size, url)
                return size

        return self._attempts(f"asking the size of {_display(self._url)}", attempt)

    def _fetch_span(self, offset: int, length: int) -> bytes:
        """``length`` (> 0) bytes at ``offset`` with a single-range request."""

        def attempt() -> bytes:
            with self._exchange("GET", f"bytes={offset}-{offset + length - 1}") as (response, url):
                if response.status == 206:
                    start, end, total = self._content_range(response.headers.get("Content-Range"), url)
                    self._learn_size(total, url)
                    if start > offset or end < offset + length:
                        raise _Transient(
                            f"asked for bytes {offset}-{offset + length - 1}, got bytes {start}-{end - 1}"
                        )
                    data = self._read(response, url, end - start)
                    return data[offset - start : offset - start + length]
                if response.status == 200:
                    return self._from_whole(response, url, offset + length)[offset:]
                raise self._status_error(response, url, f"bytes {offset}-{offset + length - 1}")

        return self._attempts(f"reading {length} bytes at offset {offset} of {_display(self._url)}", attempt)

    def _from_whole(self, response: urllib3.BaseHTTPResponse, url: str, end: int) -> bytes:
        """The first ``end`` bytes of a 200 answer, which must be the whole blob; the rest is not read."""
        declared = _content_length(response)
        size = self.size
        if declared is None:  # only the whole body's length can show that it is the blob
            data = self._read(response, url, None)
            if len(data) != size:
                raise _Transient(f"ignored the Range header and sent {len(data)} bytes; the blob has {size}")
            return data[:end]
        if declared != size:
            raise _Transient(f"ignored the Range header and sent {declared} bytes; the blob has {size}")
        return self._read(response, url, end, whole=False)

    def _fetch_spans(self, spans: list[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        fetched: dict[tuple[int, int], bytes] = {}
        for batch in _batches(spans):
            if len(batch) > 1 and self._multirange:
                fetched.update(self._fetch_multi(batch))
            for start, end in batch:
                if (start, end) not in fetched:
                    fetched[start, end] = self._fetch_span(start, end - start)
        return fetched

    def _fetch_multi(self, batch: list[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """The spans of one multi-range answer; those it lacks are left to single-range requests."""
        header = "bytes=" + ",".join(f"{start}-{end - 1}" for start, end in batch)

        def attempt() -> dict[tuple[int, int], bytes]:
            with self._exchange("GET", header) as (response, url):
                if response.status in (400, 416, 501):
                    self._multirange = False
                    return {}
                if response.status == 200:
                    self._multirange = False
                    whole = self._from_whole(response, url, batch[-1][1])
                    return {(start, end): whole[start:end] for start, end in batch}
                if response.status != 206:
                    raise self._status_error(response, url, f"{len(batch)} ranges")
                parts = self._parts(response, url)
            return _cover(batch, parts)

        return self._attempts(f"reading {len(batch)} ranges of {_display(self._url)}", attempt)

    def _parts(self, response: urllib3.BaseHTTPResponse, url: str) -> list[tuple[int, bytes]]:
        """``(start, data)`` of each part of a 206 answer, multipart or a single (coalesced) range."""
        content_type = response.headers.get("Content-Type", "")
        match = _BOUNDARY.search(content_type)
        if not content_type.lower().startswith("multipart/byteranges") or match is None:
            start, end, total = self._content_range(response.headers.get("Content-Range"), url)
            self._learn_size(total, url)
            return [(start, self._read(response, url, end - start))]
        boundary = (match.group(1) or match.group(2)).encode("latin-1")
        body = self._read(response, url, _content_length(response))
        try:
            parts = parse_byteranges(body, boundary)
        except ValueError as exc:
            raise _Transient(f"malformed multipart/byteranges body: {exc}") from exc
        for _, _, total, _ in parts:
            self._learn_size(total, url)
        return [(start, data) for start, _, _, data in parts]

    # ---- one response ----

    def _read(
        self, response: urllib3.BaseHTTPResponse, url: str, expected: int | None, *, whole: bool = True
    ) -> bytes:
        """Reads ``expected`` bytes of the body (all of it when ``whole``); fewer is a transient failure."""
        if expected is None:
            data = self._read_some(response, url, None)
        else:
            data = b""
            while len(data) < expected:
                chunk = self._read_some(response, url, expected - len(data))
                if not chunk:
                    break
                data += chunk
            if whole and len(data) == expected and self._read_some(response, url, 1):
                raise _Transient(f"the body from {_display(url)} is longer than its {expected} bytes")
        if expected is not None and len(data) != expected:
            raise _Transient(f"the body from {_display(url)} ended after {len(data)} of {expected} bytes")
        return data

    def _read_some(self, response: urllib3.BaseHTTPResponse, url: str, amount: int | None) -> bytes:
        try:
            data = response.read(amount, decode_content=False)
        except (ProtocolError, IncompleteRead, URLLib3TimeoutError, OSError) as exc:
            raise _Transient(f"reading the body from {_display(url)} failed: {exc}") from exc
        with self._lock:
            self._bytes += len(data)
        return data

    def _content_range(self, value: str | None, url: str) -> tuple[int, int, int]:
        """``(start, end, total)``, end exclusive, of a 206's Content-Range; a bad one is transient."""
        match = _CONTENT_RANGE.match(value or "")
        if match is None or match.group(1) is None or match.group(3) == "*":
            raise _Transient(f"{_display(url)} answered 206 with Content-Range {value!r}")
        start, last, total = int(match.group(1)), int(match.group(2)), int(match.group(3))
        if last < start or last >= total:
            raise _Transient(f"{_display(url)} answered 206 with Content-Range {value!r}")
        return start, last + 1, total

    def _status_error(self, response: urllib3.BaseHTTPResponse, url: str, what: str) -> SourceError:
        status = response.status
        detail = {401: "authentication required", 403: "access denied", 404: "not found"}.get(status, "")
        if status == 401 and "WWW-Authenticate" in response.headers:
            detail += f" (WWW-Authenticate: {response.headers['WWW-Authenticate']})"
        if status == 416:
            detail = f"range not satisfiable (Content-Range: {response.headers.get('Content-Range')})"
        return SourceError(f"HTTP {status} {detail or response.reason} for {what} of {_display(url)}")

    # ---- requests: retries, redirects, credentials ----

    def _attempts(self, what: str, attempt: Callable[[], _T]) -> _T:
        """Runs ``attempt`` until it succeeds, repeating it after transient failures with backoff."""
        failure: _Transient | None = None
        for number in range(self._retries + 1):
            if number:
                with self._lock:
                    self._retried += 1
                time.sleep(min(MAX_BACKOFF, self._backoff * 2 ** (number - 1)))
            try:
                return attempt()
            except _Transient as exc:
                failure = exc
        raise SourceError(f"{what} failed after {self._retries + 1} attempts: {failure}") from failure

    @contextmanager
    def _exchange(
        self, method: str, range_value: str | None
    ) -> Iterator[tuple[urllib3.BaseHTTPResponse, str]]:
        """The final response (body unread) and its URL; the connection goes back to the pool after."""
        response, url = self._send(method, range_value)
        try:
            encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
            if encoding not in ("", "identity"):
                raise SourceError(
                    f"{_display(url)} sent the blob with Content-Encoding {encoding}: byte ranges unusable"
                )
            yield response, url
        finally:
            _finish(response)

    def _send(self, method: str, range_value: str | None) -> tuple[urllib3.BaseHTTPResponse, str]:
        """Sends one request, following redirects, answering 401 challenges and re-resolving expired URLs.

        A redirect's final URL is remembered and asked directly next time;
        when it answers 401 or 403 (an expired signed URL) the original URL is
        resolved again, once per request.
        """
        reresolved = challenged = False
        while True:
            with self._lock:
                start = self._resolved or self._url
            response, url = self._follow(method, start, range_value)
            status = response.status
            if status in (401, 403) and start != self._url and not reresolved:
                _finish(response)
                reresolved = True
                with self._lock:
                    if self._resolved == start:
                        self._resolved = None
                continue
            if status == 401 and self._auth is not None and not challenged and self._same_origin(url):
                headers = dict(response.headers)
                challenged = True
                try:
                    answered = self._auth.challenge(url, headers)
                except BaseException:
                    _finish(response)  # the authenticator gave up: no caller will read this response
                    raise
                if answered:
                    _finish(response)
                    continue
            if 200 <= status < 300 and url != self._url:
                with self._lock:
                    self._resolved = url
            return response, url

    def _follow(self, method: str, url: str, range_value: str | None) -> tuple[urllib3.BaseHTTPResponse, str]:
        for _ in range(MAX_REDIRECTS + 1):
            response = self._request(method, url, range_value)
            location = response.headers.get("Location")
            if response.status in _REDIRECT_STATUSES and location:
                _finish(response)
                url = _check_url(urllib.parse.urljoin(url, location), f"bad redirect from {_display(url)}")
                continue
            if response.status == 429 or (response.status >= 500 and response.status not in (501, 505)):
                _finish(response)
                raise _Transient(f"HTTP {response.status} {response.reason} from {_display(url)}")
            return response, url
        raise SourceError(f"more than {MAX_REDIRECTS} redirects from {_display(self._url)}")

    def _request(self, method: str, url: str, range_value: str | None) -> urllib3.BaseHTTPResponse:
        with self._lock:
            self._requests += 1
        try:
            # TLS options are for TLS connections only: urllib3 refuses them for plain HTTP.
            tls = self._pool_kwargs if url.startswith("https:") else None
            pool = self._pool.connection_from_url(url, pool_kwargs=tls)
            return pool.urlopen(
                method,
                _request_target(url),
                headers=self._headers_for(url, range_value),
                retries=False,
                redirect=False,
                assert_same_host=False,
                timeout=self._timeout,
                preload_content=False,
                decode_content=False,
            )
        except SSLError as exc:
            raise SourceError(f"TLS failure with {_display(url)}: {exc}") from exc
        except (ProtocolError, URLLib3TimeoutError, OSError) as exc:
            raise _Transient(f"{method} {_display(url)} failed: {exc}") from exc
        except HTTPError as exc:
            raise SourceError(f"{method} {_display(url)} failed: {exc}") from exc

    def _headers_for(self, url: str, range_value: str | None) -> dict[str, str]:
        same_origin = self._same_origin(url)
        headers = {"Accept-Encoding": "identity"}
        for name, value in self._headers.items():
            if same_origin or name.lower() not in _CREDENTIAL_HEADERS:
                headers[name] = value
        if same_origin and self._auth is not None:
            headers.update(self._auth.headers(url))
        if range_value is not None:
            headers["Range"] = range_value
        return headers

    def _same_origin(self, url: str) -> bool:
        return _origin(url) == self._origin


# ---- helpers ----


def parse_byteranges(body: bytes, boundary: bytes) -> list[tuple[int, int, int, bytes]]:
    """``(start, end, total, data)`` (end exclusive) of each part of a ``multipart/byteranges`` body.

    Each part is cut by its own Content-Range length, not by searching the
    boundary (which may occur in the data), and must be followed by the next
    delimiter; anything else is a ValueError.
    """
    delimiter = b"--" + boundary
    position = body.find(delimiter)
    if position < 0:
        raise ValueError("no boundary delimiter")
    parts: list[tuple[int, int, int, bytes]] = []
    while True:
        position += len(delimiter)
        if body.startswith(b"--", position):
            return parts
        headers_end = body.find(b"\r\n\r\n", position)
        if headers_end < 0:
            raise ValueError(f"part {len(parts) + 1} has no end of headers")
        lines = body[position:headers_end].split(b"\r\n")
        if lines[0].strip(b" \t"):
            raise ValueError(f"garbage after boundary delimiter of part {len(parts) + 1}")
        value = _part_header(lines[1:], b"content-range")
        match = _CONTENT_RANGE.match(value or "")
        if match is None or match.group(1) is None or match.group(3) == "*":
            raise ValueError(f"part {len(parts) + 1} has Content-Range {value!r}")
        start, last, total = int(match.group(1)), int(match.group(2)), int(match.group(3))
        if last < start or last >= total:
            raise ValueError(f"part {len(parts) + 1} has Content-Range {value!r}")
        data_start = headers_end + 4
        data_end = data_start + last + 1 - start
        if not body.startswith(b"\r\n" + delimiter, data_end):
            raise ValueError(f"part {len(parts) + 1} (bytes {start}-{last}) is not followed by a delimiter")
        parts.append((start, last + 1, total, body[data_start:data_end]))
        position = data_end + 2


def _part_header(lines: list[bytes], name: bytes) -> str | None:
    for line in lines:
        key, sep, value = line.partition(b":")
        if sep and key.strip().lower() == name:
            return value.strip().decode("latin-1")
    return None


def _cover(spans: list[tuple[int, int]], parts: list[tuple[int, bytes]]) -> dict[tuple[int, int], bytes]:
    """Each span that lies inside one received part, cut from it."""
    covered = {}
    for start, end in spans:
        for part_start, data in parts:
            if part_start <= start and end <= part_start + len(data):
                covered[start, end] = data[start - part_start : end - part_start]
                break
    return covered


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted ``(start, end)`` spans with overlapping and touching ranges joined."""
    spans: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], end))
        else:
            spans.append((start, end))
    return spans


def _batches(spans: list[tuple[int, int]]) -> Iterator[list[tuple[int, int]]]:
    """Groups of spans small enough for one Range header."""
    batch: list[tuple[int, int]] = []
    length = len("bytes=")
    for start, end in spans:
        spec = len(f"{start}-{end - 1},")
        if batch and (len(batch) == MAX_RANGES_PER_REQUEST or length + spec > MAX_RANGE_HEADER):
            yield batch
            batch, length = [], len("bytes=")
        batch.append((start, end))
        length += spec
    if batch:
        yield batch


def _unsatisfied_total(value: str | None) -> int | None:
    """The total of a 416's ``bytes */TOTAL``."""
    match = _CONTENT_RANGE.match(value or "")
    if match is None or match.group(1) is not None or match.group(3) == "*":
        return None
    return int(match.group(3))


def _content_length(response: urllib3.BaseHTTPResponse) -> int | None:
    value = response.headers.get("Content-Length", "")
    return int(value) if value.strip().isdigit() else None


def _finish(response: urllib3.BaseHTTPResponse) -> None:
    """Returns the connection to the pool: drains a short unread rest, closes a long one."""
    remaining = getattr(response, "length_remaining", None)
    if remaining is None or remaining > _DRAIN_LIMIT:
        response.close()
    else:
        response.drain_conn()
    response.release_conn()


def _check_url(url: str, problem: str) -> str:
    """``url`` if it is an absolute http(s) URL that can be parsed; SourceError otherwise."""
    try:
        parts = urllib.parse.urlsplit(url)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname) and (parts.port or 0) >= 0
    except ValueError:
        valid = False
    if not valid:
        raise SourceError(f"{problem}: {url.split('?')[0]!r}")
    return url


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def _request_target(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _display(url: str) -> str:
    """The URL without user info and query: signed URLs carry credentials in their query string."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))
