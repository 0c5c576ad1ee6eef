"""The six handlers against the real emulators: Azurite for Azure, moto server for AWS, real SNS envelopes.
Every copy is checked the way a user would: the bytes in S3 equal the bytes in Azure."""

from __future__ import annotations

import argparse
import base64
import gzip
import io
import json
import os
import uuid
import zlib
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from azure.storage.blob import BlobServiceClient, ContentSettings

from azs3copy.cli.target import Target
from azs3copy.cli.verify import cmd_verify
from azs3copy.errors import ConfigError
from azs3copy.messages import FindBlobsTask, encode, iso
from devenv.emulators import Azurite, MotoServer
from tests.support.pump import lambda_context, load_handler
from tests.support.stack import PART, THRESHOLD, Stack, handler_stack


@pytest.fixture(scope="module")
def stack(moto_server: MotoServer, azurite: Azurite) -> Iterator[Stack]:
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    with handler_stack(moto_server, service, azurite.connection_string, name="pipe") as built:
        yield built


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


def upload_in_blocks(stack: Stack, container: str, name: str, data: bytes) -> None:
    """A block-uploaded blob: Azure stores no Content-MD5 for it, so only S3's checksum can be compared."""
    blob = stack.azure.get_blob_client(container, name)
    ids = []
    for number, offset in enumerate(range(0, len(data), 4 * 1024 * 1024)):
        ids.append(base64.b64encode(f"{number:06d}".encode()).decode())
        blob.stage_block(ids[-1], data[offset : offset + 4 * 1024 * 1024])
    blob.commit_block_list(ids)


@pytest.mark.parametrize("mode", ["checksum", "readback"])
def test_each_verify_mode_copies_every_kind_of_blob_byte_identical_and_marked(
    moto_server: MotoServer, azurite: Azurite, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """verify = "checksum" (the default) has S3 check the CRC32 (and Content-MD5) each write carries and
    writes the verified mark with the object, in its metadata: no object is read back, no tag is set
    afterwards, except the large blob with a Content-MD5, which only its bytes read whole can be compared with,
    and which is then marked with a tag. verify = "readback" reads every object back before tagging it. Blobs written by one PutObject, by the download's multipart
    upload and by the large path all arrive byte for byte and marked."""
    from botocore.client import BaseClient

    calls: list[str] = []
    original = BaseClient._make_api_call

    def recording(client: Any, operation: str, params: dict[str, Any]) -> Any:
        if client.meta.service_model.service_name == "s3":
            calls.append(f"{operation} {params.get('Key', '')}")
        return original(client, operation, params)

    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    with handler_stack(
        moto_server,
        service,
        azurite.connection_string,
        name="cksum",
        extra_env={} if mode == "checksum" else {"AZS3COPY_VERIFY": mode},
    ) as checked:
        container = new_container(checked)
        blobs = {
            "one-put.bin": os.urandom(200_000),
            "chunked.bin": os.urandom(PART + 100_000),
            "large.bin": os.urandom(THRESHOLD + 1),
        }
        for name, data in blobs.items():
            upload_in_blocks(checked, container, name, data)
        upload(checked, container, "with-md5.bin", os.urandom(150_000))  # one Put Blob: has a Content-MD5
        upload(checked, container, "large-md5.bin", os.urandom(THRESHOLD + 1))  # one Put Blob too
        checked.configure([container])
        pump = checked.pump()
        monkeypatch.setattr(BaseClient, "_make_api_call", recording)
        run_id = checked.launch()
        pump.drain()
        monkeypatch.setattr(BaseClient, "_make_api_call", original)
        report = checked.report(run_id)
        assert report["failures"] == [] and report["counts"]["copied"] == len(blobs) + 2
        assert checked.assert_identical(container) == len(blobs) + 2
        s3 = boto3.client("s3", endpoint_url=moto_server.endpoint, region_name="us-east-1")
        for name in [*blobs, "with-md5.bin", "large-md5.bin"]:
            key = f"{container}/{name}"
            tags = [tag["Key"] for tag in s3.get_object_tagging(Bucket=checked.bucket, Key=key)["TagSet"]]
            metadata = s3.head_object(Bucket=checked.bucket, Key=key)["Metadata"]
            if mode == "checksum" and name != "large-md5.bin":
                assert tags == [] and metadata["azs3copy-verified"], name  # the mark came with the write
            else:
                assert tags == ["azs3copy-verified"] and "azs3copy-verified" not in metadata, name
    read_back = sorted(call.rsplit("/", 1)[-1] for call in calls if call.startswith("GetObject "))
    tagged_after = sorted(call.rsplit("/", 1)[-1] for call in calls if call.startswith("PutObjectTagging "))
    if mode == "checksum":
        assert read_back == tagged_after == ["large-md5.bin"]
    else:
        everything = sorted([*blobs, "with-md5.bin", "large-md5.bin"])
        assert read_back == tagged_after == everything


def cli_target(stack: Stack) -> Target:
    """What `azs3copy --local` would act on, for the stack's bucket and secret."""
    session = boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
    )
    names = {"secret_id": stack.secret_id, "bucket": stack.bucket, "ledger_table": "unused"}
    return Target(session, prefix="pipe", endpoint=stack.moto.endpoint, local=names)


