"""The six handlers against the real emulators: Azurite for Azure, moto server for AWS, real SNS envelopes.
Every copy is checked the way a user would: the bytes in S3 equal the bytes in Azure."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from azure.storage.blob import BlobServiceClient, ContentSettings

from azs3copy.local.emulators import Azurite, MotoServer
from tests.support.aws import create_ledger_table
from tests.support.pump import SnsPump, lambda_context, load_handler

MiB = 1 << 20
THRESHOLD = 12 * MiB
PART = 5 * MiB
FUNCTIONS = {
    "containers": "find-blobs",
    "small": "download",
    "large": "largefile-initializer",
    "parts": "largefile-parter",
    "recombine": "largefile-recombinator",
}


@dataclass
class Stack:
    moto: MotoServer
    azure: BlobServiceClient
    s3: Any
    secrets: Any
    secret_id: str
    bucket: str
    sns: Any
    sqs: Any
    topics: dict[str, str]
    connection_string: str

    def configure(self, containers: list[str], **extra: Any) -> None:
        document = {
            "isactive": True,
            "begindate": "2000-01-01",
            "azure": {"connection_string": self.connection_string},
            "containers": containers,
            **extra,
        }
        self.secrets.put_secret_value(SecretId=self.secret_id, SecretString=json.dumps(document))

    def pump(self, *, duplicate: bool = False, only: set[str] | None = None) -> SnsPump:
        pump = SnsPump(self.sns, self.sqs, duplicate=duplicate)
        for topic, function in FUNCTIONS.items():
            if only is None or function in only:
                pump.route(self.topics[topic], function, load_handler(function).lambda_handler)
        return pump

    def launch(self) -> str:
        response = load_handler("launch-qualification").lambda_handler(
            {"force": True}, lambda_context("launch-qualification")
        )
        assert response["started"] is True, response
        return str(response["run_id"])

    def report(self, run_id: str) -> dict[str, Any]:
        body = self.s3.get_object(Bucket=self.bucket, Key=f"_azs3copy/reports/{run_id}.json")["Body"].read()
        return dict(json.loads(body))

    def object_bytes(self, key: str) -> bytes:
        return bytes(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def assert_identical(self, container: str, prefix: str = "") -> int:
        client = self.azure.get_container_client(container)
        count = 0
        for blob in client.list_blobs():
            expected = client.download_blob(blob.name).readall()
            assert self.object_bytes(f"{prefix}{container}/{blob.name}") == expected, blob.name
            count += 1
        return count

    def open_uploads(self) -> list[dict[str, Any]]:
        return list(self.s3.list_multipart_uploads(Bucket=self.bucket).get("Uploads", []))


@pytest.fixture(scope="module")
def stack(moto_server: MotoServer, azurite: Azurite) -> Iterator[Stack]:
    region = "us-east-1"
    session = boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name=region
    )
    clients = {
        name: session.client(name, endpoint_url=moto_server.endpoint)
        for name in ("s3", "secretsmanager", "sns", "sqs", "dynamodb")
    }
    suffix = uuid.uuid4().hex[:8]
    bucket = f"dest-{suffix}"
    clients["s3"].create_bucket(Bucket=bucket)
    create_ledger_table(clients["dynamodb"], f"ledger-{suffix}")
    secret_id = clients["secretsmanager"].create_secret(Name=f"azs3copy-{suffix}", SecretString="{}")["ARN"]
    topics = {name: clients["sns"].create_topic(Name=f"{name}-{suffix}")["TopicArn"] for name in FUNCTIONS}
    env = {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "AWS_ENDPOINT_URL": moto_server.endpoint,
        "AZS3COPY_SECRET_ID": secret_id,
        "AZS3COPY_BUCKET": bucket,
        "AZS3COPY_LEDGER_TABLE": f"ledger-{suffix}",
        "AZS3COPY_TOPIC_CONTAINERS": topics["containers"],
        "AZS3COPY_TOPIC_SMALL": topics["small"],
        "AZS3COPY_TOPIC_LARGE": topics["large"],
        "AZS3COPY_TOPIC_PARTS": topics["parts"],
        "AZS3COPY_TOPIC_RECOMBINE": topics["recombine"],
        "AZS3COPY_LARGE_THRESHOLD": str(THRESHOLD),
        "AZS3COPY_PART_SIZE": str(PART),
        "AZS3COPY_CHUNK_SIZE": str(PART),
        "AZS3COPY_SETTINGS_TTL": "0",
        "POWERTOOLS_SERVICE_NAME": "azs3copy",
        "POWERTOOLS_METRICS_NAMESPACE": "azs3copy",
    }
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield Stack(
            moto=moto_server,
            azure=BlobServiceClient.from_connection_string(azurite.connection_string),
            s3=clients["s3"],
            secrets=clients["secretsmanager"],
            secret_id=secret_id,
            bucket=bucket,
            sns=clients["sns"],
            sqs=clients["sqs"],
            topics=topics,
            connection_string=azurite.connection_string,
        )
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def new_container(stack: Stack) -> str:
    name = f"c{uuid.uuid4().hex[:10]}"
    stack.azure.create_container(name)
    return name


def upload(stack: Stack, container: str, name: str, data: bytes, **kwargs: Any) -> None:
    stack.azure.get_blob_client(container, name).upload_blob(data, overwrite=True, **kwargs)


def test_small_large_empty_and_threshold_blobs_arrive_byte_identical(stack: Stack) -> None:
    container = new_container(stack)
    blobs = {
        "small.bin": os.urandom(200_000),
        "empty.bin": b"",
        "large.bin": os.urandom(4 * PART + 12345),  # 5 parts at the minimum part size
        "edge-minus.bin": os.urandom(THRESHOLD - 1),
        "edge-equal.bin": os.urandom(THRESHOLD),
        "edge-plus.bin": os.urandom(THRESHOLD + 1),
    }
    for name, data in blobs.items():
        upload(stack, container, name, data)
    stack.configure([container])
    pump = stack.pump()
    run_id = stack.launch()
    pump.drain()
    assert not pump.failures
    assert stack.assert_identical(container) == len(blobs)
    report = stack.report(run_id)
    assert report["counts"]["copied"] == len(blobs) and report["ok"] is True
    assert report["bytes_copied"] == sum(len(data) for data in blobs.values())
    assert (
        pump.invocations["largefile-parter"] == 5 + 3 + 3
    )  # large.bin, and 12 MiB and 12 MiB + 1 in 3 parts each


def test_tricky_names_same_name_in_two_containers_and_metadata_round_trip(stack: Stack) -> None:
    first, second = new_container(stack), new_container(stack)
    names = ["dir/ünïcødé 名前.txt", "with space.txt", "100%+plus?query#hash", "a/b/c/d.json"]
    settings = ContentSettings(
        content_type="text/csv",
        content_encoding="identity",
        content_language="de-DE",
        content_disposition='attachment; filename="r.csv"',
        cache_control="max-age=60",
    )
    for name in names:
        upload(
            stack,
            first,
            name,
            name.encode() * 100,
            content_settings=settings,
            metadata={"owner": "finance", "tag": "x"},
        )
    upload(stack, second, "with space.txt", b"the second container's own bytes")
    stack.configure([first, second], destination_prefix="migrated/")
    pump = stack.pump()
    run_id = stack.launch()
    pump.drain()
    assert stack.assert_identical(first, "migrated/") == len(names)
    assert stack.object_bytes(f"migrated/{second}/with space.txt") == b"the second container's own bytes"
    head = stack.s3.head_object(Bucket=stack.bucket, Key=f"migrated/{first}/100%+plus?query#hash")
    assert head["ContentType"] == "text/csv"
    assert head["ContentEncoding"] == "identity"
    assert head["ContentLanguage"] == "de-DE"
    assert head["ContentDisposition"] == 'attachment; filename="r.csv"'
    assert head["CacheControl"] == "max-age=60"
    assert head["Metadata"]["owner"] == "finance"
    props = stack.azure.get_blob_client(first, "100%+plus?query#hash").get_blob_properties()
    assert head["Metadata"]["azs3copy-source-etag"] == props.etag
    assert head["Metadata"]["azs3copy-source-size"] == str(props.size)
    assert stack.report(run_id)["counts"]["copied"] == len(names) + 1


def test_second_run_copies_nothing(stack: Stack) -> None:
    container = new_container(stack)
    for i in range(20):
        upload(stack, container, f"f{i}", os.urandom(1000 + i))
    upload(stack, container, "big", os.urandom(THRESHOLD + 7))
    stack.configure([container])
    stack.pump()
    pump = stack.pump()
    stack.launch()
    pump.drain()
    before = {
        key: stack.s3.head_object(Bucket=stack.bucket, Key=key)["LastModified"]
        for key in stack.keys(container)
    }
    second = stack.pump()
    run_id = stack.launch()
    second.drain()
    report = stack.report(run_id)
    assert (
        report["counts"]["skipped"] == 21 and report["counts"]["copied"] == 0 and report["bytes_copied"] == 0
    )
    assert second.invocations.get("download", 0) == 0 and second.invocations.get("largefile-parter", 0) == 0
    after = {
        key: stack.s3.head_object(Bucket=stack.bucket, Key=key)["LastModified"]
        for key in stack.keys(container)
    }
    assert after == before


def test_every_message_delivered_twice_copies_each_blob_once(stack: Stack) -> None:
    stack.s3.put_bucket_versioning(Bucket=stack.bucket, VersioningConfiguration={"Status": "Enabled"})
    try:
        container = new_container(stack)
        for i in range(12):
            upload(stack, container, f"s{i}", os.urandom(5000))
        upload(stack, container, "large", os.urandom(3 * PART))
        stack.configure([container])
        pump = stack.pump(duplicate=True)
        run_id = stack.launch()
        pump.drain()
        assert not pump.failures
        assert stack.assert_identical(container) == 13
        versions = stack.s3.list_object_versions(Bucket=stack.bucket, Prefix=f"{container}/").get(
            "Versions", []
        )
        assert len(versions) == 13  # no extra object version
        report = stack.report(run_id)
        assert report["found"] == 13 and report["counts"]["copied"] == 13
        assert not stack.open_uploads()
    finally:
        stack.s3.put_bucket_versioning(Bucket=stack.bucket, VersioningConfiguration={"Status": "Suspended"})


def test_blob_overwritten_between_plan_and_part_read_is_not_copied_and_is_recorded_changed(
    stack: Stack,
) -> None:
    container = new_container(stack)
    upload(stack, container, "moving.bin", os.urandom(3 * PART))
    upload(stack, container, "steady.bin", os.urandom(1000))
    stack.configure([container])
    planning = stack.pump(only={"find-blobs", "largefile-initializer", "download"})
    copying = stack.pump(only={"largefile-parter", "largefile-recombinator"})
    run_id = stack.launch()
    planning.drain()  # listed, upload opened, part messages waiting
    upload(stack, container, "moving.bin", os.urandom(3 * PART))  # overwritten before any part is read
    copying.drain()
    report = stack.report(run_id)
    assert report["counts"]["changed"] == 1 and report["counts"]["copied"] == 1
    assert [f["blob"] for f in report["failures"]] == [f"{container}/moving.bin"]
    assert stack.keys(container) == [f"{container}/steady.bin"]
    assert not stack.open_uploads()
    rerun = stack.pump()  # the next run picks up the new version
    stack.launch()
    rerun.drain()
    assert stack.assert_identical(container) == 2


def test_archived_blob_is_skipped_as_needing_rehydration(stack: Stack) -> None:
    container = new_container(stack)
    upload(stack, container, "cold.bin", b"frozen")
    stack.azure.get_blob_client(container, "cold.bin").set_standard_blob_tier("Archive")
    upload(stack, container, "warm.bin", b"fine")
    stack.configure([container])
    pump = stack.pump()
    run_id = stack.launch()
    pump.drain()
    report = stack.report(run_id)
    assert report["counts"]["needs-rehydration"] == 1 and report["counts"]["copied"] == 1
    assert stack.keys(container) == [f"{container}/warm.bin"]
