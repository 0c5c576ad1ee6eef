"""The run report: written once every blob is settled, by whichever step settles the last one."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest

from azs3copy.errors import TransientError
from azs3copy.ledger import Finish, Ledger, ListedBlob
from azs3copy.messages import BlobRef
from azs3copy.steps import report as report_module
from azs3copy.steps.context import Deps, Invocation, Topics, new_run_id
from azs3copy.steps.report import maybe_report
from tests.support.fakes import MemoryBlobSource, MemoryObjectSink
from tests.support.harness import QueuePublisher
from tests.unit.steps.common import harness


def test_a_report_that_could_not_be_written_is_written_by_the_retry() -> None:
    source = MemoryBlobSource()
    source.put("alpha", "only", b"one blob")
    sink = MemoryObjectSink()
    real_put_json = sink.put_json
    failures = iter([TransientError("503 SlowDown")])

    def flaky_put_json(key: str, body: bytes) -> None:
        error = next(failures, None)
        if error:
            raise error
        real_put_json(key, body)

    sink.put_json = flaky_put_json  # type: ignore[method-assign]
    h = harness(source, sink)
    run_id = h.run()
    assert run_id
    assert f"_azs3copy/reports/{run_id}.json" in sink.objects
    assert h.report(run_id).report_key and not h.dead_letters


class CountingSink(MemoryObjectSink):
    """A bucket that counts the report writes, each taking a while (so that concurrent finishers overlap)."""

    def __init__(self) -> None:
        super().__init__()
        self.reports: list[str] = []

    def put_json(self, key: str, body: bytes) -> None:
        if key.endswith(".json"):
            self.reports.append(key)
            time.sleep(0.05)
        super().put_json(key, body)


class NoBlobScans:
    """A ledger whose `blobs` (every blob item of the run) may not be read: a report reads its counters and
    its failure items only, whatever the size of the run."""

    def __init__(self, real: Ledger) -> None:
        self.real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def blobs(self, run_id: str) -> Any:
        raise AssertionError("the report read every blob item of the run")


def listed_run(ledger: Ledger, count: int) -> tuple[str, list[str]]:
    run_id = new_run_id()
    ledger.start_run(run_id, containers=["alpha"], begindate="", force=True, stale_after=3600)
    blob_ids = [f"alpha/{i:03d}" for i in range(count)]
    refs = [BlobRef("alpha", blob_id[6:], 1, '"e"', datetime(2024, 1, 1, tzinfo=UTC)) for blob_id in blob_ids]
    ledger.register_page(run_id, "alpha", 0, [ListedBlob(ref, ref.blob_id) for ref in refs], [])
    ledger.finish_container(run_id, "alpha")
    return run_id, blob_ids


def test_concurrent_last_finishes_write_exactly_one_report_with_exact_counts(ledger: Ledger) -> None:
    run_id, blob_ids = listed_run(ledger, 24)
    sink = CountingSink()
    deps = Deps(ledger=ledger, publisher=QueuePublisher(), topics=Topics(), sink=sink)
    barrier = threading.Barrier(len(blob_ids))

    def finish(blob_id: str) -> None:
        barrier.wait(timeout=60)
        state = "failed" if blob_id.endswith("7") else "copied"
        ledger.finish_many(run_id, [Finish(blob_id, state, "broken" if state == "failed" else None, 1)])
        maybe_report(deps, run_id, Invocation())

    with ThreadPoolExecutor(max_workers=len(blob_ids)) as pool:
        list(pool.map(finish, blob_ids))
    assert sink.reports == [f"_azs3copy/reports/{run_id}.json"]
    report = json.loads(sink.objects[sink.reports[0]].data)
    assert report["found"] == 24 and report["counts"]["copied"] == 22 and report["counts"]["failed"] == 2
    assert sorted(failure["blob"] for failure in report["failures"]) == ["alpha/007", "alpha/017"]
    assert report["failures_total"] == 2 and report["bytes_copied"] == 24


def test_the_report_lists_failures_from_their_own_items_and_counts_the_rest(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(report_module, "MAX_LISTED_FAILURES", 3)
    run_id, blob_ids = listed_run(ledger, 40)
    finishes = [
        Finish(b, "failed", f"{b}: no", 0) if i % 4 == 0 else Finish(b, "copied", None, 1)
        for i, b in enumerate(blob_ids)
    ]
    ledger.finish_many(run_id, finishes)
    sink = MemoryObjectSink()
    deps = Deps(ledger=NoBlobScans(ledger), publisher=QueuePublisher(), topics=Topics(), sink=sink)  # type: ignore[arg-type]
    report = maybe_report(deps, run_id)
    assert report is not None and report["failures_total"] == 10 and report["failures_listed"] == 3
    assert all(failure["reason"] == f"{failure['blob']}: no" for failure in report["failures"])
    assert (
        report["counts"]["copied"] == 30
        and report["manifest_prefix"] == f"_azs3copy/reports/{run_id}/manifest/"
    )
    assert maybe_report(deps, run_id) is None  # written once
