"""A step reading its SQS queue (Lambda's event source mapping), over moto's mock_aws with the in-memory Azure
source: records carry the message as their body, the attempt is the record's receive count, and a record that
failed is reported in batchItemFailures while the batch's others are done."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from azs3copy.checksums import md5_b64
from azs3copy.errors import TransientError
from azs3copy.handler import queue
from azs3copy.messages import BlobRef, DownloadTask, SourceBlob, decode, encode
from azs3copy.transports import ListPage
from devenv.event_sources import sqs_event
from tests.support.fakes import MemoryBlobSource
from tests.support.pump import SnsPump, lambda_context
from tests.unit.handler.test_function import MODIFIED, Cloud, cloud, launcher, secret

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:download-queue"
__all__ = ["cloud"]  # the fixture, shared with the handlers' other tests


class Flaky:
    """The in-memory Azure, whose reads of the blobs named fail with a throttle `times` times (-1: always)."""

    def __init__(self, blobs: MemoryBlobSource, failing: dict[str, int]) -> None:
        self.blobs, self.failing = blobs, failing

    def list_containers(self) -> list[str]:
        return self.blobs.list_containers()

    def list_page(
        self, container: str, prefix: str, marker: str | None, page_size: int, delimiter: str | None = None
    ) -> ListPage:
        return self.blobs.list_page(container, prefix, marker, page_size, delimiter)

    def read_range(self, blob: BlobRef, offset: int, length: int) -> bytes:
        left = self.failing.get(blob.name, 0)
        if left:
            self.failing[blob.name] = left - 1
            raise TransientError(f"Azure 503 ServerBusy reading {blob.blob_id}")
        return self.blobs.read_range(blob, offset, length)

    def read_blob(self, blob: BlobRef) -> tuple[bytes, str]:
        data = self.read_range(blob, 0, blob.size)
        return data, md5_b64(data)

    def get_blob(self, container: str, name: str) -> SourceBlob | None:
        return self.blobs.get_blob(container, name)


def download_queue(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """download's queue as Terraform makes it (redrive after 3 receives; a long visibility timeout, so only
    the handler's retry delay makes a failed record visible again), and its dead-letter queue."""
    dlq = cloud.sqs.create_queue(QueueName="download-dlq")["QueueUrl"]
    dlq_arn = cloud.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    url = cloud.sqs.create_queue(
        QueueName="download-queue",
        Attributes={
            "VisibilityTimeout": "5400",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3}),
        },
    )["QueueUrl"]
    monkeypatch.setenv("AZS3COPY_QUEUE_URL", url)
    monkeypatch.setenv("AZS3COPY_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("AZS3COPY_RETRY_DELAY", "0")
    return url, dlq


def listed_batch(cloud: Cloud, names: list[str]) -> tuple[str, DownloadTask]:
    """Launch a run and list the container (find-blobs over SNS): the run and its one download batch."""
    for name in names:
        cloud.azure.blobs.put("alpha", name, os.urandom(2000), last_modified=MODIFIED)
    cloud.write_secret(secret())
    batches: list[Any] = []

    def keep(event: dict[str, Any], context: Any) -> dict[str, Any]:
        batches.append(decode(event["Records"][0]["Sns"]["Message"]))
        return {}

    pump = SnsPump(cloud.sns, cloud.sqs)
    pump.route(cloud.topics["find-blobs"], "find-blobs", cloud.handler("find-blobs").lambda_handler)
    pump.route(cloud.topics["download"], "download", keep)
    run_id = str(launcher(cloud)()["run_id"])
    pump.drain()
    pump.close()
    [batch] = batches
    assert isinstance(batch, DownloadTask)
    return run_id, batch


def receive(cloud: Cloud, url: str) -> list[dict[str, Any]]:
    return list(
        cloud.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"]).get(
            "Messages", []
        )
    )


def test_a_record_that_failed_retryably_is_reported_alone_and_comes_back_as_the_second_attempt(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = download_queue(cloud, monkeypatch)
    run_id, batch = listed_batch(cloud, ["a.bin", "b.bin"])
    by_name = {blob.name: (blob, key) for blob, key in zip(batch.blobs, batch.keys, strict=True)}
    for name in ("a.bin", "b.bin"):  # two records, one blob each
        blob, key = by_name[name]
        cloud.sqs.send_message(QueueUrl=url, MessageBody=encode(DownloadTask(run_id, (blob,), (key,))))
    download = cloud.handler("download")
    flaky = Flaky(cloud.azure.blobs, {"b.bin": 1})
    download.function.source_factory = lambda creds: flaky
    messages = receive(cloud, url)
    assert len(messages) == 2
    failing = next(m["MessageId"] for m in messages if "b.bin" in m["Body"])

    response = download.lambda_handler(sqs_event(messages, QUEUE_ARN), lambda_context("download"))

    assert response["batchItemFailures"] == [{"itemIdentifier": failing}]
    assert cloud.keys() == ["alpha/a.bin"]
    # The handler made it visible again after its retry delay, not the queue's 90 minutes.
    [again] = receive(cloud, url)
    assert again["MessageId"] == failing and again["Attributes"]["ApproximateReceiveCount"] == "2"
    response = download.lambda_handler(sqs_event([again], QUEUE_ARN), lambda_context("download"))
    assert response["batchItemFailures"] == []
    assert cloud.body("alpha/b.bin") == cloud.azure.blobs.read_range(by_name["b.bin"][0], 0, 2000)
    report = cloud.report(run_id)
    assert report["counts"]["copied"] == 2 and report["ok"] is True


def test_the_last_receive_records_the_blob_failed_with_its_reason_and_the_message_goes_to_the_dlq(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, dlq = download_queue(cloud, monkeypatch)
    run_id, batch = listed_batch(cloud, ["c.bin"])
    body = encode(batch)
    cloud.sqs.send_message(QueueUrl=url, MessageBody=body)
    download = cloud.handler("download")
    download.function.source_factory = lambda creds: Flaky(cloud.azure.blobs, {"c.bin": -1})
    counts = []
    for _ in range(3):
        [message] = receive(cloud, url)
        counts.append(message["Attributes"]["ApproximateReceiveCount"])
        response = download.lambda_handler(sqs_event([message], QUEUE_ARN), lambda_context("download"))
        assert response["batchItemFailures"] == [{"itemIdentifier": message["MessageId"]}]
    assert counts == ["1", "2", "3"]
    report = cloud.report(run_id)  # the third attempt was the last: recorded, the run ended
    [failure] = report["failures"]
    assert failure["blob"] == "alpha/c.bin" and "ServerBusy" in failure["reason"]
    assert receive(cloud, url) == []  # the receive past maxReceiveCount moved it
    [dead] = receive(cloud, dlq)
    assert dead["Body"] == body  # the task itself: `azs3copy dlq redrive` sends it back as it is


def test_a_body_that_is_still_an_sns_envelope_is_unwrapped() -> None:
    message = '{"kind": "find-blobs"}'
    envelope = json.dumps(
        {"Type": "Notification", "TopicArn": "arn:aws:sns:us-east-1:1:t", "Message": message}
    )
    assert queue.message_text({"messageId": "1", "body": envelope}) == message
    assert queue.message_text({"messageId": "1", "body": message}) == message
    assert queue.receive_count({"attributes": {"ApproximateReceiveCount": "4"}}) == 4
    assert queue.is_queue_event({"Records": [{"eventSource": "aws:sqs"}]})
    assert not queue.is_queue_event({"Records": [{"EventSource": "aws:sns", "Sns": {}}]})
    assert not queue.is_queue_event({"source": "schedule"})
