"""`azs3copy status`: the current or last run: counts, bytes, duration, every blob not copied and why."""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from typing import Any, TextIO

from botocore.exceptions import (
    ClientError,
)

from azs3copy.cli.target import CliError, Target, error_code, read_secret
from azs3copy.errors import ConfigError
from azs3copy.settings import parse_settings

OK_STATES = ("copied", "skipped")


#: Terminal states that leave a blob uncopied without being a failure: overwritten or deleted in Azure
#: during the run, or in the archive tier.
NOT_COPIED_STATES = ("changed", "vanished", "needs-rehydration")


def duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def size_text(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def read_report(target: Target, key: str) -> dict[str, Any] | None:
    try:
        body = target.client("s3").get_object(Bucket=target.bucket, Key=key)["Body"].read()
    except ClientError as error:
        if error_code(error) in ("NoSuchKey", "404"):
            return None
        raise
    report: dict[str, Any] = json.loads(body)
    return report


def ledger_failures(target: Target, run_id: str, limit: int = 50) -> list[dict[str, str]]:
    """The blobs of a running run not copied so far, from the ledger's failure items (not every blob's)."""
    return [
        {"blob": record.blob_id, "state": record.state, "reason": record.reason or ""}
        for record in target.ledger().failures(run_id, limit)
    ]


def print_run(target: Target, run: Any, out: TextIO) -> dict[str, Any] | None:
    report = read_report(target, run.report_key) if run.report_key else None
    now = time.time()
    end = run.finished_at or now
    state = "finished" if run.report_key else "running"
    print(f"run {run.run_id}: {state}", file=out)
    started = datetime.fromtimestamp(run.started_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    print(f"  started   {started}, duration {duration(end - run.started_at)}", file=out)
    print(
        f"  containers {', '.join(run.containers)}"
        + (f" (listing: {run.listing_pending} left)" if run.listing_pending > 0 else ""),
        file=out,
    )
    counts = {state: count for state, count in run.counts.items() if count}
    in_progress = max(0, run.found - run.done)
    line = ", ".join(f"{state} {count}" for state, count in counts.items()) or "none finished yet"
    print(
        f"  found     {run.found}: {line}" + (f", in progress {in_progress}" if in_progress else ""), file=out
    )
    elapsed = max(1e-6, end - run.started_at)
    print(
        f"  bytes     {size_text(run.bytes_copied)} copied, {size_text(run.bytes_copied / elapsed)}/s",
        file=out,
    )
    failures = report["failures"] if report else []
    if not report and any(run.counts.get(s) for s in run.counts if s not in OK_STATES):
        failures = ledger_failures(target, run.run_id)
    not_copied = sum(count for state, count in run.counts.items() if state not in OK_STATES)
    total = report.get("failures_total", len(failures)) if report else max(not_copied, len(failures))
    if failures:
        print(f"  not copied ({total}):", file=out)
        for item in failures[:20]:
            print(f"    {item['state']:17} {item['blob']}: {item['reason']}", file=out)
        if total > 20:
            print(
                f"    … {total - 20} more (the report s3://{target.bucket}/{run.report_key} lists them)",
                file=out,
            )
    if run.report_key:
        print(f"  report    s3://{target.bucket}/{run.report_key}", file=out)
    return report


def cmd_status(target: Target, args: argparse.Namespace, out: TextIO) -> int:
    try:
        document = read_secret(target)
        settings = parse_settings(json.dumps(document))
        mode = settings.azure.mode if settings.azure else "none set"
        print(
            f"settings: isactive {str(settings.isactive).lower()}, begindate "
            f"{settings.begindate.strftime('%Y-%m-%dT%H:%M:%SZ')}, Azure credentials: {mode}",
            file=out,
        )
    except ConfigError as error:
        print(f"settings: the secret is not valid: {error}", file=out)
    ledger = target.ledger()
    run_id = args.run or ledger.latest_run_id()
    if run_id is None:
        print("no run yet (azs3copy run starts one)", file=out)
        return 0
    run = ledger.get_run(run_id)
    if run is None:
        raise CliError(f"run {run_id} is not in the ledger {target.ledger_table}")
    print_run(target, run, out)
    return 0
