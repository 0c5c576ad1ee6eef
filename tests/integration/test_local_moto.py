"""The local moto server's fixes (devenv.moto_main), each against the behaviour it must keep.

- A resent CreateFunction is idempotent: the AWS SDK resends a request whose response it lost; if the first
  attempt created the function, moto answers the resend with 409 and the Terraform provider retries that
  for five minutes before failing the apply. The local server returns the existing function when the
  request asks for exactly it, and still refuses a different function of the same name.
- TransactWriteItems backs up only the items it writes, not the whole table: a cancelled transaction must
  still leave every item as it was.
- S3 checks the checksums a request carries (devenv.moto_s3_checksums), as S3 does: a PutObject or UploadPart
  whose bytes do not match its x-amz-checksum-* (header or aws-chunked trailer) or Content-MD5, and a
  completion whose FULL_OBJECT checksum differs, are refused and store nothing; the right ones are accepted
  and reported. The right values come from botocore's own checksum code, not from the patch's.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import json
import urllib.parse
import uuid
import zipfile
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from devenv.emulators import MotoServer
from devenv.runtime import aws_client
from tests.support.aws import create_ledger_table


def code(text: str) -> bytes:
    """A zip of the handler whose bytes depend on the text alone (a fixed timestamp)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo("handler.py", date_time=(1980, 1, 1, 0, 0, 0)), text)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def role(moto_server: MotoServer) -> str:
    iam = aws_client("iam", moto_server.endpoint, "us-east-1")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    created = iam.create_role(
        RoleName=f"idem-{uuid.uuid4().hex[:8]}", AssumeRolePolicyDocument=json.dumps(trust)
    )
    return str(created["Role"]["Arn"])


def spec(name: str, role: str, source: str, memory: int = 256) -> dict[str, Any]:
    return {
        "FunctionName": name,
        "Runtime": "python3.12",
        "Role": role,
        "Handler": "handler.lambda_handler",
        "Code": {"ZipFile": code(source)},
        "MemorySize": memory,
        "Timeout": 30,
        "Environment": {"Variables": {"A": "1"}},
    }


def test_a_resent_create_of_the_same_function_returns_it(moto_server: MotoServer, role: str) -> None:
    lam = aws_client("lambda", moto_server.endpoint, "us-east-1")
    name = f"idem-{uuid.uuid4().hex[:8]}"
    first = lam.create_function(**spec(name, role, "def lambda_handler(e, c): return 1\n"))
    again = lam.create_function(**spec(name, role, "def lambda_handler(e, c): return 1\n"))
    assert again["FunctionArn"] == first["FunctionArn"]
    assert again["CodeSha256"] == first["CodeSha256"]
    assert [f["FunctionName"] for f in lam.list_functions()["Functions"]].count(name) == 1


@pytest.mark.parametrize(
    "change",
    [{"source": "def lambda_handler(e, c): return 2\n"}, {"memory": 512}],
    ids=["other-code", "other-memory"],
)
def test_a_create_of_a_different_function_with_the_same_name_is_refused(
    moto_server: MotoServer, role: str, change: dict[str, Any]
) -> None:
    lam = aws_client("lambda", moto_server.endpoint, "us-east-1")
    name = f"idem-{uuid.uuid4().hex[:8]}"
    lam.create_function(**spec(name, role, "def lambda_handler(e, c): return 1\n"))
    asked = {"source": "def lambda_handler(e, c): return 1\n", "memory": 256, **change}
    with pytest.raises(ClientError) as refused:
        lam.create_function(**spec(name, role, asked["source"], asked["memory"]))
    assert refused.value.response["Error"]["Code"] == "ResourceConflictException"
    assert lam.get_function(FunctionName=name)["Configuration"]["MemorySize"] == 256


@pytest.fixture(scope="module")
def table(moto_server: MotoServer) -> tuple[Any, str]:
    dynamodb = aws_client("dynamodb", moto_server.endpoint, "us-east-1")
    name = f"tx-{uuid.uuid4().hex[:8]}"
    create_ledger_table(dynamodb, name)
    return dynamodb, name


def key(sk: str) -> dict[str, Any]:
    return {"pk": {"S": "run"}, "sk": {"S": sk}}


