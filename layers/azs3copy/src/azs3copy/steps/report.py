"""The run report: written by whichever step settles a run's last blob."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger

from azs3copy.ledger import RunRecord
from azs3copy.messages import (
    iso,
)
from azs3copy.planner import MiB
from azs3copy.steps.context import Deps

logger = Logger(child=True)


MAX_LISTED_FAILURES = 1000


def build_report(deps: Deps, run: RunRecord, finished_at: float) -> dict[str, Any]:
    problems: list[dict[str, str]] = []
    total_problems = 0
    for record in deps.ledger.blobs(run.run_id):
        if record.state in ("copied", "skipped"):
            continue
        total_problems += 1
        if len(problems) < MAX_LISTED_FAILURES:
            problems.append({"blob": record.blob_id, "state": record.state, "reason": record.reason or ""})
    duration = max(0.0, finished_at - run.started_at)
    return {
        "run_id": run.run_id,
        "started_at": iso(datetime.fromtimestamp(run.started_at, UTC)),
        "finished_at": iso(datetime.fromtimestamp(finished_at, UTC)),
        "duration_seconds": round(duration, 3),
        "begindate": run.begindate,
        "containers": list(run.containers),
        "found": run.found,
        "counts": run.counts,
        "bytes_copied": run.bytes_copied,
        "throughput_mib_s": round(run.bytes_copied / MiB / duration, 2) if duration > 0 else None,
        "failures": problems,
        "failures_total": total_problems,
        "failures_listed": len(problems),
        "notes": deps.ledger.notes(run.run_id),
        "ok": run.counts.get("failed", 0) == 0,
    }


def report_key(deps: Deps, run_id: str) -> str:
    return f"{deps.tuning.report_prefix}{run_id}.json"


def maybe_report(deps: Deps, run_id: str) -> dict[str, Any] | None:
    """Write the run's report if every blob has reached its state (any function may be the last)."""
    run = deps.ledger.get_run(run_id)
    if run is None or not run.complete or run.report_key:
        return None
    finished_at = time.time()
    report = build_report(deps, run, finished_at)
    key = report_key(deps, run_id)
    deps.need_sink().put_json(key, json.dumps(report, indent=2, ensure_ascii=False).encode())
    deps.ledger.mark_reported(run_id, key, finished_at)
    logger.info("run finished", extra={"run_id": run_id, "counts": run.counts, "bytes": run.bytes_copied})
    return report
