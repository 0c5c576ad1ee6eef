"""`azs3copy dlq show|redrive`: what waits in the functions' dead-letter queues.

A dead-letter queue holds three kinds of message:
* a step's task whose attempts ran out: its queue's redrive policy moved it there unchanged, so the body is
  the task itself (the listing page, the batch of blobs, the part). `redrive` sends it back to the step's queue;
* a blob the function failed for good (condition BlobFailed, written by the function): it is recorded failed
  in the run's report, and the next run copies it once the cause is fixed, so `redrive` clears it;
* Lambda's on-failure record of an asynchronous invocation whose retries ran out (the scheduled launch, or a
  step of a deployment from before the queues): `redrive` invokes the function with the event again."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from azs3copy.cli.target import CliError, Target
from azs3copy.errors import MessageError
from azs3copy.functions import FUNCTIONS
from azs3copy.handler import queue
from azs3copy.messages import DownloadTask, FindBlobsTask, Message, decode

Reason = Callable[[str, str], str | None]


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
            AttributeNames=["All"],
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


def as_task(body: str) -> Message | None:
    """The step's task when the body is one (moved here by its queue's redrive policy), else None."""
    try:
        return decode(body)
    except MessageError:
        return None


def blob_ids(message: Message) -> list[str]:
    """The blobs a task is about (a listing: `<container>/`, as the run's report names it)."""
    if isinstance(message, FindBlobsTask):
        return [f"{message.container}/"]
    if isinstance(message, DownloadTask):
        return [blob.blob_id for blob in message.blobs]
    return [message.blob.blob_id]  # type: ignore[attr-defined]


def _subject(message: Message) -> str:
    names = blob_ids(message)
    subject = names[0] if len(names) == 1 else f"{len(names)} blob(s): {', '.join(names[:3])}"
    if len(names) > 3:
        subject += f" and {len(names) - 3} more"
    part = getattr(message, "part", None)
    return f"{message.kind} run {message.run_id} {subject}" + (f" part {part}" if part is not None else "")


def _payload_message(payload: Any) -> Message:
    record = payload["Records"][0]
    text = record["Sns"]["Message"] if "Sns" in record else queue.message_text(record)
    return decode(text)


def describe_task(message: Message, attributes: dict[str, Any], reason_of: Reason) -> str:
    """One entry for a task whose attempts ran out: what it is for, and why each blob failed if recorded."""
    lines = [f"{attributes.get('SentTimestamp', '?')}  attempts ran out  {_subject(message)}"]
    reasons = [(blob, reason_of(message.run_id, blob)) for blob in blob_ids(message)[:3]]
    known = [(blob, reason) for blob, reason in reasons if reason]
    for blob, reason in known:
        lines.append(f"      {blob}: {reason}")
    if not known:
        lines.append("      no reason recorded in the ledger: the function's log for the run has the error")
    return "\n".join(lines)


def describe_record(body: str) -> str:
    """One entry for an on-failure record or a BlobFailed record: when, how often, which message, why."""
    try:
        record = json.loads(body)
        context = record.get("requestContext", {})
        response = record.get("responsePayload") or {}
        payload = record.get("requestPayload")
    except (ValueError, AttributeError):
        return f"(not a dead-letter record) {body[:200]}"
    what = "event " + json.dumps(payload)[:120]
    try:
        what = _subject(_payload_message(payload))
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, MessageError):
        pass
    failures = record.get("failures") if isinstance(record, dict) else None
    if failures:  # blobs the function failed for good and dead-lettered itself
        names = ", ".join(str(f.get("blob")) for f in failures[:3])
        what += f"; failed: {names}" + (f" and {len(failures) - 3} more" if len(failures) > 3 else "")
    text = str(response.get("errorMessage") or "")
    error = f"{response.get('errorType', '?')}: {text.splitlines()[0] if text else ''}"
    condition = context.get("condition", "?")
    return f"{record.get('timestamp', '?')}  {condition} after {context.get('approximateInvokeCount', '?')} attempt(s)  {what}\n      {error}"


