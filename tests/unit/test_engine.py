"""The whole pipeline over the in-memory source, sink and ledger: what lands in S3 is what Azure holds."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from azs3copy.engine import META_PREFIX, VERIFIED_TAG, Invocation, Tuning, dispatch, launch
from azs3copy.errors import AccessDeniedError, Azs3copyError, TransientError
from azs3copy.memory import MemoryBlobSource, MemoryObjectSink
from azs3copy.model import BlobRef, ContentSettings, decode
from azs3copy.settings import parse_settings
from azs3copy.transports import CompletedPart, ObjectInfo
from tests.support.harness import Harness, QueuePublisher

MiB = 1 << 20
SAS = {"account_url": "https://acct.blob.core.windows.net", "sas_token": "sv=1&sig=TOPSECRET"}


def settings(**extra: object):  # type: ignore[no-untyped-def]
    return parse_settings(json.dumps({"isactive": True, "begindate": "2020-01-01", "azure": SAS, **extra}))


def harness(source: MemoryBlobSource, sink: MemoryObjectSink | None = None, **kwargs: object) -> Harness:
    return Harness(
        source=source, sink=sink or MemoryObjectSink(), settings=kwargs.pop("settings", settings()), **kwargs
    )  # type: ignore[arg-type]


def assert_copied(source: MemoryBlobSource, sink: MemoryObjectSink, prefix: str = "") -> None:
    for container, blobs in source.containers.items():
        for name, blob in blobs.items():
            key = f"{prefix}{container}/{name}"
            assert key in sink.objects, f"{key} missing"
            assert sink.objects[key].data == blob.data, f"{key} differs"


def test_small_large_and_empty_blobs_arrive_byte_identical() -> None:
    source = MemoryBlobSource()
    source.put("alpha", "small.bin", os.urandom(300_000))
    source.put("alpha", "empty", b"")
    source.put("alpha", "large.bin", os.urandom(23 * MiB + 17))  # 5 parts of 5 MiB
    source.put("alpha", "chunked.bin", os.urandom(9 * MiB))  # small, but more than one 5 MiB chunk
    h = harness(source)
    run_id = h.run()
    assert run_id
    assert_copied(source, h.sink)  # type: ignore[arg-type]
    run = h.report(run_id)
    assert run.counts["copied"] == 4 and run.found == 4 and run.complete
    report = json.loads(h.sink.objects[f"_azs3copy/reports/{run_id}.json"].data)  # type: ignore[attr-defined]
    assert report["counts"]["copied"] == 4
    assert report["bytes_copied"] == 300_000 + 23 * MiB + 17 + 9 * MiB
    assert report["ok"] is True
    assert not [read for read in source.reads if read[0] == "alpha/empty"]  # no ranged read for 0 bytes
    assert sink_puts_within_chunk(source, 5 * MiB)


def sink_puts_within_chunk(source: MemoryBlobSource, chunk: int) -> bool:
    """Every read the copy made was at most one chunk (memory bounded whatever the blob size)."""
    return all(length <= chunk for _, _, length in source.reads)


@pytest.mark.parametrize("delta", [-1, 0, 1])
def test_threshold_boundary_copies_exactly(delta: int) -> None:
    source = MemoryBlobSource()
    size = 12 * MiB + delta
    source.put("alpha", "edge.bin", os.urandom(size))
    h = harness(source)
    h.run()
    assert_copied(source, h.sink)  # type: ignore[arg-type]
    went_large = any(topic == "large" for topic, _ in h.publisher.sent)
    assert went_large == (size >= h.tuning.large_threshold)


def test_tricky_names_and_the_same_name_in_two_containers_do_not_collide() -> None:
    source = MemoryBlobSource()
    names = ["dir/ünïcødé 名前.txt", "spaces in name", "100%+plus?query#hash", "a//double", "trailing/"]
    for name in names:
        source.put("alpha", name, name.encode() * 3)
    source.put("beta", "spaces in name", b"the beta one")
    h = harness(source, settings=settings(destination_prefix="mig/"))
    h.run()
    assert_copied(source, h.sink, "mig/")  # type: ignore[arg-type]
    assert h.sink.objects["mig/beta/spaces in name"].data == b"the beta one"  # type: ignore[attr-defined]


def test_content_settings_and_metadata_are_carried_over_with_the_source_identity() -> None:
    source = MemoryBlobSource()
    content = ContentSettings("text/csv", "gzip", "en-GB", "attachment; filename=x.csv", "max-age=60")
    ref = source.put("alpha", "x.csv", b"a,b\n", content=content, metadata={"owner": "finance"})
    h = harness(source)
    h.run()
    stored = h.sink.objects["alpha/x.csv"]  # type: ignore[attr-defined]
    assert stored.attrs.content == content
    assert stored.attrs.metadata["owner"] == "finance"
    assert stored.attrs.metadata[f"{META_PREFIX}etag"] == ref.etag
    assert stored.attrs.metadata[f"{META_PREFIX}size"] == "4"
    assert stored.attrs.metadata[f"{META_PREFIX}content-md5"] == ref.content_md5


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
    assert not any(topic in ("small", "large") for topic, _ in second.publisher.sent)


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


def test_every_message_delivered_twice_and_shuffled_still_copies_once() -> None:
    source = MemoryBlobSource()
    for i in range(40):
        source.put("alpha", f"s{i}", os.urandom(2000 + i))
    source.put("alpha", "large", os.urandom(27 * MiB))
    sink = MemoryObjectSink(versioned=True)
    h = harness(source, sink, duplicate=True, shuffle=random.Random(7))
    run_id = h.run()
    assert run_id
    assert_copied(source, sink)
    run = h.report(run_id)
    assert run.counts["copied"] == 41 and run.found == 41 and run.done == 41
    assert all(len(versions) == 1 for key, versions in sink.versions.items() if not key.startswith("_"))
    assert not sink.uploads  # no multipart upload left open


def test_blob_overwritten_between_plan_and_part_read_is_never_half_written() -> None:
    source = MemoryBlobSource()
    source.put("alpha", "moving", os.urandom(23 * MiB))
    reads = 0

    def overwrite_after_two_parts(blob: BlobRef, offset: int, length: int) -> None:
        nonlocal reads
        reads += 1
        if reads == 3:
            source.put("alpha", "moving", os.urandom(23 * MiB))

    source.before_read = overwrite_after_two_parts
    sink = MemoryObjectSink()
    h = harness(source, sink)
    run_id = h.run()
    assert run_id
    assert "alpha/moving" not in sink.objects
    assert not sink.uploads
    run = h.report(run_id)
    assert run.counts["changed"] == 1 and run.complete
    source.before_read = None
    h2 = harness(source, sink)  # the next run picks up the new version
    h2.run()
    assert_copied(source, sink)


def test_blob_deleted_after_listing_is_recorded_as_vanished() -> None:
    source = MemoryBlobSource()
    source.put("alpha", "gone", b"bye")
    source.put("alpha", "stays", b"hi")
    source.before_read = lambda blob, o, n: source.delete("alpha", "gone") if blob.name == "gone" else None
    h = harness(source)
    run_id = h.run()
    assert run_id
    run = h.report(run_id)
    assert run.counts["vanished"] == 1 and run.counts["copied"] == 1
    assert "alpha/gone" not in h.sink.objects  # type: ignore[attr-defined]


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


def test_bytes_corrupted_on_the_way_to_s3_are_caught_and_leave_nothing_behind() -> None:
    source = MemoryBlobSource()
    source.put("alpha", "small", os.urandom(4000))
    source.put("alpha", "large", os.urandom(13 * MiB))
    sink = MemoryObjectSink(versioned=True)
    sink.on_store = lambda key, data: data if key.startswith("_") else data[:-1] + bytes([data[-1] ^ 1])
    h = harness(source, sink)
    run_id = h.run()
    assert run_id
    assert [k for k in sink.objects if not k.startswith("_")] == []
    run = h.report(run_id)
    assert run.counts["failed"] == 2
    report = json.loads(sink.objects[f"_azs3copy/reports/{run_id}.json"].data)
    assert all("differ" in failure["reason"] for failure in report["failures"])
    assert not sink.uploads
    sink.on_store = None  # the fault is gone: the next run copies exactly what is missing
    harness(source, sink).run()
    assert_copied(source, sink)


@pytest.mark.parametrize("fault", ["corrupt-and-delete-denied", "verification-cannot-read"])
def test_an_object_never_verified_is_copied_again_by_the_next_run_not_skipped(fault: str) -> None:
    source = MemoryBlobSource()
    source.put("alpha", "small", os.urandom(4000))
    source.put("alpha", "large", os.urandom(13 * MiB))
    sink = MemoryObjectSink(versioned=True)
    real_delete, real_read = sink.delete, sink.read

    def denied(key: str, version_id: str | None) -> None:
        raise AccessDeniedError(f"DELETE s3://dest/{key}: AccessDenied")

    def unreadable(key: str, version_id: str | None = None, start: int = 0) -> Iterator[bytes]:
        raise TransientError(f"GET s3://dest/{key}: 503 SlowDown")
        yield b""

    if fault == "corrupt-and-delete-denied":
        sink.on_store = lambda key, data: data if key.startswith("_") else data[:-1] + bytes([data[-1] ^ 1])
        sink.delete = denied  # type: ignore[method-assign]
    else:
        sink.read = unreadable  # type: ignore[method-assign]
    first = harness(source, sink).run()
    assert first
    left = sorted(k for k in sink.objects if not k.startswith("_"))
    assert left == ["alpha/large", "alpha/small"]  # unverified objects, with the source's metadata
    assert all(sink.objects[k].attrs.metadata[f"{META_PREFIX}etag"] for k in left)
    report = json.loads(sink.objects[f"_azs3copy/reports/{first}.json"].data)
    assert report["counts"]["failed"] == 2
    sink.on_store, sink.delete, sink.read = None, real_delete, real_read  # type: ignore[method-assign]
    second = harness(source, sink)
    run_id = second.run()
    assert run_id
    run = second.report(run_id)
    assert run.counts["copied"] == 2 and run.counts["skipped"] == 0
    assert_copied(source, sink)
    assert all(VERIFIED_TAG in sink.objects[k].tags for k in left)
    third = harness(source, sink)  # and now, verified, they are skipped
    assert third.report(third.run() or "").counts["skipped"] == 2


def test_transient_source_errors_are_retried_and_the_copy_completes() -> None:
    source = MemoryBlobSource()
    source.put("alpha", "flaky", os.urandom(3000))
    calls = 0

    def fail_twice(blob: BlobRef, offset: int, length: int) -> None:
        nonlocal calls
        calls += 1
        if calls <= 2:
            raise TransientError("503 ServerBusy")

    source.before_read = fail_twice
    h = harness(source)
    run_id = h.run()
    assert run_id and h.report(run_id).counts["copied"] == 1
    assert_copied(source, h.sink)  # type: ignore[arg-type]
    assert not h.dead_letters


def test_errors_that_never_clear_fail_the_blob_and_reach_the_dead_letters_without_secrets() -> None:
    source = MemoryBlobSource()
    source.put("alpha", "doomed", os.urandom(3000))

    def always(blob: BlobRef, offset: int, length: int) -> None:
        raise TransientError("connection reset while reading https://acct/x?sv=1&sig=TOPSECRET")

    source.before_read = always
    h = harness(source)
    run_id = h.run()
    assert run_id
    run = h.report(run_id)
    assert run.counts["failed"] == 1 and run.complete
    assert len(h.dead_letters) == 1
    report = h.sink.objects[f"_azs3copy/reports/{run_id}.json"].data.decode()  # type: ignore[attr-defined]
    assert "TOPSECRET" not in report and "attempts" in report
    assert not h.fatal  # retries ran out: Lambda dead-letters the event itself, not the handler


def test_inactive_secret_starts_no_run() -> None:
    source = MemoryBlobSource()
    source.put("alpha", "x", b"x")
    h = harness(source, settings=settings(isactive="False"))
    assert h.run() is None
    assert not h.sink.objects  # type: ignore[attr-defined]


def test_a_second_run_does_not_start_while_one_is_unfinished_unless_forced() -> None:
    source = MemoryBlobSource()
    source.put("alpha", "x", b"x")
    h = harness(source)
    first = launch(h.deps())  # started, not drained
    refused = launch(h.deps())  # the next scheduled tick: answered, not raised (no retries, no DLQ)
    assert refused.detail["started"] is False
    assert refused.detail["run_in_progress"] == first.detail["run_id"]
    assert first.detail["run_id"] in refused.detail["reason"] and "force" in refused.detail["reason"]
    assert launch(h.deps(), force=True).detail["started"] is True


class FlakyPublisher(QueuePublisher):
    """Refuses the first `failures` publishes, as SNS does when it throttles or the network drops."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def publish(self, topic: str, bodies: list[str]) -> None:
        if self.failures:
            self.failures -= 1
            raise TransientError("publish to containers: 503 ServiceUnavailable")
        super().publish(topic, bodies)


