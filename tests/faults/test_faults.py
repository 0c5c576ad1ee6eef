"""Faults and bad input, through the local runtime with the fault proxy in front of Azurite and moto.

After each scenario every blob is byte-identical in S3 (one object version) or recorded, with a reason, in the
run report (and every failed blob is in a dead-letter queue: Lambda puts events whose retries ran out there,
the functions put blobs failed by errors no retry can fix there themselves); no partial object, no extra
object version and no open multipart upload is left; every fault the scenario set up acted at least once; and
the next run, without the fault, copies exactly what is missing. Each scenario adds its row to
the reliability table (build/reliability.md, docs/reliability.md by `make reliability-report`) however it ends.
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import threading
import urllib.error
import urllib.request
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import ContentSettings

from azs3copy.cli.dlq import blob_ids
from azs3copy.messages import BlobRef, DownloadTask, FindBlobsTask, decode, encode
from devenv.faultproxy import FaultProxy, Rule, Seen, azure_error, s3_error
from devenv.runtime import sns_event
from tests.faults.conftest import (
    CANARY,
    EXPECTED,
    PARTER_TIMEOUT,
    ROWS,
    WRONG_KEY,
    KnownDefect,
    World,
    connection_string,
    table_row,
    write_table,
)
from tests.support.encodings import brotli_stream, gzip_stream

MiB = 1 << 20
SMALL = {
    "tiny.txt": b"a small text blob\n" * 50,
    "empty.bin": b"",
    "mid.bin": os.urandom(300_000),
    "one-mib.bin": os.urandom(MiB),
    "three-mib.bin": os.urandom(3 * MiB + 17),
}
LARGE = {"large-a.bin": os.urandom(10 * MiB + 512 * 1024)}  # 3 parts of 5 MiB (envs/local's sizes)
#: Over envs/local's 8 MiB chunk and under its 10 MiB threshold: download copies it as a multipart upload.
CHUNKED = {"nine-mib.bin": os.urandom(9 * MiB)}


def padded(stem: str, size: int) -> str:
    """A name whose key `<container>/<name>` is `size` UTF-8 bytes (containers are `f` and 12 hex digits)."""
    return stem + "x" * (size - len("f123456789012/") - len(stem.encode()))


#: What real storage accounts hold next to ordinary blobs: blobs stored compressed with their
#: Content-Encoding (copied as stored, still compressed), a key of exactly S3's 1,024 bytes, names that
#: extend each other past '#' (two large blobs), and one key of 1,025 bytes that S3 cannot hold.
ENCODED = {
    "site/index.html": gzip.compress(b"<html><body>hello</body></html>\n" * 2000),
    "logs/app.log.z": zlib.compress(b"2024-01-31T08:00:00Z GET /index.html 200\n" * 3000),
    "site/app.js": brotli_stream(40_000, os.urandom) or b"",
    "dumps/db.sql.gz": gzip_stream(10 * MiB + 7, os.urandom) or b"",  # large: its parts are ranged reads
}
REAL_ACCOUNT = {
    **ENCODED,
    padded("exact-", 1024): b"a key of exactly 1,024 UTF-8 bytes",
    padded("wide-é", 1024): b"1,024 bytes, one of them two",
    "archive": os.urandom(10 * MiB + 100),
    "archive#2024": os.urandom(10 * MiB + 200),
    padded("over-", 1025): b"a key one byte longer than S3 allows",
    "tiny.txt": b"an ordinary blob next to them\n",
}
ENCODINGS = {
    "site/index.html": ContentSettings(content_type="text/html", content_encoding="gzip"),
    "logs/app.log.z": ContentSettings(content_type="text/plain", content_encoding="deflate"),
    "site/app.js": ContentSettings(content_type="application/javascript", content_encoding="br"),
    "dumps/db.sql.gz": ContentSettings(content_type="application/sql", content_encoding="gzip"),
}
RANGED = {"x-ms-range": "bytes="}
#: S3 requests by operation (botocore's query strings: PutObject `x-id=PutObject`, UploadPart `partNumber=…`,
#: CompleteMultipartUpload `uploadId=…` on a POST, CreateMultipartUpload `uploads` on a POST).
NOT_AN_UPLOAD_PART = r"^(?!.*uploadId=)"
PART_NUMBER = "partNumber="
UPLOAD_ID = "uploadId="
NO_SUCH_UPLOAD = (
    "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted "
    "or completed."
)


@dataclass
class Run:
    """One run of the pipeline: its report and what the proxies and the runtime saw."""

    run_id: str
    report: dict[str, Any]
    #: Rule name → the requests it acted on, for every rule the scenario set up.
    acted: dict[str, list[Seen]] = field(default_factory=dict)
    #: Function name → its pool's counters before the run.
    stats_before: dict[str, dict[str, int]] = field(default_factory=dict)
    duplicated: int = 0


@dataclass
class Scenario:
    name: str
    faults: Callable[[World, str], None] = lambda world, container: None
    blobs: dict[str, bytes] = field(default_factory=lambda: {**SMALL, **LARGE})
    #: Content settings of blobs by name (the stored Content-Encoding among them); the others have none.
    content: dict[str, ContentSettings] = field(default_factory=dict)
    #: Blobs S3 cannot hold (a key over 1,024 bytes): recorded failed by every run, never copied.
    uncopyable: frozenset[str] = frozenset()
    duplicate: bool = False
    #: With `duplicate`: both copies at the same moment, not after random delays.
    at_once: bool = False
    #: Report counts the faulty run must show (state → blobs), beyond the invariants.
    expect: dict[str, int] = field(default_factory=dict)
    #: More checks of the faulty run; each returns what it found wrong.
    check: Callable[[World, Run], list[str]] | None = None
    #: (kinds of problem, why): what this scenario is known to break; the test is xfail when every problem
    #: found is of those kinds, and fails for any other.
    known_defect: tuple[tuple[str, ...], str] | None = None
    #: Sign in with an account SAS token (its signature travels in every request URL) instead of the key.
    sas: bool = False


def path_of(container: str, name: str = "") -> str:
    return f"/{container}/{name}" if name else f"/{container}/"


# --- the faults -------------------------------------------------------------------------------------------


def azure_server_busy(world: World, container: str) -> None:
    world.azure_proxy.add(
        Rule(
            "server-busy",
            "status",
            method="GET",
            path=path_of(container),
            headers=RANGED,
            status=503,
            body=azure_error("ServerBusy", "The server is currently unable to receive requests."),
            times=6,
        )
    )


def azure_operation_timeout(world: World, container: str) -> None:
    # More than the SDK's own retries for the large blob's reads: a Lambda retry must finish the part.
    world.azure_proxy.add(
        Rule(
            "operation-timeout",
            "status",
            method="GET",
            path=path_of(container, "large-a.bin"),
            headers=RANGED,
            status=500,
            body=azure_error(
                "OperationTimedOut", "The operation could not be completed within the permitted time."
            ),
            times=5,
        )
    )


def s3_slow_down(world: World, container: str) -> None:
    # More than botocore's five attempts: some uploads fail through to a Lambda retry.
    world.s3_proxy.add(
        Rule(
            "slow-down",
            "status",
            method="PUT",
            path=path_of(container),
            status=503,
            body=s3_error("SlowDown", "Please reduce your request rate."),
            times=7,
        )
    )


def connection_resets(world: World, container: str) -> None:
    world.azure_proxy.add(
        Rule(
            "azure-reset",
            "reset",
            reset_at="response",
            method="GET",
            path=path_of(container),
            headers=RANGED,
            times=3,
        )
    )
    world.s3_proxy.add(Rule("s3-reset", "reset", method="PUT", path=path_of(container), times=3))


def slow_responses(world: World, container: str) -> None:
    world.azure_proxy.add(
        Rule(
            "azure-slow", "delay", method="GET", path=path_of(container), delay=1.5, probability=0.5, times=6
        )
    )
    world.s3_proxy.add(
        Rule("s3-slow", "delay", method="PUT", path=path_of(container), delay=1.5, probability=0.5, times=6)
    )


def parter_killed(world: World, container: str) -> None:
    world.s3_proxy.add(
        Rule(
            "stall-part",
            "stall",
            method="PUT",
            path=path_of(container),
            query="partNumber=",
            delay=PARTER_TIMEOUT + 40,
            times=1,
        )
    )


def overwritten_and_deleted(world: World, container: str) -> None:
    def overwrite() -> None:
        world.azure.get_blob_client(container, "large-a.bin").upload_blob(
            os.urandom(11 * MiB), overwrite=True
        )

    def delete() -> None:
        world.azure.get_blob_client(container, "large-b.bin").delete_blob()

    world.azure_proxy.add(
        Rule(
            "overwrite",
            "call",
            method="GET",
            path=path_of(container, "large-a.bin"),
            headers=RANGED,
            skip=1,
            times=1,
            callback=overwrite,
        ),
        Rule(
            "delete",
            "call",
            method="GET",
            path=path_of(container, "large-b.bin"),
            headers=RANGED,
            skip=1,
            times=1,
            callback=delete,
        ),
    )


def corrupt_from_azure(world: World, container: str) -> None:
    world.azure_proxy.add(
        Rule(
            "flip-small",
            "corrupt-response",
            method="GET",
            path=path_of(container, "mid.bin"),
            headers=RANGED,
            times=1,
        ),
        Rule(
            "flip-part",
            "corrupt-response",
            method="GET",
            path=path_of(container, "large-a.bin"),
            headers=RANGED,
            times=1,
        ),
    )


def corrupt_put_to_s3(world: World, container: str) -> None:
    world.s3_proxy.add(
        Rule("flip-put", "corrupt-request", method="PUT", path=path_of(container, "one-mib.bin"), times=1)
    )


def corrupt_put_every_time(world: World, container: str) -> None:
    world.s3_proxy.add(
        Rule("flip-put-always", "corrupt-request", method="PUT", path=path_of(container, "mid.bin"))
    )


def corrupt_part_to_s3(world: World, container: str) -> None:
    world.s3_proxy.add(
        Rule(
            "flip-part",
            "corrupt-request",
            method="PUT",
            path=path_of(container, "large-a.bin"),
            query="partNumber=2",
            times=1,
        )
    )


def kms_denied(world: World, container: str) -> None:
    message = (
        "User: arn:aws:sts::123456789012:assumed-role/azs3copy/fn is not authorized to perform: "
        f"kms:GenerateDataKey on resource: {world.outputs['kms_key_arn']}"
    )
    body = s3_error("AccessDenied", message)
    world.s3_proxy.add(
        Rule("kms-denied-put", "status", method="PUT", path=path_of(container), status=403, body=body),
        Rule(
            "kms-denied-create",
            "status",
            method="POST",
            path=path_of(container),
            query="uploads",
            status=403,
            body=body,
        ),
    )


def stored_then_reset(
    rule: str, method: str, query: str, *names: str, retry_gone: bool = False
) -> Callable[[World, str], None]:
    """S3 does the request (stores the object or the part, completes the upload) and answers; the client
    sees its connection reset instead of the answer, once for each named blob. With `retry_gone`, the
    client's retry of a completed upload is answered 404 NoSuchUpload, as S3 may answer it."""

    def faults(world: World, container: str) -> None:
        for name in names:
            world.s3_proxy.add(
                Rule(
                    f"{rule}:{name}",
                    "reset",
                    reset_at="forwarded",
                    method=method,
                    path=path_of(container, name),
                    query=query,
                    times=1,
                )
            )
            if retry_gone:
                world.s3_proxy.add(
                    Rule(
                        f"gone-on-retry:{name}",
                        "status",
                        method=method,
                        path=path_of(container, name),
                        query=query,
                        status=404,
                        body=s3_error("NoSuchUpload", NO_SUCH_UPLOAD),
                        times=1,
                    )
                )

    return faults


