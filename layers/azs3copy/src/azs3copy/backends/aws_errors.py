"""AWS errors in azs3copy's terms: retryable or not, and what to check."""

from __future__ import annotations

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
)

from azs3copy.errors import (
    AccessDeniedError,
    Azs3copyError,
    ChecksumMismatchError,
    FatalError,
    PartReplacedError,
    TransientError,
    UploadGoneError,
)

_DENIED = {
    "AccessDenied",
    "AccessDeniedException",
    "AllAccessDisabled",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
}
_TRANSIENT = {
    "SlowDown",
    "ServiceUnavailable",
    "InternalError",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "TransactionConflictException",
    "InternalServerError",
    "Throttling",
    "KMS.ThrottlingException",
}
#: S3 refused the bytes because they did not match the checksum sent with them: corrupted on the way.
_BAD_CHECKSUM = {"BadDigest", "InvalidDigest", "XAmzContentChecksumMismatch", "XAmzContentSHA256Mismatch"}


def classify_client_error(error: BaseException | None, action: str) -> Azs3copyError:
    """An azs3copy error for a botocore failure while doing `action`."""
    if error is None:
        return TransientError(f"{action}: gave up after retries")
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code = str(details.get("Code", ""))
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        message = f"{action}: {code or status}: {details.get('Message', '')}".rstrip(": ")
        if code == "NoSuchUpload":
            return UploadGoneError(message)
        if code == "InvalidPart":
            return PartReplacedError(message)
        if code in _BAD_CHECKSUM:
            return ChecksumMismatchError(f"{message} (the bytes were corrupted on the way to S3)")
        if code in _DENIED or (code.startswith("KMS.") and "Denied" in code) or status == 403:
            return AccessDeniedError(f"{message} (check the function's IAM role and the KMS key policy)")
        if code in _TRANSIENT or status >= 500 or status == 429:
            return TransientError(message)
        return FatalError(message)
    if isinstance(error, NoCredentialsError):
        return AccessDeniedError(f"{action}: no AWS credentials ({error})")
    if isinstance(error, ParamValidationError):
        return FatalError(f"{action}: {error}")
    if isinstance(error, EndpointConnectionError | ConnectionClosedError | ReadTimeoutError | BotoCoreError):
        return TransientError(f"{action}: {error}")
    return TransientError(f"{action}: {error!r}")