@pytest.mark.parametrize("force", [False, True])
def test_a_launch_that_died_before_announcing_its_run_announces_it_when_lambda_retries(force: bool) -> None:
    source = MemoryBlobSource()
    source.put("alpha", "x", b"x")
    source.put("beta", "y", b"y")
    h = harness(source, publisher=FlakyPublisher(failures=1))
    attempt = Invocation(request_id="launch-request-1")  # Lambda keeps the request id across retries
    with pytest.raises(TransientError):
        launch(h.deps(), force=force, invocation=attempt)
    started_by_first = h.ledger.current_run_id()
    assert started_by_first and not h.publisher.sent
    retried = launch(h.deps(), force=force, invocation=attempt)
    assert retried.detail["started"] is True and retried.detail["run_id"] == started_by_first
    assert retried.published == 2 and len(h.ledger.runs) == 1  # type: ignore[attr-defined]
    other = launch(h.deps(), invocation=Invocation(request_id="the-next-tick"))
    assert other.detail["started"] is False  # the retried run is in progress, and it is not orphaned:
    h.drain()
    run = h.report(started_by_first)
    assert run.complete and run.counts["copied"] == 2 and run.report_key
    assert_copied(source, h.sink)  # type: ignore[arg-type]


def test_a_container_named_twice_in_the_secret_is_listed_once_and_the_run_completes() -> None:
    source = MemoryBlobSource()
    source.put("alpha", "x", b"x")
    source.put("beta", "y", b"y")
    named = settings(
        containers=["alpha", "beta"]
    )  # the secret's parser refuses a repeat; other callers may not
    h = harness(source, settings=dataclasses.replace(named, containers=("alpha", "beta", "alpha")))
    run_id = h.run()
    assert run_id
    run = h.report(run_id)
    assert run.containers == ("alpha", "beta")
    assert run.complete and run.listing_pending == 0 and run.counts["copied"] == 2 and run.report_key


