"""ObjectSink on Amazon S3 (boto3). Every PutObject and UploadPart carries a CRC32 additional checksum for
S3 to check; objects are written with SSE-KMS when a key is configured."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from azs3copy.backends.aws_errors import classify_client_error
from azs3copy.checksums import crc32_of, md5_b64
from azs3copy.errors import AccessDeniedError, Azs3copyError, TransientError, UploadGoneError
from azs3copy.messages import ContentSettings
from azs3copy.transports import (
    WRITE_ID_METADATA,
    CompletedPart,
    ObjectAttrs,
    ObjectInfo,
    UploadedPart,
)

logger = Logger(child=True)

_CONTENT_ARGS = {
    "content_type": "ContentType",
    "content_encoding": "ContentEncoding",
    "content_language": "ContentLanguage",
    "content_disposition": "ContentDisposition",
    "cache_control": "CacheControl",
}
READ_CHUNK = 1024 * 1024


def _read_error(error: ClientError | BotoCoreError, action: str) -> Azs3copyError:
    """The error of a HEAD, GET or GetObjectTagging of one key. S3 answers such a read of a key that is not
    there with 403, not 404, when the role may not s3:ListBucket the bucket: a refusal says so, since the
    object may simply be gone (the functions that read keys that may be gone hold s3:ListBucket for that)."""
    classified = classify_client_error(error, action)
    if isinstance(classified, AccessDeniedError):
        return AccessDeniedError(
            f"{classified}; S3 gives this answer for a key that is not there too when the role lacks "
            "s3:ListBucket on the bucket"
        )
    return classified


class S3ObjectSink:
    def __init__(self, client: Any, bucket: str, kms_key_id: str | None = None) -> None:
        self.client = client
        self.bucket = bucket
        self.kms_key_id = kms_key_id

    def _call(self, operation: str, action: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.client, operation)(Bucket=self.bucket, **kwargs)
        except (ClientError, BotoCoreError) as error:
            raise classify_client_error(error, action) from error

    def _write_args(self, attrs: ObjectAttrs) -> dict[str, Any]:
        args: dict[str, Any] = {"Metadata": dict(attrs.metadata)}
        if attrs.tags:  # x-amz-tagging: a query string (S3 needs s3:PutObjectTagging for it)
            args["Tagging"] = urlencode(attrs.tags, quote_via=quote)
        for field, arg in _CONTENT_ARGS.items():
            value = getattr(attrs.content, field)
            if value:
                args[arg] = value
        if attrs.storage_class:
            args["StorageClass"] = attrs.storage_class
        if self.kms_key_id:
            args.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=self.kms_key_id)
        return args

    def head(self, key: str, version_id: str | None = None, *, checksums: bool = False) -> ObjectInfo | None:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if version_id and version_id != "null":  # the null version of an unversioned bucket is the current
            kwargs["VersionId"] = version_id  # one (and moto answers HEAD ?versionId=null with a 400)
        if checksums:
            kwargs["ChecksumMode"] = "ENABLED"
        try:
            response = self.client.head_object(**kwargs)
        except ClientError as error:
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 404 or error.response.get("Error", {}).get("Code") in (
                "404",
                "NoSuchKey",
                "NotFound",
            ):
                return None
            raise _read_error(error, f"HEAD s3://{self.bucket}/{key}") from error
        except BotoCoreError as error:
            raise _read_error(error, f"HEAD s3://{self.bucket}/{key}") from error
        content = ContentSettings(**{field: response.get(arg) for field, arg in _CONTENT_ARGS.items()})
        metadata = dict(response.get("Metadata") or {})
        metadata.pop(WRITE_ID_METADATA, None)  # the sink's own, not the blob's
        return ObjectInfo(
            size=int(response["ContentLength"]),
            metadata=metadata,
            version_id=response.get("VersionId"),
            etag=response.get("ETag"),
            content=content,
            crc32=response.get("ChecksumCRC32"),
            checksum_type=response.get("ChecksumType"),
            storage_class=response.get("StorageClass"),
        )

    def list_sizes(self, prefix: str, start_after: str, stop_after: str) -> Iterator[tuple[str, int]]:
        kwargs: dict[str, Any] = {"Prefix": prefix, "StartAfter": start_after}
        stop = stop_after.encode()
        while True:
            response = self._call("list_objects_v2", f"list s3://{self.bucket}/{prefix}", **kwargs)
            for entry in response.get("Contents", []):
                if entry["Key"].encode() > stop:
                    return
                yield entry["Key"], int(entry["Size"])
            if not response.get("IsTruncated"):
                return
            kwargs["ContinuationToken"] = response["NextContinuationToken"]
            kwargs.pop("StartAfter", None)

    def put(
        self,
        key: str,
        data: bytes,
        *,
        crc32: str,
        md5: str,
        attrs: ObjectAttrs,
    ) -> str | None:
        """PutObject; returns the version written. When the SDK had to resend the request (its first answer
        was lost), an earlier attempt may have been stored too: those versions carry the same write id and
        are removed, so one put leaves one version."""
        args = self._write_args(attrs)
        write_id = uuid.uuid4().hex
        args["Metadata"][WRITE_ID_METADATA] = write_id
        response = self._call(
            "put_object",
            f"PUT s3://{self.bucket}/{key}",
            Key=key,
            Body=data,
            ContentMD5=md5,
            ChecksumCRC32=crc32,
            **args,
        )
        version: str | None = response.get("VersionId")
        if version and version != "null" and response.get("ResponseMetadata", {}).get("RetryAttempts"):
            self._remove_resent(key, version, write_id)
        return version

    def _remove_resent(self, key: str, kept: str, write_id: str) -> None:
        """Delete the other versions of `key` that this write id stored (a resent PutObject's earlier,
        unanswered attempts)."""
        kwargs: dict[str, Any] = {"Prefix": key}
        while True:
            listing = self._call(
                "list_object_versions", f"list versions of s3://{self.bucket}/{key}", **kwargs
            )
            for entry in listing.get("Versions", []):
                version = entry.get("VersionId")
                if entry.get("Key") != key or version in (None, kept):
                    continue
                head = self._call("head_object", f"HEAD s3://{self.bucket}/{key}", Key=key, VersionId=version)
                if (head.get("Metadata") or {}).get(WRITE_ID_METADATA) == write_id:
                    self.delete(key, version)
                    logger.warning(
                        "removed the version a resent PutObject left behind",
                        extra={"key": key, "version": version},
                    )
            if not listing.get("IsTruncated"):
                return
            kwargs.update(KeyMarker=listing["NextKeyMarker"], VersionIdMarker=listing["NextVersionIdMarker"])

    def create_upload(self, key: str, attrs: ObjectAttrs) -> str:
        args = self._write_args(attrs)
        args["Metadata"][WRITE_ID_METADATA] = uuid.uuid4().hex  # the same room in the metadata as a put's
        response = self._call(
            "create_multipart_upload",
            f"create multipart upload of s3://{self.bucket}/{key}",
            Key=key,
            ChecksumAlgorithm="CRC32",
            ChecksumType="FULL_OBJECT",
            **args,
        )
        return str(response["UploadId"])

    def _upload_call(self, key: str, upload_id: str, operation: str, action: str, **kwargs: Any) -> Any:
        """A call on a multipart upload; an upload that no longer exists is UploadGoneError whatever status
        the service answered with (moto answers 500 where S3 answers 404 NoSuchUpload)."""
        try:
            return self._call(operation, action, Key=key, UploadId=upload_id, **kwargs)
        except TransientError:
            try:
                self._call(
                    "list_parts",
                    f"check upload of s3://{self.bucket}/{key}",
                    Key=key,
                    UploadId=upload_id,
                    MaxParts=1,
                )
            except UploadGoneError:
                raise UploadGoneError(f"{action}: the multipart upload no longer exists") from None
            except Azs3copyError:
                pass
            raise

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes, crc32: str) -> str:
        response = self._upload_call(
            key,
            upload_id,
            "upload_part",
            f"upload part {number} of s3://{self.bucket}/{key}",
            PartNumber=number,
            Body=data,
            ChecksumCRC32=crc32,
        )
        return str(response["ETag"])

    def list_parts(self, key: str, upload_id: str) -> Iterator[UploadedPart]:
        kwargs: dict[str, Any] = {"Key": key, "UploadId": upload_id, "MaxParts": 1000}
        while True:
            response = self._call("list_parts", f"list parts of s3://{self.bucket}/{key}", **kwargs)
            for part in response.get("Parts", []):
                yield UploadedPart(int(part["PartNumber"]), int(part["Size"]), str(part["ETag"]))
            if not response.get("IsTruncated"):
                return
            kwargs["PartNumberMarker"] = response["NextPartNumberMarker"]

    def complete(
        self, key: str, upload_id: str, parts: list[CompletedPart], *, crc32: str | None = None
    ) -> str | None:
        whole: dict[str, Any] = {"ChecksumCRC32": crc32, "ChecksumType": "FULL_OBJECT"} if crc32 else {}
        response = self._upload_call(
            key,
            upload_id,
            "complete_multipart_upload",
            f"complete s3://{self.bucket}/{key}",
            MultipartUpload={
                "Parts": [
                    {"PartNumber": part.number, "ETag": part.etag, "ChecksumCRC32": part.crc32}
                    for part in parts
                ]
            },
            **whole,
        )
        version: str | None = response.get("VersionId")
        return version

    def abort(self, key: str, upload_id: str) -> None:
        try:
            self._call(
                "abort_multipart_upload",
                f"abort upload of s3://{self.bucket}/{key}",
                Key=key,
                UploadId=upload_id,
            )
        except Azs3copyError as error:
            if "NoSuchUpload" not in str(error):
                raise

    def read(self, key: str, version_id: str | None = None, start: int = 0) -> Iterator[bytes]:
        kwargs: dict[str, Any] = {"Key": key}
        if version_id:
            kwargs["VersionId"] = version_id
        if start:
            kwargs["Range"] = f"bytes={start}-"
        try:
            response = self.client.get_object(Bucket=self.bucket, **kwargs)
        except (ClientError, BotoCoreError) as error:
            raise _read_error(error, f"GET s3://{self.bucket}/{key}") from error
        body = response["Body"]
        try:
            while chunk := body.read(READ_CHUNK):
                yield chunk
        except (ClientError, BotoCoreError) as error:
            raise classify_client_error(error, f"GET s3://{self.bucket}/{key}") from error
        finally:
            body.close()

    def delete(self, key: str, version_id: str | None) -> None:
        kwargs: dict[str, Any] = {"Key": key}
        if version_id:
            kwargs["VersionId"] = version_id
        self._call("delete_object", f"DELETE s3://{self.bucket}/{key}", **kwargs)

    def put_tags(self, key: str, version_id: str | None, tags: dict[str, str]) -> None:
        kwargs: dict[str, Any] = {
            "Key": key,
            "Tagging": {"TagSet": [{"Key": name, "Value": value} for name, value in tags.items()]},
        }
        if version_id:
            kwargs["VersionId"] = version_id
        self._call("put_object_tagging", f"tag s3://{self.bucket}/{key}", **kwargs)

    def get_tags(self, key: str) -> dict[str, str] | None:
        try:
            response = self.client.get_object_tagging(Bucket=self.bucket, Key=key)
        except ClientError as error:
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            code = error.response.get("Error", {}).get("Code")
            # 404: no object; 405: the current version is a delete marker
            if status in (404, 405) or code in ("NoSuchKey", "NotFound", "MethodNotAllowed"):
                return None
            raise _read_error(error, f"read tags of s3://{self.bucket}/{key}") from error
        except BotoCoreError as error:
            raise _read_error(error, f"read tags of s3://{self.bucket}/{key}") from error
        return {str(tag["Key"]): str(tag["Value"]) for tag in response.get("TagSet", [])}

    def put_json(self, key: str, body: bytes) -> None:
        self._call(
            "put_object",
            f"PUT s3://{self.bucket}/{key}",
            Key=key,
            Body=body,
            ContentMD5=md5_b64(body),
            ChecksumCRC32=crc32_of(body),
            **self._write_args(ObjectAttrs(ContentSettings(content_type="application/json"))),
        )