def test_a_cancelled_transaction_leaves_every_item_as_it_was(table: tuple[Any, str]) -> None:
    dynamodb, name = table
    dynamodb.put_item(TableName=name, Item={**key("RUN"), "copied": {"N": "7"}})
    dynamodb.put_item(TableName=name, Item={**key("BLOB#a"), "state": {"S": "copied"}, "size": {"N": "5"}})
    dynamodb.put_item(TableName=name, Item={**key("BLOB#b"), "state": {"S": "copied"}})
    before = {sk: dynamodb.get_item(TableName=name, Key=key(sk)).get("Item") for sk in ("RUN", "BLOB#a")}

    with pytest.raises(ClientError) as cancelled:
        dynamodb.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": name,
                        "Key": key("RUN"),
                        "UpdateExpression": "ADD copied :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                },
                {"Put": {"TableName": name, "Item": {**key("BLOB#a"), "state": {"S": "failed"}}}},
                {"Put": {"TableName": name, "Item": {**key("BLOB#new"), "state": {"S": "pending"}}}},
                {
                    "Update": {
                        "TableName": name,
                        "Key": key("BLOB#b"),
                        "UpdateExpression": "SET #s = :x",
                        "ConditionExpression": "#s = :pending",
                        "ExpressionAttributeNames": {"#s": "state"},
                        "ExpressionAttributeValues": {":x": {"S": "x"}, ":pending": {"S": "pending"}},
                    }
                },
            ]
        )
    assert cancelled.value.response["Error"]["Code"] == "TransactionCanceledException"
    after = {sk: dynamodb.get_item(TableName=name, Key=key(sk)).get("Item") for sk in ("RUN", "BLOB#a")}
    assert after == before
    assert "Item" not in dynamodb.get_item(TableName=name, Key=key("BLOB#new"))
    assert dynamodb.get_item(TableName=name, Key=key("BLOB#b"))["Item"]["state"] == {"S": "copied"}


def test_a_transaction_that_succeeds_writes_every_item(table: tuple[Any, str]) -> None:
    dynamodb, name = table
    dynamodb.put_item(TableName=name, Item={**key("RUN2"), "copied": {"N": "1"}})
    dynamodb.transact_write_items(
        TransactItems=[
            {
                "Update": {
                    "TableName": name,
                    "Key": key("RUN2"),
                    "UpdateExpression": "ADD copied :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}},
                }
            },
            {"Put": {"TableName": name, "Item": {**key("BLOB#c"), "state": {"S": "copied"}}}},
        ]
    )
    assert dynamodb.get_item(TableName=name, Key=key("RUN2"))["Item"]["copied"] == {"N": "2"}
    assert dynamodb.get_item(TableName=name, Key=key("BLOB#c"))["Item"]["state"] == {"S": "copied"}


# --- S3 checksums -----------------------------------------------------------------------------------------

ALGORITHMS = ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"]
DATA = b"bytes read from Azure " * 5000
OTHER = b"the same bytes, one flipped " * 5000


@pytest.fixture(scope="module")
def s3(moto_server: MotoServer) -> Any:
    return aws_client("s3", moto_server.endpoint, "us-east-1")


@pytest.fixture
def bucket(s3: Any) -> str:
    """A versioned bucket: a refused request must leave no version behind either."""
    name = f"sums-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def checksum_of(s3: Any, bucket: str, algorithm: str, data: bytes) -> str:
    """The checksum botocore computes for the bytes (its own implementation: ChecksumAlgorithm, no value)."""
    key = f"oracle-{uuid.uuid4().hex}"
    answer = s3.put_object(Bucket=bucket, Key=key, Body=data, ChecksumAlgorithm=algorithm)
    s3.delete_object(Bucket=bucket, Key=key, VersionId=answer["VersionId"])
    return str(answer[f"Checksum{algorithm}"])


def refusal(error: pytest.ExceptionInfo[ClientError]) -> tuple[int, str, str]:
    response = error.value.response
    return (
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Code"],
        response["Error"]["Message"],
    )


def versions(s3: Any, bucket: str, key: str) -> list[str]:
    listing = s3.list_object_versions(Bucket=bucket, Prefix=key)
    return [version["VersionId"] for version in listing.get("Versions", []) if version["Key"] == key]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_put_whose_checksum_does_not_match_its_bytes_is_refused_and_the_right_one_kept(
    s3: Any, bucket: str, algorithm: str
) -> None:
    wrong = checksum_of(s3, bucket, algorithm, OTHER)
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket=bucket, Key="k", Body=DATA, **{f"Checksum{algorithm}": wrong})
    assert refusal(refused) == (
        400,
        "BadDigest",
        f"The {algorithm} you specified did not match the calculated checksum.",
    )
    assert versions(s3, bucket, "k") == []

    right = checksum_of(s3, bucket, algorithm, DATA)
    stored = s3.put_object(Bucket=bucket, Key="k", Body=DATA, **{f"Checksum{algorithm}": right})
    head = s3.head_object(Bucket=bucket, Key="k", VersionId=stored["VersionId"], ChecksumMode="ENABLED")
    assert head[f"Checksum{algorithm}"] == right and head["ChecksumType"] == "FULL_OBJECT"
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == DATA


