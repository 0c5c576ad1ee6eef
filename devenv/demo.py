"""`make demo`: the deployed system copying a demo dataset from Azurite into the local S3, end to end.

After `make up`: put the dataset into Azurite (a few hundred small blobs, large blobs of several parts,
tricky names, one name in two containers), write the Azure credentials and the start date into the secret,
enable, run with live progress and the run report, verify every object byte for byte, then run again and
show that nothing is copied the second time. Last, one blob uploaded after the runs arrives through an Event
Grid BlobCreated event delivered to blob-events' function URL, within seconds and without a run. Every step that an operator would do goes through the
`azs3copy` CLI, exactly as against AWS.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import BlobServiceClient

from azs3copy.cli.local_target import load_deployment
from azs3copy.cli.set_azure_credentials import AZURE_ENV
from devenv.environment import LocalPaths
from devenv.event_grid import blob_event, deliver, local_events_url, wait_verified
from devenv.runtime import aws_client

MiB = 1 << 20
CONTAINERS = ("demo-alpha", "demo-beta")
TRICKY_NAMES = (
    "tricky/ünïcödé naïve café.txt",
    "tricky/with  two spaces .txt",
    "tricky/100% done.txt",
    "tricky/a+b=c.txt",
    "tricky/why?.txt",
    "tricky/#hashtag.txt",
    "tricky/中文 文件.txt",
    "tricky/emoji 🚀 launch.bin",
    "tricky/deep/nested/dots..and...more.txt",
    "shared/same-name.txt",  # in both containers, with different bytes
)
#: One blob with index tags: its copy carries them as S3 tags.
TAGGED = (
    CONTAINERS[0],
    "tagged/contract.pdf",
    {"owner": "finance", "retention": "7y", "project": "move 2024"},
)


@dataclass(frozen=True)
class Dataset:
    """What was put into Azurite: (container, name) → SHA-256, and the total size."""

    digests: dict[tuple[str, str], str]
    total_bytes: int

    @property
    def count(self) -> int:
        return len(self.digests)


def _blobs(small: int, large: int, large_size: int, seed: int) -> Iterator[tuple[str, str, bytes]]:
    rng = random.Random(seed)
    for i in range(small):
        container = CONTAINERS[i % len(CONTAINERS)]
        folder = ("logs/2024", "exports/csv", "images", "")[i % 4]
        name = f"{folder}/item-{i:04d}.dat" if folder else f"item-{i:04d}.dat"
        yield container, name, rng.randbytes(rng.randint(1024, 64 * 1024))
    for i in range(large):
        yield CONTAINERS[i % len(CONTAINERS)], f"large/blob-{i}.bin", rng.randbytes(large_size + 12345 * i)
    for i, name in enumerate(TRICKY_NAMES):
        containers = CONTAINERS if name.startswith("shared/") else (CONTAINERS[i % len(CONTAINERS)],)
        for container in containers:
            yield container, name, f"{container}:{name}\n".encode() + rng.randbytes(rng.randint(0, 4096))


def put_dataset(
    connection_string: str, *, small: int = 300, large: int = 2, large_size: int = 40 * MiB, seed: int = 4
) -> Dataset:
    """Empty the demo containers (creating them if needed) and upload the dataset in parallel."""
    service = BlobServiceClient.from_connection_string(connection_string)
    for container in CONTAINERS:
        client = service.get_container_client(container)
        try:
            client.create_container()
        except ResourceExistsError:
            names = [blob.name for blob in client.list_blobs()]
            for start in range(0, len(names), 256):
                client.delete_blobs(*names[start : start + 256])
    digests: dict[tuple[str, str], str] = {}
    total = 0

    def upload(item: tuple[str, str, bytes]) -> tuple[str, str, str, int]:
        container, name, data = item
        service.get_blob_client(container, name).upload_blob(data, overwrite=True, max_concurrency=4)
        return container, name, hashlib.sha256(data).hexdigest(), len(data)

    with ThreadPoolExecutor(max_workers=16) as pool:
        for container, name, digest, size in pool.map(upload, _blobs(small, large, large_size, seed)):
            digests[(container, name)] = digest
            total += size
    container, name, tags = TAGGED
    data = random.Random(seed).randbytes(20_000)
    service.get_blob_client(container, name).upload_blob(data, overwrite=True, tags=tags)
    digests[(container, name)] = hashlib.sha256(data).hexdigest()
    return Dataset(digests, total + len(data))


def show_tagged(deployment: dict[str, Any]) -> bool:
    """Print the S3 tags of the tagged blob's copy; whether they are the blob's index tags."""
    container, name, tags = TAGGED
    s3 = aws_client("s3", deployment["aws_endpoint"], deployment["region"])
    held = s3.get_object_tagging(Bucket=deployment["bucket"], Key=f"{container}/{name}")["TagSet"]
    found = {tag["Key"]: tag["Value"] for tag in held}
    print(f"s3://{deployment['bucket']}/{container}/{name} tags: {json.dumps(found, ensure_ascii=False)}")
    return {key: value for key, value in found.items() if key != "azs3copy-verified"} == tags


def clear_destination(deployment: dict[str, Any]) -> int:
    """Delete what earlier demos copied, so this run copies everything again."""
    s3 = aws_client("s3", deployment["aws_endpoint"], deployment["region"])
    removed = 0
    for container in CONTAINERS:
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=deployment["bucket"], Prefix=f"{container}/"
        ):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=deployment["bucket"], Delete={"Objects": keys, "Quiet": True})
                removed += len(keys)
    return removed


def latest_report(deployment: dict[str, Any]) -> dict[str, Any]:
    from azs3copy.backends.dynamodb import DynamoLedger

    dynamodb = aws_client("dynamodb", deployment["aws_endpoint"], deployment["region"])
    ledger = DynamoLedger(dynamodb, deployment["ledger_table"])
    run_id = ledger.latest_run_id()
    run = ledger.get_run(run_id) if run_id else None
    if run is None or not run.report_key:
        raise RuntimeError("no finished run in the ledger")
    s3 = aws_client("s3", deployment["aws_endpoint"], deployment["region"])
    report: dict[str, Any] = json.loads(
        s3.get_object(Bucket=deployment["bucket"], Key=run.report_key)["Body"].read()
    )
    return report


def azurite_environment(connection_string: str, environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` with Azurite's connection string as the only Azure credential the CLI reads: the shell's
    own AZURE_* variables (a service principal, often) would make `set-azure-credentials` refuse them all
    as more than one kind of credential."""
    env = {name: value for name, value in environ.items() if name not in AZURE_ENV}
    env["AZURE_STORAGE_CONNECTION_STRING"] = connection_string
    return env


