"""Blob index tags: written as the copy's S3 tags in the request that writes it; all 10 of them where the
verified mark is metadata written with the object (verify=checksum)."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest

from azs3copy.steps.context import Tuning
from azs3copy.steps.verify import VERIFIED_MARK
from tests.support.fakes import MemoryBlobSource, MemoryObjectSink
from tests.unit.steps.common import MiB, harness, mark_of

TUNING = Tuning(large_threshold=12 * MiB, part_size=5 * MiB, chunk_size=5 * MiB)
NINE = {f"k{n}": f"value {n}+-=.:/_" for n in range(9)}


def user_tags(sink: MemoryObjectSink, key: str) -> dict[str, str]:
    assert mark_of(sink, key), f"{key} was not marked verified"
    tags = sink.get_tags(key) or {}
    return {name: value for name, value in tags.items() if name != VERIFIED_MARK}


def test_index_tags_arrive_as_s3_tags_on_every_copy_path() -> None:
    source, sink = MemoryBlobSource(), MemoryObjectSink()
    source.put("alpha", "one.bin", os.urandom(100), tags={"owner": "ana", "project": "x y"})
    source.put("alpha", "chunked.bin", os.urandom(7 * MiB), tags=NINE)
    source.put("alpha", "large.bin", os.urandom(13 * MiB), tags={"retention": "7y"})
    source.put("alpha", "untagged.bin", b"plain")
    h = harness(source, sink)
    h.tuning = TUNING
    run_id = h.run()
    assert run_id and h.report(run_id).counts["copied"] == 4
    assert user_tags(sink, "alpha/one.bin") == {"owner": "ana", "project": "x y"}
    assert user_tags(sink, "alpha/chunked.bin") == NINE
    assert user_tags(sink, "alpha/large.bin") == {"retention": "7y"}
    assert user_tags(sink, "alpha/untagged.bin") == {}


def test_a_tag_s3_refuses_fails_its_blob_alone_naming_the_tag() -> None:
    source, sink = MemoryBlobSource(), MemoryObjectSink()
    source.put("alpha", "reserved.bin", b"r", tags={"aws:owner": "ana"})
    source.put("alpha", "fine.bin", b"f", tags={"owner": "ana"})
    h = harness(source, sink)
    run_id = h.run()
    assert run_id
    report = h.report(run_id)
    assert report.counts["copied"] == 1 and report.counts["failed"] == 1
    assert "alpha/reserved.bin" not in sink.objects
    assert user_tags(sink, "alpha/fine.bin") == {"owner": "ana"}
    reasons = [reason for _run, blob, reason in h.fatal if blob == "alpha/reserved.bin"]
    assert reasons and "'aws:owner'" in reasons[0] and "rename it in Azure" in reasons[0]


def test_without_permission_to_read_tags_the_blobs_are_copied_without_them() -> None:
    source, sink = MemoryBlobSource(tags_readable=False), MemoryObjectSink()
    source.put("alpha", "one.bin", b"data", tags={"owner": "ana"})
    h = harness(source, sink)
    run_id = h.run()
    assert run_id and h.report(run_id).counts["copied"] == 1
    assert sink.objects["alpha/one.bin"].data == b"data"
    assert user_tags(sink, "alpha/one.bin") == {}
    report = json.loads(sink.objects[f"_azs3copy/reports/{run_id}.json"].data)
    assert len(report["notes"]) == 1 and "container alpha" in report["notes"][0]
    assert "may not read blob index tags" in report["notes"][0]


def test_a_run_with_readable_tags_has_no_note() -> None:
    source, sink = MemoryBlobSource(), MemoryObjectSink()
    source.put("alpha", "one.bin", b"data", tags={"owner": "ana"})
    h = harness(source, sink)
    run_id = h.run()
    assert run_id
    assert json.loads(sink.objects[f"_azs3copy/reports/{run_id}.json"].data)["notes"] == []


TEN = {f"k{n}": f"value {n}" for n in range(10)}


def test_ten_index_tags_round_trip_where_the_mark_is_written_with_the_object() -> None:
    """verify=checksum: the mark is metadata written with the object, so all 10 of S3's tags are the blob's,
    on every path that writes the mark with the object; and the next run finds the copies verified."""
    source, sink = MemoryBlobSource(), MemoryObjectSink()
    source.put("alpha", "one.bin", os.urandom(100), tags=TEN)
    source.put("alpha", "chunked.bin", os.urandom(7 * MiB), tags=TEN)
    source.put("alpha", "large.bin", os.urandom(13 * MiB), tags=TEN, store_md5=False)
    h = harness(source, sink)
    h.tuning = TUNING
    run_id = h.run()
    assert run_id and h.report(run_id).counts["copied"] == 3
    for name in ("one.bin", "chunked.bin", "large.bin"):
        assert sink.get_tags(f"alpha/{name}") == TEN, name
        assert VERIFIED_MARK in sink.objects[f"alpha/{name}"].attrs.metadata, name
    again = harness(source, sink)
    again.tuning = TUNING
    second = again.run()
    assert second
    counts = again.report(second).counts
    assert counts["skipped"] == 3 and counts["copied"] == 0


@pytest.mark.parametrize("case", ["readback", "large-with-content-md5"])
def test_where_the_mark_is_a_tag_ten_index_tags_fail_that_blob_alone_saying_why(case: str) -> None:
    """Where the mark is set after a read-back it is a tag (metadata cannot change without writing the object
    again): a blob with 10 index tags fails alone, before anything is written; 9 still round trip."""
    source, sink = MemoryBlobSource(), MemoryObjectSink()
    size = 13 * MiB if case == "large-with-content-md5" else 100
    source.put("alpha", "ten.bin", os.urandom(size), tags=TEN)  # stored with its Content-MD5
    source.put("alpha", "nine.bin", os.urandom(size), tags=NINE)
    h = harness(source, sink)
    h.tuning = dataclasses.replace(TUNING, verify="readback" if case == "readback" else "checksum")
    run_id = h.run()
    assert run_id
    counts = h.report(run_id).counts
    assert counts["copied"] == 1 and counts["failed"] == 1
    assert "alpha/ten.bin" not in sink.objects
    assert user_tags(sink, "alpha/nine.bin") == NINE
    assert sink.objects["alpha/nine.bin"].tags[VERIFIED_MARK]  # the mark set after the read-back
    reasons = [reason for _run, blob, reason in h.fatal if blob == "alpha/ten.bin"]
    assert reasons and "10 index tags" in reasons[0] and "read back" in reasons[0], reasons