def md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def test_a_put_whose_content_md5_does_not_match_or_is_malformed_is_refused(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket=bucket, Key="k", Body=DATA, ContentMD5=md5(OTHER))
    assert refusal(refused) == (
        400,
        "BadDigest",
        "The Content-MD5 you specified did not match what we received.",
    )
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket=bucket, Key="k", Body=DATA, ContentMD5="not-an-md5")
    assert refusal(refused) == (400, "InvalidDigest", "The Content-MD5 you specified was invalid.")
    assert versions(s3, bucket, "k") == []
    s3.put_object(Bucket=bucket, Key="k", Body=DATA, ContentMD5=md5(DATA))
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == DATA


def test_a_malformed_checksum_or_two_checksums_are_an_invalid_request(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket=bucket, Key="k", Body=DATA, ChecksumCRC32="AAA=")
    assert refusal(refused) == (400, "InvalidRequest", "Value for x-amz-checksum-crc32 header is invalid.")
    both = {
        "ChecksumCRC32": checksum_of(s3, bucket, "CRC32", DATA),
        "ChecksumSHA256": checksum_of(s3, bucket, "SHA256", DATA),
    }
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket=bucket, Key="k", Body=DATA, **both)
    assert refusal(refused) == (
        400,
        "InvalidRequest",
        "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
    )
    assert versions(s3, bucket, "k") == []


def test_an_upload_part_is_checked_and_a_completion_with_a_wrong_full_object_checksum_keeps_the_upload(
    s3: Any, bucket: str
) -> None:
    first, last = DATA * 50, OTHER  # 5.2 MiB, then the last part
    upload = s3.create_multipart_upload(
        Bucket=bucket, Key="big", ChecksumAlgorithm="CRC32", ChecksumType="FULL_OBJECT"
    )["UploadId"]
    with pytest.raises(ClientError) as refused:
        s3.upload_part(
            Bucket=bucket,
            Key="big",
            UploadId=upload,
            PartNumber=1,
            Body=first,
            ChecksumCRC32=checksum_of(s3, bucket, "CRC32", last),
        )
    assert refusal(refused) == (
        400,
        "BadDigest",
        "The CRC32 you specified did not match the calculated checksum.",
    )
    assert s3.list_parts(Bucket=bucket, Key="big", UploadId=upload).get("Parts", []) == []
    with pytest.raises(ClientError) as refused:  # a part checksum of another algorithm than the upload's
        s3.upload_part(
            Bucket=bucket,
            Key="big",
            UploadId=upload,
            PartNumber=1,
            Body=first,
            ChecksumSHA256=checksum_of(s3, bucket, "SHA256", first),
        )
    assert refusal(refused) == (
        400,
        "InvalidRequest",
        "Checksum Type mismatch occurred, expected checksum Type: crc32, actual checksum Type: sha256",
    )
    parts = []
    for number, body in enumerate([first, last], start=1):
        crc = checksum_of(s3, bucket, "CRC32", body)
        etag = s3.upload_part(
            Bucket=bucket, Key="big", UploadId=upload, PartNumber=number, Body=body, ChecksumCRC32=crc
        )["ETag"]
        parts.append({"PartNumber": number, "ETag": etag, "ChecksumCRC32": crc})
    with pytest.raises(ClientError) as refused:
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="big",
            UploadId=upload,
            MultipartUpload={"Parts": parts},
            ChecksumCRC32=checksum_of(s3, bucket, "CRC32", first),
            ChecksumType="FULL_OBJECT",
        )
    assert refusal(refused) == (
        400,
        "BadDigest",
        "The crc32 you specified did not match the calculated checksum.",
    )
    assert versions(s3, bucket, "big") == []
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])] == [upload]
    whole = checksum_of(s3, bucket, "CRC32", first + last)
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="big",
        UploadId=upload,
        MultipartUpload={"Parts": parts},
        ChecksumCRC32=whole,
        ChecksumType="FULL_OBJECT",
    )
    head = s3.head_object(Bucket=bucket, Key="big", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == whole and head["ChecksumType"] == "FULL_OBJECT"
    assert s3.get_object(Bucket=bucket, Key="big")["Body"].read() == first + last


def test_a_part_without_the_uploads_checksum_is_an_invalid_request(
    moto_server: MotoServer, s3: Any, bucket: str
) -> None:
    upload = s3.create_multipart_upload(Bucket=bucket, Key="big", ChecksumAlgorithm="CRC32")["UploadId"]
    no_checksums = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    ).client(
        "s3",
        endpoint_url=moto_server.endpoint,
        config=Config(request_checksum_calculation="when_required"),  # botocore adds none by itself
    )
    with pytest.raises(ClientError) as refused:
        no_checksums.upload_part(Bucket=bucket, Key="big", UploadId=upload, PartNumber=1, Body=DATA)
    assert refusal(refused) == (
        400,
        "InvalidRequest",
        "Checksum Type mismatch occurred, expected checksum Type: crc32, actual checksum Type: null",
    )


