"""The six handlers over the emulators, wired by hand: moto server for the AWS side (bucket, ledger table,
secret, topics) and the caller's Azure service client, with the handlers' environment set in this process."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from azure.storage.blob import BlobServiceClient

from azs3copy.functions import PIPELINE
from devenv.emulators import MotoServer
from tests.support.aws import create_ledger_table
from tests.support.pump import SnsPump, lambda_context, load_handler

MiB = 1 << 20
THRESHOLD = 12 * MiB
PART = 5 * MiB
#: The functions an SNS topic feeds (all but the first); each topic is named after the function it feeds.
FED = PIPELINE[1:]


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
        for function in FED:
            if only is None or function in only:
                twin = load_handler(function).lambda_handler if duplicate else None
                pump.route(self.topics[function], function, load_handler(function).lambda_handler, twin)
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
            expected = client.download_blob(
                blob.name, decompress=False
            ).readall()  # as stored, encoded or not
            assert self.object_bytes(f"{prefix}{container}/{blob.name}") == expected, blob.name
            count += 1
        return count

    def open_uploads(self) -> list[dict[str, Any]]:
        return list(self.s3.list_multipart_uploads(Bucket=self.bucket).get("Uploads", []))


@contextmanager
def handler_stack(
    moto: MotoServer,
    azure: BlobServiceClient,
    connection_string: str,
    *,
    name: str,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Stack]:
    """A bucket, ledger table, secret and topics named after `name`, and the handlers' environment pointing
    at them (restored afterwards)."""
    region = "us-east-1"
    session = boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name=region
    )
    clients = {
        service: session.client(service, endpoint_url=moto.endpoint)
        for service in ("s3", "secretsmanager", "sns", "sqs", "dynamodb")
    }
    suffix = f"{name}-{uuid.uuid4().hex[:8]}"
    bucket = f"dest-{suffix}"
    clients["s3"].create_bucket(Bucket=bucket)
    create_ledger_table(clients["dynamodb"], f"ledger-{suffix}")
    secret_id = clients["secretsmanager"].create_secret(Name=f"azs3copy-{suffix}", SecretString="{}")["ARN"]
    topics = {hop: clients["sns"].create_topic(Name=f"{hop}-{suffix}")["TopicArn"] for hop in FED}
    env = {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "AWS_ENDPOINT_URL": moto.endpoint,
        "AZS3COPY_SECRET_ID": secret_id,
        "AZS3COPY_BUCKET": bucket,
        "AZS3COPY_LEDGER_TABLE": f"ledger-{suffix}",
        "AZS3COPY_TOPIC_FIND_BLOBS": topics["find-blobs"],
        "AZS3COPY_TOPIC_DOWNLOAD": topics["download"],
        "AZS3COPY_TOPIC_LARGEFILE_INITIALIZER": topics["largefile-initializer"],
        "AZS3COPY_TOPIC_LARGEFILE_PARTER": topics["largefile-parter"],
        "AZS3COPY_TOPIC_LARGEFILE_RECOMBINATOR": topics["largefile-recombinator"],
        "AZS3COPY_LARGE_THRESHOLD": str(THRESHOLD),
        "AZS3COPY_PART_SIZE": str(PART),
        "AZS3COPY_CHUNK_SIZE": str(PART),
        "AZS3COPY_CREDENTIALS_TTL": "0",
        "POWERTOOLS_SERVICE_NAME": "azs3copy",
        "POWERTOOLS_METRICS_NAMESPACE": "azs3copy",
        **(extra_env or {}),
    }
    saved = {variable: os.environ.get(variable) for variable in env}
    os.environ.update(env)
    try:
        yield Stack(
            moto=moto,
            azure=azure,
            s3=clients["s3"],
            secrets=clients["secretsmanager"],
            secret_id=secret_id,
            bucket=bucket,
            sns=clients["sns"],
            sqs=clients["sqs"],
            topics=topics,
            connection_string=connection_string,
        )
    finally:
        for variable, value in saved.items():
            if value is None:
                os.environ.pop(variable, None)
            else:
                os.environ[variable] = value
