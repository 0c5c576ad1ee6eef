"""find-blobs: which blobs a listing selects, skips or refuses, and a listing that cannot go on."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta

from azs3copy.steps.context import Tuning
from azs3copy.steps.launch_qualification import launch_qualification
from tests.support.fakes import MemoryBlobSource, MemoryObjectSink
from tests.unit.steps.common import MiB, assert_copied, harness, settings


def test_second_run_copies_nothing_and_counts_everything_skipped() -> None:
    source = MemoryBlobSource()
    for i in range(30):
        source.put("alpha", f"f{i}", os.urandom(1000))
    source.put("alpha", "big", os.urandom(13 * MiB))
    sink = MemoryObjectSink()
    first = harness(source, sink)
    first.run()
    puts = sink.puts
    second = harness(source, sink)
    run_id = second.run()
    assert run_id
    run = second.report(run_id)
    assert sink.puts == puts  # nothing written again (but the report)
    assert run.counts["skipped"] == 31 and run.bytes_copied == 0
    assert not any(topic in ("download", "largefile-initializer") for topic, _ in second.publisher.sent)


def test_only_blobs_modified_at_or_after_begindate_are_candidates() -> None:
    source = MemoryBlobSource()
    begin = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)
    source.put("alpha", "before", b"x", last_modified=begin - timedelta(seconds=1))
    source.put("alpha", "at", b"y", last_modified=begin)
    source.put("alpha", "after", b"z", last_modified=begin + timedelta(seconds=1))
    h = harness(source, settings=settings(begindate="2024-06-01T12:00:00Z"))
    h.run()
    assert sorted(k for k in h.sink.objects if not k.startswith("_")) == ["alpha/after", "alpha/at"]  # type: ignore[attr-defined]


def test_include_exclude_and_prefix_select_blobs() -> None:
    source = MemoryBlobSource()
    for name in ["data/a.csv", "data/b.json", "data/tmp/c.csv", "other/d.csv"]:
        source.put("alpha", name, name.encode())
    h = harness(source, settings=settings(prefix="data/", include=["*.csv"], exclude=["data/tmp/*"]))
    h.run()
    assert [k for k in h.sink.objects if not k.startswith("_")] == ["alpha/data/a.csv"]  # type: ignore[attr-defined]


def test_archive_tier_and_directory_markers_are_not_copied() -> None:
    source = MemoryBlobSource()
    source.put("alpha", "cold", b"ice", tier="Archive")
    source.put("alpha", "folder", b"", is_directory=True)
    source.put("alpha", "warm", b"sun")
    h = harness(source)
    run_id = h.run()
    assert run_id
    run = h.report(run_id)
    assert run.counts["needs-rehydration"] == 1 and run.counts["copied"] == 1 and run.found == 2
    assert [k for k in h.sink.objects if not k.startswith("_")] == ["alpha/warm"]  # type: ignore[attr-defined]


def test_key_over_1024_bytes_fails_that_blob_with_a_reason() -> None:
    source = MemoryBlobSource()
    source.put("alpha", "é" * 600, b"long")
    source.put("alpha", "short", b"ok")
    h = harness(source)
    run_id = h.run()
    assert run_id
    report = json.loads(h.sink.objects[f"_azs3copy/reports/{run_id}.json"].data)  # type: ignore[attr-defined]
    assert report["counts"]["failed"] == 1 and report["counts"]["copied"] == 1
    assert "1024" in report["failures"][0]["reason"]
    assert report["ok"] is False
    assert [(blob, "1024" in why) for _, blob, why in h.fatal] == [(f"alpha/{'é' * 600}", True)]


def test_a_destination_prefix_changed_mid_run_does_not_split_the_run() -> None:
    source = MemoryBlobSource()
    source.put("alpha", "small", b"s" * 1000)
    source.put("alpha", "large", os.urandom(13 * MiB))
    h = harness(source, settings=settings(destination_prefix="before/"))
    launch_qualification(h.deps())
    listing = [(topic, body) for topic, body in h.publisher.queue]
    h.publisher.queue.clear()
    for topic, body in listing:
        h.deliver(topic, body)  # listed (and skip-checked) under before/
    h.settings = settings(destination_prefix="after/")  # the operator edits the secret now
    h.drain()
    keys = sorted(k for k in h.sink.objects if not k.startswith("_"))  # type: ignore[attr-defined]
    assert keys == ["before/alpha/large", "before/alpha/small"]
    assert_copied(source, h.sink, "before/")  # type: ignore[arg-type]


def test_listing_hands_over_to_a_fresh_invocation_before_the_time_limit() -> None:
    source = MemoryBlobSource()
    for i in range(25):
        source.put("alpha", f"f{i:02d}", b"%d" % i)
    h = harness(source)
    h.tuning = Tuning(
        large_threshold=12 * MiB,
        part_size=5 * MiB,
        chunk_size=5 * MiB,
        page_size=10,
        listing_reserve_seconds=10_000,
    )
    run_id = h.run()
    assert run_id
    continuations = [
        body for topic, body in h.publisher.sent if topic == "find-blobs" and '"page":0' not in body
    ]
    assert len(continuations) == 2  # pages 1 and 2 each in a fresh invocation
    assert_copied(source, h.sink)  # type: ignore[arg-type]
    assert h.report(run_id).found == 25


def test_a_container_that_cannot_be_listed_is_recorded_failed_and_the_run_still_ends() -> None:
    from azs3copy.errors import AzureAuthError

    source = MemoryBlobSource()
    source.put("alpha", "fine", b"ok")
    source.put("beta", "unreachable", b"no")
    real_list = source.list_page

    def refuse_beta(container: str, prefix: str, marker: str | None, page_size: int):  # type: ignore[no-untyped-def]
        if container == "beta":
            raise AzureAuthError("Azure refused the sign-in: check azure.client_secret")
        return real_list(container, prefix, marker, page_size)

    source.list_page = refuse_beta  # type: ignore[method-assign]
    h = harness(source)
    run_id = h.run()
    assert run_id
    run = h.report(run_id)
    assert run.complete and run.counts["copied"] == 1 and run.counts["failed"] == 1
    report = json.loads(h.sink.objects[f"_azs3copy/reports/{run_id}.json"].data)  # type: ignore[attr-defined]
    assert report["failures"] == [
        {"blob": "beta/", "state": "failed", "reason": report["failures"][0]["reason"]}
    ]
    assert "azure.client_secret" in report["failures"][0]["reason"]
    assert [blob for _, blob, _ in h.fatal] == ["beta/"]  # dead-lettered by the handler
    assert (
        h.deliveries == 1 + 1 + 1
    )  # alpha's listing, its batch, beta's listing: the fatal error is not retried


def test_a_secret_edited_mid_run_does_not_split_the_run_every_page_uses_the_launchs_settings() -> None:
    source = MemoryBlobSource()
    for name in ("logs/a.csv", "logs/b.csv", "logs/c.txt", "other/d.csv"):
        source.put("alpha", name, name.encode(), last_modified=datetime(2024, 6, 1, tzinfo=UTC))
    # One page per find-blobs invocation, each continued in a fresh one (as a long listing is).
    tuning = Tuning(
        large_threshold=12 * MiB,
        part_size=5 * MiB,
        chunk_size=5 * MiB,
        page_size=1,
        listing_reserve_seconds=1e9,
    )
    h = harness(
        source,
        settings=settings(prefix="logs/", include=["*.csv"], destination_prefix="mig/"),
        tuning=tuning,
    )
    started = launch_qualification(h.deps())
    run_id = started.detail["run_id"]
    # The operator edits every selection key while the run is listing.
    h.settings = settings(
        begindate="2100-01-01", prefix="other/", include=["*.txt"], exclude=["*"], destination_prefix="new/"
    )
    h.drain()
    keys = sorted(key for key in h.sink.objects if not key.startswith("_azs3copy/"))  # type: ignore[attr-defined]
    assert keys == ["mig/alpha/logs/a.csv", "mig/alpha/logs/b.csv"]
    run = h.report(run_id)
    assert run.complete and run.counts["copied"] == 2 and run.found == 2
    report = json.loads(h.sink.objects[f"_azs3copy/reports/{run_id}.json"].data)  # type: ignore[attr-defined]
    assert report["ok"] is True