def put_aws_chunked(moto_server: MotoServer, path: str, data: bytes, trailer: str) -> tuple[int, bytes]:
    """A PutObject with an aws-chunked body whose CRC32 is in the trailer, as botocore sends one over HTTPS
    (STREAMING-UNSIGNED-PAYLOAD-TRAILER); moto checks no signature, so the request is built by hand."""
    chunks = b"".join(
        f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        for piece in (data[offset : offset + 65536] for offset in range(0, len(data), 65536))
    )
    body = chunks + f"0\r\nx-amz-checksum-crc32:{trailer}\r\n\r\n".encode()
    host = urllib.parse.urlsplit(moto_server.endpoint)
    connection = http.client.HTTPConnection(host.hostname or "127.0.0.1", host.port)
    try:
        connection.request(
            "PUT",
            path,
            body=body,
            headers={
                "Content-Encoding": "aws-chunked",
                "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
                "x-amz-trailer": "x-amz-checksum-crc32",
                "x-amz-decoded-content-length": str(len(data)),
                "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request, "
                "SignedHeaders=host, Signature=0",
            },
        )
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def test_a_checksum_in_an_aws_chunked_trailer_is_checked_too(
    moto_server: MotoServer, s3: Any, bucket: str
) -> None:
    status, body = put_aws_chunked(moto_server, f"/{bucket}/k", DATA, checksum_of(s3, bucket, "CRC32", OTHER))
    assert status == 400 and b"<Code>BadDigest</Code>" in body
    assert versions(s3, bucket, "k") == []
    right = checksum_of(s3, bucket, "CRC32", DATA)
    status, body = put_aws_chunked(moto_server, f"/{bucket}/k", DATA, right)
    assert status == 200, body
    head = s3.head_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == right and head["ChecksumType"] == "FULL_OBJECT"
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == DATA


def test_every_ledger_item_written_is_recorded_and_the_busiest_one_found(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto_main's write log (AZS3COPY_DYNAMODB_WRITE_LOG), read as the bench reads it: a run of 100 blobs
    recorded in download batches of 25 writes no ledger item more than a few times."""
    from azs3copy.backends.dynamodb import DynamoLedger
    from azs3copy.ledger import Finish, ListedBlob
    from azs3copy.messages import BlobRef
    from bench.pipeline import hottest_item

    log = tmp_path / "writes.log"
    monkeypatch.setenv("AZS3COPY_DYNAMODB_WRITE_LOG", str(log))
    with MotoServer.start(tmp_path) as server:
        client = aws_client("dynamodb", server.endpoint, "us-east-1")
        create_ledger_table(client, "ledger")
        ledger = DynamoLedger(client, "ledger")
        run_id = "20240101T000000Z-abcdef"
        ledger.start_run(run_id, containers=["c"], begindate="", force=True, stale_after=60)
        refs = [BlobRef("c", f"{i:03d}", 1, '"e"', datetime(2024, 1, 1, tzinfo=UTC)) for i in range(100)]
        ledger.register_page(run_id, "c", 0, [ListedBlob(ref, ref.blob_id) for ref in refs], [])
        ledger.finish_container(run_id, "c")
        for start in range(0, 100, 25):
            batch = refs[start : start + 25]
            for ref in batch:
                ledger.claim(run_id, ref.blob_id, "worker", 60)
            ledger.finish_many(run_id, [Finish(ref.blob_id, "copied", None, 1) for ref in batch])
        record = ledger.get_run(run_id)
        assert record is not None and record.complete and record.counts["copied"] == 100
    hottest = hottest_item(run_id, 100, log)
    # each blob's item: created, claimed, finished; META: started, its container's listing done
    assert hottest["writes"] == 3 and hottest["sort_key"].startswith("BLOB#"), hottest
    assert hottest["per_1000_blobs"] == 30.0
    assert hottest["items_written"] == 100 + 2 + 1 + 1 + len(
        {line.split("\t")[1] for line in log.read_text().splitlines() if "\tCOUNT#" in line}
    )  # the blobs, META and SETTINGS, the page, the container's listing done, the counter shards written
