"""The handlers' glue over moto's mock_aws (secret, ledger, bucket, topics) with the in-memory Azure source:
which value of the secret each function reads, and when."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from azs3copy.backends.dynamodb import DynamoLedger
from azs3copy.errors import AzureAuthError, ConfigError
from azs3copy.messages import BlobRef
from azs3copy.settings import AzureCredentials
from azs3copy.transports import BlobSource, ListPage
from tests.support.aws import create_ledger_table
from tests.support.fakes import MemoryBlobSource
from tests.support.pump import SnsPump, lambda_context, load_handler

MiB = 1 << 20
REGION = "us-east-1"
FED = ("find-blobs", "download", "largefile-initializer", "largefile-parter", "largefile-recombinator")
SAS_A = "sv=2024&sp=rl&sig=FIRSTSIGNATURE"
SAS_B = "sv=2024&sp=rl&sig=ROTATEDSIGNATURE"
MODIFIED = datetime(2024, 6, 1, tzinfo=UTC)


class Guarded:
    """The Azure source as one set of credentials reaches it: refused (AzureAuthError, as Azure answers a
    revoked SAS) unless they are the ones the account accepts now."""

    def __init__(self, azure: Azure, creds: AzureCredentials) -> None:
        self.azure, self.creds = azure, creds

    def _check(self) -> None:
        if self.creds.sas_token != self.azure.accepted:
            raise AzureAuthError("the storage account refused the credentials (403 AuthenticationFailed)")

    def list_containers(self) -> list[str]:
        self._check()
        return self.azure.blobs.list_containers()

    def list_page(
        self, container: str, prefix: str, marker: str | None, page_size: int, delimiter: str | None = None
    ) -> ListPage:
        self._check()
        return self.azure.blobs.list_page(container, prefix, marker, page_size, delimiter)

    def read_range(self, blob: BlobRef, offset: int, length: int) -> bytes:
        self._check()
        return self.azure.blobs.read_range(blob, offset, length)

    def read_blob(self, blob: BlobRef) -> tuple[bytes, str]:
        self._check()
        return self.azure.blobs.read_blob(blob)


@dataclass
class Azure:
    blobs: MemoryBlobSource = field(default_factory=MemoryBlobSource)
    accepted: str = SAS_A

    def factory(self, creds: AzureCredentials) -> BlobSource:
        return Guarded(self, creds)


@dataclass
class Cloud:
    secrets: Any
    secret_id: str
    s3: Any
    sns: Any
    sqs: Any
    bucket: str
    topics: dict[str, str]
    ledger: DynamoLedger
    azure: Azure

    def write_secret(self, document: dict[str, Any]) -> None:
        self.secrets.put_secret_value(SecretId=self.secret_id, SecretString=json.dumps(document))

    def handler(self, function: str) -> ModuleType:
        """A fresh warm container of the function, reading the in-memory Azure."""
        module = load_handler(function)
        module.function.source_factory = self.azure.factory
        return module

    def pump(self) -> SnsPump:
        pump = SnsPump(self.sns, self.sqs)
        for function in FED:
            pump.route(self.topics[function], function, self.handler(function).lambda_handler)
        return pump

    def keys(self) -> list[str]:
        listed = self.s3.list_objects_v2(Bucket=self.bucket).get("Contents", [])
        return sorted(item["Key"] for item in listed if not item["Key"].startswith("_azs3copy/"))

    def body(self, key: str) -> bytes:
        return bytes(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def report(self, run_id: str) -> dict[str, Any]:
        return dict(json.loads(self.body(f"_azs3copy/reports/{run_id}.json")))


def secret(**values: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "isactive": True,
        "begindate": "2020-01-01",
        "azure": {"account_url": "https://acct.blob.core.windows.net", "sas_token": SAS_A},
        "containers": ["alpha"],
    }
    document.update(values)
    return document


@pytest.fixture
def cloud(monkeypatch: pytest.MonkeyPatch) -> Iterator[Cloud]:
    for variable, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": REGION,
        "POWERTOOLS_SERVICE_NAME": "azs3copy",
        "POWERTOOLS_METRICS_NAMESPACE": "azs3copy",
    }.items():
        monkeypatch.setenv(variable, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        clients = {
            s: boto3.client(s, region_name=REGION) for s in ("secretsmanager", "s3", "sns", "sqs", "dynamodb")
        }
        clients["s3"].create_bucket(Bucket="dest")
        create_ledger_table(clients["dynamodb"], "ledger")
        secret_id = clients["secretsmanager"].create_secret(Name="azs3copy", SecretString="{}")["ARN"]
        topics = {function: clients["sns"].create_topic(Name=function)["TopicArn"] for function in FED}
        environment = {
            "AZS3COPY_SECRET_ID": secret_id,
            "AZS3COPY_BUCKET": "dest",
            "AZS3COPY_LEDGER_TABLE": "ledger",
            "AZS3COPY_LARGE_THRESHOLD": str(12 * MiB),
            "AZS3COPY_PART_SIZE": str(5 * MiB),
            "AZS3COPY_CHUNK_SIZE": str(5 * MiB),
            # Functions of one warm container keep credentials long enough for every test to see the cache.
            "AZS3COPY_CREDENTIALS_TTL": "3600",
            **{f"AZS3COPY_TOPIC_{f.replace('-', '_').upper()}": arn for f, arn in topics.items()},
        }
        for variable, value in environment.items():
            monkeypatch.setenv(variable, value)
        yield Cloud(
            secrets=clients["secretsmanager"],
            secret_id=secret_id,
            s3=clients["s3"],
            sns=clients["sns"],
            sqs=clients["sqs"],
            bucket="dest",
            topics=topics,
            ledger=DynamoLedger(clients["dynamodb"], "ledger"),
            azure=Azure(),
        )


def launcher(cloud: Cloud) -> Callable[..., dict[str, Any]]:
    """One warm launch-qualification container, invoked by hand (`azs3copy run`, a console test event)."""
    module = cloud.handler("launch-qualification")

    def invoke(event: dict[str, Any] | None = None) -> dict[str, Any]:
        return dict(module.lambda_handler(event or {}, lambda_context("launch-qualification")))

    return invoke


def test_a_launch_right_after_an_edit_of_the_secret_reads_the_new_values(cloud: Cloud) -> None:
    launch = launcher(cloud)
    cloud.write_secret(secret(isactive=False))
    assert launch()["reason"] == "isactive is false in the secret"
    cloud.write_secret(secret(begindate="2024-05-01", include=["*.csv"], destination_prefix="mig/"))
    started = launch()  # at once, in the same warm container
    assert started["started"] is True, started
    recorded = cloud.ledger.run_settings(started["run_id"])
    assert recorded is not None
    assert (recorded.begindate, recorded.include, recorded.destination_prefix) == (
        datetime(2024, 5, 1, tzinfo=UTC),
        ("*.csv",),
        "mig/",
    )
    cloud.write_secret(secret(begindate="first of May"))  # a typo, written a second later: reported at once
    with pytest.raises(ConfigError, match="secret key 'begindate'"):
        launch()
    cloud.write_secret(secret(isactive=False))
    assert launch()["reason"] == "isactive is false in the secret"  # switched off: no run, at once


def test_a_typo_written_into_the_secret_mid_run_neither_stops_the_run_nor_splits_it(cloud: Cloud) -> None:
    small = {f"logs/{i}.csv": os.urandom(1000 + i) for i in range(5)}
    large = {"logs/big.csv": os.urandom(12 * MiB + 5)}  # three parts: the parter reads Azure too
    for name, data in {**small, **large, "logs/skip.txt": b"not selected"}.items():
        cloud.azure.blobs.put("alpha", name, data, last_modified=MODIFIED)
    cloud.write_secret(secret(include=["*.csv"], destination_prefix="mig/"))
    pump = cloud.pump()
    started = launcher(cloud)()
    assert started["started"] is True
    # Mid-run, before any worker ran: an unknown key and an include that is not a list of strings. Only the
    # next launch may refuse this secret; the run in flight goes on with the settings it was launched with.
    broken = secret(include=[1], destination_prefix="elsewhere/")
    broken["containres"] = ["alpha"]
    cloud.write_secret(broken)
    pump.drain()
    assert not pump.failures, pump.failures
    assert cloud.keys() == sorted(f"mig/alpha/{name}" for name in {**small, **large})
    for name, data in {**small, **large}.items():
        assert cloud.body(f"mig/alpha/{name}") == data
    report = cloud.report(started["run_id"])
    assert report["ok"] is True and report["counts"]["copied"] == 6
    with pytest.raises(ConfigError, match="unknown keys: containres"):
        launcher(cloud)()  # the next launch reports it


def test_credentials_removed_from_the_secret_mid_run_fail_the_blobs_with_the_reason_and_the_run_ends(
    cloud: Cloud,
) -> None:
    for i in range(3):
        cloud.azure.blobs.put("alpha", f"f{i}", os.urandom(100), last_modified=MODIFIED)
    cloud.write_secret(secret())
    find_blobs = cloud.handler("find-blobs").lambda_handler

    def list_then_break_the_secret(event: dict[str, Any], context: Any) -> dict[str, Any]:
        listed = dict(find_blobs(event, context))
        typo = {"account_url": "https://acct.blob.core.windows.net", "sas_tokn": SAS_A}
        cloud.write_secret(secret(azure=typo))  # before any download ran
        return listed

    pump = SnsPump(cloud.sns, cloud.sqs)
    pump.route(cloud.topics["find-blobs"], "find-blobs", list_then_break_the_secret)
    pump.route(cloud.topics["download"], "download", cloud.handler("download").lambda_handler)
    started = launcher(cloud)()
    pump.drain()
    report = cloud.report(started["run_id"])
    assert report["counts"]["failed"] == 3 and report["ok"] is False
    assert {failure["blob"] for failure in report["failures"]} == {"alpha/f0", "alpha/f1", "alpha/f2"}
    assert all("secret key 'azure' has unknown keys: sas_tokn" in f["reason"] for f in report["failures"])


def test_credentials_rotated_mid_run_are_used_at_the_first_refusal_of_the_cached_ones(cloud: Cloud) -> None:
    cloud.azure.blobs.put("alpha", "first", b"copied with the first SAS", last_modified=MODIFIED)
    cloud.write_secret(secret())
    pump = cloud.pump()  # warm containers, each caching SAS A for an hour
    launch = launcher(cloud)
    launch()
    pump.drain()
    assert cloud.keys() == ["alpha/first"]
    # Rotation: the new SAS is written to the secret and the old one revoked at once.
    cloud.write_secret(
        secret(azure={"account_url": "https://acct.blob.core.windows.net", "sas_token": SAS_B})
    )
    cloud.azure.accepted = SAS_B
    cloud.azure.blobs.put("alpha", "second", b"copied with the rotated SAS", last_modified=MODIFIED)
    cloud.azure.blobs.put("alpha", "large", os.urandom(12 * MiB), last_modified=MODIFIED)
    started = launch()
    pump.drain()
    assert not pump.failures, pump.failures
    assert cloud.body("alpha/second") == b"copied with the rotated SAS"
    assert cloud.report(started["run_id"])["ok"] is True