def test_a_destination_prefix_changed_mid_run_does_not_split_the_run() -> None:
    source = MemoryBlobSource()
    source.put("alpha", "small", b"s" * 1000)
    source.put("alpha", "large", os.urandom(13 * MiB))
    h = harness(source, settings=settings(destination_prefix="before/"))
    launch(h.deps())
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
        body for topic, body in h.publisher.sent if topic == "containers" and '"page":0' not in body
    ]
    assert len(continuations) == 2  # pages 1 and 2 each in a fresh invocation
    assert_copied(source, h.sink)  # type: ignore[arg-type]
    assert h.report(run_id).found == 25


def test_recombinator_that_finds_the_upload_already_completed_verifies_and_counts_success() -> None:
    from azs3copy.model import RecombineTask, decode
    from azs3copy.transports import CompletedPart

    source = MemoryBlobSource()
    source.put("alpha", "big", os.urandom(13 * MiB))
    sink = MemoryObjectSink()
    h = harness(source, sink)
    run_id = launch(h.deps()).detail["run_id"]
    recombines = []
    while h.publisher.queue:
        topic, body = h.publisher.queue.popleft()
        if topic == "recombine":
            recombines.append(body)
        else:
            h.deliver(topic, body)
    assert len(recombines) == 1
    task = decode(recombines[0])
    assert isinstance(task, RecombineTask)
    # an earlier attempt completed the upload and died before recording it
    checksums = h.ledger.part_checksums(run_id, "alpha/big")
    parts = [
        CompletedPart(p.number, p.etag, checksums[p.number])
        for p in sink.list_parts(task.key, task.upload_id)
    ]
    sink.complete(task.key, task.upload_id, parts)
    h.deliver("recombine", recombines[0])
    h.deliver("recombine", recombines[0])  # and once more: still success, counted once
    run = h.report(run_id)
    assert run.counts["copied"] == 1 and run.counts["failed"] == 0 and run.complete
    assert sink.objects["alpha/big"].data == source.containers["alpha"]["big"].data


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