def test_blobs_stored_compressed_arrive_as_stored_with_their_content_encoding(stack: Stack) -> None:
    """gzip and deflate blobs read by one request, in chunks, and as parts: in S3 byte for byte as Azure stores
    them (still compressed), with their Content-Encoding, and `verify` finds them identical."""
    container = new_container(stack)
    text = b"2024-06-01T00:00:00Z GET /index.html 200\n" * 5000
    blobs = {
        "web/index.html.gz": ("gzip", gzip.compress(text)),
        "logs/chunked.log.gz": ("gzip", gzip.compress(os.urandom(PART + 4321), compresslevel=1)),
        "logs/large.log.gz": ("gzip", gzip.compress(os.urandom(THRESHOLD + 1000), compresslevel=1)),
        "data/table.deflate": ("deflate", zlib.compress(text)),
    }
    for name, (encoding, data) in blobs.items():
        upload(stack, container, name, data, content_settings=ContentSettings("text/plain", encoding))
    stack.configure([container])
    pump = stack.pump()
    run_id = stack.launch()
    pump.drain()
    assert not pump.failures
    report = stack.report(run_id)
    assert report["counts"]["copied"] == len(blobs) and report["ok"] is True, report["failures"]
    for name, (encoding, data) in blobs.items():
        assert stack.object_bytes(f"{container}/{name}") == data, name
        head = stack.s3.head_object(Bucket=stack.bucket, Key=f"{container}/{name}")
        assert head["ContentEncoding"] == encoding and head["ContentLength"] == len(data)
    assert pump.invocations["largefile-parter"] == 3  # the large one went as parts
    out = io.StringIO()
    args = argparse.Namespace(location=container, quick=False, all=False)
    assert cmd_verify(cli_target(stack), args, out) == 0, out.getvalue()
    assert f"{len(blobs)} identical, 0 missing, 0 different" in out.getvalue()


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
    assert head["Metadata"]["azs3copy-source-last-modified"] == iso(props.last_modified)
    md5 = base64.b64encode(bytes(props.content_settings.content_md5)).decode()  # a single-shot upload's
    assert head["Metadata"]["azs3copy-source-content-md5"] == md5
    assert stack.report(run_id)["counts"]["copied"] == len(names) + 1


def test_a_1024_byte_key_and_large_names_that_extend_each_other_past_a_hash_are_copied_in_one_run(
    stack: Stack,
) -> None:
    container = new_container(stack)
    longest = "n" * (1024 - len(f"{container}/"))  # the S3 key is exactly 1,024 bytes
    too_long = longest + "x"  # 1,025: refused alone, with its reason
    blobs = {
        longest: os.urandom(1000),
        too_long: os.urandom(1000),
        "archive": os.urandom(4 * PART + 1),  # 5 parts each, their checksums in the ledger
        "archive#2024": os.urandom(4 * PART + 2),
        "ordinary.txt": b"next to them",
    }
    for name, data in blobs.items():
        upload(stack, container, name, data)
    stack.configure([container])
    pump = stack.pump()
    run_id = stack.launch()
    pump.drain()
    report = stack.report(run_id)
    assert {state: n for state, n in report["counts"].items() if n} == {"copied": 4, "failed": 1}, report
    [failure] = report["failures"]
    assert failure["blob"] == f"{container}/{too_long}" and "1025" in failure["reason"]
    for name, data in blobs.items():
        if name != too_long:
            assert stack.object_bytes(f"{container}/{name}") == data, name[:40]
    listed = stack.s3.list_objects_v2(Bucket=stack.bucket, Prefix=f"{container}/").get("Contents", [])
    assert len(listed) == 4 and not stack.open_uploads()


