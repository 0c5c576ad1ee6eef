"""The run report: written by whichever step settles a run's last blob, and by that one only.

Its counts are the run's counters (a few dozen counter shards) and its failures the run's sparse failure
items: it reads neither every blob's item nor anything that grows with the blobs copied, at any size of run."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger

from azs3copy.ledger import NOT_COPIED_STATES, RunRecord
from azs3copy.messages import (
    iso,
)
from azs3copy.planner import MiB
from azs3copy.steps.context import Deps, Invocation
from azs3copy.steps.manifest import manifest_prefix

logger = Logger(child=True)


#: The failures a report lists (what it reads besides the counters; the scale model counts as many).
MAX_LISTED_FAILURES = 1000
#: How long a report claim of a caller that names no invocation holds (seconds): after that, another writes it.
REPORT_LEASE_SECONDS = 300.0


def build_report(deps: Deps, run: RunRecord, finished_at: float) -> dict[str, Any]:
    problems = [
        {"blob": record.blob_id, "state": record.state, "reason": record.reason or ""}
        for record in deps.ledger.failures(run.run_id, MAX_LISTED_FAILURES)
    ]
    total_problems = sum(run.counts.get(state, 0) for state in NOT_COPIED_STATES)
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
        #: Where the manifest's JSON Lines objects are: one line per object copied.
        "manifest_prefix": manifest_prefix(deps, run.run_id),
    }


def report_key(deps: Deps, run_id: str) -> str:
    return f"{deps.tuning.report_prefix}{run_id}.json"


def maybe_report(deps: Deps, run_id: str, invocation: Invocation | None = None) -> dict[str, Any] | None:
    """Write the run's report if every blob has reached its state (any function may be the last).

    Several functions can settle a run's last blobs at once and all find it complete: the ledger's report
    claim lets one of them write the report. A claimant that cannot write it lets go (the next attempt writes
    it); one that dies holds the claim until its invocation's time is over, and its retry (the same request)
    takes it again at once."""
    run = deps.ledger.get_run(run_id)
    if run is None or not run.complete or run.report_key:
        return None
    owner = invocation.request_id if invocation else uuid.uuid4().hex
    lease = invocation.remaining_seconds() if invocation else REPORT_LEASE_SECONDS
    if not deps.ledger.claim_report(run_id, owner, lease):
        return None  # another function writes it, or wrote it
    try:
        finished_at = time.time()
        report = build_report(deps, run, finished_at)
        key = report_key(deps, run_id)
        deps.need_sink().put_json(key, json.dumps(report, indent=2, ensure_ascii=False).encode())
    except BaseException:
        deps.ledger.release_report(run_id, owner)
        raise
    deps.ledger.mark_reported(run_id, key, finished_at)
    logger.info("run finished", extra={"run_id": run_id, "counts": run.counts, "bytes": run.bytes_copied})
    return report
