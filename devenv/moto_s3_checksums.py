"""moto's S3 with S3's additional checksums, installed by devenv.moto_main.

S3 keeps the checksum a PutObject carries in an `x-amz-checksum-<algorithm>` header (or in the trailer of an
aws-chunked body) and reports it on HEAD and GET with `ChecksumMode=ENABLED`, with `x-amz-checksum-type`
(FULL_OBJECT for a PutObject; COMPOSITE values end in `-<parts>`). moto 5.2.5 keeps it only when the request
also carries `x-amz-sdk-checksum-algorithm`, a header SDKs add when they compute the checksum themselves and
which S3 ignores. azs3copy computes its CRC32 itself and sends the value alone, so moto held no checksum for
any object written by one PutObject, and `verify = "checksum"` failed every such blob locally ("S3 holds no
CRC32 for it"). Here the algorithm is taken from the checksum sent when no SDK header names it, and HEAD
answers the type as S3 does.
"""

from __future__ import annotations

from typing import Any

from moto.s3.models import S3Backend
from moto.s3.responses import S3Response
from moto.s3.utils import compute_checksum

ALGORITHMS = ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")


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


def install() -> None:
    S3Response._get_checksum = _get_checksum  # type: ignore[method-assign]
    S3Backend.put_object = _put_object_with_type  # type: ignore[method-assign]
    S3Response.head_object = _head_object_with_type  # type: ignore[method-assign]
