"""What every measurement of the benchmark shares: clients for the emulators, the dataset, timing helpers."""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from azure.storage.blob import BlobServiceClient
from botocore.config import Config

MiB = 1024 * 1024
ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench" / ".work"
REGION = "us-east-1"
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
}
#: Variables that point TLS clients at a CA bundle meant for other tools; rclone and the functions get none.
CA_VARIABLES = (
    "AWS_CA_BUNDLE",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "NIX_SSL_CERT_FILE",
)


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without the CA-bundle variables, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in CA_VARIABLES}
    env.update(extra or {})
    return env


def s3_client(endpoint: str, pool: int = 64) -> Any:
    return boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    ).client(
        "s3",
        endpoint_url=endpoint,
        config=Config(max_pool_connections=pool, retries={"mode": "standard", "max_attempts": 5}),
    )


def aws_client(service: str, endpoint: str) -> Any:
    return boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    ).client(service, endpoint_url=endpoint)  # type: ignore[call-overload]


def azure_service(connection_string: str) -> BlobServiceClient:
    return BlobServiceClient.from_connection_string(connection_string)


# --- the dataset ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BlobSpec:
    name: str
    size: int


@dataclass(frozen=True)
class DatasetShape:
    """How many blobs of each size; the default is the issue's mixed dataset."""

    groups: tuple[tuple[int, int], ...] = ((500, 1 * MiB), (50, 10 * MiB), (4, 256 * MiB))

    def scaled(self, scale: float) -> DatasetShape:
        return DatasetShape(tuple((max(1, math.ceil(count * scale)), size) for count, size in self.groups))

    def blobs(self) -> list[BlobSpec]:
        specs = []
        for count, size in self.groups:
            label = f"{size // MiB}mib"
            specs += [BlobSpec(f"{label}/blob-{i:05d}.bin", size) for i in range(count)]
        return specs

    @property
    def total_bytes(self) -> int:
        return sum(count * size for count, size in self.groups)

    def describe(self) -> str:
        return " + ".join(f"{count} × {size // MiB} MiB" for count, size in self.groups)


_POOL = os.urandom(16 * MiB)


def blob_bytes(name: str, size: int) -> bytes:
    """Incompressible bytes, different for every blob name (a name header over a random pool)."""
    header = (name + "\n").encode()[:size]
    body = bytearray(header)
    while len(body) < size:
        body += _POOL[: size - len(body)]
    return bytes(body)


def upload_blobs(
    service: BlobServiceClient, container: str, specs: list[BlobSpec], threads: int = 16
) -> float:
    """Create the container if needed and upload every blob; returns the seconds it took."""
    client = service.get_container_client(container)
    if not client.exists():
        client.create_container()
    started = time.monotonic()
    small = [spec for spec in specs if spec.size <= 32 * MiB]
    large = [spec for spec in specs if spec.size > 32 * MiB]

    def put(spec: BlobSpec, concurrency: int) -> None:
        client.upload_blob(
            spec.name, blob_bytes(spec.name, spec.size), overwrite=True, max_concurrency=concurrency
        )

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(lambda spec: put(spec, 1), small))
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda spec: put(spec, 4), large))
    return time.monotonic() - started


def empty_bucket(s3: Any, bucket: str, prefix: str = "", keep_prefix: str | None = None) -> int:
    """Delete every object version and delete marker under `prefix` (except under `keep_prefix`) and abort
    open multipart uploads. Returns how many versions were deleted. The bucket is versioned: deleting only
    the current objects would leave moto holding every byte (it was OOM-killed at 12 GB that way)."""
    deleted = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        entries = [
            {"Key": item["Key"], "VersionId": item["VersionId"]}
            for item in page.get("Versions", []) + page.get("DeleteMarkers", [])
            if not (keep_prefix and item["Key"].startswith(keep_prefix))
        ]
        for start in range(0, len(entries), 1000):
            s3.delete_objects(Bucket=bucket, Delete={"Objects": entries[start : start + 1000], "Quiet": True})
        deleted += len(entries)
    for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix):
        for upload in page.get("Uploads", []):
            s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    return deleted


def bucket_bytes(s3: Any, bucket: str, prefix: str = "", skip_prefix: str | None = None) -> tuple[int, int]:
    """(objects, bytes) under `prefix`."""
    count = total = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            if skip_prefix and item["Key"].startswith(skip_prefix):
                continue
            count += 1
            total += int(item["Size"])
    return count, total


# --- timing -----------------------------------------------------------------------------------------------


@contextmanager
def stopwatch() -> Iterator[Callable[[], float]]:
    started = time.monotonic()
    end: list[float] = []
    yield lambda: (end[0] if end else time.monotonic()) - started
    end.append(time.monotonic())


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def rss_of(pid: int) -> int:
    """Resident set size of a process in bytes (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def say(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", flush=True)