@pytest.mark.parametrize(
    ("function", "variable"),
    [
        ("launch-qualification", "AZS3COPY_TOPIC_CONTAINERS"),
        ("find-blobs", "AZS3COPY_TOPIC_CONTAINERS"),
        ("find-blobs", "AZS3COPY_TOPIC_SMALL"),
        ("find-blobs", "AZS3COPY_TOPIC_LARGE"),
        ("largefile-initializer", "AZS3COPY_TOPIC_PARTS"),
        ("largefile-parter", "AZS3COPY_TOPIC_RECOMBINE"),
        ("largefile-recombinator", "AZS3COPY_TOPIC_RECOMBINE"),  # continues a long read-back
    ],
)
def test_a_function_missing_a_topic_it_publishes_to_fails_at_config_load_naming_it(
    function: str, variable: str
) -> None:
    from azs3copy.config import TOPIC_VARIABLES, RuntimeConfig
    from azs3copy.errors import ConfigError

    env = {f"AZS3COPY_{name}": f"arn:aws:sns:us-east-1:1:{name}" for name in TOPIC_VARIABLES.values()}
    assert RuntimeConfig.from_env(env).topics(function)  # all set: fine
    del env[variable]
    with pytest.raises(ConfigError, match=variable):
        RuntimeConfig.from_env(env).topics(function)
    env[variable] = "  "
    with pytest.raises(ConfigError, match=variable):
        RuntimeConfig.from_env(env).topics(function)


