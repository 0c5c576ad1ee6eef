"""The records of an SQS event, as Lambda's event source mapping delivers them from a step's queue.

The queue is subscribed to the step's topic with raw message delivery, so a record's body is the azs3copy
message itself. A body that is still an SNS envelope (a subscription without raw delivery, or a message sent
by hand) is unwrapped, so either shape works."""

from __future__ import annotations

import json
from typing import Any

from azs3copy.errors import MessageError


def is_queue_event(event: Any) -> bool:
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list) or not records:
        return False
    return all(isinstance(record, dict) and record.get("eventSource") == "aws:sqs" for record in records)


def receive_count(record: dict[str, Any]) -> int:
    """Which attempt at this message the record is: SQS counts every receive, and the event source mapping
    receives a message once per invocation."""
    raw = (record.get("attributes") or {}).get("ApproximateReceiveCount", "1")
    try:
        return max(1, int(raw))
    except (TypeError, ValueError):
        raise MessageError(f"ApproximateReceiveCount is not a number: {raw!r}") from None


def message_text(record: dict[str, Any]) -> str:
    """The azs3copy message a record carries."""
    body = record.get("body")
    if not isinstance(body, str):
        raise MessageError(f"SQS record {record.get('messageId')} has no body")
    if body.startswith("{") and '"TopicArn"' in body:
        try:
            envelope = json.loads(body)
        except ValueError:
            return body
        if isinstance(envelope, dict) and envelope.get("Type") == "Notification" and "Message" in envelope:
            return str(envelope["Message"])
    return body
