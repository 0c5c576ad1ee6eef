"""The local runtime serves an SQS event source mapping as Lambda does, against moto server: a probe function
(tests/integration/runtime_lambdas/probe) reading a queue with a redrive policy, through a mapping with a batch
size, a maximum concurrency and partial batch failures."""

from __future__ import annotations

import io
import json
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from devenv.emulators import MotoServer
from devenv.event_sources import settled
from devenv.runtime import Runtime, aws_client

LAMBDAS = Path(__file__).parent / "runtime_lambdas"
VISIBILITY = 3  # seconds; above the probe's timeout, as the module sets it
MAX_RECEIVES = 3


@dataclass
class Queued:
    runtime: Runtime
    function: str
    queue: str
    dlq: str
    probe_log: Path
    moto: MotoServer

    def client(self, service: str) -> Any:
        return aws_client(service, self.moto.endpoint, "us-east-1")

    def send(self, **ask: Any) -> str:
        return str(
            self.client("sqs").send_message(QueueUrl=self.queue, MessageBody=json.dumps(ask))["MessageId"]
        )

    def calls_tagged(self, tag: str) -> list[dict[str, Any]]:
        if not self.probe_log.exists():
            return []
        calls = [json.loads(line) for line in self.probe_log.read_text().splitlines() if line.strip()]
        return [call for call in calls if call["ask"].get("tag") == tag]

    def dead_letters(self) -> list[dict[str, Any]]:
        sqs, found = self.client("sqs"), []
        while True:
            messages = sqs.receive_message(QueueUrl=self.dlq, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return found
            for message in messages:
                found.append({"id": message["MessageId"], "body": json.loads(message["Body"])})
                sqs.delete_message(QueueUrl=self.dlq, ReceiptHandle=message["ReceiptHandle"])


def wait_for(condition: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not true within {timeout} s")


@pytest.fixture(scope="module")
def queued(moto_server: MotoServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Queued]:
    prefix = f"es{uuid.uuid4().hex[:6]}"
    tmp = tmp_path_factory.mktemp("event-sources")

    def client(service: str) -> Any:
        return aws_client(service, moto_server.endpoint, "us-east-1")

    role = client("iam").create_role(RoleName=f"{prefix}-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "# the runtime runs tests/integration/runtime_lambdas/probe\n")
    name = f"{prefix}-probe"
    lam, sqs = client("lambda"), client("sqs")
    lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="handler.lambda_handler",
        Code={"ZipFile": code.getvalue()},
        Timeout=2,
        MemorySize=256,
        Environment={"Variables": {"PROBE_LOG": str(tmp / "probe.jsonl")}},
        Tags={"azs3copy:component": "probe"},
    )
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=4)
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = sqs.create_queue(
        QueueName=f"{name}-queue",
        Attributes={
            "VisibilityTimeout": str(VISIBILITY),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVES}),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    lam.create_event_source_mapping(
        EventSourceArn=queue_arn,
        FunctionName=name,
        BatchSize=2,
        ScalingConfig={"MaximumConcurrency": 2},
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    runtime = Runtime(moto_server.endpoint, lambdas_root=LAMBDAS, log_dir=tmp / "logs", name_prefix=prefix)
    runtime.start()
    try:
        yield Queued(runtime, name, queue, dlq, tmp / "probe.jsonl", moto_server)
    finally:
        runtime.stop()


def test_the_runtime_reads_the_mapping_terraform_deploys(queued: Queued) -> None:
    [poller] = queued.runtime.event_sources
    assert poller.mapping.batch_size == 2 and poller.mapping.maximum_concurrency == 2
    assert poller.mapping.reports_item_failures and poller.mapping.queue_url.endswith(
        f"{queued.function}-queue"
    )
    assert poller.concurrency == 2  # the mapping's cap, below the function's 4 workers


def test_a_backlog_runs_at_most_maximum_concurrency_at_once_and_every_message_once(queued: Queued) -> None:
    sent = {queued.send(tag="backlog", overlap=0.4) for _ in range(12)}
    calls = wait_for(lambda: (c := queued.calls_tagged("backlog")) and len(c) >= 12 and c, timeout=60)
    wait_for(lambda: queued.runtime.idle(), timeout=30)
    assert {call["message_id"] for call in calls} == sent and len(calls) == 12
    assert all(call["batch"] <= 2 for call in calls)
    most = int((queued.probe_log.parent / "probe.jsonl.running").read_text().split()[1])
    # Two invocations of up to two records each, the records of one invocation one after the other.
    assert most <= 2, f"{most} records ran at once"
    assert queued.runtime.event_sources[0].stats["peak"] <= 2


def test_a_record_reported_failed_is_retried_then_moved_to_the_dlq_unchanged(queued: Queued) -> None:
    failing = queued.send(tag="partial", fail_record=True)
    fine = queued.send(tag="partial")
    [dead] = wait_for(queued.dead_letters, timeout=60)
    assert dead["id"] == failing and dead["body"] == {"tag": "partial", "fail_record": True}
    attempts = [c for c in queued.calls_tagged("partial") if c["message_id"] == failing]
    assert [c["receive_count"] for c in attempts] == list(range(1, MAX_RECEIVES + 1))
    # each attempt after the message's visibility timeout, not at once
    gaps = [later["at"] - earlier["at"] for earlier, later in pairwise(attempts)]
    assert all(gap >= VISIBILITY - 0.5 for gap in gaps), gaps
    # the other record of the batch succeeded once and was deleted
    assert [c["receive_count"] for c in queued.calls_tagged("partial") if c["message_id"] == fine] == [1]


def test_a_batch_whose_invocation_fails_comes_back_after_its_visibility_timeout(queued: Queued) -> None:
    slow = queued.send(tag="timeout", sleep_first=5)  # past the probe's 2 s timeout, on the first receive
    calls = wait_for(lambda: len(c := queued.calls_tagged("timeout")) >= 2 and c, timeout=30)
    wait_for(lambda: queued.runtime.idle(), timeout=30)
    assert [c["receive_count"] for c in calls] == [1, 2] and {c["message_id"] for c in calls} == {slow}
    assert calls[1]["at"] - calls[0]["at"] >= VISIBILITY - 0.5
    assert queued.dead_letters() == []


def test_lambda_deletes_what_a_reply_settles() -> None:
    ids = ["a", "b", "c"]
    assert settled({"ok": True, "result": {"batchItemFailures": []}}, ids, True) == set(ids)
    assert settled({"ok": True, "result": None}, ids, True) == set(ids)
    assert settled({"ok": True, "result": {"batchItemFailures": [{"itemIdentifier": "b"}]}}, ids, True) == {
        "a",
        "c",
    }
    # an id that is not the batch's, or none: the whole batch failed
    assert (
        settled({"ok": True, "result": {"batchItemFailures": [{"itemIdentifier": "z"}]}}, ids, True) == set()
    )
    assert settled({"ok": True, "result": {"batchItemFailures": [{}]}}, ids, True) == set()
    # without ReportBatchItemFailures the response is not read
    assert settled(
        {"ok": True, "result": {"batchItemFailures": [{"itemIdentifier": "b"}]}}, ids, False
    ) == set(ids)
    assert settled({"ok": False, "errorType": "Sandbox.Timedout"}, ids, True) == set()
