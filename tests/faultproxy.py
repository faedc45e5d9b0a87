"""A fault-injecting HTTP proxy on 127.0.0.1, in front of a test server or the test registry.

Usage::

    with BlobServer() as server, FaultProxy(server.origin) as proxy:
        url = proxy.url("/blob")                     # same paths as upstream
        proxy.inject("reset", every=2)               # every 2nd request: connection reset
        proxy.inject("status", times=3, status=503)  # the next 3 requests: 503
        proxy.schedule(["truncate", None, "ignore_range"])   # the next 3 requests, in order
        proxy.clear()                                # no faults
        proxy.applied                                # (request number, fault or None) of each request

Faults (``Fault``):

- ``reset``: the request is read, then the connection is reset (RST), no answer;
- ``status``: an error status (``status=``, 503 by default) instead of forwarding;
- ``ignore_range``: the Range header is dropped, so upstream answers 200 with the whole body;
- ``reject_multirange``: a Range with several ranges gets 400 (single ranges pass);
- ``truncate``: the upstream answer with its full Content-Length, but only half the
  body, then the connection is closed;
- ``short_body``: half the body with a Content-Length that matches it (only a
  client that checks Content-Range against the body notices);
- ``misrange``: each range ``a-b`` is forwarded as ``a+1-b+1`` (an honest
  answer for ranges that were not asked; suffix ranges pass);
- ``delay``: forwarded after ``delay=`` seconds (for timeouts).

Rules (``inject``) count the requests they ``match`` (a predicate on a
:class:`ProxiedRequest`; all by default) and fire on every ``every``-th one,
at most ``times`` times; the first rule that fires wins.  A ``schedule`` takes
precedence: its entries apply to the following requests one by one.
Redirects that point to the upstream are rewritten to point to the proxy, so a
client stays behind it.  Request bodies are forwarded by Content-Length
(chunked request bodies are not supported).
"""

from __future__ import annotations

import http.client
import http.server
import re
import socket
import struct
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from tests.httpserver import LocalServer

Fault = Literal[
    "reset", "status", "ignore_range", "reject_multirange", "truncate", "short_body", "misrange", "delay"
]

