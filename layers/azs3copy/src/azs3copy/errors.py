"""Errors that say what happened and whether trying again can help.

`RetryableError`: a later attempt may succeed (throttling, a dropped connection, a checksum mismatch in flight).
`FatalError`: retrying cannot help (bad configuration, wrong credentials, access denied, a blob the limits
cannot hold); the blob is recorded as failed at once and the message is not retried over and over.
"""

from __future__ import annotations


class Azs3copyError(Exception):
    """Base of every error raised by azs3copy."""

    retryable = False
    #: The terminal ledger state a blob takes when this error ends its copy.
    state = "failed"


class RetryableError(Azs3copyError):
    retryable = True


class FatalError(Azs3copyError):
    retryable = False


class ConfigError(FatalError):
    """The secret or the function's environment is wrong. The message names the key and the value found."""


class AzureAuthError(FatalError):
    """Azure refused the credentials; the message names the setting to check, never its value."""


class AccessDeniedError(FatalError):
    """AWS or Azure refused an operation for lack of permission (IAM, KMS key policy, RBAC)."""


class TransientError(RetryableError):
    """Throttling, a timeout or a dropped connection on either side."""


class ChecksumMismatchError(RetryableError):
    """Bytes did not match their checksum: corrupted in flight. Nothing was left behind in S3."""


class SourceChangedError(Azs3copyError):
    """The blob was overwritten after it was listed; the next run picks up the new version."""

    state = "changed"


class SourceVanishedError(Azs3copyError):
    """The blob was deleted after it was listed."""

    state = "vanished"


class NeedsRehydrationError(Azs3copyError):
    """The blob is in the archive tier and must be rehydrated in Azure before it can be read."""

    state = "needs-rehydration"


class BlobRejectedError(FatalError):
    """This blob cannot be copied as it is (key too long, too large for S3, metadata too large)."""


class MessageError(FatalError):
    """A message between the functions is malformed or of an unknown version."""


class PartReplacedError(RetryableError):
    """CompleteMultipartUpload named a part by an ETag the part no longer has (S3's InvalidPart): the part was
    uploaded again after the parts were listed, by a duplicate delivery of its message (with SSE-KMS a part's
    ETag is not its MD5, so the same bytes get a new one). Listing the parts again gives the ETags to use."""


class UploadGoneError(Azs3copyError):
    """The multipart upload no longer exists: it was aborted (the blob changed or failed) or completed."""