def cli(*args: str, env: Mapping[str, str] | None = None, deployment_file: Path | None = None) -> int:
    """Run the `azs3copy` console script (as an operator would) against the local environment, in `env`
    (default: this process's environment)."""
    script = Path(sys.executable).with_name("azs3copy")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "azs3copy.cli.main"]
    command += ["--deployment", str(deployment_file)] if deployment_file else ["--local"]
    shown = " ".join(["azs3copy", "--local", *args])
    print(f"\n$ {shown}", flush=True)
    environment = dict(os.environ if env is None else env)
    return subprocess.run([*command, *args], env=environment, check=False).returncode


def arrive_by_event(deployment: dict[str, Any]) -> float | None:
    """Give the secret an events token, upload one blob and deliver its BlobCreated event as Event Grid would;
    returns the seconds from the upload to its verified object in S3 (None when it did not arrive)."""
    secrets = aws_client("secretsmanager", deployment["aws_endpoint"], deployment["region"])
    document = json.loads(secrets.get_secret_value(SecretId=deployment["secret_id"])["SecretString"])
    token = document.get("events_token") or hashlib.sha256(os.urandom(32)).hexdigest()
    if "events_token" not in document:
        secrets.put_secret_value(
            SecretId=deployment["secret_id"], SecretString=json.dumps({**document, "events_token": token})
        )
    url = local_events_url(deployment["runtime_url"])
    container, name = CONTAINERS[0], f"events/arrived-{int(time.time())}.txt"
    data = f"uploaded after the runs, at {time.ctime()}\n".encode()
    service = BlobServiceClient.from_connection_string(deployment["azure"]["connection_string"])
    uploaded = time.monotonic()
    etag = str(service.get_blob_client(container, name).upload_blob(data)["etag"])
    status, _, body = deliver(
        url, [blob_event("Created", container, name, etag=etag, size=len(data))], token=token
    )
    print(f"uploaded {container}/{name}; Event Grid's delivery to {url} answered {status} {body.decode()}")
    if status != 200:
        return None
    s3 = aws_client("s3", deployment["aws_endpoint"], deployment["region"])
    try:
        seen = wait_verified(s3, deployment["bucket"], f"{container}/{name}", etag, len(data), timeout=120)
    except TimeoutError as error:
        print(error)
        return None
    copied = s3.get_object(Bucket=deployment["bucket"], Key=f"{container}/{name}")["Body"].read()
    if copied != data:
        print("the object in S3 differs from the blob: that is a bug")
        return None
    print(f"in S3, verified and byte-identical, {seen - uploaded:.1f} s after the upload")
    return seen - uploaded