def s3_reset_mid_body(world: World, container: str) -> None:
    world.s3_proxy.add(
        Rule("s3-reset-in-body", "reset", reset_at="body", method="PUT", path=path_of(container), times=3),
        Rule(
            "s3-reset-in-part-body",
            "reset",
            reset_at="body",
            method="PUT",
            path=path_of(container, "large-a.bin"),
            query=PART_NUMBER,
            times=1,
        ),
    )


# --- checks of one scenario -------------------------------------------------------------------------------


def gave_up_and_dead_lettered(world: World, run: Run) -> list[str]:
    failures = run.report["failures"]
    if len(failures) != 1:
        return [f"expected one failure, found {failures}"]
    (failure,) = failures
    if failure["blob"].endswith("/mid.bin") and "gave up after 3 attempts" in failure["reason"]:
        return []
    return [f"not the failure expected: {failure}"]


def only_fast_failures(world: World, run: Run) -> list[str]:
    refused = run.acted["kms-denied-put"] + run.acted["kms-denied-create"]
    again = {path: count for path, count in Counter(seen.path for seen in refused).items() if count > 1}
    problems = [f"access denied was retried: {again}"] if again else []
    if not refused:
        problems.append("no upload was refused")
    problems += [
        f"failure not for access denied: {failure}"
        for failure in run.report["failures"]
        if "AccessDenied" not in failure["reason"]
    ]
    return problems


