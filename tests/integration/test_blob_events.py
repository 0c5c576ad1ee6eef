"""blob-events against the emulators: Event Grid deliveries (both schemas, as function URL requests) for blobs
put into Azurite, the handler queuing them, and the pipeline's handlers copying them into moto's S3. Every
copied blob is compared byte for byte with Azure."""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from azure.storage.blob import BlobServiceClient

from azs3copy.backends.dynamodb import DynamoLedger
from azs3copy.ledger import RunRecord
from azs3copy.steps.blob_events import events_run_id
from devenv.emulators import Azurite, MotoServer
from devenv.event_grid import TOKEN_HEADER, blob_event, validation_event
from devenv.function_urls import url_event
from tests.support.pump import lambda_context, load_handler
from tests.support.stack import THRESHOLD, Stack, handler_stack

TOKEN = uuid.uuid4().hex + uuid.uuid4().hex


@pytest.fixture(scope="module")
def stack(moto_server: MotoServer, azurite: Azurite) -> Iterator[Stack]:
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    with handler_stack(moto_server, service, azurite.connection_string, name="events") as built:
        yield built


@pytest.fixture()
def container(stack: Stack) -> str:
    name = f"e{uuid.uuid4().hex[:10]}"
    stack.azure.create_container(name)
    stack.configure([name], events_token=TOKEN)
    return name


def upload(stack: Stack, container: str, name: str, data: bytes, **event: Any) -> dict[str, Any]:
    """Put a blob into Azurite; returns the BlobCreated event Event Grid would deliver for it."""
    answer = stack.azure.get_blob_client(container, name).upload_blob(data, overwrite=True)
    return blob_event("Created", container, name, etag=str(answer["etag"]), size=len(data), **event)


