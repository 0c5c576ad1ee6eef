"""The run's manifest: a line for every object the run copied, written as blobs settle, that proves each
object against S3 (version, size, CRC32) and against Azure (ETag, Content-MD5)."""

from __future__ import annotations

import json
import os
from typing import Any

from azs3copy.checksums import crc32_of
from tests.support.fakes import MemoryBlobSource, MemoryObjectSink
from tests.unit.steps.common import MiB, RecordingRefused, harness


def manifest_lines(sink: MemoryObjectSink, prefix: str) -> tuple[list[str], list[dict[str, Any]]]:
    parts = sorted(key for key in sink.objects if key.startswith(prefix))
    lines = [json.loads(line) for key in parts for line in sink.objects[key].data.decode().splitlines()]
    return parts, lines


def test_every_object_copied_has_a_manifest_line_that_matches_s3_and_azure() -> None:
    source = MemoryBlobSource()
    for index in range(30):
        source.put("alpha", f"small/{index:02d}.bin", os.urandom(1000 + index))
    source.put("alpha", "chunked.bin", os.urandom(9 * MiB))  # more than one chunk: parts of its own
    source.put("alpha", "large.bin", os.urandom(13 * MiB))  # the large-blob functions
    source.put("alpha", "no-md5.bin", b"no stored MD5", store_md5=False)
    sink = MemoryObjectSink(versioned=True)
    h = harness(source, sink)
    run_id = h.run()
    assert run_id
    report = json.loads(sink.objects[f"_azs3copy/reports/{run_id}.json"].data)
    prefix = report["manifest_prefix"]
    assert prefix == f"_azs3copy/reports/{run_id}/manifest/"
    parts, lines = manifest_lines(sink, prefix)
    assert len(parts) >= 3 and all(part.endswith(".jsonl") for part in parts)  # batches and the large blob
    copied = {key: obj for key, obj in sink.objects.items() if not key.startswith("_azs3copy/")}
    by_key = {line["key"]: line for line in lines}
    assert sorted(by_key) == sorted(copied) and len(lines) == len(copied) == report["counts"]["copied"]
    for key, obj in copied.items():
        line, blob = by_key[key], source.containers["alpha"][key.removeprefix("alpha/")]
        assert line["version_id"] == obj.version_id and line["size"] == len(obj.data)
        assert line["blob"] == key and line["source_etag"] == blob.etag
        assert line["content_md5"] == blob.content_md5
        assert line["checksum_type"] == "FULL_OBJECT" and line["checksum_crc32"] == crc32_of(obj.data)
        info = sink.head(key, obj.version_id, checksums=True)
        assert info is not None and line["checksum_crc32"] == info.crc32
    assert by_key["alpha/no-md5.bin"]["content_md5"] is None


def test_a_batch_recorded_by_its_retry_still_has_a_line_for_each_blob() -> None:
    source = MemoryBlobSource()
    for index in range(3):
        source.put("alpha", f"{index}.bin", os.urandom(5000))
    sink = MemoryObjectSink(versioned=True)
    h = harness(source, sink, ledger=RecordingRefused(refusals=2))  # the first two attempts cannot record
    run_id = h.run()
    assert run_id and h.report(run_id).counts["copied"] == 3
    _, lines = manifest_lines(sink, f"_azs3copy/reports/{run_id}/manifest/")
    copied = {key: obj for key, obj in sink.objects.items() if not key.startswith("_azs3copy/")}
    # the first attempt wrote its part, the retry that found the verified copies its own: the same lines
    assert {
        (line["key"], line["version_id"], line["checksum_crc32"], line["storage_class"]) for line in lines
    } == {(key, obj.version_id, crc32_of(obj.data), "STANDARD") for key, obj in copied.items()}