def refused_by_s3(*rules: str) -> Callable[[World, Run], list[str]]:
    """S3 (the local moto, as S3 does) refused every request whose body a rule corrupted (BadDigest, 400):
    the flipped byte never landed, not even for a moment."""

    def check(world: World, run: Run) -> list[str]:
        answered = [(rule, seen.status) for rule in rules for seen in run.acted[rule]]
        return [f"{rule}: answered {status}, not refused" for rule, status in answered if status != 400]

    return check


def both(*checks: Callable[[World, Run], list[str]]) -> Callable[[World, Run], list[str]]:
    return lambda world, run: [problem for check in checks for problem in check(world, run)]


def parter_was_killed(world: World, run: Run) -> list[str]:
    name = world.name("largefile-parter")
    killed = world.runtime.pool_for(name).stats["timeouts"] - run.stats_before[name].get("timeouts", 0)
    return [] if killed >= 1 else ["no parter invocation was killed by its timeout in this run"]


SCENARIOS = [
    Scenario("no fault (baseline)"),
    Scenario("Azure 503 ServerBusy on reads", azure_server_busy),
    Scenario("Azure 500 OperationTimedOut on a large blob's part reads", azure_operation_timeout),
    Scenario("S3 503 SlowDown on uploads", s3_slow_down),
    Scenario("connections reset mid-body (Azure responses, S3 uploads)", connection_resets),
    Scenario("S3 uploads reset halfway through the request body (PutObject, UploadPart)", s3_reset_mid_body),
    Scenario(
        "S3 stored the object, the client saw a reset (PutObject)",
        stored_then_reset("stored-put", "PUT", NOT_AN_UPLOAD_PART, "mid.bin", "one-mib.bin"),
    ),
    Scenario(
        "S3 stored the part, the client saw a reset (UploadPart)",
        stored_then_reset("stored-part", "PUT", PART_NUMBER, "large-a.bin", "nine-mib.bin"),
        blobs={**SMALL, **LARGE, **CHUNKED},
    ),
    Scenario(
        "S3 completed the upload, the client saw a reset (CompleteMultipartUpload)",
        stored_then_reset("stored-complete", "POST", UPLOAD_ID, "large-a.bin", "nine-mib.bin"),
        blobs={**SMALL, **LARGE, **CHUNKED},
    ),
    Scenario(
        "S3 completed the upload, the client saw a reset, its retry got NoSuchUpload",
        stored_then_reset(
            "stored-complete", "POST", UPLOAD_ID, "large-a.bin", "nine-mib.bin", retry_gone=True
        ),
        blobs={**SMALL, **LARGE, **CHUNKED},
    ),
    Scenario("slow responses (1.5 s delays)", slow_responses),
    Scenario(
        "Azure 503 ServerBusy and resets mid-body, signed in with a SAS token",
        lambda world, container: (azure_server_busy(world, container), connection_resets(world, container)),
        sas=True,
    ),
    Scenario("parter killed mid-part (timeout)", parter_killed, check=parter_was_killed),
    Scenario("every SNS message twice, out of order", duplicate=True),
    Scenario(
        "every SNS message twice, at the same time (claims, uploads and completions raced)",
        blobs={**SMALL, **LARGE, **CHUNKED},
        duplicate=True,
        at_once=True,
    ),
    Scenario(
        "blobs real accounts hold: gzip, deflate and br stored, keys of 1,024 bytes, names past '#', "
        "one key of 1,025 bytes",
        blobs=REAL_ACCOUNT,
        content=ENCODINGS,
        uncopyable=frozenset({padded("over-", 1025)}),
        expect={"copied": len(REAL_ACCOUNT) - 1, "failed": 1},
    ),
    Scenario(
        "blob overwritten, another deleted, while their parts are copied",
        overwritten_and_deleted,
        blobs={**SMALL, **LARGE, "large-b.bin": os.urandom(10 * MiB + 100)},
        expect={"changed": 1, "vanished": 1},
    ),
    Scenario("bytes corrupted in Azure's responses", corrupt_from_azure),
    Scenario(
        "bytes corrupted on the way to S3 (PutObject)", corrupt_put_to_s3, check=refused_by_s3("flip-put")
    ),
    Scenario(
        "bytes corrupted on the way to S3 on every attempt",
        corrupt_put_every_time,
        expect={"failed": 1},
        check=both(gave_up_and_dead_lettered, refused_by_s3("flip-put-always")),
    ),
    Scenario(
        "bytes corrupted on the way to S3 (UploadPart)",
        corrupt_part_to_s3,
        check=refused_by_s3("flip-part"),  # refused, sent again by the parter's retry, copied
    ),
    Scenario(
        "KMS access denied on upload",
        kms_denied,
        expect={"failed": len(SMALL) + len(LARGE)},
        check=only_fast_failures,
    ),
]


