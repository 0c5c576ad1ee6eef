"""The S3 sink's reads of one key: a key that is not there is no object, and a refusal says it may be one."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber

from azs3copy.backends.s3 import S3ObjectSink
from azs3copy.errors import AccessDeniedError, FatalError
from azs3copy.messages import BlobRef
from azs3copy.steps.verify import completed_before

BLOB = BlobRef("alpha", "big", 13 << 20, '"0x8D"', datetime(2024, 6, 1, tzinfo=UTC))
KEY = "alpha/big"


@pytest.fixture
def s3() -> Iterator[tuple[S3ObjectSink, Stubber]]:
    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
    with Stubber(client) as stubber:
        yield S3ObjectSink(client, "bucket"), stubber
        stubber.assert_no_pending_responses()


def test_an_object_that_is_gone_is_named_gone_to_a_role_that_may_list_the_bucket(
    s3: tuple[S3ObjectSink, Stubber],
) -> None:
    """S3's answer to a role holding s3:ListBucket: 404 for the HEAD of a key not there (asked whether a
    verified copy is there, then whether any copy is)."""
    sink, stubber = s3
    stubber.add_client_error("head_object", "404", "Not Found", 404)
    stubber.add_client_error("head_object", "404", "Not Found", 404)
    with pytest.raises(FatalError) as raised:
        completed_before(sink, KEY, BLOB)  # the recombinator, finding the upload gone
    assert "no complete object is there" in str(raised.value)
    assert "IAM" not in str(raised.value)


@pytest.mark.parametrize("read", ["tags", "head", "get"])
def test_a_read_s3_refuses_says_the_object_may_not_be_there(
    s3: tuple[S3ObjectSink, Stubber], read: str
) -> None:
    """S3's answer to a role without s3:ListBucket for a key not there is 403, as for a real refusal: the
    reason says both, so an object that is simply gone is not taken for a permissions fault alone."""
    sink, stubber = s3
    operation = {"tags": "get_object_tagging", "head": "head_object", "get": "get_object"}[read]
    stubber.add_client_error(operation, "AccessDenied" if read != "head" else "403", "Access Denied", 403)
    with pytest.raises(AccessDeniedError) as raised:
        if read == "tags":
            sink.get_tags(KEY)
        elif read == "head":
            sink.head(KEY)
        else:
            b"".join(sink.read(KEY))
    reason = str(raised.value)
    assert KEY in reason and "IAM role" in reason
    assert "a key that is not there" in reason and "s3:ListBucket" in reason
