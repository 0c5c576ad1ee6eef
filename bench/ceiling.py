"""The ceiling: the fastest plain copy the two emulators allow at a given concurrency.

Ranged reads from Azurite with azure-storage-blob (no transactional MD5, one GET per range) and boto3 into
moto (PutObject below the multipart threshold, multipart uploads of `part_size` parts above it), with no
ledger, no messages and no verification: what the pipeline would reach if its own work cost nothing."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from azure.storage.blob import BlobServiceClient

from bench.common import BlobSpec


@dataclass(frozen=True)
class _Part:
    blob: BlobSpec
    key: str
    upload_id: str
    number: int
    offset: int
    length: int


def run_ceiling(
    service: BlobServiceClient,
    container: str,
    blobs: list[BlobSpec],
    s3: Any,
    bucket: str,
    *,
    prefix: str,
    concurrency: int,
    part_size: int,
    large_threshold: int,
) -> float:
    """Copy every blob; returns the seconds from the first request to the last completed object."""
    client = service.get_container_client(container)
    started = time.monotonic()
    large = [blob for blob in blobs if blob.size >= large_threshold]
    small = [blob for blob in blobs if blob.size < large_threshold]
    parts: list[_Part] = []
    etags: dict[str, dict[int, str]] = {}
    lock = threading.Lock()
    for blob in large:
        key = prefix + blob.name
        upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        etags[key] = {}
        for number, offset in enumerate(range(0, blob.size, part_size), start=1):
            parts.append(_Part(blob, key, upload_id, number, offset, min(part_size, blob.size - offset)))

    def read(name: str, offset: int, length: int) -> bytes:
        stream = client.download_blob(name, offset=offset, length=length, max_concurrency=1)
        return stream.readall()

    def download(blob: BlobSpec) -> None:
        s3.put_object(Bucket=bucket, Key=prefix + blob.name, Body=read(blob.name, 0, blob.size))

    def largefile_parter(part: _Part) -> None:
        data = read(part.blob.name, part.offset, part.length)
        etag = s3.upload_part(
            Bucket=bucket, Key=part.key, UploadId=part.upload_id, PartNumber=part.number, Body=data
        )["ETag"]
        with lock:
            etags[part.key][part.number] = etag

    # Parts first, interleaved with the small blobs, so that the pool stays busy to the end.
    work: list[tuple[str, Any]] = [("part", part) for part in parts]
    work += [("small", blob) for blob in small]
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(
            pool.map(lambda item: largefile_parter(item[1]) if item[0] == "part" else download(item[1]), work)
        )
    for key, numbered in etags.items():
        upload_id = next(part.upload_id for part in parts if part.key == key)
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in sorted(numbered.items())]},
        )
    return time.monotonic() - started