# --- judging what a run left behind -----------------------------------------------------------------------


def new_container(
    world: World, blobs: dict[str, bytes], content: dict[str, ContentSettings] | None = None
) -> str:
    container = f"f{uuid.uuid4().hex[:12]}"
    world.azure.create_container(container)
    for name, data in blobs.items():
        world.azure.get_blob_client(container, name).upload_blob(
            data, overwrite=True, content_settings=(content or {}).get(name)
        )
    return container


def azure_now(world: World, container: str) -> dict[str, bytes]:
    """Every blob's bytes as stored (a gzip-encoded blob's compressed bytes, which S3 must hold too)."""
    client = world.azure.get_container_client(container)
    return {
        blob.name: client.download_blob(blob.name, decompress=False).readall() for blob in client.list_blobs()
    }


def s3_state(world: World, container: str) -> tuple[dict[str, bytes], dict[str, int], list[dict[str, Any]]]:
    s3 = world.client("s3")
    versions: dict[str, int] = {}
    listing = s3.list_object_versions(Bucket=world.bucket, Prefix=f"{container}/")
    for version in listing.get("Versions", []) + listing.get("DeleteMarkers", []):
        versions[version["Key"]] = versions.get(version["Key"], 0) + 1
    objects = {
        item["Key"]: s3.get_object(Bucket=world.bucket, Key=item["Key"])["Body"].read()
        for item in s3.list_objects_v2(Bucket=world.bucket, Prefix=f"{container}/").get("Contents", [])
    }
    uploads = [
        upload
        for upload in s3.list_multipart_uploads(Bucket=world.bucket).get("Uploads", [])
        if upload["Key"].startswith(f"{container}/")
    ]
    return objects, versions, uploads


def dead_letter_blobs(record: dict[str, Any]) -> set[tuple[str, str]]:
    """(run id, blob id) pairs a dead-letter record is for: a BlobFailed record's listed failures; for a
    step's task whose attempts ran out (its body, moved by the queue's redrive policy) or Lambda's record of an
    event whose retries ran out, the blobs of the event's message (`<container>/` for
    a listing); none for a launch that started no run."""
    if "requestContext" not in record:  # a step's task, moved by its queue's redrive policy as it was
        task = decode(json.dumps(record))
        return {(task.run_id, blob_id) for blob_id in blob_ids(task)}
    condition = record.get("requestContext", {}).get("condition")
    if condition == "BlobFailed":
        return {(str(failure["run_id"]), str(failure["blob"])) for failure in record.get("failures", [])}
    if condition == "LaunchFailed":  # no run started: no blob was looked at
        return set()
    message = decode(record["requestPayload"]["Records"][0]["Sns"]["Message"])
    if isinstance(message, FindBlobsTask):
        return {(message.run_id, f"{message.container}/")}
    if isinstance(message, DownloadTask):
        return {(message.run_id, blob.blob_id) for blob in message.blobs}
    return {(message.run_id, message.blob.blob_id)}


@dataclass
class Tally:
    copied: int = 0
    failed: int = 0
    not_listed: int = 0
    lost: int = 0
    corrupt: int = 0
    #: (kind, what): every invariant the run broke.
    problems: list[tuple[str, str]] = field(default_factory=list)

    def cells(self) -> dict[str, int]:
        return {
            "copied": self.copied,
            "failed": self.failed,
            "not_listed": self.not_listed,
            "lost": self.lost,
            "corrupt": self.corrupt,
        }


def judge(
    world: World,
    container: str,
    originals: dict[str, bytes],
    report: dict[str, Any] | None,
    dead: list[dict[str, Any]],
    *,
    stopped: str | None = None,
) -> Tally:
    """Classify every blob of the container by what S3, the run report and the dead-letter queues hold.

    A blob is copied (byte-identical to the blob as listed or as it is now, with one object version),
    recorded not copied (the report names it with a reason), not listed (the report records the container's
    listing as stopped, or no run started and `stopped` says why), lost (none of these) or corrupt."""
    tally = Tally()
    current = azure_now(world, container)
    objects, versions, uploads = s3_state(world, container)
    failures = {failure["blob"]: failure for failure in (report or {}).get("failures", [])}
    run_id = str((report or {}).get("run_id", ""))
    dead_for = set().union(*(dead_letter_blobs(record) for record in dead))
    listing = failures.get(f"{container}/")
    for name, data in originals.items():
        key = blob_id = f"{container}/{name}"
        recorded = failures.get(blob_id)
        if key in objects:
            if objects[key] not in (data, current.get(name)):
                tally.corrupt += 1
                tally.problems.append(("corrupt", f"{key}: bytes differ from the blob's"))
                continue
            tally.copied += 1
            if versions[key] != 1:
                tally.problems.append(("extra-version", f"{key}: {versions[key]} object versions"))
            if recorded is not None:
                tally.problems.append(
                    ("copied-but-recorded", f"{key} is copied, the report says {recorded['state']}")
                )
        elif recorded is not None and recorded["reason"]:
            tally.failed += 1
            if key in versions:
                tally.problems.append(("left-behind", f"{key}: a partial or unverified version was left"))
            if recorded["state"] == "failed" and (run_id, blob_id) not in dead_for:
                tally.problems.append(("not-dead-lettered", f"{blob_id}: in no dead-letter record"))
        elif (listing is not None and listing["reason"]) or (report is None and stopped):
            tally.not_listed += 1
        else:
            tally.lost += 1
            tally.problems.append(("lost", f"{blob_id}: not in S3, not in the report"))
    if listing is not None and listing["state"] == "failed" and (run_id, f"{container}/") not in dead_for:
        tally.problems.append(("not-dead-lettered", f"the listing of {container}: in no dead-letter record"))
    if uploads:
        tally.problems.append(("open-upload", f"multipart uploads left open: {uploads}"))
    return tally


