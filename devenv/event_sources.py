"""Lambda's SQS event source mappings, played by the local runtime for what Terraform deployed on moto.

moto stores each mapping (queue, function, batch size, `ScalingConfig`, `FunctionResponseTypes`) but runs none
(devenv.moto_main turns off its own attempt, which needs Docker). Here each mapping is served as Lambda serves
one:

* pollers receive from the queue, at most `BatchSize` messages at a time, and invoke the function
  synchronously with the SQS event Lambda builds (`Records[]` with `messageId`, `receiptHandle`, `body`,
  `attributes.ApproximateReceiveCount`, `eventSource` `aws:sqs`, ...);
* at most `ScalingConfig.MaximumConcurrency` invocations of the mapping run at once (and never more than the
  function's pool of workers, its reserved concurrency); what cannot run waits in the queue;
* an invocation that succeeds deletes its batch, except, with `ReportBatchItemFailures`, the records its
  response lists in `batchItemFailures` (a listed id that is not in the batch fails the whole batch);
* an invocation that fails (an error, a timeout, a crash) deletes nothing: its messages become visible again
  when their visibility timeout ends, or earlier if the function changed it;
* a message received `maxReceiveCount` times moves to the queue's dead-letter queue: SQS does that itself on
  the next receive (moto does too: tests/integration/test_event_sources.py checks it rather than trusts it).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger("devenv.event_sources")


@dataclass(frozen=True)
class MappingSpec:
    uuid: str
    function_arn: str
    queue_arn: str
    queue_url: str
    batch_size: int
    #: ScalingConfig.MaximumConcurrency; None: no cap but the function's own.
    maximum_concurrency: int | None
    reports_item_failures: bool


class Invoker(Protocol):
    """What a mapping needs of a function's pool: its size and a synchronous invocation."""

    size: int

    def invoke(self, event: Any) -> dict[str, Any]: ...


