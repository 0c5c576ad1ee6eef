"""The pipeline through the local runtime: `terraform apply` of terraform/envs/local against moto, the local
runtime playing Lambda, and one run timed from the launch invocation to the run report landing in S3.

The benchmark's environment lives in bench/.work/local (not .local/), so it never touches a `make up`
environment that is running in the same checkout."""

from __future__ import annotations

import json
import os
import re
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from bench.common import ROOT, WORK, aws_client
from devenv import environment

REPORT_LINE = re.compile(r"^REPORT RequestId: \S+\tDuration: ([0-9.]+) ms\tMemory Size: (\d+) MB")


@dataclass
class PipelineEnv:
    deployment: dict[str, Any]
    paths: environment.LocalPaths

    @property
    def bucket(self) -> str:
        return str(self.deployment["bucket"])

    @property
    def moto(self) -> str:
        return str(self.deployment["aws_endpoint"])

    @property
    def azurite_connection_string(self) -> str:
        return str(self.deployment["azure"]["connection_string"])

    @property
    def azurite_endpoint(self) -> str:
        return str(self.deployment["azure"]["account_url"])

    def function_log(self, component: str) -> Path:
        return self.paths.logs / f"{component}.log"


#: Every AWS API call the functions' workers make, one JSON line each (devenv/worker.py records them when
#: AZS3COPY_LOCAL_CALL_LOG names a file): what aws_requests_per_small_blob counts.
CALL_LOG = WORK / "aws-calls.jsonl"


def start(tuning: dict[str, int | str], concurrency: int) -> PipelineEnv:
    """`make up` in bench/.work/local with the tuning as Terraform variables; returns the deployment."""
    paths = environment.LocalPaths(ROOT, WORK / "local")
    paths.state.mkdir(parents=True, exist_ok=True)
    for name, value in tuning.items():
        os.environ[f"TF_VAR_{name}"] = str(value)
    os.environ["AZS3COPY_LOCAL_CONCURRENCY"] = str(concurrency)
    CALL_LOG.unlink(missing_ok=True)
    os.environ["AZS3COPY_LOCAL_CALL_LOG"] = str(CALL_LOG)
    WRITE_LOG.unlink(missing_ok=True)
    os.environ["AZS3COPY_DYNAMODB_WRITE_LOG"] = str(WRITE_LOG)  # moto records each item written
    deployment = environment.up(paths, say=lambda text: print(f"  {text}", flush=True))
    return PipelineEnv(deployment, paths)


def stop(env: PipelineEnv) -> None:
    environment.down(env.paths, say=lambda text: print(f"  {text}", flush=True))


def configure_secret(env: PipelineEnv, container: str) -> None:
    secrets = aws_client("secretsmanager", env.moto)
    secrets.put_secret_value(
        SecretId=env.deployment["secret_id"],
        SecretString=json.dumps(
            {
                "isactive": True,
                "begindate": "2000-01-01T00:00:00Z",
                "azure": {"connection_string": env.azurite_connection_string},
                "containers": [container],
            }
        ),
    )


def log_offsets(env: PipelineEnv) -> dict[str, int]:
    return {
        component: (env.function_log(component).stat().st_size if env.function_log(component).exists() else 0)
        for component in env.deployment["function_names"]
    }


