"""Blob index tags: written as the copy's S3 tags in the request that writes it, beside the verified mark."""

from __future__ import annotations

import json
import os

from azs3copy.steps.context import Tuning
from azs3copy.steps.verify import VERIFIED_TAG
from tests.support.fakes import MemoryBlobSource, MemoryObjectSink
from tests.unit.steps.common import MiB, harness

TUNING = Tuning(large_threshold=12 * MiB, part_size=5 * MiB, chunk_size=5 * MiB)
NINE = {f"k{n}": f"value {n}+-=.:/_" for n in range(9)}


def user_tags(sink: MemoryObjectSink, key: str) -> dict[str, str]:
    tags = sink.get_tags(key) or {}
    assert VERIFIED_TAG in tags, f"{key} was not marked verified"
    return {name: value for name, value in tags.items() if name != VERIFIED_TAG}


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
