"""The scale model (azs3copy.scale) against this machine's bench runs, and its prediction for 10 M blobs / 100 TB.

    python -m bench.scale     # from the committed bench/results.json; `make bench` runs it after measuring

1. Calibrates: the per-step costs, from the measurements in bench/results.json, written to the package's
   scale/calibration.json (what `azs3copy plan` uses).
2. Checks: predicts the local runs recorded there (the pipeline runs, the larger listing) and records the
   worst relative error as `scale_model_error`.
3. Predicts a migration of 10 M blobs / 100 TB at the concurrency docs/operating.md documents for one
   (`scale_100tb_hours`, `scale_100tb_cost_usd` without Azure's egress), a curve of time against concurrency,
   and the cost beside DataSync's; bench/report.py puts them in BENCHMARKS.md.
"""

from __future__ import annotations

import json
import math
import re
import statistics
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from azs3copy.functions import PIPELINE
from azs3copy.planner import MiB
from azs3copy.scale.inputs import CALIBRATION_FILE, Calibration, Deployment, StepCost, load_calibration
from azs3copy.scale.model import Prediction, predict
from azs3copy.scale.prices import datasync_usd, egress_usd, estimate_cost, load_prices
from azs3copy.scale.workload import Workload, WorkloadCounter, workload_of_mix
from azs3copy.steps.context import Tuning
from bench.common import ROOT, DatasetShape

CALIBRATION = ROOT / "layers" / "azs3copy" / "src" / "azs3copy" / "scale" / CALIBRATION_FILE
#: The migration the issue plans for: 10 M blobs, 100 TB (decimal), as (count, bytes) per size class.
MIX_100TB = ((9_000_000, 1_000_000), (900_000, 30_000_000), (100_000, 640_000_000))
#: The concurrency docs/operating.md ("Sizing a migration") documents for a migration: the headline's.
MIGRATION_CONCURRENCY = {
    "launch-qualification": 1,
    "find-blobs": 16,
    "download": 400,
    "largefile-initializer": 40,
    "largefile-parter": 300,
    "largefile-recombinator": 60,
}
#: The curve: every function's default reserved concurrency times these factors.
CURVE = (0.5, 1, 2, 4, 8, 16, 32)
#: From a publish to the start of the invocation it feeds; measured neither here nor documented: assumed.
HOP_SECONDS = {"lambda": 0.2, "local": 0.3}
#: What the model takes from where, for BENCHMARKS.md.
INPUTS = {
    "measured here (bench/results.json)": [
        "download: seconds of one invocation against blob size (memory stage) and of 20 × 1 MiB blobs "
        "(profile): fixed, per-blob and per-MiB costs",
        "largefile-parter: seconds of one 16 MiB part (memory stage)",
        "find-blobs: seconds per blob listed (the smaller listing run)",
        "initializer, recombinator, launch: their mean duration in the pipeline runs divided by the "
        "contention factor (how much slower download and parter ran there than alone)",
        "the CPU share of each step: the functions' CPU seconds in the pipeline runs over their "
        "uncontended duration (includes the workers' start-up, so it errs high)",
        "locally: the CPU seconds of every process (ours and the emulators') and of moto per second of "
        "step time, and the machine's cores",
        "a new execution environment: the CPU seconds of a fresh interpreter importing a handler and building "
        "its clients (bench/scale.py measures it when it runs)",
    ],
    "documented limits (cited in azs3copy/scale/model.py)": [
        "Lambda: 1,000 concurrent executions per account, scaling by 1,000 every 10 s per function, one "
        "vCPU at 1,769 MB (CPU in proportion to memory)",
        "DynamoDB: 1,000 WCU and 3,000 RCU a second per partition (an item never spans two), 2 WCU per "
        "transactional write, 1 MB per Query page",
        "S3: 3,500 PUT and 5,500 GET a second per partitioned prefix; 100-200 ms for a small object",
        "SNS: 30,000 published messages a second (us-east-1)",
        "Azure: 20,000 requests a second and 50 Gbps egress per standard account (the lower figures), "
        "3,000 requests a second per block blob",
    ],
    "assumed (neither measured nor documented)": [
        "Azure's request latency from AWS: 100 ms, as S3's; DynamoDB's 10 ms; a PublishBatch 50 ms",
        f"a hop from a publish to the next invocation: {HOP_SECONDS['lambda']} s on AWS, "
        f"{HOP_SECONDS['local']} s locally",
        "a step on Lambda takes what it took alone on idle emulators here, its CPU part slowed by the "
        "memory's CPU share: the network between Azure and AWS is not in the measurements",
        "log volume: 700 bytes an invocation and 600 a blob; KMS: one request per publish (an upper bound)",
        "a first copy: nothing in S3 yet, nothing fails, nothing archived",
    ],
}


