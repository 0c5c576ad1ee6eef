"""AWS failures in azs3copy's terms: what happened, and whether a retry can help."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from azs3copy.backends.aws_errors import classify_client_error
from azs3copy.errors import (
    AccessDeniedError,
    ChecksumMismatchError,
    FatalError,
    PartReplacedError,
    TransientError,
    UploadGoneError,
)


def client_error(code: str, status: int, message: str = "refused") -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "PutObject",
    )


@pytest.mark.parametrize(
    ("error", "kind", "retryable"),
    [
        (client_error("BadDigest", 400), ChecksumMismatchError, True),
        (client_error("InvalidDigest", 400), ChecksumMismatchError, True),
        (client_error("XAmzContentChecksumMismatch", 400), ChecksumMismatchError, True),
        (client_error("SlowDown", 503), TransientError, True),
        (client_error("InternalError", 500), TransientError, True),
        (client_error("TransactionConflictException", 400), TransientError, True),
        (client_error("AccessDenied", 403), AccessDeniedError, False),
        (client_error("KMS.AccessDeniedException", 400), AccessDeniedError, False),
        (client_error("NoSuchUpload", 404), UploadGoneError, False),
        (client_error("InvalidPart", 400), PartReplacedError, True),
        (client_error("InvalidArgument", 400), FatalError, False),
        (EndpointConnectionError(endpoint_url="https://s3.example"), TransientError, True),
        (NoCredentialsError(), AccessDeniedError, False),
    ],
    ids=lambda value: value.__name__ if isinstance(value, type) else None,
)
def test_each_aws_failure_says_whether_a_retry_can_help(
    error: BaseException, kind: type, retryable: bool
) -> None:
    result = classify_client_error(error, "put logs/a.csv")
    assert type(result) is kind
    assert result.retryable is retryable
    assert str(result).startswith("put logs/a.csv")


def test_bytes_refused_by_s3_for_their_checksum_are_named_as_corrupted_in_flight() -> None:
    result = classify_client_error(
        client_error("BadDigest", 400, "The CRC32 you specified did not match"), "put k"
    )
    assert "corrupted on the way to S3" in str(result) and "BadDigest" in str(result)


def test_access_denied_says_what_to_check() -> None:
    result = classify_client_error(client_error("AccessDenied", 403), "put k")
    assert "IAM role" in str(result) and "KMS key policy" in str(result)
