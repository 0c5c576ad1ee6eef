"""The test harnesses deliver a duplicated message twice at the same moment, as SNS's at-least-once delivery
can: the two copies must overlap in time (so claims, the initializer's upload and the recombinator's
completion are raced), each with its own request id, the SNS pump's to two warm handler instances."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import boto3
import pytest
from moto import mock_aws

from azs3copy.messages import FindBlobsTask, encode
from azs3copy.steps.context import Deps, Invocation, Outcome
from tests.support import harness as harness_module
from tests.support.fakes import MemoryBlobSource, MemoryObjectSink
from tests.support.pump import SnsPump
from tests.unit.steps.common import harness


class Overlap:
    """Records when each call ran; a call waits a little so a concurrent one can start meanwhile."""

    def __init__(self) -> None:
        self.spans: list[tuple[float, float, str]] = []
        self.lock = threading.Lock()

    def call(self, request_id: str, who: str = "") -> None:
        began = time.monotonic()
        time.sleep(0.2)
        with self.lock:
            self.spans.append((began, time.monotonic(), f"{who}:{request_id}"))

    def overlapped(self) -> bool:
        (first_start, first_end, _), (second_start, second_end, _) = sorted(self.spans)
        return second_start < first_end and first_start < second_end


def test_the_step_harness_delivers_a_duplicate_at_the_same_time(monkeypatch: pytest.MonkeyPatch) -> None:
    overlap = Overlap()

    def dispatch(deps: Deps, message: Any, invocation: Invocation) -> Outcome:
        overlap.call(invocation.request_id)
        return Outcome()

    monkeypatch.setattr(harness_module, "dispatch", dispatch)
    h = harness(MemoryBlobSource(), MemoryObjectSink(), duplicate=True)
    h.publisher.publish("find-blobs", [encode(FindBlobsTask("run-1", "alpha"))])
    h.drain()
    assert len(overlap.spans) == 2 and overlap.overlapped(), overlap.spans
    assert len({who for _, _, who in overlap.spans}) == 2  # a request id each


def test_the_sns_pump_delivers_a_duplicate_to_two_handler_instances_at_the_same_time() -> None:
    overlap = Overlap()

    def instance(who: str) -> Any:
        def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
            assert json.loads(event["Records"][0]["Sns"]["Message"]) == {"hello": "world"}
            overlap.call(context.aws_request_id, who)
            return {}

        return handler

    with mock_aws():
        sns = boto3.client("sns", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        topic = sns.create_topic(Name="download")["TopicArn"]
        with SnsPump(sns, sqs, duplicate=True) as pump:
            pump.route(topic, "download", instance("first"), instance("second"))
            sns.publish(TopicArn=topic, Message=json.dumps({"hello": "world"}))
            pump.drain()
        assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []  # closed: no taps left
    assert len(overlap.spans) == 2 and overlap.overlapped(), overlap.spans
    whos = sorted(who.split(":")[0] for _, _, who in overlap.spans)
    assert whos == ["first", "second"]
    assert len({who.split(":")[1] for _, _, who in overlap.spans}) == 2  # a request id each
    assert pump.invocations == {"download": 2} and not pump.failures
