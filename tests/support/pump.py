"""Drive the real handlers with real SNS envelopes, in-process: each topic is tapped by an SQS queue on the
moto server (SNS → SQS works there), and every message is turned into the Lambda SNS event that AWS would
deliver. Retries keep one request id, like Lambda's asynchronous retries.

With `duplicate`, every message is delivered twice at the same moment, as SNS's at-least-once delivery
does: two threads released together by a barrier, each invoking its own warm instance of the handler (two
Lambda execution environments) with its own request id, so the two copies race for the ledger's claims, the
initializer's upload and the recombinator's completion."""

from __future__ import annotations

import importlib.util
import json
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from devenv.runtime import sns_event
from devenv.worker import LocalLambdaContext

REPO = Path(__file__).resolve().parents[2]
Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def load_handler(directory: str) -> ModuleType:
    """A fresh import of lambdas/<directory>/handler.py (a new warm container)."""
    path = REPO / "lambdas" / directory / "handler.py"
    spec = importlib.util.spec_from_file_location(
        f"handler_{directory.replace('-', '_')}_{uuid.uuid4().hex}", path
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def lambda_context(function: str, request_id: str | None = None) -> LocalLambdaContext:
    """The context of one invocation of `function` starting now, with Lambda's 15 minutes."""
    return LocalLambdaContext.starting_now(function, request_id=request_id)


@dataclass
class Route:
    topic_arn: str
    queue_url: str
    subscription_arn: str
    function: str
    handler: Handler
    #: A second warm instance of the handler, for the concurrent copy of a duplicate delivery.
    twin: Handler


class SnsPump:
    def __init__(self, sns: Any, sqs: Any, *, max_attempts: int = 3, duplicate: bool = False) -> None:
        self.sns, self.sqs = sns, sqs
        self.routes: list[Route] = []
        self.max_attempts = max_attempts
        self.duplicate = duplicate
        self.failures: list[tuple[str, dict[str, Any], str]] = []
        self.invocations: dict[str, int] = {}
        self.envelopes: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._pool = (
            ThreadPoolExecutor(max_workers=2, thread_name_prefix="sns-duplicate") if duplicate else None
        )

    def route(self, topic_arn: str, function: str, handler: Handler, twin: Handler | None = None) -> None:
        """Deliver what `topic_arn` publishes to `handler` (and, for duplicates, to `twin` at the same time;
        without a twin both copies go to the same instance)."""
        name = f"tap-{function}-{uuid.uuid4().hex[:8]}"
        queue_url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        subscription = self.sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)[
            "SubscriptionArn"
        ]
        self.routes.append(Route(topic_arn, queue_url, subscription, function, handler, twin or handler))

    def close(self) -> None:
        """Unsubscribe and delete the tap queues (a topic that keeps old taps fans every message out to them)."""
        for route in self.routes:
            self.sns.unsubscribe(SubscriptionArn=route.subscription_arn)
            self.sqs.delete_queue(QueueUrl=route.queue_url)
        self.routes.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def __enter__(self) -> SnsPump:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def invoke(self, route: Route, event: dict[str, Any], handler: Handler | None = None) -> None:
        """One event, retried like Lambda's asynchronous invocation; failures after the last attempt are kept."""
        handler = handler or route.handler
        request_id = str(uuid.uuid4())  # one request id for every retry of this event, as Lambda keeps
        for attempt in range(1, self.max_attempts + 1):
            with self._lock:
                self.invocations[route.function] = self.invocations.get(route.function, 0) + 1
            context = lambda_context(route.function, request_id)
            try:
                handler(event, context)
                return
            except Exception as error:  # what Lambda would record as a function error
                if attempt == self.max_attempts:
                    with self._lock:
                        self.failures.append((route.function, event, f"{type(error).__name__}: {error}"))

    def deliver(self, route: Route, event: dict[str, Any]) -> None:
        """One SNS delivery; with `duplicate`, two at once (released together) to the route's two instances."""
        if self._pool is None:
            self.invoke(route, event)
            return
        barrier = threading.Barrier(2)

        def copy(handler: Handler) -> None:
            barrier.wait(timeout=30)
            self.invoke(route, event, handler)

        for future in [self._pool.submit(copy, route.handler), self._pool.submit(copy, route.twin)]:
            future.result()

    def drain(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        idle_rounds = 0
        while idle_rounds < 2:
            if time.monotonic() > deadline:
                raise TimeoutError("messages still flowing after the timeout")
            moved = 0
            for route in self.routes:
                response = self.sqs.receive_message(
                    QueueUrl=route.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
                )
                for message in response.get("Messages", []):
                    envelope = json.loads(message["Body"])
                    self.envelopes.append(envelope)
                    event = sns_event(envelope, route.subscription_arn)
                    self.deliver(route, event)
                    self.sqs.delete_message(QueueUrl=route.queue_url, ReceiptHandle=message["ReceiptHandle"])
                    moved += 1
            idle_rounds = idle_rounds + 1 if moved == 0 else 0