def test_a_wrong_checksum_sent_with_the_bytes_is_refused_and_nothing_is_stored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import azs3copy.engine

    def off_by_one(data: bytes | memoryview) -> str:
        import zlib

        from azs3copy.checksums import crc32_b64

        return crc32_b64(zlib.crc32(data) ^ 1)

    monkeypatch.setattr(azs3copy.engine, "crc32_of", off_by_one)
    source = MemoryBlobSource()
    source.put("alpha", "small", os.urandom(4000))
    source.put("alpha", "large", os.urandom(13 * MiB))
    sink = MemoryObjectSink()
    h = harness(source, sink)
    run_id = h.run()
    assert run_id
    assert [k for k in sink.objects if not k.startswith("_")] == []
    report = json.loads(sink.objects[f"_azs3copy/reports/{run_id}.json"].data)
    assert report["counts"]["failed"] == 2
    assert all("BadDigest" in failure["reason"] for failure in report["failures"])
    assert not sink.uploads


# --- verification of large objects: a read-back over several invocations, and verify=checksum ---------------


@given(st.lists(st.binary(max_size=3000), min_size=1, max_size=8))
def test_crc32_combine_gives_the_crc32_of_the_concatenation(pieces: list[bytes]) -> None:
    import zlib

    from azs3copy.checksums import crc32_of
    from azs3copy.engine import Segment, combined_crc32, crc32_combine

    assert combined_crc32([Segment(len(p), crc32_of(p)) for p in pieces]) == crc32_of(b"".join(pieces))
    head, tail = pieces[0], b"".join(pieces[1:])
    assert crc32_combine(zlib.crc32(head), zlib.crc32(tail), len(tail)) == zlib.crc32(head + tail)


def test_crc32_combine_of_parts_of_one_size_matches_zlib_at_part_sizes() -> None:
    from azs3copy.checksums import crc32_of
    from azs3copy.engine import Segment, combined_crc32

    data = os.urandom(5 * MiB * 3 + 12345)
    parts = [data[i : i + 5 * MiB] for i in range(0, len(data), 5 * MiB)]
    assert combined_crc32([Segment(len(p), crc32_of(p)) for p in parts]) == crc32_of(data)