#: A worker's start: a fresh interpreter imports a handler and builds the clients it builds at its first
#: invocation (boto3's four, Azure's); prints the process's CPU seconds.
COLD_START = """
import os, resource, sys
sys.path[:0] = ["lambdas/download", "layers/azs3copy/src"]
os.environ.update(POWERTOOLS_SERVICE_NAME="bench", AWS_DEFAULT_REGION="us-east-1",
                  AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
import handler
from azs3copy.backends import aws
for service in ("dynamodb", "sns", "s3", "secretsmanager"):
    aws.client(service)
from azure.storage.blob import BlobServiceClient
BlobServiceClient(account_url="http://127.0.0.1:1/devstoreaccount1")
usage = resource.getrusage(resource.RUSAGE_SELF)
print(usage.ru_utime + usage.ru_stime)
"""


def measure_cold_start(repeats: int = 3) -> float:
    """CPU seconds of a worker's start on this machine (the median of `repeats`): CPU time, not wall time,
    so other load on the machine does not count."""
    seconds = [
        float(
            subprocess.run(
                [sys.executable, "-c", COLD_START], cwd=ROOT, capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(repeats)
    ]
    return round(statistics.median(seconds), 3)


def bench_workload(results: dict[str, Any]) -> Workload:
    """The bench dataset as the pipeline lists it: one page in name order."""
    shape = DatasetShape().scaled(float(results["scale"]))
    counter = WorkloadCounter(bench_tuning(results))
    sizes = [spec.size for spec in sorted(shape.blobs(), key=lambda spec: spec.name)]
    for start in range(0, len(sizes), Tuning().page_size):
        page = sizes[start : start + Tuning().page_size]
        counter.add_page("bench", len(page), page)
    return counter.workload()


def bench_tuning(results: dict[str, Any]) -> Tuning:
    tuning = results["tuning"]
    return Tuning(
        large_threshold=int(tuning["large_threshold_bytes"]),
        part_size=int(tuning["part_size_bytes"]),
        chunk_size=int(tuning["chunk_size_bytes"]),
        copy_threads=int(tuning.get("copy_threads", 4)),
    )


def local_deployment(results: dict[str, Any]) -> Deployment:
    workers = int(results["tuning"].get("runtime_workers") or results["concurrency"])
    return Deployment(concurrency=dict.fromkeys(PIPELINE, workers), tuning=bench_tuning(results))


def _fit(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least squares: (intercept, slope)."""
    xs, ys = [x for x, _ in points], [y for _, y in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0
    return my - slope * mx, slope


def calibrate(results: dict[str, Any], cold_start: float | None = None) -> dict[str, Any]:
    """The calibration document (scale/calibration.json) from a results.json (and a worker's start, measured
    now unless given)."""
    cold_start = measure_cold_start() if cold_start is None else cold_start
    memory, cost, cpu = results["memory"], results["cost"]["per_function"], results["cpu"]["pipeline"]
    repeats = int(results["repeats"])
    intercept, per_mib = _fit([(row["blob_mib"], row["seconds"]) for row in memory["download"]])
    per_blob, fixed = 0.0, intercept
    for label, row in (memory.get("profiles") or {}).items():
        found = re.match(r"download \((\d+) × (\d+(?:\.\d+)?) MiB", label)
        if found and int(found.group(1)) > 1:
            n, mib = int(found.group(1)), float(found.group(2))
            per_blob = max(0.0, (row["seconds"] - intercept - n * mib * per_mib) / (n - 1))
            fixed = max(0.0, intercept - per_blob)
    part_mib = float(memory["part_size_mib"])
    parter_per_mib = statistics.fmean(row["seconds"] / part_mib for row in memory["parter"])
    steps = {
        "download": StepCost(fixed=fixed, per_blob=per_blob, per_mib=per_mib),
        "largefile-parter": StepCost(per_mib=parter_per_mib),
    }
    work = bench_workload(results)
    alone = {  # uncontended seconds of one invocation in the pipeline runs, by the costs above
        "download": steps["download"].seconds(work.batches, work.small_blobs, work.small_bytes)
        / work.batches,
        "largefile-parter": part_mib * parter_per_mib,
    }
    factors = [cost[name]["mean_seconds"] / alone[name] for name in alone if cost.get(name)]
    contention = math.exp(statistics.fmean(math.log(f) for f in factors))
    large_mib = work.large_bytes / work.large_blobs / MiB
    steps["largefile-initializer"] = StepCost(
        fixed=cost["largefile-initializer"]["mean_seconds"] / contention
    )
    steps["largefile-recombinator"] = StepCost(
        per_mib=cost["largefile-recombinator"]["mean_seconds"] / contention / large_mib
    )
    steps["launch-qualification"] = StepCost(fixed=cost["launch-qualification"]["mean_seconds"] / contention)
    smallest = min(results["listing"]["runs"], key=lambda row: row["blobs"])
    listing_per_blob = smallest["seconds"] / smallest["blobs"]
    steps["find-blobs"] = StepCost()
    per_run, cold_cpu = _busy_per_run(work, steps, listing_per_blob, local_deployment(results), cold_start)
    shares = {
        name: min(1.0, cpu.get(f"fn {name}", 0.0) / repeats / per_run[name]) if per_run[name] else 1.0
        for name in PIPELINE
    }
    steps = {
        name: StepCost(**{**_as_dict(steps[name]), "cpu_share": round(shares[name], 3)}) for name in PIPELINE
    }
    busy = sum(per_run.values())
    # The runs' CPU less the workers' start in the first run (they stay warm for the next ones).
    warm_cpu = sum(cpu.values()) - cold_cpu
    measured = (
        f"bench/results.json of {results['date']}: {results['dataset']['description']}, "
        f"{results['machine']['cores']} cores, contention factor {contention:.1f}"
    )
    common = {
        "steps": {n: _as_dict(s) for n, s in steps.items()},
        "listing_per_blob": listing_per_blob,
        "cold_start_seconds": cold_start,
    }
    return {
        "measured": measured,
        "contention_factor": round(contention, 2),
        "lambda": {**common, "hop_seconds": HOP_SECONDS["lambda"]},
        "local": {
            **common,
            "hop_seconds": HOP_SECONDS["local"],
            "cores": results["machine"]["cores"],
            "cpu_per_step_second": round(warm_cpu / repeats / busy, 4),
            "moto_per_step_second": round(cpu.get("moto", 0.0) / repeats / busy, 4),
        },
    }


def _as_dict(step: StepCost) -> dict[str, float]:
    return {key: round(value, 6) for key, value in vars(step).items()}


def _busy_per_run(
    work: Workload,
    steps: dict[str, StepCost],
    listing_per_blob: float,
    deployment: Deployment,
    cold_start: float,
) -> tuple[dict[str, float], float]:
    """Each function's uncontended seconds in one warm run, and the CPU seconds of the first run's starts."""
    calibration = Calibration(
        "local", "", steps, listing_per_blob, 0.0, cores=1.0, cold_start_seconds=cold_start
    )
    warm = predict(work, deployment, calibration, cold=False).functions
    cold = predict(work, deployment, calibration).functions
    return {name: load.busy_seconds for name, load in warm.items()}, sum(
        load.cold_seconds for load in cold.values()
    )


def check_local_runs(results: dict[str, Any], document: dict[str, Any]) -> list[dict[str, Any]]:
    """The model's prediction of each local run recorded in results.json, beside what was measured."""
    calibration = load_calibration("local", document)
    deployment = local_deployment(results)
    rows = []
    work = bench_workload(results)
    for index, report in enumerate(results["copies"]["reports"]):
        # The runtime starts a function's workers at its first invocations; they stay warm for the next runs.
        expected = predict(work, deployment, calibration, cold=index == 0)
        what = f"pipeline run {report['run_id']}" + (" (workers start)" if index == 0 else " (warm)")
        rows.append(_row(what, report["duration_seconds"], expected.seconds))
    smallest = min(row["blobs"] for row in results["listing"]["runs"])
    for run in results["listing"]["runs"]:
        if run["blobs"] == smallest:
            continue  # the calibration's own run
        work = workload_of_mix([(run["blobs"], 1)], deployment.tuning)
        listing = predict(work, deployment, calibration).functions["find-blobs"].busy_seconds
        rows.append(_row(f"listing of {run['blobs']} blobs (find-blobs alone)", run["seconds"], listing))
    return rows


def _row(what: str, measured: float, predicted: float) -> dict[str, Any]:
    return {
        "run": what,
        "measured_s": round(measured, 2),
        "predicted_s": round(predicted, 2),
        "error": round(predicted / measured - 1, 3),
    }


def _summary(prediction: Prediction) -> dict[str, Any]:
    return {
        "hours": round(prediction.seconds / 3600, 2),
        "binding": prediction.binding,
        "events_expire": any(share > 0 for share in prediction.expired_share.values()),
    }


def migration(document: dict[str, Any]) -> dict[str, Any]:
    """10 M blobs / 100 TB at the concurrency documented for a migration, the curve at the module's defaults
    scaled, and the costs beside DataSync's. The containers split into at least listing_shards top-level
    directories, so each is listed by that many shards."""
    calibration = load_calibration("lambda", document)
    prices = load_prices()
    defaults = Deployment()
    chains = defaults.tuning.listing_shards
    one = workload_of_mix(MIX_100TB, defaults.tuning, containers=1, listing_chains=chains)
    ten = workload_of_mix(MIX_100TB, defaults.tuning, containers=10, listing_chains=chains)
    migrating = Deployment(concurrency=MIGRATION_CONCURRENCY)
    headline = predict(one, migrating, calibration)
    cost = estimate_cost(headline.usage, prices, migrating.architecture)
    curve = []
    for factor in CURVE:
        deployment = defaults.scaled(factor)
        reserved = sum(c for c in deployment.concurrency.values() if c > 0)
        # Reservations must leave 100 of the account's concurrency unreserved: past 900, a quota increase.
        deployment = replace(deployment, account_concurrency=max(1000, reserved + 100))
        single, many = predict(one, deployment, calibration), predict(ten, deployment, calibration)
        curve.append(
            {
                "factor": factor,
                "download": deployment.concurrency["download"],
                "largefile_parter": deployment.concurrency["largefile-parter"],
                "reserved_total": reserved,
                "account_concurrency": deployment.account_concurrency,
                "one_container": _summary(single),
                "ten_containers": _summary(many),
                "aws_usd": round(estimate_cost(single.usage, prices, deployment.architecture).aws_usd, 2),
            }
        )
    return {
        "mix": [{"blobs": count, "bytes": size} for count, size in MIX_100TB],
        "blobs": one.blobs,
        "bytes": one.bytes,
        "containers": 1,
        "concurrency": dict(migrating.concurrency),
        "listing_chains": chains,
        "hours": round(headline.seconds / 3600, 2),
        "binding": headline.binding,
        "bounds_hours": {
            k: round(v / 3600, 2) for k, v in sorted(headline.bounds.items(), key=lambda i: -i[1])
        },
        "warnings": list(headline.warnings),
        "hottest_item_writes_per_1000_blobs": round(headline.hottest_item_writes_per_1000_blobs, 1),
        "cost": [
            {"service": line.service, "quantity": line.quantity, "usd": round(line.usd, 2)}
            for line in cost.lines
        ],
        "aws_usd": round(cost.aws_usd, 2),
        "azure_egress_usd": round(egress_usd(one.bytes, prices), 2),
        "datasync_usd": round(datasync_usd(one.bytes, prices), 2),
        "prices_as_of": prices.as_of,
        "curve": curve,
    }


def apply(
    results: dict[str, Any], calibration_path: Path = CALIBRATION, cold_start: float | None = None
) -> dict[str, Any]:
    """Calibrate from `results`, write the package's calibration, and add the model's keys to `results`."""
    document = calibrate(results, cold_start)
    calibration_path.write_text(json.dumps(document, indent=2) + "\n")
    checks = check_local_runs(results, document)
    plan = migration(document)
    results["scale_model_error"] = max(abs(row["error"]) for row in checks)
    results["scale_100tb_hours"] = plan["hours"]
    results["scale_100tb_cost_usd"] = plan["aws_usd"]
    results["scale_model"] = {"checks": checks, "migration": plan, "inputs": INPUTS, "calibration": document}
    results.setdefault("targets", {}).update(
        {
            "scale_model_error": results["scale_model_error"] <= 0.25,
            "scale_100tb_hours": plan["hours"] <= 12,
            "scale_100tb_cost_usd": plan["aws_usd"] <= 250,
        }
    )
    return results


def main() -> None:
    from bench import report

    results = json.loads(report.RESULTS.read_text())
    apply(results)
    report.RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    report.write_doc(results)
    print(
        json.dumps(
            {key: results[key] for key in ("scale_model_error", "scale_100tb_hours", "scale_100tb_cost_usd")},
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