def invocations_since(env: PipelineEnv, offsets: dict[str, int]) -> dict[str, list[tuple[float, int]]]:
    """(duration in ms, memory in MB) of every invocation each function logged since `offsets`."""
    found: dict[str, list[tuple[float, int]]] = {}
    for component, offset in offsets.items():
        path = env.function_log(component)
        if not path.exists():
            continue
        with path.open("rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
        found[component] = [
            (float(m.group(1)), int(m.group(2))) for m in map(REPORT_LINE.match, text.splitlines()) if m
        ]
    return found


def aws_calls_since(env: PipelineEnv, offset: int) -> dict[str, dict[str, int]]:
    """{function directory: {"service Operation": count}} of the AWS calls logged after byte `offset`."""
    names = {name: component for component, name in env.deployment["function_names"].items()}
    counts: dict[str, dict[str, int]] = {}
    if not CALL_LOG.exists():
        return counts
    with CALL_LOG.open("rb") as log:
        log.seek(offset)
        lines = log.read().decode(errors="replace").splitlines()
    for line in lines:
        try:
            call = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line still being written
        component = names.get(call.get("function", ""), call.get("function", "?"))
        operation = f"{call['service']} {call['operation']}"
        counts.setdefault(component, {})[operation] = counts.get(component, {}).get(operation, 0) + 1
    return counts


def _runtime_idle(env: PipelineEnv) -> bool:
    with urllib.request.urlopen(env.deployment["runtime_url"] + "/local/stats", timeout=10) as response:
        stats = json.loads(response.read())
    return all(not f.get("pending") and not f.get("running") for f in stats["functions"].values())


def _run_record(env: PipelineEnv, run_id: str) -> dict[str, Any]:
    item = (
        aws_client("dynamodb", env.moto)
        .get_item(
            TableName=env.deployment["ledger_table"], Key={"pk": {"S": f"RUN#{run_id}"}, "sk": {"S": "META"}}
        )
        .get("Item", {})
    )
    return {name: next(iter(value.values())) for name, value in item.items()}


#: Where moto appends the key of every DynamoDB item written (devenv/moto_main.py).
WRITE_LOG = WORK / "dynamodb-writes.log"


def hottest_item(run_id: str, copied: int, log: Path = WRITE_LOG) -> dict[str, Any]:
    """The ledger item of the run that took the most writes, from moto's record of every item written, and
    its writes per 1,000 blobs copied (issue 14's `hottest_item_writes_per_1000_blobs`)."""
    writes: dict[str, int] = {}
    partition = f"RUN#{run_id}\t"
    with log.open(encoding="utf-8") as lines:
        for line in lines:
            if line.startswith(partition):
                sk = line.rstrip("\n").split("\t", 1)[1]
                writes[sk] = writes.get(sk, 0) + 1
    if not writes:
        return {"sort_key": None, "writes": 0, "per_1000_blobs": 0.0, "items_written": 0}
    sk = max(writes, key=lambda key: writes[key])
    return {
        "sort_key": sk,
        "writes": writes[sk],
        "per_1000_blobs": round(1000 * writes[sk] / max(1, copied), 1),
        "items_written": len(writes),
    }


def run_once(env: PipelineEnv, timeout: float = 3600, stall_seconds: float = 30) -> dict[str, Any]:
    """Invoke launch-qualification through the runtime's Invoke API and wait for the run report in S3.
    Returns the seconds from launch to report, the report and every invocation's duration."""
    lam = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    ).client("lambda", endpoint_url=env.deployment["runtime_url"], config=Config(read_timeout=300))
    s3 = aws_client("s3", env.moto)
    offsets = log_offsets(env)
    calls_offset = CALL_LOG.stat().st_size if CALL_LOG.exists() else 0
    started = time.monotonic()
    response = lam.invoke(
        FunctionName=env.deployment["function_names"]["launch-qualification"],
        InvocationType="RequestResponse",
        Payload=json.dumps({"force": True}).encode(),
    )
    payload = json.loads(response["Payload"].read())
    if response.get("FunctionError") or not payload.get("started"):
        raise RuntimeError(f"launch did not start a run: {payload}")
    key = f"{env.deployment['report_prefix']}{payload['run_id']}.json"
    deadline = started + timeout
    idle_since: float | None = None
    while True:
        try:
            body = s3.get_object(Bucket=env.bucket, Key=key)["Body"].read()
            break
        except ClientError:
            now = time.monotonic()
            if now > deadline:
                raise TimeoutError(f"no run report {key} within {timeout:.0f} s") from None
            idle_since = (idle_since or now) if _runtime_idle(env) else None
            if idle_since is not None and now - idle_since > stall_seconds:
                raise RuntimeError(
                    f"run {payload['run_id']}: nothing running or queued for {stall_seconds:.0f} s and no "
                    f"report; the run's ledger record: {_run_record(env, payload['run_id'])}"
                ) from None
            time.sleep(0.25)
    elapsed = time.monotonic() - started
    time.sleep(1.0)  # let the last invocations write their REPORT lines
    report = json.loads(body)
    hottest = hottest_item(payload["run_id"], int(report["counts"].get("copied", 0)))
    return {
        "seconds": elapsed,
        "report": report,
        "invocations": invocations_since(env, offsets),
        "aws_calls": aws_calls_since(env, calls_offset),
        "hottest_item": hottest,
    }