def test_the_report_and_the_manifest_prove_every_object_against_s3_and_azure(stack: Stack) -> None:
    container = new_container(stack)
    blobs = {f"small/{i:02d}.bin": os.urandom(3000 + i) for i in range(30)}
    blobs["chunked.bin"] = os.urandom(PART + 99)  # parts of its own, one download
    blobs["large.bin"] = os.urandom(THRESHOLD + 5)  # the large-blob functions
    for name, data in blobs.items():
        upload(stack, container, name, data)
    too_long = "n" * (1025 - len(f"{container}/"))  # refused by S3: listed in the report, not in the manifest
    upload(stack, container, too_long, b"x")
    stack.configure([container])
    pump = stack.pump()
    run_id = stack.launch()
    pump.drain()
    report = stack.report(run_id)
    assert report["found"] == len(blobs) + 1 and report["counts"]["copied"] == len(blobs)
    assert report["failures_total"] == 1 and report["failures"][0]["blob"] == f"{container}/{too_long}"
    prefix = report["manifest_prefix"]
    assert prefix == f"_azs3copy/reports/{run_id}/manifest/"
    parts = [item["Key"] for item in stack.s3.list_objects_v2(Bucket=stack.bucket, Prefix=prefix)["Contents"]]
    assert len(parts) >= 3 and all(part.endswith(".jsonl") for part in parts)  # never one growing object
    lines = [
        json.loads(line)
        for part in parts
        for line in stack.s3.get_object(Bucket=stack.bucket, Key=part)["Body"].read().decode().splitlines()
    ]
    assert sorted(line["key"] for line in lines) == sorted(f"{container}/{name}" for name in blobs)
    for line in lines:
        head = stack.s3.head_object(Bucket=stack.bucket, Key=line["key"], ChecksumMode="ENABLED")
        props = stack.azure.get_blob_client(container, line["key"].split("/", 1)[1]).get_blob_properties()
        assert line["size"] == head["ContentLength"] == props.size, line
        assert line["checksum_crc32"] == head["ChecksumCRC32"], line
        # a bucket whose versioning is suspended (as the test of duplicate deliveries leaves it) says "null"
        assert (line["version_id"] or "null") == head.get("VersionId", "null"), line
        assert line["source_etag"] == props.etag == head["Metadata"]["azs3copy-source-etag"], line
        md5 = props.content_settings.content_md5
        assert line["content_md5"] == (base64.b64encode(bytes(md5)).decode() if md5 else None), line


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
    assert stack.assert_identical(container) == 21
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
    assert stack.object_bytes(f"{container}/warm.bin") == b"fine"


def test_each_copy_lands_in_the_storage_class_of_its_blobs_access_tier(stack: Stack) -> None:
    container = new_container(stack)
    blobs = {
        "hot.bin": os.urandom(1000),
        "cool.bin": os.urandom(2000),
        "cool-large.bin": os.urandom(THRESHOLD + 1),
    }
    for name, data in blobs.items():
        upload(stack, container, name, data)
    for name in ("cool.bin", "cool-large.bin"):
        stack.azure.get_blob_client(container, name).set_standard_blob_tier("Cool")
    stack.configure(
        [container], storage_class="INTELLIGENT_TIERING", tier_storage_classes={"Cool": "GLACIER_IR"}
    )
    pump = stack.pump()
    run_id = stack.launch()
    pump.drain()
    assert stack.report(run_id)["counts"]["copied"] == 3
    assert stack.assert_identical(container) == 3
    found = {
        name: stack.s3.head_object(Bucket=stack.bucket, Key=f"{container}/{name}").get("StorageClass")
        for name in blobs
    }
    assert found == {
        "hot.bin": "INTELLIGENT_TIERING",
        "cool.bin": "GLACIER_IR",
        "cool-large.bin": "GLACIER_IR",
    }