def settle(problems: list[tuple[str, str]], known_defect: tuple[tuple[str, ...], str] | None = None) -> None:
    """Fail with every problem found; with KnownDefect if all of them are the scenario's known defect."""
    if not problems:
        return
    text = "; ".join(f"{kind}: {what}" for kind, what in problems)
    if known_defect is not None and all(kind in known_defect[0] for kind, _ in problems):
        raise KnownDefect(text)
    raise AssertionError(text)


# --- running one scenario ---------------------------------------------------------------------------------


def run_once(world: World, scenario: Scenario | None = None, container: str = "") -> Run:
    world.s3_proxy.reset_log()
    world.azure_proxy.reset_log()
    stats_before = {name: dict(pool.stats) for name, pool in world.runtime.pools.items()}
    armed: list[tuple[FaultProxy, str]] = []
    if scenario is not None:
        scenario.faults(world, container)
        armed = [(proxy, rule.name) for proxy in (world.s3_proxy, world.azure_proxy) for rule in proxy.rules]
        if scenario.duplicate:
            world.delivery.on(world.runtime, at_once=scenario.at_once)
    try:
        reply = world.launch()
        assert reply.get("ok"), reply
        run_id = str(reply["result"]["run_id"])
        world.wait_idle()
    finally:
        world.delivery.off(world.runtime)
        world.s3_proxy.clear()
        world.azure_proxy.clear()
    report = world.report(run_id)
    assert report is not None, f"run {run_id} wrote no report"
    return Run(
        run_id,
        report,
        acted={name: proxy.acted(name) for proxy, name in armed},
        stats_before=stats_before,
        duplicated=world.delivery.duplicated if scenario is not None and scenario.duplicate else 0,
    )


def counts_text(report: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(report["counts"].items()) if v) or "-"


def fired_text(run: Run) -> str:
    parts = [f"{name} ×{len(seen)}" for name, seen in run.acted.items()]
    if run.duplicated:
        parts.append(f"{run.duplicated} events sent twice")
    return ", ".join(parts) or "-"


def next_run_copies(
    world: World,
    container: str,
    current: dict[str, bytes],
    missing: set[str],
    row: dict[str, Any],
    uncopyable: frozenset[str] = frozenset(),
) -> list[tuple[str, str]]:
    """Run again without faults: it must copy exactly `missing` (but the `uncopyable` blobs, which it must
    record failed again) and leave every blob byte-identical in S3, one version each, no upload open."""
    rerun = run_once(world).report
    row["rerun"] = rerun["counts"].get("copied", 0)
    after, versions, uploads = s3_state(world, container)
    problems: list[tuple[str, str]] = []
    copyable = missing - uncopyable
    if rerun["counts"].get("copied", 0) != len(copyable):
        problems.append(
            ("rerun-copied", f"the next run copied {counts_text(rerun)}, {len(copyable)} were missing")
        )
    if rerun["counts"].get("skipped", 0) != len(current) - len(missing):
        problems.append(("rerun-skipped", f"the next run skipped {counts_text(rerun)}"))
    refused = {failure["blob"] for failure in rerun["failures"] if failure["state"] == "failed"}
    problems += [
        ("rerun-refused", f"{container}/{name}: S3 cannot hold it, and the next run did not record it failed")
        for name in uncopyable
        if f"{container}/{name}" not in refused
    ]
    problems += [
        ("rerun-bytes", f"{container}/{name}: not byte-identical after the next run")
        for name, data in current.items()
        if name not in uncopyable and after.get(f"{container}/{name}") != data
    ]
    problems += [
        ("extra-version", f"{key}: {count} object versions after the next run")
        for key, count in versions.items()
        if count != 1
    ]
    if uploads:
        problems.append(("open-upload", f"multipart uploads left open after the next run: {uploads}"))
    return problems


def scenario_param(scenario: Scenario) -> Any:
    if scenario.known_defect is None:
        return pytest.param(scenario, id=scenario.name)
    mark = pytest.mark.xfail(raises=KnownDefect, strict=True, reason=scenario.known_defect[1])
    return pytest.param(scenario, id=scenario.name, marks=mark)


