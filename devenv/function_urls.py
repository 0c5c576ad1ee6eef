"""Lambda function URLs, played by the local runtime: every function Terraform gave a URL (read back from moto
with GetFunctionUrlConfig) is served on a loopback port of its own. Each request becomes the event Lambda
sends (payload format 2.0: `requestContext.http.method`, header names in lower case, the body, base64 when it
is not text), is invoked synchronously like any other, and the function's answer becomes the response
(`statusCode`, `headers`, `body`; an answer without `statusCode` is a 200 with it as JSON; a function error
is a 502, as Lambda answers).

The URL moto records (`https://<id>.lambda-url.<region>.on.aws/`) reaches nothing here; `GET /local/function-urls`
on the runtime's port gives the local URL of each function."""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import urllib.parse
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from devenv.runtime import FunctionPool, Runtime

log = logging.getLogger("devenv.function_urls")

#: Lambda's limit on a function URL request's body (6 MB, synchronous invocation payload).
MAX_BODY = 6 * 1024 * 1024


def url_functions(lambda_client: Any, names: list[str]) -> dict[str, str]:
    """The functions among `names` that have a function URL, with its authorization type."""
    found: dict[str, str] = {}
    for name in names:
        try:
            config = lambda_client.get_function_url_config(FunctionName=name)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                continue
            raise
        found[name] = str(config.get("AuthType", "NONE"))
    return found


def _is_text(content_type: str) -> bool:
    kind = content_type.split(";")[0].strip().lower()
    return (
        kind.startswith("text/")
        or kind.endswith(("json", "xml"))
        or kind in ("", "application/x-www-form-urlencoded")
    )


def url_event(method: str, target: str, headers: dict[str, str], body: bytes, host: str) -> dict[str, Any]:
    """The event a function URL hands the function for one request (payload format 2.0)."""
    parts = urllib.parse.urlsplit(target)
    lowered = {name.lower(): value for name, value in headers.items()}
    text = _is_text(lowered.get("content-type", ""))
    now = datetime.now(UTC)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": parts.path or "/",
        "rawQueryString": parts.query,
        "headers": lowered,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": host.split(".")[0],
            "domainName": host,
            "domainPrefix": host.split(".")[0],
            "http": {
                "method": method,
                "path": parts.path or "/",
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(time.time() * 1000),
        },
        "isBase64Encoded": not text,
    }
    if parts.query:
        event["queryStringParameters"] = dict(urllib.parse.parse_qsl(parts.query))
    if body:
        event["body"] = body.decode() if text else base64.b64encode(body).decode()
    return event


def url_reply(reply: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    """The HTTP response for the function's answer, as a function URL maps it."""
    if not reply.get("ok"):
        return 502, {"Content-Type": "application/json"}, b'{"Message":"Internal Server Error"}'
    result = reply.get("result")
    if not isinstance(result, dict) or "statusCode" not in result:
        return 200, {"Content-Type": "application/json"}, json.dumps(result).encode()
    body = result.get("body") or ""
    raw = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
    headers = {str(name): str(value) for name, value in (result.get("headers") or {}).items()}
    return int(result["statusCode"]), headers, raw


def _handler_class(pool: FunctionPool, host: str) -> type[BaseHTTPRequestHandler]:
    class FunctionUrl(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "azs3copy-local-function-url"

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("function url %s: " + format, pool.spec.name, *args)

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._send(413, {"Content-Type": "application/json"}, b'{"Message":"Request Too Long"}')
                return
            body = self.rfile.read(length) if length else b""
            event = url_event(self.command, self.path, dict(self.headers.items()), body, host)
            self._send(*url_reply(pool.invoke(event)))

        def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                if name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _answer

    return FunctionUrl


class FunctionUrls:
    """One loopback server per function with a URL."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.urls: dict[str, str] = {}
        self._servers: list[ThreadingHTTPServer] = []

    def start(self, host: str) -> dict[str, str]:
        found = url_functions(self.runtime.client("lambda"), sorted(self.runtime.pools))
        for name, auth in found.items():
            if auth != "NONE":  # a caller would sign with SigV4, which this runtime does not check
                log.warning("function url of %s has AuthType %s; served without checking it", name, auth)
            pool = self.runtime.pools[name]
            server = ThreadingHTTPServer((host, 0), _handler_class(pool, f"{host}"))
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, name=f"url-{name}", daemon=True).start()
            self._servers.append(server)
            self.urls[name] = f"http://{host}:{server.server_address[1]}/"
            log.info("function url of %s: %s", name, self.urls[name])
        return self.urls

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
