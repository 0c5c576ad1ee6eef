"""The AWS clients the functions build: what their S3 requests sign."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from azs3copy.backends.aws import client
from azs3copy.checksums import crc32_of, md5_b64


class _Empty:
    def stream(self, **_: Any) -> Any:
        return iter([b""])


def sent_headers(endpoint: str, operation: str, **params: Any) -> dict[str, bytes]:
    """The headers of one signed request, answered 200 by hand before it goes anywhere."""
    session = boto3.session.Session(aws_access_key_id="t", aws_secret_access_key="t", region_name="us-east-1")
    s3 = session.client("s3", endpoint_url=endpoint, config=client("s3", session).meta.config)
    seen: dict[str, bytes] = {}

    def answer(request: Any, **_: Any) -> AWSResponse:
        seen.update({key.lower(): value for key, value in request.headers.items()})
        return AWSResponse(request.url, 200, {}, _Empty())

    s3.meta.events.register("before-send.s3.*", answer)
    getattr(s3, operation)(Bucket="b", Key="k", **params)
    return seen


@pytest.mark.parametrize("endpoint", ["https://s3.us-east-1.amazonaws.com", "http://127.0.0.1:5000"])
def test_s3_bodies_are_not_hashed_again_for_the_signature_but_carry_the_checksums_s3_checks(
    endpoint: str,
) -> None:
    data = b"bytes read from Azure" * 1000
    put = sent_headers(
        endpoint, "put_object", Body=data, ContentMD5=md5_b64(data), ChecksumCRC32=crc32_of(data)
    )
    part = sent_headers(
        endpoint, "upload_part", UploadId="u", PartNumber=1, Body=data, ChecksumCRC32=crc32_of(data)
    )
    for headers in (put, part):
        assert headers["x-amz-content-sha256"] == b"UNSIGNED-PAYLOAD"
        assert headers["x-amz-checksum-crc32"] == crc32_of(data).encode()
        assert b"Signature=" in headers["authorization"]
    assert put["content-md5"] == md5_b64(data).encode()


def test_other_services_keep_the_common_client_settings() -> None:
    session = boto3.session.Session(aws_access_key_id="t", aws_secret_access_key="t", region_name="us-east-1")
    assert client("dynamodb", session).meta.config.s3 is None
    s3 = client("s3", session).meta.config
    assert s3.read_timeout == 120 and s3.max_pool_connections == 32 and s3.retries["mode"] == "standard"