@pytest.mark.parametrize("scenario", [scenario_param(s) for s in SCENARIOS])
def test_scenario_loses_and_corrupts_nothing(world: World, scenario: Scenario) -> None:
    known = scenario.known_defect
    with table_row(scenario.name, known[1] if known else None) as row:
        originals = scenario.blobs
        row["blobs"] = len(originals)
        container = new_container(world, originals, scenario.content)
        if scenario.sas:
            world.configure_sas([container])
        else:
            world.configure([container])
        world.drain_dead_letters()
        before = world.invocations()

        run = run_once(world, scenario, container)

        row["invocations"] = sum(world.invocations().values()) - sum(before.values())
        dead = world.drain_dead_letters()
        row.update(dlq=len(dead), report=counts_text(run.report), fired=fired_text(run))
        tally = judge(world, container, originals, run.report, dead)
        row.update(tally.cells())
        problems = list(tally.problems)
        problems += [
            ("fault-not-fired", f"rule {name} acted on no request")
            for name, seen in run.acted.items()
            if not seen
        ]
        if scenario.duplicate and not run.duplicated:
            problems.append(("fault-not-fired", "no event was sent twice"))
        if run.report["found"] != len(originals):
            problems.append(("report", f"the report found {run.report['found']} blobs"))
        problems += [
            ("report", f"the report counts {run.report['counts'].get(state, 0)} {state}, expected {count}")
            for state, count in scenario.expect.items()
            if run.report["counts"].get(state, 0) != count
        ]
        if scenario.check is not None:
            problems += [("check", what) for what in scenario.check(world, run)]

        current = azure_now(world, container)
        objects, _, _ = s3_state(world, container)
        missing = {name for name in current if objects.get(f"{container}/{name}") != current[name]}
        problems += next_run_copies(world, container, current, missing, row, scenario.uncopyable)
        problems += [
            ("uncopyable", f"{container}/{name}: S3 cannot hold it, yet it is there")
            for name in scenario.uncopyable
            if f"{container}/{name}" in objects
        ]
        settle(problems, known)


# --- bad credentials and bad settings stop the run before any copy ----------------------------------------


def ledger_current(world: World) -> Any:
    item = world.client("dynamodb").get_item(
        TableName=world.outputs["ledger_table"], Key={"pk": {"S": "CURRENT"}, "sk": {"S": "CURRENT"}}
    )
    return item.get("Item")


def rerun_after_the_fix(world: World, container: str, blobs: dict[str, bytes], row: dict[str, Any]) -> None:
    """With the secret fixed, the next run copies every blob (none was copied)."""
    world.configure([container])
    problems = next_run_copies(world, container, blobs, set(blobs), row)
    settle(problems)


def test_wrong_azure_credentials_stop_the_launch_with_one_clear_error(world: World) -> None:
    with table_row("wrong Azure credentials (account key)") as row:
        container = new_container(world, SMALL)
        row["blobs"] = len(SMALL)
        world.configure(None, key=WRONG_KEY)  # no container list: launch lists the account's containers
        world.drain_dead_letters()
        world.azure_proxy.reset_log()
        current, before = ledger_current(world), world.invocations()
        reply = world.launch()
        world.wait_idle()
        row["invocations"] = spent = sum(world.invocations().values()) - sum(before.values())
        refused = [seen for seen in world.azure_proxy.log if seen.status == 403]
        row["fired"] = f"Azure 403 ×{len(refused)}"
        row["report"] = f"{reply.get('errorType')} at launch"
        dead = world.drain_dead_letters()
        row["dlq"] = len(dead)
        tally = judge(world, container, SMALL, None, dead, stopped=str(reply.get("errorType")))
        row.update(tally.cells())
        settle(tally.problems)
        # Azure answers a wrong key with 403 AuthenticationFailed, Azurite with 403 AuthorizationFailure.
        assert not reply["ok"] and reply["errorType"] in ("AzureAuthError", "AccessDeniedError"), reply
        assert "azure.connection_string" in reply["errorMessage"] and WRONG_KEY not in reply["errorMessage"]
        assert refused, "Azure never refused the wrong key: the fault did not happen"
        assert len(world.azure_proxy.log) <= 2, "the refused credentials were tried over and over"
        assert ledger_current(world) == current
        assert spent == 1
        assert tally.not_listed == len(SMALL) and not dead

        rerun_after_the_fix(world, container, SMALL, row)


def test_wrong_azure_credentials_with_listed_containers_end_the_run_with_the_listing_failed(
    world: World,
) -> None:
    with table_row("wrong Azure credentials, containers listed in the secret") as row:
        container = new_container(world, SMALL)
        row["blobs"] = len(SMALL)
        world.configure([container], key=WRONG_KEY)  # launch needs no Azure call; find-blobs is refused
        world.azure_proxy.reset_log()
        world.drain_dead_letters()
        before = world.invocations()
        reply = world.launch()
        world.wait_idle()
        assert reply["ok"] and reply["result"]["started"], reply
        finder = world.name("find-blobs")
        attempts = world.invocations()[finder] - before[finder]
        row["invocations"] = sum(world.invocations().values()) - sum(before.values())
        refused = [seen for seen in world.azure_proxy.log if seen.status == 403]
        row["fired"] = f"Azure 403 ×{len(refused)}"
        report = world.report(str(reply["result"]["run_id"]))
        assert report is not None, "the run never ended"
        row["report"] = f"{counts_text(report)}: the listing, after {attempts} attempt; names the setting"
        dead = world.drain_dead_letters()
        row["dlq"] = len(dead)
        tally = judge(world, container, SMALL, report, dead)
        row.update(tally.cells())
        settle(tally.problems)
        assert tally.not_listed == len(SMALL), tally
        # Azurite refuses a wrong key with AuthorizationFailure, the code Azure gives a credential that may not read
        # index tags: the page is asked once more without tags, and that refusal ends the listing.
        listings = [seen for seen in refused if "comp=list" in seen.query]
        assert attempts == 1 and len(world.azure_proxy.log) == len(listings) <= 2, (
            "refused credentials tried again"
        )
        assert refused, "Azure never refused the wrong key: the fault did not happen"
        (failure,) = report["failures"]
        assert failure["blob"] == f"{container}/" and "azure.connection_string" in failure["reason"], failure
        assert WRONG_KEY not in json.dumps(report)
        (record,) = dead  # the failure is in find-blobs' dead-letter queue too
        assert record["requestContext"]["condition"] == "BlobFailed"
        assert [f["blob"] for f in record["failures"]] == [f"{container}/"]
        assert "azure.connection_string" in record["responsePayload"]["errorMessage"]
        assert WRONG_KEY not in json.dumps(record)

        rerun_after_the_fix(world, container, SMALL, row)


