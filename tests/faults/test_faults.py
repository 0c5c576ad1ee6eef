"""Faults and bad input, through the local runtime with the fault proxy in front of Azurite and moto.

After each scenario every blob is byte-identical in S3 or recorded, with a reason, in the run report (and every
failed blob is in a dead-letter queue: Lambda puts events whose retries ran out there, the functions put blobs
failed by errors no retry can fix there themselves); no partial object, no extra object version
and no open multipart upload is left; and the next run, without the fault, copies exactly what is missing.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from azs3copy.local.faultproxy import Rule, azure_error, s3_error
from tests.faults.conftest import PARTER_TIMEOUT, ROWS, WRONG_KEY, World, connection_string

MiB = 1 << 20
SMALL = {
    "tiny.txt": b"a small text blob\n" * 50,
    "empty.bin": b"",
    "mid.bin": os.urandom(300_000),
    "one-mib.bin": os.urandom(MiB),
    "three-mib.bin": os.urandom(3 * MiB + 17),
}
LARGE = {"large-a.bin": os.urandom(10 * MiB + 512 * 1024)}  # 3 parts of 5 MiB (envs/local's sizes)
RANGED = {"x-ms-range": "bytes="}
NOT_COPIED = ("failed", "changed", "vanished", "needs-rehydration")


@dataclass
class Scenario:
    name: str
    faults: Callable[[World, str], None] = lambda world, container: None
    blobs: dict[str, bytes] = field(default_factory=lambda: {**SMALL, **LARGE})
    duplicate: bool = False
    #: Report counts the faulty run must show (state → blobs), beyond the invariants.
    expect: dict[str, int] = field(default_factory=dict)
    check: Callable[[World, str, dict[str, Any]], None] | None = None


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


def gave_up_and_dead_lettered(world: World, container: str, report: dict[str, Any]) -> None:
    (failure,) = report["failures"]
    assert failure["blob"].endswith("/mid.bin") and "gave up after 3 attempts" in failure["reason"], failure


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


def only_fast_failures(world: World, container: str, report: dict[str, Any]) -> None:
    denied = world.s3_proxy.hits("kms-denied-put") + world.s3_proxy.hits("kms-denied-create")
    assert denied <= len(SMALL) + len(LARGE), f"access denied was retried: {denied} refused writes"
    assert all("AccessDenied" in failure["reason"] for failure in report["failures"]), report["failures"]


def part_corruption_named(world: World, container: str, report: dict[str, Any]) -> None:
    reasons = [failure["reason"] for failure in report["failures"]]
    assert any("part 2" in reason for reason in reasons), reasons


def parter_was_killed(world: World, container: str, report: dict[str, Any]) -> None:
    pool = world.runtime.pool_for(world.name("largefile-parter"))
    assert pool.stats["timeouts"] >= 1


SCENARIOS = [
    Scenario("no fault (baseline)"),
    Scenario("Azure 503 ServerBusy on reads", azure_server_busy),
    Scenario("Azure 500 OperationTimedOut on a large blob's part reads", azure_operation_timeout),
    Scenario("S3 503 SlowDown on uploads", s3_slow_down),
    Scenario("connections reset mid-body (Azure responses, S3 uploads)", connection_resets),
    Scenario("slow responses (1.5 s delays)", slow_responses),
    Scenario("parter killed mid-part (timeout)", parter_killed, check=parter_was_killed),
    Scenario("every SNS message twice, out of order", duplicate=True),
    Scenario(
        "blob overwritten, another deleted, while their parts are copied",
        overwritten_and_deleted,
        blobs={**SMALL, **LARGE, "large-b.bin": os.urandom(10 * MiB + 100)},
        expect={"changed": 1, "vanished": 1},
    ),
    Scenario("bytes corrupted in Azure's responses", corrupt_from_azure),
    Scenario("bytes corrupted on the way to S3 (PutObject)", corrupt_put_to_s3),
    Scenario(
        "bytes corrupted on the way to S3 on every attempt",
        corrupt_put_every_time,
        expect={"failed": 1},
        check=gave_up_and_dead_lettered,
    ),
    Scenario(
        "bytes corrupted on the way to S3 (UploadPart)",
        corrupt_part_to_s3,
        expect={"failed": 1},
        check=part_corruption_named,
    ),
    Scenario(
        "KMS access denied on upload",
        kms_denied,
        expect={"failed": len(SMALL) + len(LARGE)},
        check=only_fast_failures,
    ),
]


# --- running and judging one scenario ---------------------------------------------------------------------


def new_container(world: World, blobs: dict[str, bytes]) -> str:
    container = f"f{uuid.uuid4().hex[:12]}"
    world.azure.create_container(container)
    for name, data in blobs.items():
        world.azure.get_blob_client(container, name).upload_blob(data, overwrite=True)
    return container


def azure_now(world: World, container: str) -> dict[str, bytes]:
    client = world.azure.get_container_client(container)
    return {blob.name: client.download_blob(blob.name).readall() for blob in client.list_blobs()}


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


def run_once(
    world: World, scenario: Scenario | None = None, container: str = ""
) -> tuple[str, dict[str, Any]]:
    world.s3_proxy.reset_log()
    world.azure_proxy.reset_log()
    if scenario is not None:
        scenario.faults(world, container)
        if scenario.duplicate:
            world.delivery.on(world.runtime.pools)
    try:
        reply = world.launch()
        assert reply.get("ok"), reply
        run_id = str(reply["result"]["run_id"])
        world.wait_idle()
    finally:
        world.delivery.off(world.runtime.pools)
        world.s3_proxy.clear()
        world.azure_proxy.clear()
    report = world.report(run_id)
    assert report is not None, f"run {run_id} wrote no report"
    return run_id, report


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_scenario_loses_and_corrupts_nothing(world: World, scenario: Scenario) -> None:
    started = time.monotonic()
    originals = scenario.blobs
    container = new_container(world, originals)
    world.configure([container])
    world.drain_dead_letters()
    before = world.invocations()

    _, report = run_once(world, scenario, container)

    invocations = sum(world.invocations().values()) - sum(before.values())
    dead = world.drain_dead_letters()
    current = azure_now(world, container)
    objects, versions, uploads = s3_state(world, container)
    recorded = {f["blob"].split("/", 1)[1]: f for f in report["failures"]}
    copied = failed = lost = corrupt = 0
    for name, data in originals.items():
        key = f"{container}/{name}"
        if key in objects:
            if objects[key] in (data, current.get(name)):
                copied += 1
                assert versions[key] == 1, f"{key}: {versions[key]} versions"
            else:
                corrupt += 1
        elif name in recorded and recorded[name]["reason"]:
            failed += 1
            assert key not in versions, f"{key}: a partial or unverified version was left behind"
            if recorded[name]["state"] == "failed":  # retries used up, or an error no retry can fix
                assert any(name in json.dumps(record) for record in dead), (
                    f"{name}: not in a dead-letter queue"
                )
        else:
            lost += 1
    assert not uploads, f"multipart uploads left open: {uploads}"
    assert report["found"] == len(originals)
    for state, count in scenario.expect.items():
        assert report["counts"].get(state, 0) == count, report
    if scenario.check is not None:
        scenario.check(world, container, report)

    missing = {name for name in current if objects.get(f"{container}/{name}") != current[name]}
    _, rerun = run_once(world)
    after, versions, uploads = s3_state(world, container)
    assert rerun["counts"]["copied"] == len(missing), rerun
    assert rerun["counts"]["skipped"] == len(current) - len(missing), rerun
    assert all(after.get(f"{container}/{name}") == data for name, data in current.items())
    assert not uploads and all(count == 1 for count in versions.values()), versions

    ROWS.append(
        {
            "scenario": scenario.name,
            "blobs": len(originals),
            "copied": copied,
            "failed": failed,
            "lost": lost,
            "corrupt": corrupt,
            "dlq": len(dead),
            "invocations": invocations,
            "rerun": rerun["counts"]["copied"],
            "seconds": round(time.monotonic() - started),
            "outcome": ", ".join(f"{k} {v}" for k, v in sorted(report["counts"].items()) if v) or "-",
        }
    )
    assert lost == 0 and corrupt == 0


# --- bad credentials and bad settings stop the run before any copy ----------------------------------------


def ledger_current(world: World) -> Any:
    item = world.client("dynamodb").get_item(
        TableName=world.outputs["ledger_table"], Key={"pk": {"S": "CURRENT"}, "sk": {"S": "CURRENT"}}
    )
    return item.get("Item")


def stopped_row(name: str, blobs: int, invocations: int, outcome: str, rerun: int | str = "-") -> None:
    ROWS.append(
        {
            "scenario": name,
            "blobs": blobs,
            "copied": 0,
            "failed": 0,
            "lost": 0,
            "corrupt": 0,
            "dlq": 0,
            "invocations": invocations,
            "rerun": rerun,
            "seconds": "",
            "outcome": outcome,
        }
    )


def test_wrong_azure_credentials_stop_the_launch_with_one_clear_error(world: World) -> None:
    container = new_container(world, SMALL)
    world.configure(None, key=WRONG_KEY)  # no container list: launch lists the account's containers
    world.azure_proxy.reset_log()
    current, before = ledger_current(world), world.invocations()
    reply = world.launch()
    world.wait_idle()
    # Azure answers a wrong key with 403 AuthenticationFailed, Azurite with 403 AuthorizationFailure.
    assert not reply["ok"] and reply["errorType"] in ("AzureAuthError", "AccessDeniedError"), reply
    assert "azure.connection_string" in reply["errorMessage"] and WRONG_KEY not in reply["errorMessage"]
    assert len(world.azure_proxy.log) <= 2, "the refused credentials were tried over and over"
    assert ledger_current(world) == current
    spent = sum(world.invocations().values()) - sum(before.values())
    assert spent == 1
    assert not world.client("s3").list_objects_v2(Bucket=world.bucket, Prefix=f"{container}/").get("Contents")
    assert not world.drain_dead_letters()

    world.configure([container])
    _, rerun = run_once(world)
    assert rerun["counts"]["copied"] == len(SMALL)
    stopped_row(
        "wrong Azure credentials (account key)",
        len(SMALL),
        spent,
        f"{reply['errorType']} at launch",
        len(SMALL),
    )


def test_wrong_azure_credentials_with_listed_containers_end_the_run_with_the_listing_failed(
    world: World,
) -> None:
    container = new_container(world, SMALL)
    world.configure([container], key=WRONG_KEY)  # launch needs no Azure call; find-blobs is refused
    world.azure_proxy.reset_log()
    world.drain_dead_letters()
    before = world.invocations()
    reply = world.launch()
    world.wait_idle()
    assert reply["ok"] and reply["result"]["started"], reply
    finder = world.name("find-blobs")
    attempts = world.invocations()[finder] - before[finder]
    spent = sum(world.invocations().values()) - sum(before.values())
    assert attempts == 1 and len(world.azure_proxy.log) == 1, "the refused credentials were tried again"
    report = world.report(str(reply["result"]["run_id"]))
    assert report is not None, "the run never ended"
    (failure,) = report["failures"]
    assert failure["blob"] == f"{container}/" and "azure.connection_string" in failure["reason"], failure
    assert WRONG_KEY not in json.dumps(report)
    (dead,) = world.drain_dead_letters()  # the failure is in find-blobs' dead-letter queue too
    assert dead["requestContext"]["condition"] == "BlobFailed"
    assert [f["blob"] for f in dead["failures"]] == [f"{container}/"]
    assert "azure.connection_string" in dead["responsePayload"]["errorMessage"]
    assert WRONG_KEY not in json.dumps(dead)
    assert not world.client("s3").list_objects_v2(Bucket=world.bucket, Prefix=f"{container}/").get("Contents")

    world.configure([container])
    _, rerun = run_once(world)
    assert rerun["counts"]["copied"] == len(SMALL)
    ROWS.append(
        {
            "scenario": "wrong Azure credentials, containers listed in the secret",
            "blobs": len(SMALL),
            "copied": 0,
            "failed": 0,
            "lost": 0,
            "corrupt": 0,
            "dlq": 1,
            "invocations": spent,
            "rerun": len(SMALL),
            "seconds": "",
            "outcome": f"listing recorded failed after {attempts} attempt; report names the setting",
        }
    )


BAD_SECRETS = {
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
    change, named = BAD_SECRETS[case]
    container = new_container(world, {"one.txt": b"one"})
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
    current, before = ledger_current(world), world.invocations()
    reply = world.launch()
    world.wait_idle()
    spent = sum(world.invocations().values()) - sum(before.values())
    assert spent == 1, "only launch-qualification ran"
    assert ledger_current(world) == current, "a run was started"
    assert not world.client("s3").list_objects_v2(Bucket=world.bucket, Prefix=f"{container}/").get("Contents")
    if named is None:
        assert reply["ok"] and reply["result"]["started"] is False, reply
        outcome = "not started: isactive is false (not an error)"
    else:
        assert not reply["ok"] and reply["errorType"] == "ConfigError", reply
        assert named in reply["errorMessage"], reply["errorMessage"]
        outcome = f"ConfigError: {reply['errorMessage'][:90]}"
    stopped_row(f"bad secret: {case}", 1, spent, outcome.replace("|", "/"))
