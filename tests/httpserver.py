"""A range-capable HTTP server on 127.0.0.1 for tests: blobs served from memory.

Usage::

    with BlobServer() as server:
        url = server.add("/blob.esgz", data)            # GET / HEAD, any Range form
        server.add("/signed", data, expire_after=2)      # each ?sig=... works for 2 requests, then 403
        server.redirect("/v2/blob", server.url("/signed"), sign=True)   # 307 to /signed?sig=N
        server.add("/private", data, auth="Bearer t0k")  # 401 + WWW-Authenticate without that header
        ...
        server.requests   # every request seen: method, path, headers (lower-case names), status

A second ``BlobServer`` is a second host (another port, so another origin):
redirect from one to the other to test cross-host behaviour.  ``multirange``
chooses how requests for several ranges are answered: ``"multipart"``
(``multipart/byteranges``, the default), ``"coalesce"`` (one 206 range from
the first start to the last end, as RFC 9110 allows), ``"full"`` (200 and the
whole blob, as some blob stores do) or ``"reject"`` (400).  ``suffix=False``
answers suffix ranges (``bytes=-N``) with 416, as servers without them do.
``tls=(certfile, keyfile)`` serves HTTPS.  ``serve_forever`` runs in a
daemon thread; the server speaks HTTP/1.1 with keep-alive, so clients reuse
connections as they would with a real server.
"""

from __future__ import annotations

import http.server
import re
import socket
import ssl
import sys
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, TypeVar

MultiRange = Literal["multipart", "coalesce", "full", "reject"]

_RANGE_SPEC = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$")
_Server = TypeVar("_Server", bound="LocalServer")


@dataclass(frozen=True)
class RequestRecord:
    """One request as the server saw it, and the status it answered."""

    method: str
    path: str
    headers: Mapping[str, str]  # names lower-cased
    status: int