#: Azure answers a wrong key with 403 AuthenticationFailed (AzureAuthError), Azurite with 403
#: AuthorizationFailure (AccessDeniedError): either is an error no retry can fix.
SCHEDULED_REFUSALS = {
    "wrong Azure credentials, launched by the schedule": ("AzureAuthError", "AccessDeniedError"),
    'bad secret: isactive "no", launched by the schedule': ("ConfigError",),
}


@pytest.mark.parametrize("case", list(SCHEDULED_REFUSALS), ids=["wrong-key", "bad-secret"])
def test_a_scheduled_launch_refused_for_good_is_dead_lettered_once_not_retried(
    world: World, case: str
) -> None:
    """The schedule invokes launch-qualification asynchronously, where Lambda retries a raised error twice.
    An error no retry can fix is tried once and is in the dead-letter queue at once."""
    expected = SCHEDULED_REFUSALS[case]
    with table_row(case) as row:
        container = new_container(world, SMALL)
        row["blobs"] = len(SMALL)
        if "AzureAuthError" in expected:
            world.configure(None, key=WRONG_KEY)  # launch lists the account's containers, and is refused
            setting, hidden = "azure.connection_string", WRONG_KEY
        else:
            world.configure([container], isactive="no")
            setting, hidden = "isactive", CANARY
        world.drain_dead_letters()
        world.azure_proxy.reset_log()
        current, before = ledger_current(world), world.invocations()
        request_id = world.fire_schedule()
        world.wait_idle()
        row["invocations"] = spent = sum(world.invocations().values()) - sum(before.values())
        refused = [seen for seen in world.azure_proxy.log if seen.status == 403]
        row["fired"] = f"Azure 403 ×{len(refused)}" if "AzureAuthError" in expected else "the bad secret"
        dead = world.drain_dead_letters()
        row["dlq"] = len(dead)
        error_type = dead[0]["responsePayload"]["errorType"] if dead else "no record"
        row["report"] = f"{error_type} at the scheduled launch, dead-lettered once"
        tally = judge(world, container, SMALL, None, dead, stopped=error_type)
        row.update(tally.cells())
        settle(tally.problems)
        assert spent == 1, "the refused launch was retried"
        assert ledger_current(world) == current, "a run was started"
        assert tally.not_listed == len(SMALL), tally
        (record,) = dead
        assert record["requestContext"]["condition"] == "LaunchFailed", record
        assert record["requestContext"]["requestId"] == request_id
        assert record["requestPayload"] == {"source": "schedule"}
        assert record["responsePayload"]["errorType"] in expected, record
        assert setting in record["responsePayload"]["errorMessage"], record
        assert hidden not in json.dumps(record)
        if "AzureAuthError" in expected:
            assert refused and len(world.azure_proxy.log) <= 2, "the refused credentials were tried again"

        rerun_after_the_fix(world, container, SMALL, row)


BAD_SECRETS: dict[str, tuple[dict[str, Any] | str, str | None]] = {
    'isactive "False"': ({"isactive": "False"}, None),
    'isactive "no"': ({"isactive": "no"}, "isactive"),
    "isactive 0": ({"isactive": 0}, "isactive"),
    "isactive missing": ({"isactive": None}, "isactive"),
    "begindate unparseable": ({"begindate": "last tuesday"}, "begindate"),
    "begindate missing": ({"begindate": None}, "begindate"),
    "azure credentials missing": ({"azure": None}, "azure"),
    "invalid JSON": ("{not json", "JSON"),
}


@pytest.mark.parametrize("case", list(BAD_SECRETS), ids=list(BAD_SECRETS))
def test_bad_secret_stops_the_run_before_any_copy(world: World, case: str) -> None:
    with table_row(f"bad secret: {case}") as row:
        change, named = BAD_SECRETS[case]
        blobs = {"one.txt": b"one"}
        container = new_container(world, blobs)
        row["blobs"] = len(blobs)
        if isinstance(change, str):
            world.put_secret(change)
        else:
            document: dict[str, Any] = {
                "isactive": True,
                "begindate": "2000-01-01",
                "azure": {"connection_string": connection_string(world.azure_proxy.endpoint)},
                "containers": [container],
                **change,
            }
            world.put_secret({k: v for k, v in document.items() if v is not None})
        world.drain_dead_letters()
        current, before = ledger_current(world), world.invocations()
        reply = world.launch()
        world.wait_idle()
        row["invocations"] = spent = sum(world.invocations().values()) - sum(before.values())
        if named is None:
            row["report"] = "not started: isactive is false (not an error)"
        else:
            row["report"] = f"{reply.get('errorType')}: {str(reply.get('errorMessage'))[:90]}"
        row["fired"] = "the bad secret"
        dead = world.drain_dead_letters()
        row["dlq"] = len(dead)
        tally = judge(world, container, blobs, None, dead, stopped=row["report"])
        row.update(tally.cells())
        settle(tally.problems)
        assert spent == 1, "only launch-qualification ran"
        assert ledger_current(world) == current, "a run was started"
        assert tally.not_listed == len(blobs) and not dead
        if named is None:
            assert reply["ok"] and reply["result"]["started"] is False, reply
        else:
            assert not reply["ok"] and reply["errorType"] == "ConfigError", reply
            assert named in reply["errorMessage"], reply["errorMessage"]

        rerun_after_the_fix(world, container, blobs, row)


EXPECTED.extend(
    [scenario.name for scenario in SCENARIOS]
    + [
        "wrong Azure credentials (account key)",
        "wrong Azure credentials, containers listed in the secret",
        *SCHEDULED_REFUSALS,
    ]
    + [f"bad secret: {case}" for case in BAD_SECRETS]
)


