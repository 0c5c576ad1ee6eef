"""download: small blobs copied into one object each, or recorded with the reason they were not."""

from __future__ import annotations

import json
import os

import pytest

from tests.support.fakes import MemoryBlobSource, MemoryObjectSink
from tests.unit.steps.common import MiB, RecordingRefused, assert_copied, harness


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


def test_a_wrong_checksum_sent_with_the_bytes_is_refused_and_nothing_is_stored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from azs3copy.steps import download, largefile_parter

    def off_by_one(data: bytes | memoryview) -> str:
        import zlib

        from azs3copy.checksums import crc32_b64

        return crc32_b64(zlib.crc32(data) ^ 1)

    for step in (download, largefile_parter):
        monkeypatch.setattr(step, "crc32_of", off_by_one)
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


def three_small_blobs() -> MemoryBlobSource:
    source = MemoryBlobSource()
    source.put("alpha", "one.bin", os.urandom(4000))
    source.put("alpha", "two.bin", os.urandom(70_000))
    source.put("alpha", "chunked.bin", os.urandom(9 * MiB))  # more than one 5 MiB chunk: parts of its own
    return source


def test_a_verified_copy_whose_record_failed_is_recorded_by_the_retry_not_copied_again() -> None:
    source = three_small_blobs()
    sink = MemoryObjectSink(versioned=True)
    h = harness(source, sink, ledger=RecordingRefused(refusals=2))  # the first two attempts cannot record
    run_id = h.run()
    assert run_id
    assert_copied(source, sink)
    assert {key: len(versions) for key, versions in sink.versions.items() if not key.startswith("_")} == {
        "alpha/one.bin": 1,
        "alpha/two.bin": 1,
        "alpha/chunked.bin": 1,
    }
    run = h.report(run_id)
    assert run.complete and run.counts["copied"] == 3 and run.report_key and not h.dead_letters


def test_a_batch_that_could_not_record_on_any_attempt_leaves_its_blobs_to_a_redrive_not_working() -> None:
    source = three_small_blobs()
    ledger = RecordingRefused(refusals=1_000)
    h = harness(source, MemoryObjectSink(versioned=True), ledger=ledger)
    run_id = h.run()
    assert run_id and len(h.dead_letters) == 1  # the batch, after its last attempt
    assert {record.state for record in ledger.blobs(run_id)} == {"pending"}  # claims let go, none working
    ledger.refusals = 0  # DynamoDB answers again; the operator redrives the dead letter (a new request id)
    topic, body, _ = h.dead_letters.pop()
    h.deliver(topic, body)
    run = h.report(run_id)
    assert run.complete and run.counts["copied"] == 3 and run.report_key
    assert_copied(source, h.sink)  # type: ignore[arg-type]