def deliver(
    body: Any, *, token: str | None = TOKEN, method: str = "POST", headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """One delivery to a fresh warm container of blob-events, as its function URL hands it over."""
    sent = {"Content-Type": "application/json", **(headers or {})}
    if token is not None:
        sent[TOKEN_HEADER] = token
    raw = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else b""
    event = url_event(method, "/", sent, raw, "local.lambda-url.us-east-1.on.aws")
    response = load_handler("blob-events").lambda_handler(event, lambda_context("blob-events"))
    return dict(response)


def answer(response: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(response["body"])) if response.get("body") else {}


def events_run(stack: Stack) -> RunRecord | None:
    client = boto3.client("dynamodb", endpoint_url=stack.moto.endpoint, region_name="us-east-1")
    return DynamoLedger(client, os.environ["AZS3COPY_LEDGER_TABLE"]).get_run(events_run_id(datetime.now(UTC)))


def same_bytes(stack: Stack, container: str, names: list[str]) -> None:
    for name in names:
        expected = stack.azure.get_blob_client(container, name).download_blob().readall()
        assert stack.object_bytes(f"{container}/{name}") == expected, name


def test_both_subscription_handshakes_are_answered(stack: Stack, container: str) -> None:
    response = deliver(validation_event("code-123"), token=None)
    assert response["statusCode"] == 200 and answer(response) == {"validationResponse": "code-123"}
    options = deliver(
        None, method="OPTIONS", token=None, headers={"WebHook-Request-Origin": "eventgrid.azure.net"}
    )
    assert (
        options["statusCode"] == 200 and options["headers"]["WebHook-Allowed-Origin"] == "eventgrid.azure.net"
    )


def test_a_batch_of_blob_created_events_arrives_byte_identical(stack: Stack, container: str) -> None:
    blobs = {f"in/{i}.bin": os.urandom(10_000 + i) for i in range(6)} | {
        "in/large.bin": os.urandom(THRESHOLD + 7)
    }
    with stack.pump() as pump:
        events = [upload(stack, container, name, data) for name, data in blobs.items()]
        events[1] = {**events[1], **blob_event("Created", container, "in/1.bin", schema="cloudevents")}
        response = deliver(events)
        assert response["statusCode"] == 200, response
        assert answer(response)["states"] == {"queued": 7}
        pump.drain()
        assert not pump.failures
        assert pump.invocations["largefile-initializer"] == 1
    same_bytes(stack, container, list(blobs))
    run = events_run(stack)
    assert run is not None and run.counts["copied"] >= 7


def test_duplicate_deliveries_at_once_copy_each_blob_once(stack: Stack, container: str) -> None:
    names = [f"dup/{i}" for i in range(5)]
    with stack.pump() as pump:
        events = [upload(stack, container, name, os.urandom(5000)) for name in names]
        barrier = threading.Barrier(4)

        def once() -> int:
            barrier.wait(timeout=30)
            return int(deliver(events)["statusCode"])

        with ThreadPoolExecutor(max_workers=4) as threads:
            assert list(threads.map(lambda _: once(), range(4))) == [200] * 4
        pump.drain()
        assert not pump.failures
    same_bytes(stack, container, names)
    versions = stack.s3.list_objects_v2(Bucket=stack.bucket, Prefix=f"{container}/dup/")["KeyCount"]
    assert versions == len(names)


def test_an_older_event_delivered_after_a_newer_version_does_not_overwrite_it(
    stack: Stack, container: str
) -> None:
    with stack.pump() as pump:
        old = upload(stack, container, "doc.txt", b"version one")
        new = upload(stack, container, "doc.txt", b"version two, newer")
        assert deliver([new])["statusCode"] == 200
        pump.drain()
        late = deliver([old])  # Event Grid delivered the older event last
        pump.drain()
        assert not pump.failures
    assert answer(late)["states"] == {"skipped": 1}
    assert stack.object_bytes(f"{container}/doc.txt") == b"version two, newer"


def test_a_wrong_token_gets_401_and_queues_nothing(stack: Stack, container: str) -> None:
    with stack.pump() as pump:
        event = upload(stack, container, "secret.txt", b"x")
        for token in (None, "", "not-the-token-but-long-enough-000000000000"):
            assert deliver([event], token=token)["statusCode"] == 401
        pump.drain()
        assert sum(pump.invocations.values()) == 0
    assert f"{container}/secret.txt" not in stack.keys(container)


def test_a_malformed_body_gets_400(stack: Stack, container: str) -> None:
    for body in (
        b"{not json",
        [{"eventType": "Microsoft.Storage.BlobCreated", "subject": "nope", "data": {}}],
    ):
        response = deliver(body)
        assert response["statusCode"] == 400 and answer(response)["error"]


def test_blob_deleted_is_recorded_and_s3_keeps_the_object(stack: Stack, container: str) -> None:
    with stack.pump() as pump:
        deliver([upload(stack, container, "kept.txt", b"keep me")])
        pump.drain()
    stack.azure.get_blob_client(container, "kept.txt").delete_blob()
    response = deliver([blob_event("Deleted", container, "kept.txt")])
    assert response["statusCode"] == 200 and answer(response)["states"] == {"deleted-in-azure": 1}
    assert stack.object_bytes(f"{container}/kept.txt") == b"keep me"


def test_a_burst_of_1000_events_copies_every_blob_once(stack: Stack, container: str) -> None:
    names = [f"burst/{i:02d}" for i in range(20)]
    with stack.pump() as pump:
        uploaded = {
            name: upload(stack, container, name, os.urandom(2000 + i)) for i, name in enumerate(names)
        }
        events = [
            {**uploaded[names[i % len(names)]], "id": str(uuid.uuid4())} for i in range(1000)
        ]  # every blob announced 50 times, as at-least-once delivery may
        batches = [events[start : start + 100] for start in range(0, 1000, 100)]
        with ThreadPoolExecutor(max_workers=5) as threads:
            statuses = list(threads.map(lambda batch: deliver(batch)["statusCode"], batches))
        assert statuses == [200] * 10
        pump.drain()
        assert not pump.failures
        assert pump.invocations["download"] <= 10 * 1  # one batch message per delivery at most
    same_bytes(stack, container, names)


def test_while_isactive_is_false_events_are_answered_and_nothing_is_queued(
    stack: Stack, container: str
) -> None:
    stack.configure([container], events_token=TOKEN, isactive=False)
    with stack.pump() as pump:
        response = deliver([upload(stack, container, "off.txt", b"off")])
        pump.drain()
        assert sum(pump.invocations.values()) == 0
    assert response["statusCode"] == 200 and "isactive" in answer(response)["reason"]
    assert f"{container}/off.txt" not in stack.keys(container)


def test_a_failure_to_queue_answers_5xx_and_event_grids_retry_copies_the_blob(
    stack: Stack, container: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with stack.pump() as pump:
        event = upload(stack, container, "retried.bin", os.urandom(3000))
        gone = stack.topics["download"].rsplit(":", 1)[0] + ":no-such-topic"
        monkeypatch.setenv("AZS3COPY_TOPIC_DOWNLOAD", gone)  # SNS refuses every publish
        failed = deliver([event])
        assert failed["statusCode"] == 500 and answer(failed)["retryable"] is True
        monkeypatch.setenv("AZS3COPY_TOPIC_DOWNLOAD", stack.topics["download"])
        retried = deliver([event])  # Event Grid delivers the batch again
        assert retried["statusCode"] == 200 and answer(retried)["states"] == {"queued": 1}
        pump.drain()
        assert not pump.failures
    same_bytes(stack, container, ["retried.bin"])