def drive(
    h: Harness,
    remaining: Callable[[str], Callable[[], float]],
    after: Callable[[list[tuple[str, str]]], None] | None = None,
) -> list[tuple[str, str]]:
    """Deliver every message like Lambda, each invocation's remaining time from remaining(topic); returns
    what was delivered. `after(delivered)` runs after each message."""
    delivered: list[tuple[str, str]] = []
    while h.publisher.queue:
        if delivered and after is not None:
            after(delivered)
        topic, body = h.publisher.queue.popleft()
        delivered.append((topic, body))
        request_id = f"request-{len(delivered)}"
        for attempt in range(1, h.tuning.max_attempts + 1):
            final = attempt == h.tuning.max_attempts
            invocation = Invocation(request_id, final_attempt=final, remaining_seconds=remaining(topic))
            try:
                dispatch(h.deps(), decode(body), invocation)
                break
            except Azs3copyError:
                if final:
                    h.dead_letters.append((topic, body, "failed"))
    return delivered


def running_out(topic: str) -> Callable[[], float]:
    """A recombinator with 15 minutes at its claim and 30 seconds once it is reading back."""
    calls = iter([900.0])
    return (lambda: next(calls, 30.0)) if topic == "recombine" else (lambda: 900.0)


def test_a_read_back_too_long_for_one_invocation_continues_in_fresh_ones_without_rereading() -> None:
    source = MemoryBlobSource()
    data = os.urandom(23 * MiB + 17)  # 5 parts of 5 MiB
    source.put("alpha", "huge.bin", data)
    sink = MemoryObjectSink(versioned=True)
    h = harness(source, sink)
    run_id = launch(h.deps()).detail["run_id"]
    delivered = drive(h, running_out)
    recombines = [decode(body) for topic, body in delivered if topic == "recombine"]
    assert [task.verify_from for task in recombines] == [0, 2, 3, 4, 5]  # type: ignore[union-attr]
    assert len({task.version_id for task in recombines[1:]}) == 1  # type: ignore[union-attr]
    run = h.report(run_id)
    assert run.complete and run.counts["copied"] == 1 and run.report_key
    assert sink.objects["alpha/huge.bin"].data == data
    assert VERIFIED_TAG in sink.objects["alpha/huge.bin"].tags
    assert sink.bytes_read == len(data)  # every byte read back once, across five invocations
    assert not h.dead_letters


def test_part_messages_delivered_again_after_the_upload_was_completed_leave_the_copy_copied() -> None:
    source = MemoryBlobSource()
    data = os.urandom(23 * MiB + 17)  # 5 parts of 5 MiB
    source.put("alpha", "huge.bin", data)
    sink = MemoryObjectSink(versioned=True)
    h = harness(source, sink)
    run_id = launch(h.deps()).detail["run_id"]
    redelivered = False

    def redeliver_parts_mid_read_back(delivered: list[tuple[str, str]]) -> None:
        """Once the recombinator has completed the upload and handed its read-back over, every part message
        arrives again (SNS redelivery, a retried parter), ahead of the read-back's continuation."""
        nonlocal redelivered
        topic, _ = delivered[-1]
        if topic == "recombine" and not redelivered:
            redelivered = True
            assert not sink.uploads and "alpha/huge.bin" in sink.objects  # completed, not yet verified
            for part in reversed([entry for entry in delivered if entry[0] == "parts"]):
                h.publisher.queue.appendleft(part)

    delivered = drive(h, running_out, after=redeliver_parts_mid_read_back)
    assert redelivered and sum(topic == "parts" for topic, _ in delivered) == 10
    run = h.report(run_id)
    assert run.complete and run.counts["copied"] == 1 and not run.counts.get("failed")
    assert sink.objects["alpha/huge.bin"].data == data
    assert VERIFIED_TAG in sink.objects["alpha/huge.bin"].tags
    assert len(sink.versions["alpha/huge.bin"]) == 1
    assert not h.dead_letters