def _ledger_reasons(target: Target) -> Reason:
    ledger: list[Any] = []

    def reason_of(run_id: str, blob_id: str) -> str | None:
        try:
            if not ledger:
                ledger.append(target.ledger())
            record = ledger[0].get_blob(run_id, blob_id)
        except Exception:  # the ledger is a hint here; the task is shown anyway
            return None
        if record is None:
            return None
        return f"{record.state}: {record.reason}" if record.reason else None

    return reason_of


def _show(target: Target, sqs: Any, url: str, args: argparse.Namespace, out: TextIO) -> None:
    messages = _peek(sqs, url, args.max, 30)
    reason_of = _ledger_reasons(target)
    for message in messages:
        task = as_task(message["Body"])
        if task is not None:
            print("    " + describe_task(task, message.get("Attributes", {}), reason_of), file=out)
        else:
            print("    " + describe_record(message["Body"]), file=out)
    _release(sqs, url, messages)


def _redrive_one(target: Target, sqs: Any, component: str, message: dict[str, Any]) -> str:
    """Send one dead letter back; what was done: moved, resent, cleared or skipped."""
    if as_task(message["Body"]) is not None:
        source = target.queue_url(component)
        if source is None:
            return "skipped"
        sqs.send_message(QueueUrl=source, MessageBody=message["Body"])
        return "moved"
    try:
        record = json.loads(message["Body"])
        payload = record["requestPayload"]
        function = str(record["requestContext"]["functionArn"]).split(":$LATEST")[0]
        condition = record["requestContext"].get("condition")
    except (ValueError, KeyError, TypeError):
        return "skipped"
    if condition == "BlobFailed":
        # The blob is recorded failed and is not in S3: the next run copies it once the cause is fixed;
        # sending the task again would find it already ended and change nothing.
        return "cleared"
    target.client("lambda").invoke(
        FunctionName=function, InvocationType="Event", Payload=json.dumps(payload).encode()
    )
    return "resent"


def _redrive(target: Target, sqs: Any, url: str, component: str, args: argparse.Namespace) -> dict[str, int]:
    done = {"moved": 0, "resent": 0, "cleared": 0, "skipped": 0}
    while sum(done.values()) < args.max:
        messages = _peek(sqs, url, min(10, args.max - sum(done.values())), 120)
        if not messages:
            break
        keep = []
        for message in messages:
            what = _redrive_one(target, sqs, component, message)
            done[what] += 1
            if what == "skipped":
                keep.append(message)
            else:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        if keep:
            _release(sqs, url, keep)
            break
    return done


def _redrive_line(target: Target, component: str, done: dict[str, int]) -> str:
    parts = []
    if done["moved"] or not done["resent"]:
        parts.append(f"{done['moved']} task(s) back to its queue")
    if done["resent"]:
        parts.append(f"{done['resent']} event(s) to {target.function(component)}")
    note = (
        f", {done['skipped']} left in the queue (neither a task nor a dead-letter record)"
        if done["skipped"]
        else ""
    )
    if done["cleared"]:
        note += (
            f", {done['cleared']} recorded failure(s) cleared (the next `azs3copy run` copies those blobs)"
        )
    return f"{component}: redrove {' and '.join(parts)}{note}"


def cmd_dlq(target: Target, args: argparse.Namespace, out: TextIO) -> int:
    sqs = target.client("sqs")
    total = 0
    for component in _components(args):
        url = target.dlq_url(component)
        if url is None:
            print(f"{component}: no dead-letter queue", file=out)
            continue
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        count = int(attributes["Attributes"]["ApproximateNumberOfMessages"])
        total += count
        if args.dlq_action == "show":
            print(f"{component}: {count} failed event(s)", file=out)
            if count:
                _show(target, sqs, url, args, out)
            continue
        done = _redrive(target, sqs, url, component, args)
        if any(done.values()) or count:
            print(_redrive_line(target, component, done), file=out)
    if args.dlq_action == "show" and total == 0:
        print("no failed events", file=out)
    return 0
