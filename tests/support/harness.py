"""An in-process message bus that drives the engine's steps the way SNS and Lambda drive the handlers:
every message is delivered (optionally twice, optionally shuffled), retryable failures are retried up to the
attempt limit, and what still fails lands in a dead-letter list.

A message delivered twice is delivered twice at the same moment, as SNS's at-least-once delivery does: two
threads released together, each with its own request id, racing for the ledger's claims."""

from __future__ import annotations

import random
import threading
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from azs3copy.errors import Azs3copyError
from azs3copy.functions import PIPELINE, snake
from azs3copy.ledger import Ledger, RunRecord
from azs3copy.messages import decode
from azs3copy.settings import Settings
from azs3copy.steps.context import Deps, Invocation, Topics, Tuning
from azs3copy.steps.dispatch import dispatch
from azs3copy.steps.launch_qualification import launch_qualification
from azs3copy.transports import BlobSource, ObjectSink
from tests.support.fakes import MemoryBlobSource, MemoryLedger, MemoryObjectSink

TOPICS = Topics(
    **{snake(function): function for function in PIPELINE[1:]}
)  # each topic by the function it feeds


class QueuePublisher:
    def __init__(self) -> None:
        self.queue: deque[tuple[str, str]] = deque()
        self.sent: list[tuple[str, str]] = []

    def publish(self, topic: str, bodies: list[str]) -> None:
        for body in bodies:
            self.queue.append((topic, body))
            self.sent.append((topic, body))


@dataclass
class Harness:
    source: BlobSource
    sink: ObjectSink
    settings: Settings
    tuning: Tuning = field(
        default_factory=lambda: Tuning(large_threshold=12 << 20, part_size=5 << 20, chunk_size=5 << 20)
    )
    ledger: Ledger = field(default_factory=MemoryLedger)
    duplicate: bool = False
    shuffle: random.Random | None = None
    publisher: QueuePublisher = field(default_factory=QueuePublisher)
    dead_letters: list[tuple[str, str, str]] = field(default_factory=list)
    #: Blobs failed for good, as the handlers would dead-letter them: (run id, blob id, reason).
    fatal: list[tuple[str, str, str]] = field(default_factory=list)
    deliveries: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def deps(self) -> Deps:
        return Deps(
            ledger=self.ledger,
            publisher=self.publisher,
            topics=TOPICS,
            tuning=self.tuning,
            sink=self.sink,
            source=self.source,
            settings=self.settings,
            secrets=tuple(self.settings.azure.secret_values()) if self.settings.azure else (),
            on_fatal=lambda run_id, blob_id, reason: self.fatal.append((run_id, blob_id, reason)),
        )

    def run(self, *, force: bool = False) -> str | None:
        outcome = launch_qualification(self.deps(), force=force)
        if not outcome.detail.get("started"):
            return None
        self.drain()
        return str(outcome.detail["run_id"])

    def drain(self) -> None:
        while self.publisher.queue:
            if self.shuffle:
                items = list(self.publisher.queue)
                self.shuffle.shuffle(items)
                self.publisher.queue = deque(items)
            topic, body = self.publisher.queue.popleft()
            if self.duplicate:
                self.deliver_together(topic, body)
            else:
                self.deliver(topic, body)

    def deliver_together(self, topic: str, body: str) -> None:
        """Two deliveries of one message, started at the same moment from two threads."""
        barrier = threading.Barrier(2)

        def copy() -> None:
            barrier.wait(timeout=30)
            self.deliver(topic, body)

        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="sns-duplicate") as pool:
            for future in [pool.submit(copy), pool.submit(copy)]:
                future.result()

    def deliver(self, topic: str, body: str) -> None:
        request_id = uuid.uuid4().hex  # Lambda keeps one request id across the retries of an async event
        for attempt in range(1, self.tuning.max_attempts + 1):
            with self._lock:
                self.deliveries += 1
            invocation = Invocation(
                request_id=request_id, final_attempt=attempt >= self.tuning.max_attempts, attempt=attempt
            )
            try:
                dispatch(self.deps(), decode(body), invocation)
                return
            except Azs3copyError as error:
                if attempt >= self.tuning.max_attempts:
                    with self._lock:
                        self.dead_letters.append((topic, body, str(error)))
                    return

    def report(self, run_id: str) -> RunRecord:
        record = self.ledger.get_run(run_id)
        assert record is not None
        return record


def memory_pair() -> tuple[MemoryBlobSource, MemoryObjectSink]:
    return MemoryBlobSource(), MemoryObjectSink()