def queue_url_of(sqs: Any, queue_arn: str) -> str:
    _, _, _, _, account, name = queue_arn.split(":", 5)
    return str(sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"])


def discover_mappings(lambda_client: Any, sqs: Any, function_arns: set[str]) -> list[MappingSpec]:
    """Every enabled SQS event source mapping of one of `function_arns`."""
    found = []
    for page in lambda_client.get_paginator("list_event_source_mappings").paginate():
        for item in page["EventSourceMappings"]:
            source, function = item.get("EventSourceArn", ""), item.get("FunctionArn", "")
            unqualified = function.split(":$LATEST")[0]
            if source.split(":")[2:3] != ["sqs"] or unqualified not in function_arns:
                continue
            if item.get("State") not in (None, "Enabled", "Creating", "Updating"):
                log.info("event source mapping %s is %s; not served", item.get("UUID"), item.get("State"))
                continue
            scaling = item.get("ScalingConfig") or {}
            found.append(
                MappingSpec(
                    uuid=str(item["UUID"]),
                    function_arn=unqualified,
                    queue_arn=source,
                    queue_url=queue_url_of(sqs, source),
                    batch_size=int(item.get("BatchSize") or 10),
                    maximum_concurrency=int(scaling["MaximumConcurrency"])
                    if scaling.get("MaximumConcurrency")
                    else None,
                    reports_item_failures="ReportBatchItemFailures"
                    in (item.get("FunctionResponseTypes") or []),
                )
            )
    return found


def _attribute(value: dict[str, Any]) -> dict[str, Any]:
    """A message attribute as Lambda spells it in an SQS event (camelCase, lists included)."""
    return {
        "stringValue": value.get("StringValue"),
        "binaryValue": value.get("BinaryValue"),
        "stringListValues": value.get("StringListValues", []),
        "binaryListValues": value.get("BinaryListValues", []),
        "dataType": value.get("DataType"),
    }


def sqs_event(messages: Iterable[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The event Lambda delivers for a batch received from `queue_arn`."""
    region = queue_arn.split(":")[3]
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": dict(message.get("Attributes") or {}),
                "messageAttributes": {
                    name: _attribute(value)
                    for name, value in (message.get("MessageAttributes") or {}).items()
                },
                "md5OfBody": message.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for message in messages
        ]
    }


def settled(reply: dict[str, Any], message_ids: list[str], reports_item_failures: bool) -> set[str]:
    """The messages of a batch Lambda deletes after the invocation's `reply` (the worker's answer)."""
    if not reply.get("ok"):
        return set()  # a function error: the whole batch is received again
    result = reply.get("result")
    if not reports_item_failures or not isinstance(result, dict):
        return set(message_ids)
    failures = result.get("batchItemFailures")
    if not failures:
        return set(message_ids)  # null or an empty list: every record succeeded
    if not isinstance(failures, list):
        return set()
    failed = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not identifier or identifier not in message_ids:
            return set()  # Lambda treats an unknown or empty id as the whole batch failed
        failed.add(identifier)
    return set(message_ids) - failed


@dataclass
class QueuePoller:
    """One event source mapping: `concurrency` pollers, each receiving a batch and invoking the function with
    it, so that at most that many invocations run at once."""

    mapping: MappingSpec
    pool: Invoker
    client: Callable[[], Any]
    stopped: threading.Event
    poll_seconds: int = 1
    stats: Counter[str] = field(default_factory=Counter)
    running: int = 0
    #: Pollers allowed to hold a batch at once (at most `concurrency`; lowered by `set_maximum_concurrency`).
    allowed: int = -1
    _lock: threading.Condition = field(default_factory=threading.Condition)

    @property
    def concurrency(self) -> int:
        cap = self.mapping.maximum_concurrency
        return min(cap, self.pool.size) if cap else self.pool.size

    def set_maximum_concurrency(self, most: int) -> None:
        """What UpdateEventSourceMapping's ScalingConfig does: from now on at most `most` invocations at once
        (never more pollers than were started)."""
        with self._lock:
            self.allowed = max(0, min(most, self.concurrency))
            self._lock.notify_all()

    def _take_slot(self) -> bool:
        with self._lock:
            while self.stats["holding"] >= self.allowed and not self.stopped.is_set():
                self._lock.wait(0.5)
            if self.stopped.is_set():
                return False
            self.stats["holding"] += 1
            return True

    def _free_slot(self) -> None:
        with self._lock:
            self.stats["holding"] -= 1
            self._lock.notify_all()

    def start(self, name: str) -> list[threading.Thread]:
        self.allowed = self.concurrency
        if self.concurrency == 0:
            log.warning("%s: the function has no concurrency; its queue is not read", name)
        threads = [
            threading.Thread(target=self._poll, name=f"{name}-poller-{i}", daemon=True)
            for i in range(self.concurrency)
        ]
        for thread in threads:
            thread.start()
        return threads

    def _poll(self) -> None:
        sqs = self.client()
        while self._take_slot():
            try:
                self._receive_and_deliver(sqs)
            finally:
                self._free_slot()

    def _receive_and_deliver(self, sqs: Any) -> None:
        while True:
            try:
                messages = sqs.receive_message(
                    QueueUrl=self.mapping.queue_url,
                    MaxNumberOfMessages=self.mapping.batch_size,
                    WaitTimeSeconds=self.poll_seconds,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
            except Exception:
                if self.stopped.is_set():
                    return
                log.exception("receiving from %s failed", self.mapping.queue_url)
                time.sleep(1)
                continue
            if messages:
                self.deliver(sqs, messages)
            return

    def deliver(self, sqs: Any, messages: list[dict[str, Any]]) -> None:
        """One invocation with the batch, then the deletes Lambda makes after it."""
        now_ms = int(time.time() * 1000)
        waited = [now_ms - int((m.get("Attributes") or {}).get("SentTimestamp", now_ms)) for m in messages]
        with self._lock:
            self.running += 1
            self.stats["batches"] += 1
            self.stats["records"] += len(messages)
            self.stats["peak"] = max(self.stats["peak"], self.running)
            # how long the longest-waiting message had been in the queue when it was received
            self.stats["longest_wait_ms"] = max(self.stats["longest_wait_ms"], *waited)
        try:
            reply = self.pool.invoke(sqs_event(messages, self.mapping.queue_arn))
        finally:
            with self._lock:
                self.running -= 1
        ids = [message["MessageId"] for message in messages]
        done = settled(reply, ids, self.mapping.reports_item_failures)
        with self._lock:
            self.stats["function_errors"] += 0 if reply.get("ok") else 1
            self.stats["records_failed"] += len(ids) - len(done)
        entries = [
            {"Id": str(i), "ReceiptHandle": message["ReceiptHandle"]}
            for i, message in enumerate(messages)
            if message["MessageId"] in done
        ]
        if entries:
            try:
                sqs.delete_message_batch(QueueUrl=self.mapping.queue_url, Entries=entries)
            except Exception:  # the messages come back after their visibility timeout, as on Lambda
                log.exception("deleting %d message(s) from %s failed", len(entries), self.mapping.queue_url)

    def idle(self, sqs: Any) -> bool:
        with self._lock:
            if self.running:
                return False
        attributes = sqs.get_queue_attributes(
            QueueUrl=self.mapping.queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return not any(int(value) for value in attributes.values())


def start_pollers(
    lambda_client: Any,
    client: Callable[[], Any],
    pools: Mapping[str, Invoker],
    function_arns: dict[str, str],
    stopped: threading.Event,
    poll_seconds: int = 1,
) -> list[QueuePoller]:
    """A running poller for every SQS mapping of the deployed functions (`function_arns`: ARN → name)."""
    pollers = []
    for mapping in discover_mappings(lambda_client, client(), set(function_arns)):
        name = function_arns[mapping.function_arn]
        poller = QueuePoller(mapping, pools[name], client, stopped, poll_seconds)
        poller.start(name)
        log.info(
            "function %s reads %s: batch size %d, maximum concurrency %s (%d poller(s)), %s",
            name,
            mapping.queue_arn.rsplit(":", 1)[-1],
            mapping.batch_size,
            mapping.maximum_concurrency,
            poller.concurrency,
            "partial batch failures" if mapping.reports_item_failures else "whole batches",
        )
        pollers.append(poller)
    return pollers
