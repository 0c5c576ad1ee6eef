"""find-blobs: which blobs a listing selects, skips or refuses, and a listing that cannot go on."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from azs3copy.errors import AccessDeniedError, TransientError
from azs3copy.ledger import TERMINAL_STATES
from azs3copy.steps.context import Tuning
from azs3copy.steps.launch_qualification import launch_qualification
from azs3copy.transports import ObjectInfo
from tests.support.fakes import MemoryBlobSource, MemoryObjectSink
from tests.support.harness import QueuePublisher
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


@pytest.mark.parametrize("size", [100, 13 * MiB], ids=["small", "large"])
def test_a_key_of_1024_bytes_is_copied_and_one_of_1025_fails_alone_naming_it(size: int) -> None:
    source = MemoryBlobSource()
    longest = "n" * (1024 - len("alpha/"))  # the key alpha/<name> is 1,024 UTF-8 bytes: valid in S3
    too_long = "é" * 509 + "x"  # 1,025 bytes
    for name in ("a", longest, too_long, "z"):
        source.put("alpha", name, os.urandom(size))
    h = harness(source)
    run_id = h.run()
    assert run_id
    assert h.sink.objects[f"alpha/{longest}"].data == source.containers["alpha"][longest].data  # type: ignore[attr-defined]
    assert_copied_except(source, h.sink, {f"alpha/{too_long}"})  # type: ignore[arg-type]
    report = json.loads(h.sink.objects[f"_azs3copy/reports/{run_id}.json"].data)  # type: ignore[attr-defined]
    assert {state: n for state, n in report["counts"].items() if n} == {"copied": 3, "failed": 1}
    [failure] = report["failures"]
    assert failure["blob"] == f"alpha/{too_long}" and "1025" in failure["reason"], failure
    assert [blob for _, blob, _ in h.fatal] == [f"alpha/{too_long}"]
    assert not h.dead_letters


def assert_copied_except(source: MemoryBlobSource, sink: MemoryObjectSink, refused: set[str]) -> None:
    """Every blob but the refused ones is in S3 byte for byte, and nothing else is (but the report)."""
    expected = {
        f"{container}/{name}": blob.data
        for container, blobs in source.containers.items()
        for name, blob in blobs.items()
        if f"{container}/{name}" not in refused
    }
    found = {key: obj.data for key, obj in sink.objects.items() if not key.startswith("_azs3copy/")}
    assert found.keys() == expected.keys()
    assert all(found[key] == data for key, data in expected.items())


class FailingOnce(QueuePublisher):
    """Refuses the first publish to one topic, after changing the source (what happens between a listing's
    attempts), as SNS does when it throttles."""

    def __init__(self, topic: str, change: Callable[[], None]) -> None:
        super().__init__()
        self.topic, self.change, self.failed = topic, change, False

    def publish(self, topic: str, bodies: list[str]) -> None:
        if topic == self.topic and not self.failed:
            self.failed = True
            self.change()
            raise TransientError(f"publish to {topic}: 503 ServiceUnavailable")
        super().publish(topic, bodies)


@pytest.mark.parametrize("change", ["deleted", "excluded", "added", "overwritten"])
def test_a_listing_retried_after_its_page_was_registered_settles_every_blob_it_registered(
    change: str,
) -> None:
    source = MemoryBlobSource()
    for name in "abcdefg":
        source.put("alpha", name, name.encode() * 100)
    h = harness(source)
    h.tuning = dataclasses.replace(h.tuning, page_size=3)  # a, b, c | d, e, f | g

    def between_attempts() -> None:
        if change == "deleted":
            source.delete("alpha", "b")
        elif change == "excluded":  # the operator edits the secret
            h.settings = settings(exclude=["b", "e"])
        elif change == "added":
            source.put("alpha", "bb", b"added between the attempts")
        else:
            source.put("alpha", "b", b"a new version")

    h.publisher = FailingOnce("download", between_attempts)
    run_id = h.run()
    assert run_id
    run = h.report(run_id)
    assert run.complete and run.report_key, run  # the run finishes
    records = {record.blob_id: record for record in h.ledger.blobs(run_id)}
    assert not [blob for blob, record in records.items() if record.state not in TERMINAL_STATES]
    assert run.found == len(records) == run.done  # every blob copied was counted, every blob counted settled
    copied = {blob for blob, record in records.items() if record.state == "copied"}
    in_s3 = {key for key in h.sink.objects if not key.startswith("_azs3copy/")}  # type: ignore[attr-defined]
    assert in_s3 == copied
    for blob in copied:
        container, name = blob.split("/", 1)
        assert h.sink.objects[blob].data == source.containers[container][name].data  # type: ignore[attr-defined]
    # b was registered before the change: copied as listed, or settled with what its copy found (then the next
    # run copies the new version)
    expected = {
        "deleted": {"vanished"},
        "excluded": {"copied"},
        "added": {"copied"},
        "overwritten": {"changed", "copied"},
    }
    assert records["alpha/b"].state in expected[change]
    assert {f"alpha/{name}" for name in "acdfg"} <= copied
    assert not h.dead_letters


def test_a_listing_that_stopped_while_registering_its_page_settles_the_blobs_it_had_recorded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = MemoryBlobSource()
    for i in range(120):
        source.put("alpha", f"f{i:03d}", b"%d" % i)
    h = harness(source)
    h.tuning = dataclasses.replace(h.tuning, page_size=150)  # one page, two transactions of blobs
    create = h.ledger._create_blobs  # type: ignore[attr-defined]  # both ledgers write a page's blobs so
    calls = 0

    def throttled_once(run_id: str, entries: list[object]) -> object:
        nonlocal calls
        calls += 1
        if calls == 2:  # the first 99 blobs are recorded; the attempt stops, and f005 is deleted meanwhile
            source.delete("alpha", "f005")
            raise TransientError("ledger register_page: ThrottlingException")
        return create(run_id, entries)

    monkeypatch.setattr(h.ledger, "_create_blobs", throttled_once)
    run_id = h.run()
    assert run_id
    run = h.report(run_id)
    assert run.complete and run.report_key and run.found == 120 == run.done
    states = {record.blob_id: record.state for record in h.ledger.blobs(run_id)}
    assert states.pop("alpha/f005") == "vanished"  # recorded by the first attempt: settled, not left pending
    assert set(states.values()) == {"copied"}
    assert_copied(source, h.sink)  # type: ignore[arg-type]


def test_a_blob_whose_copy_in_s3_cannot_be_checked_fails_alone_and_the_listing_goes_on() -> None:
    class HeadDenied(MemoryObjectSink):
        """HEAD refused for one object (a bucket policy on its prefix, say)."""

        def head(
            self, key: str, version_id: str | None = None, *, checksums: bool = False
        ) -> ObjectInfo | None:
            if key == "alpha/locked/b":
                raise AccessDeniedError(f"HEAD s3://dest/{key}: AccessDenied")
            return super().head(key, version_id, checksums=checksums)

    source = MemoryBlobSource()
    for name in ("a", "locked/b", "c"):
        source.put("alpha", name, name.encode() * 10)
    sink = HeadDenied()
    first = harness(source, sink)
    first.report(first.run() or "")
    second = harness(source, sink)
    run_id = second.run()
    assert run_id
    report = json.loads(sink.objects[f"_azs3copy/reports/{run_id}.json"].data)
    assert {state: n for state, n in report["counts"].items() if n} == {"skipped": 2, "failed": 1}
    [failure] = report["failures"]
    assert failure["blob"] == "alpha/locked/b" and "AccessDenied" in failure["reason"], failure


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

    def refuse_beta(container: str, prefix: str) -> None:
        if container == "beta":
            raise AzureAuthError("Azure refused the sign-in: check azure.client_secret")

    source.before_list = refuse_beta
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
