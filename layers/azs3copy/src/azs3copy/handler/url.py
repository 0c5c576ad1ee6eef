"""A Lambda function URL's request and response (payload format 2.0), for blob-events: the request becomes an
EventsRequest, the step's reply the response Lambda sends back. A failure to queue is answered 500, so Event
Grid delivers the batch again (it retries on 5xx, not on 4xx)."""

from __future__ import annotations

import base64
import json
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit

from azs3copy.errors import Azs3copyError
from azs3copy.handler.function import Function, LambdaContextLike
from azs3copy.redaction import redact
from azs3copy.steps.blob_events import EventsReply, EventsRequest, blob_events

logger = Logger(child=True)


def url_request(event: dict[str, Any]) -> EventsRequest:
    """The HTTP request a function URL event carries (header names are lower case in payload format 2.0)."""
    http = (event.get("requestContext") or {}).get("http") or {}
    body = event.get("body") or ""
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
    headers = {str(name).lower(): str(value) for name, value in (event.get("headers") or {}).items()}
    return EventsRequest(str(http.get("method") or "").upper(), headers, raw)


def url_response(reply: EventsReply) -> dict[str, Any]:
    headers = {"Content-Type": "application/json", **reply.headers}
    return {
        "statusCode": reply.status,
        "headers": headers,
        "body": json.dumps(reply.body) if reply.body else "",
    }


def handle_url(function: Function, event: dict[str, Any], context: LambdaContextLike) -> dict[str, Any]:
    """Answer one function URL request with the blob-events step."""
    secrets: tuple[str, ...] = ()
    try:
        deps = function.deps()
        secrets = deps.secrets
        reply = blob_events(deps, url_request(event))
    except Azs3copyError as error:
        reason = redact(str(error), secrets)
        logger.error("events not queued", extra={"error": reason, "error_type": type(error).__name__})
        function.metrics.add_metric(name="InvocationErrors", unit=MetricUnit.Count, value=1)
        reply = EventsReply(500, {"error": f"{type(error).__name__}: {reason}", "retryable": True})
    function.metrics.add_metric(name="Invocations", unit=MetricUnit.Count, value=1)
    for state, count in (reply.body.get("states") or {}).items():
        function.metrics.add_metric(name=f"Blobs_{state}", unit=MetricUnit.Count, value=count)
    if reply.status == 401:
        function.metrics.add_metric(name="EventsRefused", unit=MetricUnit.Count, value=1)
    return url_response(reply)
