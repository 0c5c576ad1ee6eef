"""A function URL's request and response for blob-events: the payload 2.0 event read as sent, the reply
mapped, and a failure to queue answered 500 so that Event Grid delivers again."""

from __future__ import annotations

import base64
import json
from typing import Any

from aws_lambda_powertools import Metrics

from azs3copy.errors import TransientError
from azs3copy.steps.blob_events import EventsReply
from azs3copy.steps.context import Deps
from devenv.event_grid import blob_event
from devenv.function_urls import url_event
from devenv.worker import LocalLambdaContext
from tests.support.fakes import MemoryBlobSource, MemoryLedger, MemoryObjectSink
from tests.support.harness import TOPICS
from tests.unit.steps.common import settings

TOKEN = "k" * 48
# azs3copy.handler.url is imported inside each test: imported at collection, the handler modules' child
# loggers would be named after no service and be orphans for the handler tests that set one (Powertools).


def test_the_request_is_read_as_sent_text_or_base64() -> None:
    from azs3copy.handler.url import url_request

    text = url_event("POST", "/", {"Content-Type": "application/json", "X-Azs3copy-Token": "t"}, b"[1]", "h")
    request = url_request(text)
    assert (request.method, request.headers["x-azs3copy-token"], request.body) == ("POST", "t", b"[1]")
    binary = url_event("POST", "/", {"Content-Type": "application/octet-stream"}, b"\x00\xff", "h")
    assert (
        binary["body"] == base64.b64encode(b"\x00\xff").decode() and url_request(binary).body == b"\x00\xff"
    )


def test_the_reply_becomes_status_headers_and_a_json_body() -> None:
    from azs3copy.handler.url import url_response

    response = url_response(EventsReply(401, {"error": "unauthorized"}, {"X-A": "b"}))
    assert response["statusCode"] == 401 and response["headers"]["X-A"] == "b"
    assert json.loads(response["body"]) == {"error": "unauthorized"}


class Refusing:
    def publish(self, topic: str, bodies: list[str]) -> None:
        raise TransientError(f"publish to {topic}: throttled")


class Wired:
    """The part of handler.function.Function that handle_url uses, over the fakes."""

    def __init__(self, deps: Deps) -> None:
        self._deps = deps
        self.metrics = Metrics(namespace="test")

    def deps(self) -> Deps:
        return self._deps


def test_a_failure_to_queue_is_answered_500_without_the_token() -> None:
    from azs3copy.handler.url import handle_url

    source = MemoryBlobSource()
    blob = source.put("alpha", "a", b"abc")
    chosen = settings(events_token=TOKEN)
    deps = Deps(
        ledger=MemoryLedger(),
        publisher=Refusing(),
        topics=TOPICS,
        sink=MemoryObjectSink(),
        source=source,
        settings=chosen,
        secrets=tuple(chosen.secret_values()),
    )
    body = json.dumps([blob_event("Created", "alpha", "a", etag=blob.etag, size=3)]).encode()
    event = url_event("POST", "/", {"Content-Type": "application/json", "X-Azs3copy-Token": TOKEN}, body, "h")
    response: dict[str, Any] = handle_url(Wired(deps), event, LocalLambdaContext.starting_now("blob-events"))  # type: ignore[arg-type]
    assert response["statusCode"] == 500
    assert "TransientError" in response["body"] and TOKEN not in response["body"]