def step(title: str) -> None:
    print(f"\n\033[1m== {title}\033[0m", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devenv.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=300, help="number of small blobs (1-64 KiB)")
    parser.add_argument("--large", type=int, default=2, help="number of large blobs")
    parser.add_argument("--large-mib", type=int, default=40, help="size of each large blob in MiB")
    parser.add_argument("--state-dir", type=Path, help="state directory of the environment (default .local)")
    args = parser.parse_args(argv)
    paths = LocalPaths(state_dir=args.state_dir)
    deployment = load_deployment(paths.deployment)
    file = paths.deployment if args.state_dir else None
    started = time.monotonic()

    step("1. The demo dataset, into Azurite")
    moment = time.monotonic()
    dataset = put_dataset(
        deployment["azure"]["connection_string"],
        small=args.small,
        large=args.large,
        large_size=args.large_mib * MiB,
    )
    removed = clear_destination(deployment)
    print(
        f"{dataset.count} blobs, {dataset.total_bytes / MiB:.1f} MiB in {', '.join(CONTAINERS)} "
        f"({args.large} of {args.large_mib} MiB take the multipart path; {len(TRICKY_NAMES)} tricky names) "
        f"in {time.monotonic() - moment:.1f} s"
        + (f"; removed {removed} objects of an earlier demo from S3" if removed else "")
    )

    step("2. Settings: Azure credentials (from the environment, never the command line), start date, enable")
    azurite = azurite_environment(deployment["azure"]["connection_string"], os.environ)
    for command in (("set-azure-credentials", "--check"), ("set-begindate", "2000-01-01"), ("enable",)):
        if cli(*command, env=azurite, deployment_file=file) != 0:
            return 1

    step("3. A run, followed live")
    moment = time.monotonic()
    first_rc = cli("run", "--wait", deployment_file=file)
    first_seconds = time.monotonic() - moment
    first = latest_report(deployment)
    if first_rc != 0:
        print("the first run did not copy everything (see the report above and `azs3copy dlq show`)")
        return 1
    manifest = f"s3://{deployment['bucket']}/{first['manifest_prefix']}"
    print(
        f"\nmanifest: {manifest} (JSON Lines: each object's key, version, size, CRC32, source ETag and MD5)"
    )

    step("4. Verify every object byte for byte")
    for container in CONTAINERS:
        if cli("verify", container, deployment_file=file) != 0:
            return 1

    print(f"\nthe blob {TAGGED[0]}/{TAGGED[1]} has index tags {json.dumps(TAGGED[2])}; its copy in S3:")
    if not show_tagged(deployment):
        print("the copy does not carry the blob's index tags: that is a bug")
        return 1

    step("5. Run again: everything is already there")
    moment = time.monotonic()
    second_rc = cli("run", "--wait", deployment_file=file)
    second_seconds = time.monotonic() - moment
    second = latest_report(deployment)
    copied_again = second["counts"].get("copied", 0)
    print(
        f"\nsecond run: {second['found']} found, {copied_again} copied, {second['counts'].get('skipped', 0)} "
        f"skipped, {second['bytes_copied']} bytes copied"
    )
    if second_rc != 0 or copied_again or second["bytes_copied"]:
        print("the second run copied something again: that is a bug")
        return 1

    step("6. One more blob, uploaded now: it arrives through an Event Grid event, not a run")
    event_seconds = arrive_by_event(deployment)
    if event_seconds is None:
        return 1

    step("Done")
    print(
        f"first run {first_seconds:.0f} s ({first['bytes_copied'] / MiB:.1f} MiB, "
        f"{first['counts'].get('copied', 0)} blobs), second run {second_seconds:.0f} s (0 bytes), "
        f"a blob uploaded afterwards in S3 {event_seconds:.1f} s after its upload by its event; "
        f"demo {time.monotonic() - started:.0f} s in all.\n"
        f"The first run's manifest: {manifest}\n"
        "Logs of every function: .local/logs/. Stop everything with `make down`."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
