"""Single invocations of real handlers, each in a fresh process with the function's environment, against an
Azurite and a moto server of their own: the peak memory of one part and one small-blob copy as the blob
grows, and find-blobs listing a big container with its real SNS publisher.

Tuning is the Terraform module's defaults (part 16 MiB, chunk 8 MiB, large threshold 100 MiB)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azs3copy.backends.azure_blob import AzureBlobSource
from azs3copy.backends.dynamodb import DynamoLedger
from azs3copy.functions import topic_variable
from azs3copy.messages import DownloadTask, FindBlobsTask, LargefileParterTask, encode
from azs3copy.planner import plan_parts
from azs3copy.steps.context import new_run_id
from bench.common import (
    FAKE_AWS,
    ROOT,
    WORK,
    BlobSpec,
    MiB,
    aws_client,
    azure_service,
    clean_env,
    say,
    upload_blobs,
)
from devenv.emulators import Azurite, MotoServer

PART_SIZE = 16 * MiB
CHUNK_SIZE = 8 * MiB
LARGE_THRESHOLD = 100 * MiB
TOPICS = ("find-blobs", "download", "largefile-initializer", "largefile-parter", "largefile-recombinator")


@dataclass
class Stage:
    """Emulators and the resources a function expects, created by this module."""

    moto: MotoServer
    azurite: Azurite
    bucket: str
    table: str
    secret_id: str
    topics: dict[str, str]

    def environment(self, **tuning: str) -> dict[str, str]:
        env = clean_env(
            {
                **FAKE_AWS,
                "AWS_ENDPOINT_URL": self.moto.endpoint,
                "AZS3COPY_SECRET_ID": self.secret_id,
                "AZS3COPY_BUCKET": self.bucket,
                "AZS3COPY_LEDGER_TABLE": self.table,
                "AZS3COPY_PART_SIZE": str(PART_SIZE),
                "AZS3COPY_CHUNK_SIZE": str(CHUNK_SIZE),
                "AZS3COPY_LARGE_THRESHOLD": str(LARGE_THRESHOLD),
                "POWERTOOLS_SERVICE_NAME": "azs3copy-bench",
                "POWERTOOLS_METRICS_NAMESPACE": "azs3copy",
                "POWERTOOLS_LOG_LEVEL": "WARNING",
                "PYTHONPATH": str(ROOT),
            }
        )
        env.pop("AWS_PROFILE", None)
        for name, arn in self.topics.items():
            env[f"AZS3COPY_{topic_variable(name)}"] = arn
        env.update(tuning)
        return env

    def set_secret(self, container: str, prefix: str = "") -> None:
        aws_client("secretsmanager", self.moto.endpoint).put_secret_value(
            SecretId=self.secret_id,
            SecretString=json.dumps(
                {
                    "isactive": True,
                    "begindate": "2000-01-01T00:00:00Z",
                    "azure": {"connection_string": self.azurite.connection_string},
                    "containers": [container],
                    **({"prefix": prefix} if prefix else {}),
                }
            ),
        )

    def ledger(self) -> DynamoLedger:
        return DynamoLedger(aws_client("dynamodb", self.moto.endpoint), self.table)


@contextmanager
def stage(name: str) -> Iterator[Stage]:
    state = WORK / name
    with MotoServer.start(state) as moto, Azurite.start(state) as azurite:
        s3 = aws_client("s3", moto.endpoint)
        bucket = "bench-destination"
        s3.create_bucket(Bucket=bucket)
        dynamodb = aws_client("dynamodb", moto.endpoint)
        table = "bench-ledger"
        dynamodb.create_table(
            TableName=table,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        sns = aws_client("sns", moto.endpoint)
        topics = {topic: sns.create_topic(Name=f"bench-{topic}")["TopicArn"] for topic in TOPICS}
        secret_id = aws_client("secretsmanager", moto.endpoint).create_secret(
            Name="bench-settings", SecretString=json.dumps({"isactive": False})
        )["ARN"]
        yield Stage(moto, azurite, bucket, table, secret_id, topics)


def sns_event(message: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:bench:sub",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": str(uuid.uuid4()),
                    "TopicArn": "arn:aws:sns:us-east-1:123456789012:bench",
                    "Message": message,
                    "MessageAttributes": {},
                },
            }
        ]
    }


def invoke(
    stage_: Stage, directory: str, message: str, env: dict[str, str], timeout: float = 900
) -> dict[str, Any]:
    """One invocation in a fresh process; its result, duration and peak RSS."""
    scratch = WORK / "invocations"
    scratch.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex[:8]
    event_path, result_path = scratch / f"{token}-event.json", scratch / f"{token}-result.json"
    event_path.write_text(json.dumps(sns_event(message)))
    log_path = scratch / f"{directory}-{token}.log"
    with log_path.open("wb") as log:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.invoke_once",
                directory,
                str(event_path),
                str(result_path),
                str(timeout),
            ],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=True,
        )
    result: dict[str, Any] = json.loads(result_path.read_text())
    event_path.unlink()
    result_path.unlink()
    if result["error"]:
        raise RuntimeError(f"{directory} invocation failed: {result['error']} (log {log_path})")
    return result


def _listed(stage_: Stage, container: str, name: str) -> Any:
    source = AzureBlobSource(azure_service(stage_.azurite.connection_string))
    page = source.list_page(container, name, None, 10)
    return next(blob.ref for blob in page.blobs if blob.ref.name == name)


def _summary(result: dict[str, Any], blob_size: int) -> dict[str, Any]:
    return {
        "blob_mib": blob_size / MiB,
        "seconds": round(result["seconds"], 3),
        "peak_rss_mib": round(result["peak_invocation"] / MiB, 1),
        "rss_after_init_mib": round(result["rss_after_init"] / MiB, 1),
        "growth_mib": round((result["peak_invocation"] - result["rss_after_init"]) / MiB, 1),
    }


PROFILES = WORK / "profiles"


def _profile_env(env: dict[str, str], name: str) -> dict[str, str]:
    PROFILES.mkdir(parents=True, exist_ok=True)
    return {**env, "BENCH_PROFILE": str(PROFILES / f"{name}.txt")}


def measure_memory(base_mib: dict[str, int] | None = None) -> dict[str, Any]:
    """Peak RSS of one parter and one download invocation for a blob of 1×, 2× and 4× a base size."""
    bases = base_mib or {"parter": 64, "download": 24}
    out: dict[str, Any] = {"part_size_mib": PART_SIZE // MiB, "chunk_size_mib": CHUNK_SIZE // MiB}
    with stage("memory") as st:
        container = "memory"
        st.set_secret(container)
        sizes = {kind: [base * MiB * k for k in (1, 2, 4)] for kind, base in bases.items()}
        specs = [
            BlobSpec(f"{kind}-{size // MiB}mib.bin", size) for kind, group in sizes.items() for size in group
        ]
        specs += [BlobSpec(f"profile/small-{i:02d}.bin", 1 * MiB) for i in range(20)]
        say(f"memory: uploading {len(specs)} blobs to Azurite")
        upload_blobs(azure_service(st.azurite.connection_string), container, specs, threads=2)
        s3 = aws_client("s3", st.moto.endpoint)
        ledger = st.ledger()
        rows: dict[str, list[dict[str, Any]]] = {"parter": [], "download": []}
        for size in sizes["parter"]:
            blob = _listed(st, container, f"parter-{size // MiB}mib.bin")
            run_id = new_run_id()
            key = f"{container}/{blob.name}"
            upload_id = s3.create_multipart_upload(Bucket=st.bucket, Key=key, ChecksumAlgorithm="CRC32")[
                "UploadId"
            ]
            plan = plan_parts(size, PART_SIZE)
            part = list(plan.parts())[1]
            task = LargefileParterTask(
                run_id,
                blob,
                key,
                upload_id,
                part.number,
                part.offset,
                part.length,
                plan.count,
                plan.part_size,
            )
            result = invoke(st, "largefile-parter", encode(task), st.environment())
            rows["parter"].append(_summary(result, size))
            say(f"memory: parter, blob {size // MiB} MiB: peak {rows['parter'][-1]['peak_rss_mib']} MiB")
        for size in sizes["download"]:
            blob = _listed(st, container, f"download-{size // MiB}mib.bin")
            run_id = new_run_id()
            ledger.start_run(
                run_id, containers=[container], begindate="2000-01-01T00:00:00Z", force=True, stale_after=1
            )
            result = invoke(st, "download", encode(DownloadTask(run_id, (blob,))), st.environment())
            if result["result"]["states"].get("copied") != 1:
                raise RuntimeError(f"download did not copy the blob: {result['result']}")
            rows["download"].append(_summary(result, size))
            say(f"memory: download, blob {size // MiB} MiB: peak {rows['download'][-1]['peak_rss_mib']} MiB")
        out.update(rows)
        out["profiles"] = _profiles(st, container, s3, ledger)
    return out


def _profiles(st: Stage, container: str, s3: Any, ledger: DynamoLedger) -> dict[str, Any]:
    """One parter invocation (a part of the largest blob) and one download of 20 × 1 MiB blobs under
    cProfile; the text profiles land in bench/.work/profiles/."""
    size = 256 * MiB
    blob = _listed(st, container, f"parter-{size // MiB}mib.bin")
    key = f"{container}/profiled-{blob.name}"
    upload_id = s3.create_multipart_upload(Bucket=st.bucket, Key=key, ChecksumAlgorithm="CRC32")["UploadId"]
    plan = plan_parts(size, PART_SIZE)
    part = list(plan.parts())[2]
    task = LargefileParterTask(
        new_run_id(), blob, key, upload_id, part.number, part.offset, part.length, plan.count, plan.part_size
    )
    parter = invoke(st, "largefile-parter", encode(task), _profile_env(st.environment(), "largefile-parter"))
    source = AzureBlobSource(azure_service(st.azurite.connection_string))
    smalls = tuple(blob.ref for blob in source.list_page(container, "profile/", None, 100).blobs)
    run_id = new_run_id()
    ledger.start_run(
        run_id, containers=[container], begindate="2000-01-01T00:00:00Z", force=True, stale_after=1
    )
    env = _profile_env(st.environment(), "download")  # the engine's pools run inline when profiled
    download = invoke(st, "download", encode(DownloadTask(run_id, smalls)), env)
    return {
        "largefile-parter (one 16 MiB part)": {
            "seconds": round(parter["seconds"], 3),
            "split": profile_split(PROFILES / "largefile-parter.txt"),
        },
        "download (20 × 1 MiB, blobs one after the other)": {
            "seconds": round(download["seconds"], 3),
            "split": profile_split(PROFILES / "download.txt"),
        },
    }


#: What the profile of one invocation is split into: (label, file, function names); cumulative seconds.
SPLIT = (
    ("Azure ranged reads", "azure_blob.py", ("read_range",)),
    ("S3 writes", "s3.py", ("put", "upload_part", "create_upload", "complete")),
    ("read-back verification", "verify.py", ("verify_object",)),
    (
        "ledger (DynamoDB)",
        "dynamodb.py",
        ("claim", "finish", "record_part", "get_blob", "bump_attempt", "get_run"),
    ),
    ("SNS publish", "sns.py", ("publish",)),
)


def profile_split(path: Path) -> dict[str, float]:
    """Cumulative seconds by activity, read from a pstats text dump (top-level functions only)."""
    found: dict[str, float] = {}
    for line in path.read_text().splitlines():
        fields = line.split()
        if len(fields) < 6 or "(" not in fields[-1]:
            continue
        where = fields[-1]
        name = where.rsplit("(", 1)[1].rstrip(")")
        for label, filename, names in SPLIT:
            if f"/{filename}:" in where and name in names:
                try:
                    found[label] = round(found.get(label, 0.0) + float(fields[3]), 3)
                except ValueError:
                    pass
    return found


def listing_split(count: int) -> int:
    """Blobs under `a/`: a tenth of the container, but at least two full listing pages (5,000 each) when the
    container has room, so that both listings measured span several pages."""
    return min(count // 2, max(count // 10, 10_000))


#: The directories besides `a/` the listing container's blobs are spread over: with `a/`, the shards that
#: find-blobs lists at once when it may split the container.
LISTING_DIRECTORIES = 15


def fill_listing_container(st: Stage, container: str, count: int, threads: int = 48) -> float:
    """`count` tiny blobs: listing_split(count) of them under `a/`, the rest spread evenly over
    `b00/` … `b14/`."""
    client = azure_service(st.azurite.connection_string).get_container_client(container)
    client.create_container()
    first = listing_split(count)
    names = [f"a/{i:07d}" for i in range(first)] + [
        f"b{i % LISTING_DIRECTORIES:02d}/{i:07d}" for i in range(count - first)
    ]
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(lambda name: client.upload_blob(name, b"x", overwrite=True), names, chunksize=64))
    return time.monotonic() - started


def measure_listing(count: int) -> dict[str, Any]:
    """find-blobs over a container of `count` blobs (and over a part of it, by prefix), alone, in a fresh
    process, publishing to moto's SNS topics (no subscribers: moto's SQS fan-out costs about a second a
    request with thousands of messages queued); the publisher records the size of every message it sends.
    These listings are one chain (listing shards off); then the whole container once more with its
    directories listed as shards, each in a process of its own, all at once."""
    with stage("listing") as st:
        container = "listing"
        say(f"listing: putting {count} blobs into Azurite")
        ingest = fill_listing_container(st, container, count)
        say(f"listing: ingest took {ingest:.0f} s ({count / ingest:.0f} blobs/s)")
        runs = []
        for prefix, blobs in (("a/", listing_split(count)), ("", count)):
            st.set_secret(container, prefix)
            run_id = new_run_id()
            st.ledger().start_run(
                run_id, containers=[container], begindate="2000-01-01T00:00:00Z", force=True, stale_after=1
            )
            sizes_file = WORK / "invocations" / f"sizes-{run_id}.txt"
            sizes_file.parent.mkdir(parents=True, exist_ok=True)
            env = st.environment(BENCH_MESSAGE_SIZES=str(sizes_file), AZS3COPY_LISTING_SHARDS="0")
            result = invoke(st, "find-blobs", encode(FindBlobsTask(run_id, container)), env)
            sizes = [int(line) for line in sizes_file.read_text().split()] if sizes_file.exists() else []
            sizes_file.unlink(missing_ok=True)
            runs.append(
                {
                    "blobs": blobs,
                    "seconds": round(result["seconds"], 2),
                    "peak_rss_mib": round(result["peak_invocation"] / MiB, 1),
                    "rss_after_init_mib": round(result["rss_after_init"] / MiB, 1),
                    "growth_mib": round((result["peak_invocation"] - result["rss_after_init"]) / MiB, 1),
                    "messages": len(sizes),
                    "largest_message_bytes": max(sizes, default=0),
                    "pages": result["result"].get("pages"),
                }
            )
            say(
                f"listing: {blobs} blobs in {runs[-1]['seconds']} s, peak {runs[-1]['peak_rss_mib']} MiB, "
                f"{len(sizes)} messages, largest {max(sizes, default=0)} B"
            )
        sharded = _sharded_listing(st, container, count)
        return {"ingest_seconds": round(ingest, 1), "runs": runs, "sharded": sharded}


def _sharded_listing(st: Stage, container: str, count: int) -> dict[str, Any]:
    """The whole container listed with shards, as the pipeline lists it: the container's task splits it and
    lists its own top level, then every shard's task runs at once, each in a fresh process (as many Lambda
    invocations would). Seconds from the first task's start to the last shard's end."""
    st.set_secret(container, "")
    run_id = new_run_id()
    ledger = st.ledger()
    ledger.start_run(
        run_id, containers=[container], begindate="2000-01-01T00:00:00Z", force=True, stale_after=1
    )
    env = st.environment()
    started = time.monotonic()
    first = invoke(st, "find-blobs", encode(FindBlobsTask(run_id, container)), env)
    shards = ledger.get_shards(run_id, container) or []
    divisible = len(shards) == 1
    tasks = [encode(FindBlobsTask(run_id, container, shard=shard, divisible=divisible)) for shard in shards]
    with ThreadPoolExecutor(max_workers=max(1, len(tasks))) as pool:
        results = list(pool.map(lambda task: invoke(st, "find-blobs", task, env), tasks))
    seconds = time.monotonic() - started
    run = ledger.get_run(run_id)
    found = run.found if run else 0
    if found != count:
        raise RuntimeError(f"listing with shards found {found} blobs of {count}")
    row = {
        "blobs": count,
        "shards": len(shards),
        "seconds": round(seconds, 2),
        "first_task_seconds": round(first["seconds"], 2),
        "slowest_shard_seconds": round(max((r["seconds"] for r in results), default=0.0), 2),
        "peak_rss_mib": round(max(r["peak_invocation"] for r in [first, *results]) / MiB, 1),
    }
    say(f"listing: {count} blobs in {row['seconds']} s with {len(shards)} shards at once")
    return row