_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}
)
_BOUNDED_RANGES = re.compile(r"^\s*bytes\s*=\s*\d+-\d+(\s*,\s*\d+-\d+)*\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class ProxiedRequest:
    """What a rule's ``match`` sees: the method, path (with query) and headers (lower-case names)."""

    method: str
    path: str
    headers: Mapping[str, str]

    @property
    def multirange(self) -> bool:
        return "," in self.headers.get("range", "")


def _applies(fault: Fault, request: ProxiedRequest) -> bool:
    """Whether ``fault`` means anything for ``request``; rules count only those requests."""
    if fault == "reject_multirange":
        return request.multirange
    if fault == "misrange":
        return _BOUNDED_RANGES.match(request.headers.get("range", "")) is not None
    return True


@dataclass
class _Rule:
    fault: Fault
    every: int
    times: int | None
    status: int
    delay: float
    match: Callable[[ProxiedRequest], bool] | None
    seen: int = 0
    fired: int = 0

    def fires(self, request: ProxiedRequest) -> bool:
        if not _applies(self.fault, request) or (self.match is not None and not self.match(request)):
            return False
        if self.times is not None and self.fired >= self.times:
            return False
        self.seen += 1
        if self.seen % self.every:
            return False
        self.fired += 1
        return True


@dataclass(frozen=True)
class _Action:
    fault: Fault | None
    status: int = 503
    delay: float = 0.0


@dataclass
class _State:
    rules: list[_Rule] = field(default_factory=list)
    schedule: list[Fault | None] = field(default_factory=list)
    applied: list[tuple[int, Fault | None]] = field(default_factory=list)


class FaultProxy(LocalServer):
    """See the module docstring.  ``upstream`` is an origin such as ``http://127.0.0.1:5000``."""

    def __init__(self, upstream: str, *, timeout: float = 30.0) -> None:
        parts = urllib.parse.urlsplit(upstream)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise ValueError(f"upstream must be http://HOST:PORT, not {upstream!r}")
        self.upstream = f"http://{parts.hostname}:{parts.port}"
        self._upstream_host = parts.hostname
        self._upstream_port = parts.port
        self.timeout = timeout
        self._state = _State()
        self._schedule_options = (503, 1.0)
        self._lock = threading.Lock()
        super().__init__(_make_handler(self), "FaultProxy")

    # ---- configuration ----

    def inject(
        self,
        fault: Fault,
        *,
        every: int = 1,
        times: int | None = None,
        status: int = 503,
        delay: float = 1.0,
        match: Callable[[ProxiedRequest], bool] | None = None,
    ) -> None:
        """Adds a rule: ``fault`` on every ``every``-th matching request, at most ``times`` times."""
        if every < 1:
            raise ValueError("every must be at least 1")
        with self._lock:
            self._state.rules.append(_Rule(fault, every, times, status, delay, match))

    def schedule(self, faults: Sequence[Fault | None], *, status: int = 503, delay: float = 1.0) -> None:
        """The next requests get these faults in order (None: forwarded untouched); rules apply after."""
        with self._lock:
            self._state.schedule = list(faults)
            self._schedule_options = (status, delay)

    def clear(self) -> None:
        """Removes every rule and the schedule; the log of applied faults stays."""
        with self._lock:
            self._state.rules.clear()
            self._state.schedule.clear()

    @property
    def applied(self) -> list[tuple[int, Fault | None]]:
        """``(request number, fault)`` of every request so far, numbered from 1."""
        with self._lock:
            return list(self._state.applied)

    def faults(self, fault: Fault | None = None) -> int:
        """How many requests got ``fault`` (any fault when None)."""
        return sum(1 for _, got in self.applied if got is not None and (fault is None or got == fault))

    # ---- decisions (called by the handler) ----

    def _decide(self, request: ProxiedRequest) -> _Action:
        with self._lock:
            state = self._state
            number = len(state.applied) + 1
            action = _Action(None)
            if state.schedule:
                status, delay = self._schedule_options
                action = _Action(state.schedule.pop(0), status, delay)
            else:
                for rule in state.rules:
                    if rule.fires(request):
                        action = _Action(rule.fault, rule.status, rule.delay)
                        break
            if action.fault is not None and not _applies(action.fault, request):
                action = _Action(None)
            state.applied.append((number, action.fault))
            return action

    def _forward(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPConnection(
            self._upstream_host, self._upstream_port, timeout=self.timeout
        )
        try:
            connection.request(method, path, body=body or None, headers=dict(headers))
            response = connection.getresponse()
            payload = response.read()
            return response.status, response.reason, response.getheaders(), payload
        finally:
            connection.close()

    def _rewrite_location(self, value: str) -> str:
        if value.startswith(self.upstream):
            return self.origin + value[len(self.upstream) :]
        return value


def _shifted(value: str) -> str:
    """``bytes=a-b,c-d`` as ``bytes=a+1-b+1,c+1-d+1``."""
    specs = value.partition("=")[2].split(",")
    bounds = [tuple(int(n) + 1 for n in spec.split("-")) for spec in specs]
    return "bytes=" + ",".join(f"{first}-{last}" for first, last in bounds)


def _make_handler(proxy: FaultProxy) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the log is ``proxy.applied``."""

        def do_GET(self) -> None:
            self._handle()

        do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {name.lower(): value for name, value in self.headers.items()}
            action = proxy._decide(ProxiedRequest(self.command, self.path, headers))
            fault = action.fault
            if fault == "reset":
                self._reset()
                return
            if fault == "status":
                self._answer(action.status, "Injected", [("Content-Type", "text/plain")], b"injected\n")
                return
            if fault == "reject_multirange":
                self._answer(400, "Bad Request", [("Content-Type", "text/plain")], b"no multi-range\n")
                return
            if fault == "delay":
                time.sleep(action.delay)
            upstream = {k: v for k, v in headers.items() if k not in _HOP_BY_HOP and k != "host"}
            upstream["host"] = f"{proxy._upstream_host}:{proxy._upstream_port}"
            if fault == "ignore_range":
                upstream.pop("range", None)
            if fault == "misrange":
                upstream["range"] = _shifted(upstream["range"])
            try:
                answer = proxy._forward(self.command, self.path, upstream, body)
            except OSError:
                self._answer(502, "Bad Gateway", [("Content-Type", "text/plain")], b"upstream failed\n")
                return
            status, reason, reply_headers, payload = answer
            declared = None
            if fault in ("truncate", "short_body") and payload:
                declared = len(payload) if fault == "truncate" else len(payload) // 2
                payload = payload[: len(payload) // 2]
            self._answer(status, reason, reply_headers, payload, declared=declared)
            if fault == "truncate":
                self.close_connection = True

        def _answer(
            self,
            status: int,
            reason: str,
            headers: list[tuple[str, str]],
            payload: bytes,
            *,
            declared: int | None = None,
        ) -> None:
            self.send_response(status, reason)
            upstream_length = None
            for name, value in headers:
                lower = name.lower()
                if lower == "content-length":
                    upstream_length = value
                elif lower not in _HOP_BY_HOP and lower not in ("date", "server"):
                    self.send_header(name, proxy._rewrite_location(value) if lower == "location" else value)
            if self.command == "HEAD" and upstream_length is not None:
                self.send_header("Content-Length", upstream_length)
            else:
                self.send_header("Content-Length", str(len(payload) if declared is None else declared))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        def _reset(self) -> None:
            """Closes with SO_LINGER 0: the client sees a connection reset, not a clean end."""
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True

    return Handler
