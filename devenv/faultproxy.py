"""A fault-injecting HTTP proxy for the fault suite: it sits on a loopback port in front of one emulator
(Azurite or the moto server) and forwards every request unchanged, unless a rule matches it.

A rule matches on method, path, query and headers (regular expressions), at most `times` times after
letting `skip` matches through, with a probability drawn from a seeded generator; its action is one of

* ``status``: answer with a status and a service-shaped error body, without forwarding;
* ``reset``: reset the connection (RST) at one of four points (`Rule.reset_at`): ``request``, with the request
  read and not forwarded; ``body``, halfway through reading the request body (nothing forwarded);
  ``forwarded``, after the emulator answered the forwarded request (it did the work: stored the object, the
  part, completed the upload) and before any byte of that answer reaches the client; ``response``, halfway
  through the response body;
* ``delay``: wait, then forward;
* ``stall``: hold the request until the client gives up (or a bound passes); forward only if it is still there;
* ``corrupt-response`` / ``corrupt-request``: flip one byte in the middle of the response or request body;
* ``call``: run a callback (e.g. overwrite the blob being read), then forward.

Rules are changed at run time from the test process (`FaultProxy.add`, `FaultProxy.clear`); every request is
recorded in `FaultProxy.log` with the rule that acted on it, and `FaultProxy.hits` counts from that log, so
what the rules did can still be read after they are cleared (until `reset_log`). Dev tooling only: it listens on 127.0.0.1, every wait is bounded, nothing loops
without end, and it is never shipped to Lambda.

    with FaultProxy("http://127.0.0.1:10000") as proxy:
        proxy.add(Rule("busy", method="GET", headers={"x-ms-range": "."}, action="status", status=503,
                       body=azure_error("ServerBusy", "The server is busy."), times=2))
"""

from __future__ import annotations

import http.client
import random
import re
import select
import socket
import struct
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Literal, Self

Action = Literal["status", "reset", "delay", "stall", "corrupt-response", "corrupt-request", "call"]
#: Longest a request is held by `delay` or `stall`, whatever a rule asks.
MAX_HOLD_SECONDS = 120.0
UPSTREAM_TIMEOUT = 120.0
_HOP_HEADERS = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "proxy-connection",
    "te",
    "upgrade",
    "trailer",
}


def azure_error(code: str, message: str) -> bytes:
    """An error body as Azure Storage writes it."""
    return (
        f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code><Message>{message}\n'
        f"RequestId:00000000-0000-0000-0000-000000000000\nTime:2024-01-01T00:00:00.0000000Z</Message></Error>"
    ).encode()


def s3_error(code: str, message: str) -> bytes:
    """An error body as Amazon S3 writes it."""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
        f"<RequestId>FAULTPROXY</RequestId><HostId>faultproxy</HostId></Error>"
    ).encode()


@dataclass
class Rule:
    name: str
    action: Action
    method: str | None = None
    path: str | None = None
    query: str | None = None
    #: Header name (case-insensitive) → regular expression its value must match.
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 503
    body: bytes = b""
    response_headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    #: `reset` only: where the connection is reset (see the module docstring).
    reset_at: Literal["request", "body", "forwarded", "response"] = "request"
    callback: Callable[[], None] | None = None
    times: int | None = None
    skip: int = 0
    probability: float = 1.0
    seen: int = 0
    hits: int = 0

    def matches(self, method: str, path: str, query: str, headers: dict[str, str]) -> bool:
        if self.method and method != self.method:
            return False
        if self.path and not re.search(self.path, path):
            return False
        if self.query is not None and not re.search(self.query, query):
            return False
        return all(
            re.search(pattern, headers.get(name.lower(), "")) for name, pattern in self.headers.items()
        ) and all(name.lower() in headers for name in self.headers)


@dataclass(frozen=True)
class Seen:
    """One request the proxy handled: what it was and which rule (if any) acted on it."""

    method: str
    path: str
    query: str
    rule: str | None
    #: The status the emulator or the rule answered with (sent to the client or not); None if there was none.
    status: int | None