def test_a_continued_read_back_that_finds_a_bad_part_removes_the_object() -> None:
    source = MemoryBlobSource()
    source.put("alpha", "huge.bin", os.urandom(23 * MiB + 17))
    sink = MemoryObjectSink(versioned=True)
    flip = 4 * 5 * MiB + 3  # in part 5, read by the fifth invocation

    def corrupt(key: str, data: bytes) -> bytes:
        return data if key.startswith("_") else data[:flip] + bytes([data[flip] ^ 1]) + data[flip + 1 :]

    sink.on_store = corrupt
    h = harness(source, sink)
    run_id = launch(h.deps()).detail["run_id"]
    drive(h, running_out)
    run = h.report(run_id)
    assert run.complete and run.counts["failed"] == 1
    assert "alpha/huge.bin" not in sink.objects
    report = json.loads(sink.objects[f"_azs3copy/reports/{run_id}.json"].data)
    assert "part 5" in report["failures"][0]["reason"]


class ReportedChecksum(MemoryObjectSink):
    """A sink whose HEAD reports the CRC32 a test chooses, as S3 would hold it."""

    def __init__(self, crc32: Callable[[str, str | None], str | None], checksum_type: str) -> None:
        super().__init__()
        self.reported, self.checksum_type = crc32, checksum_type

    def head(self, key: str, version_id: str | None = None, *, checksums: bool = False) -> ObjectInfo | None:
        info = super().head(key, version_id, checksums=checksums)
        if info is None or not checksums or key.startswith("_"):
            return info
        return dataclasses.replace(
            info, crc32=self.reported(key, info.crc32), checksum_type=self.checksum_type
        )


def checksum_mode(h: Harness) -> Harness:
    h.tuning = dataclasses.replace(h.tuning, verify="checksum")
    return h


def test_verify_checksum_compares_s3s_crc32_of_every_object_without_reading_it_back() -> None:
    source = MemoryBlobSource()
    source.put("alpha", "small", os.urandom(4000))
    source.put("alpha", "chunked", os.urandom(7 * MiB))  # small, multipart in 5 MiB chunks
    source.put("alpha", "large", os.urandom(23 * MiB + 17), store_md5=False)  # a block blob: no Content-MD5
    sink = MemoryObjectSink()
    h = checksum_mode(harness(source, sink))
    run_id = h.run()
    assert run_id and h.report(run_id).counts["copied"] == 3
    assert sink.bytes_read == 0
    assert_copied(source, sink)
    assert all(VERIFIED_TAG in obj.tags for key, obj in sink.objects.items() if not key.startswith("_"))


@pytest.mark.parametrize(
    ("reported", "reason"),
    [
        (lambda key, crc: "AAAAAA==", "differs from"),  # S3 holds the CRC32 of other bytes
        (lambda key, crc: None, "holds no CRC32"),  # nothing to compare: not taken as verified
    ],
)
def test_verify_checksum_fails_and_removes_an_object_whose_crc32_does_not_match(
    reported: Callable[[str, str | None], str | None], reason: str
) -> None:
    source = MemoryBlobSource()
    source.put("alpha", "small", os.urandom(4000))
    source.put("alpha", "large", os.urandom(23 * MiB + 17), store_md5=False)  # else it is read back
    sink = ReportedChecksum(reported, "FULL_OBJECT")
    h = checksum_mode(harness(source, sink))
    run_id = h.run()
    assert run_id
    report = json.loads(sink.objects[f"_azs3copy/reports/{run_id}.json"].data)
    assert report["counts"]["failed"] == 2 and report["counts"]["copied"] == 0
    assert all(reason in failure["reason"] for failure in report["failures"])
    assert [k for k in sink.objects if not k.startswith("_")] == []


def test_verify_checksum_accepts_s3s_composite_crc32_of_an_older_upload() -> None:
    from azs3copy.checksums import crc32_of

    source = MemoryBlobSource()
    data = os.urandom(23 * MiB + 17)
    source.put("alpha", "large", data, store_md5=False)
    parts = [data[i : i + 5 * MiB] for i in range(0, len(data), 5 * MiB)]
    composite = crc32_of(b"".join(base64.b64decode(crc32_of(p)) for p in parts)) + f"-{len(parts)}"
    sink = ReportedChecksum(lambda key, crc: composite, "COMPOSITE")
    h = checksum_mode(harness(source, sink))
    run_id = h.run()
    assert run_id and h.report(run_id).counts["copied"] == 1
    assert sink.bytes_read == 0  # S3's composite CRC32 compared, nothing read back