# --- the proxy itself: what the scenarios rely on ---------------------------------------------------------


class Upstream:
    """A loopback HTTP server that stores every request body it gets and answers 200."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def do_PUT(self) -> None:
                upstream.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    yield server
    server.close()


def put(endpoint: str, body: bytes) -> bytes:
    request = urllib.request.Request(f"{endpoint}/bucket/key", data=body, method="PUT")
    with urllib.request.urlopen(request, timeout=10) as response:
        return bytes(response.read())


def test_proxy_counts_what_a_rule_did_after_the_rules_are_cleared(upstream: Upstream) -> None:
    with FaultProxy(upstream.endpoint) as proxy:
        proxy.add(Rule("refuse", "status", method="PUT", status=403, times=1))
        with pytest.raises(urllib.error.HTTPError):
            put(proxy.endpoint, b"first")
        assert put(proxy.endpoint, b"second") == b"ok"
        proxy.clear()
        assert proxy.hits("refuse") == 1
        assert [(seen.rule, seen.status) for seen in proxy.log] == [("refuse", 403), (None, 200)]


def test_proxy_log_holds_each_request_as_soon_as_its_client_has_the_answer(upstream: Upstream) -> None:
    # The log was written after the answer, so a client reading it at once sometimes missed its own request.
    with FaultProxy(upstream.endpoint) as proxy:
        proxy.add(Rule("refuse", "status", method="PUT", status=403, probability=0.5))
        for count in range(1, 101):
            try:
                put(proxy.endpoint, b"x")
            except urllib.error.HTTPError:
                pass
            assert len(proxy.log) == count


def test_proxy_reset_after_forwarding_leaves_the_work_done_and_the_client_without_an_answer(
    upstream: Upstream,
) -> None:
    with FaultProxy(upstream.endpoint) as proxy:
        proxy.add(Rule("stored", "reset", reset_at="forwarded", method="PUT", times=1))
        with pytest.raises((OSError, http.client.HTTPException)):
            put(proxy.endpoint, b"stored, never acknowledged")
        assert upstream.bodies == [b"stored, never acknowledged"]
        assert [(seen.rule, seen.status) for seen in proxy.log] == [("stored", 200)]


def test_proxy_reset_in_the_request_body_forwards_nothing(upstream: Upstream) -> None:
    with FaultProxy(upstream.endpoint) as proxy:
        proxy.add(Rule("cut", "reset", reset_at="body", method="PUT", times=1))
        with pytest.raises((OSError, http.client.HTTPException)):
            put(proxy.endpoint, os.urandom(4 * MiB))
        assert upstream.bodies == []
        assert put(proxy.endpoint, b"next") == b"ok" and upstream.bodies == [b"next"]
        assert proxy.hits("cut") == 1


# --- the suite's own judging and table --------------------------------------------------------------------


def event_of(message: DownloadTask | FindBlobsTask) -> dict[str, Any]:
    envelope = {
        "MessageId": "m-1",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:t",
        "Message": encode(message),
    }
    return sns_event(envelope, "arn:aws:sns:us-east-1:123456789012:t:s")


def test_a_dead_letter_record_is_for_exactly_the_blobs_it_names() -> None:
    when = datetime(2024, 1, 1, tzinfo=UTC)
    blobs = tuple(BlobRef("c", name, 1, "0x1", when) for name in ("mid.bin", "mid.bin.bak", "tiny.txt"))
    batch = DownloadTask("run-1", blobs)
    failed_one = {
        "requestContext": {"condition": "BlobFailed"},
        "requestPayload": event_of(batch),
        "failures": [{"run_id": "run-1", "blob": "c/mid.bin.bak", "reason": "AccessDenied"}],
    }
    assert dead_letter_blobs(failed_one) == {("run-1", "c/mid.bin.bak")}, "not the batch's other blobs"
    retries_ran_out = {"requestContext": {"condition": "RetriesExhausted"}, "requestPayload": event_of(batch)}
    assert dead_letter_blobs(retries_ran_out) == {("run-1", f"c/{blob.name}") for blob in blobs}
    listing = {
        "requestContext": {"condition": "RetriesExhausted"},
        "requestPayload": event_of(FindBlobsTask("run-2", "c")),
    }
    assert dead_letter_blobs(listing) == {("run-2", "c/")}
    moved = json.loads(encode(batch))  # a task whose attempts ran out, as its queue's redrive policy moves it
    assert dead_letter_blobs(moved) == {("run-1", f"c/{blob.name}") for blob in blobs}


def test_a_failing_scenario_keeps_its_row_marked_failed_and_the_footer_counts_it(tmp_path: Path) -> None:
    with pytest.raises(AssertionError), table_row("a scenario that fails") as row:
        row.update(blobs=2, copied=1, lost=1)
        raise AssertionError("lost: c/b.bin: not in S3, not in the report")
    failed = ROWS.pop()
    assert failed["outcome"] == "FAIL: AssertionError: lost: c/b.bin: not in S3, not in the report"
    with pytest.raises(KnownDefect), table_row("a known defect", "why") as row:
        raise KnownDefect("extra-version: c/a.bin: 2 object versions")
    known = ROWS.pop()
    assert known["outcome"] == "known defect (xfail): why"
    with table_row("a scenario that passes") as row:
        row.update(blobs=1, copied=1)
    passed = ROWS.pop()
    write_table([failed, known, passed], tmp_path / "table.md")
    footer = (tmp_path / "table.md").read_text().strip().splitlines()[-1]
    assert footer == "3 scenarios: 1 passed, 1 failed, 1 known defects (xfail); 1 blobs lost, 0 corrupt."