def _lowered(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {name.lower(): value for name, value in items}


@dataclass
class _Blob:
    data: bytes
    auth: str | None = None
    expire_after: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    uses: dict[str, int] = field(default_factory=dict)


@dataclass
class _Redirect:
    target: str
    status: int
    sign: bool


class LocalServer:
    """An HTTP server on 127.0.0.1 (a free port) answering from a daemon thread, as a context manager.

    The test servers (blobs, the fault proxy, the token endpoint) differ only in
    their handler; this is the rest, so they start, stop and name their URLs alike.
    """

    scheme = "http"

    def __init__(
        self, handler: type[http.server.BaseHTTPRequestHandler], name: str, *, poll_interval: float = 0.5
    ) -> None:
        self._httpd = QuietHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(poll_interval,), name=name, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def origin(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.origin + path

    def start(self: _Server) -> _Server:
        self._thread.start()
        return self

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def __enter__(self: _Server) -> _Server:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class BlobServer(LocalServer):
    """See the module docstring."""

    def __init__(
        self,
        *,
        multirange: MultiRange = "multipart",
        suffix: bool = True,
        realm: str = "test",
        tls: tuple[str, str] | None = None,
    ) -> None:
        self.multirange: MultiRange = multirange
        self.suffix = suffix
        self.realm = realm
        self.requests: list[RequestRecord] = []
        self._blobs: dict[str, _Blob] = {}
        self._redirects: dict[str, _Redirect] = {}
        self._lock = threading.Lock()
        self._signatures = 0
        super().__init__(_make_handler(self), "BlobServer")
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
            self.scheme = "https"

    # ---- set-up ----

    def add(
        self,
        path: str,
        data: bytes,
        *,
        auth: str | None = None,
        expire_after: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> str:
        """Serves ``data`` at ``path``; returns its URL.

        ``auth``: the exact ``Authorization`` value required, else 401 with a
        ``WWW-Authenticate: Bearer realm=...`` challenge.  ``expire_after``:
        each distinct query string (a "signature") answers that many requests,
        then 403, like an expired pre-signed URL.  ``headers`` are added to
        its 200 and 206 answers.
        """
        with self._lock:
            self._blobs[path] = _Blob(bytes(data), auth, expire_after, dict(headers or {}))
        return self.url(path)

    def redirect(self, path: str, target: str, *, status: int = 307, sign: bool = False) -> str:
        """Answers ``path`` with a redirect to ``target`` (an absolute URL); returns the URL of ``path``.

        ``sign=True`` appends a fresh ``?sig=N`` to each redirect, so each
        resolution yields a new "signed URL" (see ``expire_after``).
        """
        with self._lock:
            self._redirects[path] = _Redirect(target, status, sign)
        return self.url(path)

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """How many requests matched ``method`` and ``path`` (None matches any)."""
        with self._lock:
            return sum(
                1
                for r in self.requests
                if (method is None or r.method == method) and (path is None or r.path.split("?")[0] == path)
            )

    def reset_log(self) -> None:
        with self._lock:
            self.requests.clear()

    # ---- answers (called by the handler) ----

    def _record(self, handler: http.server.BaseHTTPRequestHandler, status: int) -> None:
        record = RequestRecord(handler.command, handler.path, _lowered(handler.headers.items()), status)
        with self._lock:
            self.requests.append(record)

    def _next_signature(self) -> int:
        with self._lock:
            self._signatures += 1
            return self._signatures

    def _lookup(self, path: str) -> tuple[_Blob | None, _Redirect | None]:
        with self._lock:
            return self._blobs.get(path), self._redirects.get(path)

    def _spend(self, blob: _Blob, query: str) -> bool:
        """Counts one use of a signature; False once it has expired."""
        if blob.expire_after is None:
            return True
        with self._lock:
            blob.uses[query] = blob.uses.get(query, 0) + 1
            return blob.uses[query] <= blob.expire_after


class QuietHTTPServer(http.server.ThreadingHTTPServer):
    """A threaded server that does not print the tracebacks of clients that hang up mid-request.

    Clients close connections with unread data on purpose (a body they no
    longer need), which the handler sees as a reset: not worth a traceback.
    """

    daemon_threads = True

    def handle_error(self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any) -> None:
        error = sys.exc_info()[1]
        if not isinstance(error, (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


def parse_range_header(value: str, size: int, *, suffix: bool = True) -> list[tuple[int, int]] | None:
    """``(start, end)`` pairs (end exclusive) of the satisfiable specs of a ``bytes=`` header.

    None when the header is not a byte-range header (then it is ignored, as
    RFC 9110 says); an empty list when no spec is satisfiable (416).  With
    ``suffix=False`` suffix specs (``-N``) are never satisfiable.
    """
    unit, _, specs = value.partition("=")
    if unit.strip().lower() != "bytes" or not specs:
        return None
    ranges = []
    for spec in specs.split(","):
        match = _RANGE_SPEC.match(spec)
        if match is None or match.group(0).strip() == "-":
            return None
        first, last = match.group(1), match.group(2)
        if first == "":
            if suffix and int(last) > 0 and size > 0:
                ranges.append((max(0, size - int(last)), size))
            continue
        start = int(first)
        end = size if last == "" else min(int(last) + 1, size)
        if last != "" and int(last) < start:
            return None
        if start < size:
            ranges.append((start, end))
    return ranges


def _make_handler(server: BlobServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the request log is ``server.requests``."""

        def do_HEAD(self) -> None:
            self._answer(body=False)

        def do_GET(self) -> None:
            self._answer(body=True)

        def _answer(self, *, body: bool) -> None:
            path, _, query = self.path.partition("?")
            blob, redirect = server._lookup(path)
            if redirect is not None:
                target = redirect.target
                if redirect.sign:
                    target += f"?sig={server._next_signature()}"
                self._send(redirect.status, b"", {"Location": target}, body)
            elif blob is None:
                self._send(404, b"not found\n", {"Content-Type": "text/plain"}, body)
            elif blob.auth is not None and self.headers.get("Authorization") != blob.auth:
                challenge = f'Bearer realm="{server.realm}",service="blobserver"'
                self._send(401, b"unauthorized\n", {"WWW-Authenticate": challenge}, body)
            elif not server._spend(blob, query):
                self._send(403, b"signature expired\n", {"Content-Type": "text/plain"}, body)
            else:
                self._serve(blob, body)

        def _serve(self, blob: _Blob, body: bool) -> None:
            data = blob.data
            size = len(data)
            header = self.headers.get("Range")
            ranges = None if header is None else parse_range_header(header, size, suffix=server.suffix)
            plain = {"Accept-Ranges": "bytes", "Content-Type": "application/octet-stream", **blob.headers}
            if ranges is None:
                self._send(200, data, plain, body)
            elif not ranges:
                self._send(416, b"", {"Content-Range": f"bytes */{size}"}, body)
            elif len(ranges) == 1:
                start, end = ranges[0]
                headers = {**plain, "Content-Range": f"bytes {start}-{end - 1}/{size}"}
                self._send(206, data[start:end], headers, body)
            elif server.multirange == "coalesce":
                start, end = min(r[0] for r in ranges), max(r[1] for r in ranges)
                headers = {**plain, "Content-Range": f"bytes {start}-{end - 1}/{size}"}
                self._send(206, data[start:end], headers, body)
            elif server.multirange == "full":
                self._send(200, data, plain, body)
            elif server.multirange == "reject":
                self._send(400, b"multiple ranges not supported\n", {"Content-Type": "text/plain"}, body)
            else:
                boundary = uuid.uuid4().hex
                payload = _multipart(data, ranges, boundary)
                headers = {"Content-Type": f"multipart/byteranges; boundary={boundary}"}
                self._send(206, payload, headers, body)

        def _send(self, status: int, payload: bytes, headers: Mapping[str, str], body: bool) -> None:
            server._record(self, status)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if body:
                self.wfile.write(payload)

    return Handler


def _multipart(data: bytes, ranges: list[tuple[int, int]], boundary: str) -> bytes:
    """A ``multipart/byteranges`` body (RFC 9110 section 14.6), one part per range, in request order."""
    parts = []
    for start, end in ranges:
        head = (
            f"--{boundary}\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Range: bytes {start}-{end - 1}/{len(data)}\r\n\r\n"
        )
        parts.append(head.encode("ascii") + data[start:end] + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode("ascii")
