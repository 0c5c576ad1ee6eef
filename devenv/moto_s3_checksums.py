"""moto's S3 with S3's checksums, installed by devenv.moto_main.

S3 checks the checksums a request carries and refuses bytes that do not match them; moto 5.2.5 accepts
anything. The integrity chain relies on the refusal (a flipped byte on the way to S3 must never land), so
here they are refused as S3 refuses them (AWS's PutObject, UploadPart and CompleteMultipartUpload
documentation; the messages as S3 sends them):

| request | when | answer (all 400) |
|---|---|---|
| PutObject, UploadPart | `x-amz-checksum-<alg>` (header or aws-chunked trailer) differs from the body's | BadDigest "The CRC32 you specified did not match the calculated checksum." |
| same | its value is not base64 of the algorithm's size | InvalidRequest "Value for x-amz-checksum-crc32 header is invalid." |
| same | two checksums | InvalidRequest "Expecting a single x-amz-checksum- header. …" |
| same | Content-MD5 differs / is not base64 of 16 bytes | BadDigest "The Content-MD5 you specified did not match what we received." / InvalidDigest |
| UploadPart | the upload was created with ChecksumAlgorithm X and the part carries another or none | InvalidRequest "Checksum Type mismatch occurred, …" |
| CompleteMultipartUpload | the FULL_OBJECT checksum sent differs from the whole object's | BadDigest "The crc32 you specified did not match the calculated checksum.", the upload stays open |

A refused request stores nothing (no version either). Not emulated: the part checksums named in a
completion (S3: InvalidPart when they differ from the parts'), part checksums in ListParts, the checksum in
the completion's answer, and `x-amz-content-sha256` (XAmzContentSHA256Mismatch).

S3 also keeps the checksum a PutObject carries in an `x-amz-checksum-<algorithm>` header (or in the trailer
of an aws-chunked body) and reports it on HEAD and GET with `ChecksumMode=ENABLED`, with `x-amz-checksum-type`
(FULL_OBJECT for a PutObject; COMPOSITE values end in `-<parts>`). moto 5.2.5 keeps it only when the request
also carries `x-amz-sdk-checksum-algorithm`, a header SDKs add when they compute the checksum themselves and
which S3 ignores. azs3copy computes its CRC32 itself and sends the value alone, so moto held no checksum for
any object written by one PutObject, and `verify = "checksum"` failed every such blob locally ("S3 holds no
CRC32 for it"). Here the algorithm is taken from the checksum sent when no SDK header names it, and HEAD
answers the type as S3 does.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import zlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

from awscrt import checksums as crt
from moto.s3.exceptions import S3ClientError
from moto.s3.models import FakeMultipart, S3Backend
from moto.s3.responses import S3Response
from moto.s3.utils import compute_checksum

#: Each algorithm's digest of a body, as S3 computes it (big-endian CRCs). moto's own helper falls back to
#: CRC32 for CRC32C without the `crc32c` package; awscrt (a dev requirement) has both CRCs.
DIGESTS: dict[str, Callable[[bytes], bytes]] = {
    "CRC32": lambda data: zlib.crc32(data).to_bytes(4, "big"),
    "CRC32C": lambda data: crt.crc32c(data).to_bytes(4, "big"),
    "CRC64NVME": lambda data: crt.crc64nvme(data).to_bytes(8, "big"),
    "SHA1": lambda data: hashlib.sha1(data).digest(),
    "SHA256": lambda data: hashlib.sha256(data).digest(),
}
SIZES = {"CRC32": 4, "CRC32C": 4, "CRC64NVME": 8, "SHA1": 20, "SHA256": 32}
ALGORITHMS = tuple(DIGESTS)


def header(algorithm: str) -> str:
    return f"x-amz-checksum-{algorithm.lower()}"


def trailer_fields(raw: bytes) -> dict[str, str]:
    """The trailing headers of an aws-chunked body: `<hex size>[;chunk-signature=…]\\r\\n<data>\\r\\n` chunks,
    a zero-size chunk, then `name:value\\r\\n` lines. Empty when the body is not shaped like that."""
    fields: dict[str, str] = {}
    position = 0
    try:
        while True:
            end = raw.index(b"\r\n", position)
            size = int(raw[position:end].split(b";", 1)[0], 16)
            position = end + 2
            if size == 0:
                break
            position += size + 2
    except ValueError:
        return fields
    for line in raw[position:].split(b"\r\n"):
        name, colon, value = line.partition(b":")
        if colon:
            fields[name.decode("latin-1").strip().lower()] = value.decode("latin-1").strip()
    return fields


def sent_checksums(response: S3Response) -> dict[str, str]:
    """Every additional checksum the request carries, by algorithm: headers, and the trailer of an aws-chunked
    body when `x-amz-trailer` names one."""
    sent = {name: response.headers[header(name)] for name in ALGORITHMS if response.headers.get(header(name))}
    if "x-amz-checksum-" in (response.headers.get("x-amz-trailer") or "").lower():
        raw = response.raw_body
        fields = trailer_fields(bytes(raw)) if isinstance(raw, bytes | bytearray) else {}
        sent.update({name: fields[header(name)] for name in ALGORITHMS if fields.get(header(name))})
    return sent


def _get_checksum(self: S3Response, response_headers: dict[str, Any]) -> tuple[str, str | None]:
    """The request's checksum algorithm and value, as moto's own method answers, with the algorithm also
    taken from the checksum sent (S3 needs no SDK header to keep it)."""
    sent = sent_checksums(self)
    algorithm = (self.headers.get("x-amz-sdk-checksum-algorithm") or next(iter(sent), "")).upper()
    if not algorithm:
        return "", None
    value = sent.get(algorithm)
    if value is None:  # the SDK named an algorithm and sent no value: S3 computes it
        computed = compute_checksum(self.body or b"", algorithm=algorithm)
        value = computed.decode() if isinstance(computed, bytes) else str(computed)
    response_headers[header(algorithm)] = value
    return algorithm, value


_put_object = S3Backend.put_object


def _put_object_with_type(self: S3Backend, *args: Any, **kwargs: Any) -> Any:
    """A PutObject's checksum is of the whole object (moto's multipart completion sets its own type)."""
    key = _put_object(self, *args, **kwargs)
    if kwargs.get("checksum_value") and kwargs.get("multipart") is None and not key.checksum_type:
        key.checksum_type = "FULL_OBJECT"
    return key


_head_object = S3Response.head_object


def _head_object_with_type(
    self: S3Response, bucket_name: str, query: dict[str, Any], key_name: str, headers: dict[str, Any]
) -> Any:
    """HEAD with ChecksumMode=ENABLED answers the checksum type, and a COMPOSITE value with its part count,
    as S3 (and moto's own GET) do."""
    status, response_headers, body = _head_object(self, bucket_name, query, key_name, headers)
    if status != 200 or headers.get("x-amz-checksum-mode") != "ENABLED" or query.get("partNumber"):
        return status, response_headers, body
    version_id = query.get("versionId", [None])[0]
    key = self.backend.head_object(bucket_name, key_name, version_id=version_id)
    if key is not None and key.checksum_algorithm and key.checksum_value:
        value = key.checksum_value
        if key.checksum_type == "COMPOSITE" and key.checksum_parts:
            value = f"{value}-{key.checksum_parts}"
        response_headers[header(key.checksum_algorithm)] = value
        response_headers["x-amz-checksum-type"] = key.checksum_type or "FULL_OBJECT"
    return status, response_headers, body


# --- refusing what S3 refuses ------------------------------------------------------------------------------


def refused(code: str, message: str) -> S3ClientError:
    """An error moto answers as S3 does: status 400, `<Error><Code>…</Code><Message>…</Message>…`."""
    return S3ClientError(code, message)


def _decoded(value: str, size: int) -> bytes | None:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == size else None


def check_body(response: S3Response) -> str | None:
    """Refuse a body that does not match the checksums sent with it; the algorithm of the one sent, if any."""
    sent = sent_checksums(response)
    if len(sent) > 1:
        raise refused(
            "InvalidRequest",
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
        )
    body = bytes(response.body or b"")
    for algorithm, value in sent.items():
        if _decoded(value, SIZES[algorithm]) is None:
            raise refused("InvalidRequest", f"Value for {header(algorithm)} header is invalid.")
        if base64.b64encode(DIGESTS[algorithm](body)).decode() != value:
            raise refused(
                "BadDigest", f"The {algorithm} you specified did not match the calculated checksum."
            )
    md5 = response.headers.get("Content-MD5")
    if md5:
        if _decoded(md5, 16) is None:
            raise refused("InvalidDigest", "The Content-MD5 you specified was invalid.")
        if base64.b64encode(hashlib.md5(body).digest()).decode() != md5:
            raise refused("BadDigest", "The Content-MD5 you specified did not match what we received.")
    return next(iter(sent), None)


_put_object_response = S3Response.put_object


def _checked_put_object(self: S3Response) -> Any:
    check_body(self)
    return _put_object_response(self)


_upload_part = S3Response.upload_part


def _checked_upload_part(self: S3Response) -> Any:
    upload = self.backend.get_bucket(self.bucket_name).multiparts.get(self._get_param("uploadId"))
    if upload is None:
        return _upload_part(self)  # moto answers NoSuchUpload
    algorithm = check_body(self)
    expected = upload.metadata.get("x-amz-checksum-algorithm")
    if expected and (algorithm or "").upper() != expected.upper():
        raise refused(
            "InvalidRequest",
            "Checksum Type mismatch occurred, expected checksum Type: "
            f"{expected.lower()}, actual checksum Type: {(algorithm or 'null').lower()}",
        )
    return _upload_part(self)


#: The checksums a CompleteMultipartUpload request carries, for the completion it is running.
_completing: ContextVar[dict[str, str] | None] = ContextVar("completing", default=None)
_key_response_post = S3Response._key_response_post


def _post_with_checksums(
    self: S3Response, request: Any, body: bytes, bucket_name: str, query: dict[str, Any], key_name: str
) -> Any:
    sent = {name: request.headers[header(name)] for name in ALGORITHMS if request.headers.get(header(name))}
    token = _completing.set(sent if query.get("uploadId") else None)
    try:
        return _key_response_post(self, request, body, bucket_name, query, key_name)
    finally:
        _completing.reset(token)


_complete = FakeMultipart.complete


def _checked_complete(self: FakeMultipart, body: Iterator[tuple[int, str]]) -> Any:
    """moto's completion, then S3's check of a FULL_OBJECT checksum sent with it. It runs before moto removes
    the upload, so a refused completion leaves the upload open, as on S3."""
    value, etag, details = _complete(self, body)
    algorithm = (self.metadata.get("x-amz-checksum-algorithm") or "").upper()
    for name, sent in (_completing.get() or {}).items():
        full_object = details is not None and details[0] == "FULL_OBJECT"
        if name != algorithm or not full_object or details is None or details[1] != sent:
            raise refused(
                "BadDigest", f"The {name.lower()} you specified did not match the calculated checksum."
            )
    return value, etag, details


def install() -> None:
    S3Response._get_checksum = _get_checksum  # type: ignore[method-assign]
    S3Backend.put_object = _put_object_with_type  # type: ignore[method-assign]
    S3Response.head_object = _head_object_with_type  # type: ignore[method-assign]
    S3Response.put_object = _checked_put_object  # type: ignore[method-assign]
    S3Response.upload_part = _checked_upload_part  # type: ignore[method-assign]
    S3Response._key_response_post = _post_with_checksums  # type: ignore[method-assign]
    FakeMultipart.complete = _checked_complete  # type: ignore[method-assign]
