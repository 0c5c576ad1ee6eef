"""`make bench`: the pipeline against rclone and the emulators' ceiling, per-invocation memory, a big listing,
and the Lambda cost, then the scale model calibrated from them (bench/scale.py); writes bench/results.json,
bench/chart.png and the section of BENCHMARKS.md.

    python -m bench.run [--scale 0.1] [--repeats 3] [--listing-blobs N] [--rclone-setting tuned]
    python -m bench.run --skip copies --skip memory --skip listing    # the event latency alone
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bench import cost, events, invocations, pipeline, rclone, report, scale
from bench.ceiling import run_ceiling
from bench.common import (
    WORK,
    DatasetShape,
    MiB,
    azure_service,
    bucket_bytes,
    empty_bucket,
    median,
    rss_of,
    s3_client,
    say,
    upload_blobs,
)
from bench.cpu import CpuSampler

CONTAINER = "bench"
REPORTS = "_azs3copy/reports/"
#: The local deployment's tuning: the Terraform module's production defaults (terraform/envs/local's own
#: defaults are demo-sized: 10 MiB threshold, 5 MiB parts).
TUNING: dict[str, int | str] = {
    "large_threshold_bytes": 100 * MiB,
    "part_size_bytes": 16 * MiB,
    "chunk_size_bytes": 16 * MiB,
    "verify": "checksum",
}
#: S3 writes of an object's bytes: what a blob copied by one PutObject needs one of, a chunked blob several.
OBJECT_WRITES = ("s3 PutObject", "s3 CreateMultipartUpload", "s3 UploadPart", "s3 CompleteMultipartUpload")


def requests_per_small_blob(calls: dict[str, int], blobs: int, small_blobs: int) -> float | None:
    """The AWS requests of the download function per blob copied by one PutObject: every request it made
    that is not an object write (ledger claims and finishes, read-backs and tags when verify=readback, and
    each batch's own requests, shared out over its blobs), per blob it copied, plus the one PutObject."""
    if not blobs or not small_blobs:
        return None
    shared = sum(n for operation, n in calls.items() if operation not in OBJECT_WRITES)
    return round(shared / blobs + calls.get("s3 PutObject", 0) / small_blobs, 2)


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def measure_copies(scale: float, repeats: int, concurrency: int, rclone_setting: str) -> dict[str, Any]:
    load = round(os.getloadavg()[0], 2)
    shape = DatasetShape().scaled(scale)
    blobs = shape.blobs()
    total = shape.total_bytes
    say(
        f"local environment (terraform apply against moto, local runtime at {concurrency} workers per function)"
    )
    env = pipeline.start(dict(TUNING), concurrency)
    try:
        service = azure_service(env.azurite_connection_string)
        say(f"dataset: {shape.describe()} ({total / MiB:.0f} MiB) into Azurite")
        seconds = upload_blobs(service, CONTAINER, blobs)
        say(f"dataset uploaded in {seconds:.0f} s")
        pipeline.configure_secret(env, CONTAINER)
        s3 = s3_client(env.moto)
        conf = rclone.write_config(WORK / "rclone.conf", env.azurite_endpoint, env.moto)
        speeds: dict[str, list[float]] = {"ceiling": [], "rclone": [], "pipeline": []}
        cpu: dict[str, dict[str, float]] = {name: {} for name in speeds}
        invocation_log: dict[str, list[tuple[float, int]]] = {}
        aws_calls: dict[str, dict[str, int]] = {}
        pipeline_bytes = 0
        reports = []
        order = ["ceiling", "rclone", "pipeline"]
        for repeat in range(repeats):
            for name in order[repeat % 3 :] + order[: repeat % 3]:
                empty_bucket(s3, env.bucket, keep_prefix=REPORTS)
                pids = env.deployment["pids"]
                sampler = CpuSampler(
                    {pids["moto"]: "moto", pids["azurite"]: "azurite", pids["runtime"]: "local runtime"}
                )
                sampler.start()
                if name == "ceiling":
                    elapsed = run_ceiling(
                        service,
                        CONTAINER,
                        blobs,
                        s3,
                        env.bucket,
                        prefix="ceiling/",
                        concurrency=concurrency,
                        part_size=int(TUNING["part_size_bytes"]),
                        large_threshold=int(TUNING["large_threshold_bytes"]),
                    )
                elif name == "rclone":
                    elapsed = rclone.run_rclone(
                        conf,
                        CONTAINER,
                        env.bucket,
                        "rclone/",
                        concurrency=concurrency,
                        setting=rclone_setting,
                    )
                else:
                    outcome = pipeline.run_once(env)
                    elapsed = outcome["seconds"]
                    report_ = outcome["report"]
                    if report_["bytes_copied"] != total or not report_["ok"]:
                        raise RuntimeError(f"the pipeline run did not copy everything: {report_['counts']}")
                    reports.append(
                        {k: report_[k] for k in ("run_id", "duration_seconds", "counts", "bytes_copied")}
                        | {"hottest_item": outcome["hottest_item"]}
                    )
                    pipeline_bytes += total
                    for component, calls in outcome["invocations"].items():
                        invocation_log.setdefault(component, []).extend(calls)
                    for component, counted in outcome["aws_calls"].items():
                        mine = aws_calls.setdefault(component, {})
                        for operation, n in counted.items():
                            mine[operation] = mine.get(operation, 0) + n
                spent = sampler.stop()
                objects, copied = bucket_bytes(s3, env.bucket, skip_prefix=REPORTS)
                if objects != len(blobs) or copied != total:
                    raise RuntimeError(
                        f"{name}: {objects} objects, {copied} bytes in S3; expected {len(blobs)}, {total}"
                    )
                for group, seconds_ in spent.items():
                    cpu[name][group] = round(cpu[name].get(group, 0.0) + seconds_, 1)
                speeds[name].append(round(total / MiB / elapsed, 1))
                say(
                    f"run {repeat + 1}/{repeats} {name}: {elapsed:.1f} s, {speeds[name][-1]} MiB/s; moto RSS "
                    f"{rss_of(env.deployment['pids']['moto']) / MiB:.0f} MiB; CPU s {spent}"
                )
        empty_bucket(s3, env.bucket, keep_prefix=REPORTS)
    finally:
        pipeline.stop(env)
    pipeline_runs = len(reports)
    threshold, chunk = int(TUNING["large_threshold_bytes"]), int(TUNING["chunk_size_bytes"])
    downloaded = sum(1 for spec in blobs if spec.size < threshold) * pipeline_runs
    single_put = sum(1 for spec in blobs if spec.size <= chunk) * pipeline_runs
    download_calls = aws_calls.get("download", {})
    return {
        "aws_calls": aws_calls,
        "aws_requests_per_small_blob": requests_per_small_blob(download_calls, downloaded, single_put),
        "scale": scale,
        "dataset": {"description": shape.describe(), "blobs": len(blobs), "gib": total / 1024**3},
        "repeats": repeats,
        "concurrency": concurrency,
        "machine": {"cores": os.cpu_count(), "load_at_start": load, "quiet": load < 1.5},
        "tuning": {**TUNING, "copy_threads": 4, "runtime_workers": concurrency},
        "runs": speeds,
        "cpu": cpu,
        "reports": reports,
        "cost": cost.lambda_cost(invocation_log, pipeline_bytes),
        "rclone_version": rclone.rclone_version(),
        "rclone_flags": rclone.SETTINGS[rclone_setting],
    }


def rclone_sweep(shape: DatasetShape, repeats: int, concurrency: int) -> dict[str, list[float]]:
    """Every rclone setting on the same dataset, interleaved; how the benchmark's setting was chosen."""
    env = pipeline.start(dict(TUNING), concurrency)
    speeds: dict[str, list[float]] = {name: [] for name in rclone.SETTINGS}
    try:
        service = azure_service(env.azurite_connection_string)
        upload_blobs(service, CONTAINER, shape.blobs())
        s3 = s3_client(env.moto)
        conf = rclone.write_config(WORK / "rclone.conf", env.azurite_endpoint, env.moto)
        for _ in range(repeats):
            for name in rclone.SETTINGS:
                empty_bucket(s3, env.bucket, keep_prefix=REPORTS)
                elapsed = rclone.run_rclone(
                    conf, CONTAINER, env.bucket, "rclone/", concurrency=concurrency, setting=name
                )
                speeds[name].append(round(shape.total_bytes / MiB / elapsed, 1))
                say(f"rclone {name}: {speeds[name][-1]} MiB/s")
    finally:
        pipeline.stop(env)
    (WORK / "rclone-sweep.json").write_text(
        json.dumps({"dataset": shape.describe(), "mib_s": speeds}, indent=2)
    )
    return speeds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--scale", type=float, default=1.0, help="dataset scale (counts; default 1: the issue's)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs of each contender (default 3)")
    parser.add_argument("--concurrency", type=int, default=int(os.environ.get("BENCH_CONCURRENCY") or 6))
    parser.add_argument(
        "--listing-blobs", type=int, help="blobs in the listing container (default 100000 × scale)"
    )
    parser.add_argument("--rclone-setting", default="tuned", choices=sorted(rclone.SETTINGS))
    parser.add_argument(
        "--skip", action="append", default=[], choices=["copies", "memory", "listing", "events"]
    )
    parser.add_argument(
        "--event-uploads",
        type=int,
        default=40,
        help="uploads in the stream the event latency is measured over",
    )
    parser.add_argument(
        "--tuning",
        action="append",
        default=[],
        metavar="VAR=VALUE",
        help="override a Terraform variable of the local deployment, e.g. chunk_size_bytes=16777216",
    )
    parser.add_argument(
        "--rclone-sweep",
        action="store_true",
        help="only compare rclone's settings (bench/.work/rclone-sweep.json)",
    )
    args = parser.parse_args(argv)
    for override in args.tuning:
        name, _, value = override.partition("=")
        if name not in TUNING:
            parser.error(f"--tuning {override}: not one of {', '.join(TUNING)}")
        TUNING[name] = int(value) if value.isdigit() else value
    if args.rclone_sweep:
        rclone_sweep(DatasetShape().scaled(args.scale), args.repeats, args.concurrency)
        return

    listing_blobs = args.listing_blobs or max(2000, round(100_000 * min(1.0, args.scale)))
    WORK.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    # Each stage is kept in bench/.work/stages.json as soon as it is measured; `--skip STAGE` reuses it.
    stages_file = WORK / "stages.json"
    stages: dict[str, Any] = json.loads(stages_file.read_text()) if stages_file.exists() else {}
    if report.RESULTS.exists():  # a results.json from before stages were kept: its stages, with its context
        earlier = json.loads(report.RESULTS.read_text())
        context = {k: earlier[k] for k in ("scale", "dataset", "repeats", "concurrency", "machine", "tuning")}
        for name in ("copies", "memory", "listing", "events"):
            if name not in stages and name in earlier:
                extra = context if name == "copies" else {}
                # each stage keeps the date it was measured at, not the date the results were written
                when = (earlier.get("measured_at") or {}).get(name, earlier["date"])
                stages[name] = {**extra, **earlier[name], "measured_at": when}
    for name in ("copies", "memory", "listing", "events"):
        if name in args.skip and name not in stages:
            parser.error(f"--skip {name}: no earlier measurement in {stages_file}")
    measures: dict[str, Callable[[], dict[str, Any]]] = {
        "copies": lambda: measure_copies(args.scale, args.repeats, args.concurrency, args.rclone_setting),
        "memory": invocations.measure_memory,
        "listing": lambda: invocations.measure_listing(listing_blobs),
        "events": lambda: events.measure_events(dict(TUNING), args.concurrency, args.event_uploads),
    }
    for name, measure in measures.items():
        if name in args.skip:
            say(f"{name}: reusing the measurement of {stages[name]['measured_at']} from {stages_file}")
            continue
        say(f"measuring {name}")
        stages[name] = {**measure(), "measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}
        stages_file.write_text(json.dumps(stages, indent=2))
    copies, memory, listing = stages["copies"], stages["memory"], stages["listing"]

    runs = copies["runs"]
    medians = {name: median(values) for name, values in runs.items()}
    part_mib = memory["part_size_mib"]
    listing_runs = listing["runs"]
    results: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "scale": copies["scale"],
        "repeats": copies["repeats"],
        "concurrency": copies["concurrency"],
        "pipeline_mode": "through the local runtime (terraform apply of envs/local on moto), launch → run report",
        "dataset": copies["dataset"],
        "machine": copies["machine"],
        "tuning": copies["tuning"],
        "measured_at": {name: stages[name]["measured_at"] for name in measures},
        "pipeline_mib_s": medians["pipeline"],
        "rclone_mib_s": medians["rclone"],
        "ceiling_mib_s": medians["ceiling"],
        "pipeline_vs_rclone": _ratio(medians["pipeline"], medians["rclone"]),
        "pipeline_vs_ceiling": _ratio(medians["pipeline"], medians["ceiling"]),
        "parter_peak_rss_mib": max(row["peak_rss_mib"] for row in memory["parter"]),
        "parter_growth_mib": max(row["growth_mib"] for row in memory["parter"]),
        "download_peak_rss_mib": max(row["peak_rss_mib"] for row in memory["download"]),
        "download_growth_mib": max(row["growth_mib"] for row in memory["download"]),
        # from moto's record of every ledger item written: the busiest item's writes per 1,000 blobs copied
        # (None: the copies were measured before the bench recorded ledger writes)
        "hottest_item_writes_per_1000_blobs": max(
            (run["hottest_item"]["per_1000_blobs"] for run in copies["reports"] if "hottest_item" in run),
            default=None,
        ),
        "listing_100k_s": listing_runs[-1]["seconds"],
        "listing_100k_peak_rss_mib": listing_runs[-1]["peak_rss_mib"],
        "listing_blobs": listing_runs[-1]["blobs"],
        # the same container, its directories listed as shards at once (None: measured before shards)
        "listing_100k_sharded_s": (listing.get("sharded") or {}).get("seconds"),
        "listing_shards": (listing.get("sharded") or {}).get("shards"),
        "event_latency_p50_s": stages["events"]["event_latency_p50_s"],
        "event_latency_p99_s": stages["events"]["event_latency_p99_s"],
        "events": stages["events"],
        "gb_seconds_per_gb": copies["cost"]["gb_seconds_per_gb"],
        "requests_per_gb": copies["cost"]["requests_per_gb"],
        **cpu_per_gib(copies),
        "aws_requests_per_small_blob": copies.get("aws_requests_per_small_blob"),
        "runs": runs,
        "cpu": copies["cpu"],
        "cpu_groups": sorted({g for spent in copies["cpu"].values() for g in spent}),
        "cost": copies["cost"],
        "memory": memory,
        "listing": listing,
        "copies": copies,
        "rclone_sweep": json.loads(sweep.read_text())
        if (sweep := WORK / "rclone-sweep.json").exists()
        else None,
        "elapsed_seconds": round(time.monotonic() - started),
    }
    pipeline_ = results["pipeline_mib_s"]
    ours, theirs = results["ours_cpu_s_per_gib"], results["rclone_cpu_s_per_gib"]
    requests, gbs = results["aws_requests_per_small_blob"], results["gb_seconds_per_gb"]
    results["targets"] = {
        # issue 13's targets
        "ours_cpu_vs_rclone": None if not (ours and theirs) else ours <= 2 * theirs,
        "pipeline_vs_rclone": None if pipeline_ is None else results["pipeline_vs_rclone"] >= 0.8,
        "aws_requests_per_small_blob": None if requests is None else requests <= 3,
        "gb_seconds_per_gb": None if gbs is None else gbs <= 110,
        "pipeline_vs_ceiling": None if pipeline_ is None else results["pipeline_vs_ceiling"] >= 0.8,
        "parter_memory": results["parter_growth_mib"] <= part_mib + 64,
        "download_memory_flat": _flat([row["peak_rss_mib"] for row in memory["download"]]),
        "listing_memory_flat": _flat([row["peak_rss_mib"] for row in listing_runs]),
        "listing_messages": max(row["largest_message_bytes"] for row in listing_runs) <= 256 * 1024,
        "hottest_item_writes_per_1000_blobs": None
        if results["hottest_item_writes_per_1000_blobs"] is None
        else results["hottest_item_writes_per_1000_blobs"] <= 50,
    }
    say("scale model: calibrating from these measurements, checking it against the runs, predicting 100 TB")
    scale.apply(results)
    report.RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    report.chart(results)
    report.write_doc(results)
    say(f"wrote {report.RESULTS}, {report.CHART} and the section of {report.DOC}")
    print(
        json.dumps(
            {
                k: results[k]
                for k in results
                if k.endswith(
                    ("_s", "_mib", "_gb", "_rclone", "_ceiling", "_hours", "_usd", "_error", "_blobs")
                )
            },
            indent=2,
        )
    )


def cpu_per_gib(copies: dict[str, Any]) -> dict[str, float | None]:
    """CPU seconds per GiB copied: ours (the functions' workers and the local runtime that plays Lambda; the
    emulators excluded) for the pipeline, rclone's own process for rclone."""
    gib = copies["dataset"]["gib"] * copies["repeats"]
    spent = copies["cpu"]
    ours = sum(v for g, v in spent["pipeline"].items() if g.startswith("fn ") or g == "local runtime")
    theirs = spent["rclone"].get("rclone")
    return {
        "ours_cpu_s_per_gib": round(ours / gib, 2) if gib else None,
        "rclone_cpu_s_per_gib": round(theirs / gib, 2) if gib and theirs else None,
    }


def _flat(peaks: list[float], slack_mib: float = 16.0) -> bool:
    """The peak of the largest case is within `slack_mib` of the smallest one's."""
    return peaks[-1] - peaks[0] <= slack_mib


if __name__ == "__main__":
    main()