def test_index_tags_arrive_as_s3_tags_and_a_tag_s3_refuses_fails_its_blob_alone(stack: Stack) -> None:
    container = new_container(stack)
    ten = {f"key{n}": f"v {n}+-=.:/_" for n in range(9)} | {"owner": "ana"}
    blobs = {
        # 10 tags: the verified mark of a PutObject or a download's multipart upload is metadata
        "small.bin": (os.urandom(1000), ten),
        "chunked.bin": (os.urandom(PART + 10), ten),
        # one Put Blob, so a Content-MD5: marked with a tag once read back, so 9 tags at most
        "large.bin": (os.urandom(THRESHOLD + 1), {"retention": "7y"}),
        "reserved.bin": (b"r", {"aws:owner": "ana"}),
    }
    for name, (data, tags) in blobs.items():
        upload(stack, container, name, data, tags=tags)
    stack.configure([container])
    pump = stack.pump()
    run_id = stack.launch()
    pump.drain()
    report = stack.report(run_id)
    assert report["counts"]["copied"] == 3 and report["counts"]["failed"] == 1
    assert report["notes"] == []
    [failure] = report["failures"]
    assert failure["blob"] == f"{container}/reserved.bin" and "'aws:owner'" in failure["reason"]
    for name, (data, tags) in blobs.items():
        if name == "reserved.bin":
            continue
        assert stack.object_bytes(f"{container}/{name}") == data
        held = stack.s3.get_object_tagging(Bucket=stack.bucket, Key=f"{container}/{name}")["TagSet"]
        found = {tag["Key"]: tag["Value"] for tag in held}
        mark = found.pop("azs3copy-verified", None)
        assert found == tags and (mark is not None) == (name == "large.bin"), (name, mark)
    stack.azure.get_blob_client(container, "reserved.bin").delete_blob()
    again = stack.pump()
    second = stack.launch()
    again.drain()
    assert stack.report(second)["counts"]["skipped"] == 3  # each copy found verified, its mark where it is
    out = io.StringIO()
    args = argparse.Namespace(location=container, quick=False, all=False)
    assert cmd_verify(cli_target(stack), args, out) == 0, out.getvalue()
    assert (
        "3 identical, 0 missing, 0 different" in out.getvalue() and "and their index tags" in out.getvalue()
    )
    key = f"{container}/small.bin"
    held = stack.s3.get_object_tagging(Bucket=stack.bucket, Key=key)["TagSet"]
    changed = [tag for tag in held if tag["Key"] != "owner"] + [{"Key": "owner", "Value": "bob"}]
    stack.s3.put_object_tagging(Bucket=stack.bucket, Key=key, Tagging={"TagSet": changed})
    out = io.StringIO()
    assert cmd_verify(cli_target(stack), args, out) == 1
    assert f"{key}: tags differ from the blob's index tags: different owner" in out.getvalue()


def test_a_storage_class_s3_does_not_have_is_refused_at_the_launch_naming_the_key(stack: Stack) -> None:
    container = new_container(stack)
    upload(stack, container, "any.bin", b"x")
    stack.configure([container], tier_storage_classes={"Cool": "COLDLINE"})
    with pytest.raises(ConfigError, match=r"tier_storage_classes\.Cool"):
        load_handler("launch-qualification").lambda_handler(
            {"force": True}, lambda_context("launch-qualification")
        )
    assert stack.keys(container) == []


def test_a_function_without_a_topic_it_publishes_to_fails_before_writing_naming_the_variable(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    container = new_container(stack)
    upload(stack, container, "x.bin", b"x")
    stack.configure([container])
    monkeypatch.delenv("AZS3COPY_TOPIC_DOWNLOAD")
    run_id = "20240101T000000Z-notpc"
    event = {"Records": [{"Sns": {"Message": encode(FindBlobsTask(run_id, container))}}]}
    with pytest.raises(ConfigError, match="AZS3COPY_TOPIC_DOWNLOAD"):
        load_handler("find-blobs").lambda_handler(event, lambda_context("find-blobs"))
    dynamodb = boto3.client("dynamodb", endpoint_url=stack.moto.endpoint)  # credentials from the stack's env
    written = dynamodb.query(
        TableName=os.environ["AZS3COPY_LEDGER_TABLE"],
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"RUN#{run_id}"}},
    )["Items"]
    assert written == []  # not even the attempt counter: nothing to clean up, nothing half listed


def test_a_retried_launch_announces_its_own_run_and_a_tick_during_a_run_is_answered(stack: Stack) -> None:
    container = new_container(stack)
    upload(stack, container, "x.bin", b"once")
    stack.configure([container])
    pump = stack.pump()
    launch = load_handler("launch-qualification").lambda_handler
    first = launch({"force": True}, lambda_context("launch-qualification", "launch-request-7"))
    again = launch({"force": True}, lambda_context("launch-qualification", "launch-request-7"))  # a retry
    assert first["started"] is True and again["started"] is True
    assert again["run_id"] == first["run_id"] and again["announced_again"] is True
    tick = launch({}, lambda_context("launch-qualification"))  # the schedule, while that run is unfinished
    assert tick["started"] is False and tick["run_in_progress"] == first["run_id"]
    pump.drain()
    assert not pump.failures
    report = stack.report(first["run_id"])
    assert report["found"] == 1 and report["counts"]["copied"] == 1