def _flip(data: bytes) -> bytes:
    if not data:
        return data
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0x5A]) + data[middle + 1 :]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that goes away (killed, timed out, reset by a rule) is expected here, not an error."""


class FaultProxy:
    def __init__(self, upstream: str, *, seed: int = 0, port: int = 0) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        if parsed.scheme != "http" or not parsed.hostname or not parsed.port:
            raise ValueError(f"upstream must be http://host:port, found {upstream!r}")
        self.upstream = (parsed.hostname, parsed.port)
        self.rules: list[Rule] = []
        self.log: list[Seen] = []
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.server = _Server(("127.0.0.1", port), _handler(self))
        self.thread = threading.Thread(target=self.server.serve_forever, name="faultproxy", daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add(self, *rules: Rule) -> None:
        with self.lock:
            self.rules.extend(rules)

    def clear(self) -> None:
        with self.lock:
            self.rules.clear()

    def reset_log(self) -> None:
        with self.lock:
            self.log.clear()

    def hits(self, name: str) -> int:
        """Requests the rule called `name` acted on since the last `reset_log` (`clear` forgets none)."""
        return len(self.acted(name))

    def acted(self, name: str) -> list[Seen]:
        """The requests the rule called `name` acted on since the last `reset_log`."""
        with self.lock:
            return [seen for seen in self.log if seen.rule == name]

    def pick(self, method: str, path: str, query: str, headers: dict[str, str]) -> Rule | None:
        with self.lock:
            for rule in self.rules:
                if rule.times is not None and rule.hits >= rule.times:
                    continue
                if not rule.matches(method, path, query, headers):
                    continue
                rule.seen += 1
                if rule.seen <= rule.skip:
                    continue
                if rule.probability < 1.0 and self.random.random() >= rule.probability:
                    continue
                rule.hits += 1
                return rule
        return None

    def record(self, seen: Seen) -> None:
        with self.lock:
            self.log.append(seen)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _client_gone(connection: socket.socket) -> bool:
    """True once the client has closed its end (it was killed or timed out)."""
    try:
        ready, _, _ = select.select([connection], [], [], 0)
        return bool(ready) and connection.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:  # noqa: C901 (one branch per fault kind the proxy can inject)
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        _entry: Seen
        _recorded: bool
        timeout = UPSTREAM_TIMEOUT

        def log_message(self, format: str, *args: object) -> None:
            return

        def _body(self) -> bytes:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                chunks: list[bytes] = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _half_of_body(self) -> None:
            """Read about half the request body (of a chunked body, half its first chunk) and no more."""
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(max(1, length // 2))
            elif "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                self.rfile.read(size // 2)

        def _reset(self) -> None:
            self.close_connection = True
            try:
                self.wfile.flush()
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
            self.connection.close()

        def _send(
            self, status: int, headers: list[tuple[str, str]], body: bytes, *, cut: bool = False
        ) -> None:
            self.send_response_only(status)
            length = str(len(body))
            for name, value in headers:
                if name.lower() == "content-length" and self.command == "HEAD":
                    length = value  # a HEAD answer announces the object's length and has no body
                elif name.lower() not in _HOP_HEADERS and name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", length)
            self.end_headers()
            if cut:
                self.wfile.write(body[: len(body) // 2])
                self._reset()
                return
            self.wfile.write(body)

        def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
            upstream = http.client.HTTPConnection(*proxy.upstream, timeout=UPSTREAM_TIMEOUT)
            try:
                skipped = _HOP_HEADERS | {"content-length", "expect"}
                headers = {k: v for k, v in self.headers.items() if k.lower() not in skipped}
                if body or self.command in ("PUT", "POST"):
                    headers["Content-Length"] = str(len(body))
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                data = response.read()
                return response.status, response.getheaders(), data
            finally:
                upstream.close()

        def _note(self) -> None:
            # Logged before the client hears anything: one that has its answer (or its reset) may read the
            # log at once, before this thread would reach a `finally`.
            if not self._recorded:
                proxy.record(self._entry)
                self._recorded = True

        def _answer(
            self, status: int, headers: list[tuple[str, str]], body: bytes, *, cut: bool = False
        ) -> None:
            self._entry = replace(self._entry, status=status)
            self._note()
            self._send(status, headers, body, cut=cut)

        def _reset_now(self) -> None:
            self._note()
            self._reset()

        def _handle(self) -> None:
            parsed = urllib.parse.urlsplit(self.path)
            headers = {k.lower(): v for k, v in self.headers.items()}
            rule = proxy.pick(self.command, urllib.parse.unquote(parsed.path), parsed.query, headers)
            name = rule.name if rule else None
            self._entry = Seen(self.command, parsed.path, parsed.query, name, None)
            self._recorded = False
            reset_at = rule.reset_at if rule is not None and rule.action == "reset" else None
            try:
                if reset_at == "body":
                    self._half_of_body()
                    self._reset_now()
                    return
                body = self._body()
                if rule is not None and rule.action == "status":
                    error_headers = [("Content-Type", "application/xml"), *rule.response_headers.items()]
                    self._answer(rule.status, error_headers, rule.body)
                    return
                if reset_at == "request":
                    self._reset_now()
                    return
                if rule is not None and rule.action in ("delay", "stall"):
                    deadline = time.monotonic() + min(rule.delay, MAX_HOLD_SECONDS)
                    while time.monotonic() < deadline:
                        if rule.action == "stall" and _client_gone(self.connection):
                            self.close_connection = True
                            return
                        time.sleep(0.05)
                if rule is not None and rule.action == "call" and rule.callback is not None:
                    rule.callback()
                if rule is not None and rule.action == "corrupt-request":
                    body = _flip(body)
                forwarded, response_headers, data = self._forward(body)
                self._entry = replace(self._entry, status=forwarded)
                if reset_at == "forwarded":
                    self._reset_now()
                    return
                if rule is not None and rule.action == "corrupt-response":
                    data = _flip(data)
                self._answer(forwarded, response_headers, data, cut=reset_at == "response")
            except (OSError, http.client.HTTPException):
                self.close_connection = True
            finally:
                self._note()

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _handle

    return Handler
