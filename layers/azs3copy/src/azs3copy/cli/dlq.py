"""`azs3copy dlq show|redrive`: the failed events in the functions' on-failure queues."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any, TextIO

from azs3copy.cli.target import CliError, Target
from azs3copy.functions import FUNCTIONS


def _components(args: argparse.Namespace) -> list[str]:
    if args.function:
        name = args.function.removeprefix(f"{args.prefix}-")
        if name not in FUNCTIONS:
            raise CliError(f"unknown function {args.function!r}: one of {', '.join(FUNCTIONS)}")
        return [name]
    return list(FUNCTIONS)


def _peek(sqs: Any, url: str, limit: int, visibility: int) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    while len(seen) < limit:
        batch = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=min(10, limit - len(seen)),
            VisibilityTimeout=visibility,
            WaitTimeSeconds=0,
        ).get("Messages", [])
        if not batch:
            break
        for message in batch:
            seen.setdefault(message["MessageId"], message)
    return list(seen.values())


def _release(sqs: Any, url: str, messages: Sequence[dict[str, Any]]) -> None:
    for start in range(0, len(messages), 10):
        entries = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
            for i, m in enumerate(messages[start : start + 10])
        ]
        sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)


def describe_record(body: str) -> str:
    """One line for an on-failure record: when, how often, which message, why."""
    try:
        record = json.loads(body)
        context = record.get("requestContext", {})
        response = record.get("responsePayload") or {}
        payload = record.get("requestPayload")
    except (ValueError, AttributeError):
        return f"(not an on-failure record) {body[:200]}"
    what = "event " + json.dumps(payload)[:120]
    try:
        message = json.loads(payload["Records"][0]["Sns"]["Message"])
        kind = message.get("kind")
        subject = message.get("container") or ""
        if "blob" in message:
            subject = f"{message['blob']['container']}/{message['blob']['name']}"
        elif "blobs" in message:
            subject = f"{len(message['blobs'])} blob(s), first {message['blobs'][0]['container']}/{message['blobs'][0]['name']}"
        what = f"{kind} run {message.get('run_id')} {subject}" + (
            f" part {message['part']}" if "part" in message else ""
        )
    except (KeyError, IndexError, TypeError, ValueError):
        pass
    failures = record.get("failures") if isinstance(record, dict) else None
    if failures:  # blobs the function failed for good and dead-lettered itself
        names = ", ".join(str(f.get("blob")) for f in failures[:3])
        what += f"; failed: {names}" + (f" and {len(failures) - 3} more" if len(failures) > 3 else "")
    error = f"{response.get('errorType', '?')}: {str(response.get('errorMessage', '')).splitlines()[0] if response.get('errorMessage') else ''}"
    condition = context.get("condition", "?")
    return f"{record.get('timestamp', '?')}  {condition} after {context.get('approximateInvokeCount', '?')} attempt(s)  {what}\n      {error}"


def cmd_dlq(target: Target, args: argparse.Namespace, out: TextIO) -> int:
    sqs = target.client("sqs")
    total = 0
    for component in _components(args):
        url = target.dlq_url(component)
        if url is None:
            print(f"{component}: no SQS on-failure destination", file=out)
            continue
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        count = int(attributes["Attributes"]["ApproximateNumberOfMessages"])
        total += count
        if args.dlq_action == "show":
            print(f"{component}: {count} failed event(s)", file=out)
            if count:
                messages = _peek(sqs, url, args.max, 30)
                for message in messages:
                    print("    " + describe_record(message["Body"]), file=out)
                _release(sqs, url, messages)
            continue
        moved = skipped = cleared = 0
        while moved + skipped + cleared < args.max:
            messages = _peek(sqs, url, min(10, args.max - moved - skipped), 120)
            if not messages:
                break
            keep = []
            for message in messages:
                try:
                    record = json.loads(message["Body"])
                    payload = record["requestPayload"]
                    function = str(record["requestContext"]["functionArn"]).split(":$LATEST")[0]
                    condition = record["requestContext"].get("condition")
                except (ValueError, KeyError, TypeError):
                    keep.append(message)
                    skipped += 1
                    continue
                if condition == "BlobFailed":
                    # The blob is recorded failed and is not in S3: the next run copies it once the cause
                    # is fixed; sending the event again would find it already ended and change nothing.
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                    cleared += 1
                    continue
                target.client("lambda").invoke(
                    FunctionName=function, InvocationType="Event", Payload=json.dumps(payload).encode()
                )
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                moved += 1
            if keep:
                _release(sqs, url, keep)
                break
        if moved or skipped or cleared or count:
            note = f", {skipped} left in the queue (not on-failure records)" if skipped else ""
            if cleared:
                note += (
                    f", {cleared} recorded failure(s) cleared (the next `azs3copy run` copies those blobs)"
                )
            print(f"{component}: redrove {moved} event(s) to {target.function(component)}{note}", file=out)
    if args.dlq_action == "show" and total == 0:
        print("no failed events", file=out)
    return 0
