"""The whole pipeline over the in-memory source, sink and ledger: what lands in S3 is what Azure holds."""

from __future__ import annotations

import json
import os
import random

import pytest

from azs3copy.errors import TransientError
from azs3copy.messages import BlobRef, ContentSettings
from azs3copy.steps.verify import META_PREFIX
from tests.support.fakes import MemoryBlobSource, MemoryObjectSink
from tests.unit.steps.common import MiB, assert_copied, harness, settings


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
    went_large = any(topic == "largefile-initializer" for topic, _ in h.publisher.sent)
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
