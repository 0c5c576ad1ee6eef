"""A test function for the local runtime: records every invocation, then does what the event asks."""

import fcntl
import json
import os
import time
from typing import Any


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if "http" in event.get("requestContext", {}):  # a function URL request: say what arrived
        seen = {key: event.get(key) for key in ("headers", "body", "isBase64Encoded", "rawPath")}
        seen["method"] = event["requestContext"]["http"]["method"]
        return {"statusCode": 207, "headers": {"X-Probe": "url"}, "body": json.dumps(seen)}
    if event.get("Records") and event["Records"][0].get("eventSource") == "aws:sqs":
        return _queue_batch(event, context)
    ask = json.loads(event["Records"][0]["Sns"]["Message"]) if "Records" in event else event
    record = {
        "request_id": context.aws_request_id,
        "ask": ask,
        "pid": os.getpid(),
        "remaining_ms": context.get_remaining_time_in_millis(),
        "function_name": context.function_name,
        "memory": context.memory_limit_in_mb,
        "env": {
            k: os.environ.get(k)
            for k in ("PROBE_SETTING", "AWS_REGION", "AWS_ENDPOINT_URL", "AWS_LAMBDA_FUNCTION_NAME")
        },
        "event_source": event.get("Records", [{}])[0].get("EventSource") if "Records" in event else None,
    }
    with open(os.environ["PROBE_LOG"], "a", encoding="utf-8") as out:
        out.write(json.dumps(record) + "\n")
    if ask.get("overlap"):  # count the invocations running at once, in a file beside the log
        return {"tag": ask.get("tag"), "running": _running_together(float(ask["overlap"]))}
    if ask.get("sleep"):
        time.sleep(float(ask["sleep"]))
    if ask.get("fail"):
        raise RuntimeError(f"asked to fail: {ask.get('tag')}")
    return {"tag": ask.get("tag"), "pid": os.getpid()}


def _queue_batch(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A batch from an event source mapping: each record does what its body asks; the records asking to fail
    are reported in batchItemFailures, one asking to raise fails the whole invocation."""
    failures = []
    for record in event["Records"]:
        ask = json.loads(record["body"])
        count = int(record["attributes"]["ApproximateReceiveCount"])
        entry = {
            "request_id": context.aws_request_id,
            "ask": ask,
            "message_id": record["messageId"],
            "receive_count": count,
            "batch": len(event["Records"]),
            "at": time.time(),
        }
        with open(os.environ["PROBE_LOG"], "a", encoding="utf-8") as out:
            out.write(json.dumps(entry) + "\n")
        if ask.get("overlap"):
            _running_together(float(ask["overlap"]))
        if ask.get("sleep_first") and count == 1:
            time.sleep(float(ask["sleep_first"]))
        if ask.get("raise"):
            raise RuntimeError(f"asked to raise: {ask.get('tag')}")
        if ask.get("fail_record"):
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}


def _running_together(seconds: float) -> int:
    """Sleep `seconds`; return how many invocations were running at once at the most, this one included."""
    path = os.environ["PROBE_LOG"] + ".running"

    def change(delta: int) -> int:
        with open(path, "a+", encoding="utf-8") as counter:
            fcntl.flock(counter, fcntl.LOCK_EX)
            counter.seek(0)
            now, most = (int(x) for x in (counter.read().split() or ["0", "0"]))
            now += delta
            most = max(most, now)
            counter.seek(0)
            counter.truncate()
            counter.write(f"{now} {most}")
            return most

    change(+1)
    time.sleep(seconds)
    return change(-1)