def test_s3_refusing_an_assembly_that_does_not_match_the_whole_crc32_leaves_nothing() -> None:
    class ChangedInAssembly(MemoryObjectSink):
        """A stand-in for bytes that changed between the parts S3 checked and the object it assembles."""

        def __init__(self) -> None:
            super().__init__()
            self.changed: set[str] = set()

        def complete(
            self, key: str, upload_id: str, parts: list[CompletedPart], *, crc32: str | None = None
        ) -> str | None:
            if upload_id not in self.changed:
                self.changed.add(upload_id)
                data, etag, crc = self.uploads[upload_id].parts[2]
                self.uploads[upload_id].parts[2] = (data[:-1] + bytes([data[-1] ^ 1]), etag, crc)
            return super().complete(key, upload_id, parts, crc32=crc32)

    source = MemoryBlobSource()
    source.put("alpha", "large", os.urandom(23 * MiB + 17))
    sink = ChangedInAssembly()
    h = harness(source, sink)
    run_id = h.run()
    assert run_id
    report = json.loads(sink.objects[f"_azs3copy/reports/{run_id}.json"].data)
    assert report["counts"]["failed"] == 1 and "BadDigest" in report["failures"][0]["reason"]
    assert "alpha/large" not in sink.objects and not sink.uploads


def with_content_md5(source: MemoryBlobSource, container: str, name: str, content_md5: str) -> None:
    """The blob's Content-MD5 property as Azure holds it, whatever its bytes are."""
    blob = source.containers[container][name]
    source.containers[container][name] = dataclasses.replace(blob, content_md5=content_md5)


@pytest.mark.parametrize("mode", ["readback", "checksum"])
def test_a_large_blob_is_compared_with_its_content_md5_in_either_verify_mode(mode: str) -> None:
    source = MemoryBlobSource()
    data = os.urandom(23 * MiB + 17)
    source.put("alpha", "large", data)  # uploaded with its Content-MD5
    sink = MemoryObjectSink()
    h = harness(source, sink)
    if mode == "checksum":
        h = checksum_mode(h)
    run_id = h.run()
    assert run_id and h.report(run_id).counts["copied"] == 1
    assert sink.objects["alpha/large"].data == data
    assert sink.bytes_read == len(data)  # read back once: S3's CRC32 alone cannot be compared with an MD5


@pytest.mark.parametrize(
    ("name", "size", "mode"),
    [
        ("single.bin", 300_000, "readback"),  # one read, one PutObject
        ("chunked.bin", 9 * MiB, "readback"),  # small, streamed in 5 MiB chunks
        ("large.bin", 23 * MiB + 17, "readback"),  # multipart through the parters
        ("large.bin", 23 * MiB + 17, "checksum"),
    ],
)
def test_bytes_that_do_not_match_the_blobs_content_md5_fail_it_and_leave_nothing(
    name: str, size: int, mode: str
) -> None:
    source = MemoryBlobSource()
    source.put("alpha", name, os.urandom(size))
    with_content_md5(source, "alpha", name, base64.b64encode(b"\x00" * 16).decode())
    source.put("alpha", "fine.txt", b"the other blob is copied")
    sink = MemoryObjectSink(versioned=True)
    h = harness(source, sink)
    if mode == "checksum":
        h = checksum_mode(h)
    run_id = h.run()
    assert run_id
    report = json.loads(sink.objects[f"_azs3copy/reports/{run_id}.json"].data)
    assert {state: n for state, n in report["counts"].items() if n} == {"copied": 1, "failed": 1}
    [failure] = report["failures"]
    assert failure["blob"] == f"alpha/{name}" and "Content-MD5" in failure["reason"], failure
    assert f"alpha/{name}" not in sink.objects
    assert not sink.uploads  # no multipart upload left open
    assert sink.objects["alpha/fine.txt"].data == b"the other blob is copied"
