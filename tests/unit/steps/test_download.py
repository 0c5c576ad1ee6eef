"""download: small blobs copied into one object each, or recorded with the reason they were not."""

from __future__ import annotations

import json
import os

import pytest

from tests.support.fakes import MemoryBlobSource, MemoryObjectSink
from tests.unit.steps.common import MiB, harness


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
