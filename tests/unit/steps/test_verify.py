"""Verification: corrupted bytes never stay in S3, an unverified object is copied again, verify=checksum."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
from collections.abc import Callable, Iterator

import pytest

from azs3copy.errors import AccessDeniedError, TransientError
from azs3copy.steps.verify import META_PREFIX, VERIFIED_TAG
from azs3copy.transports import ObjectInfo
from tests.support.fakes import MemoryBlobSource, MemoryObjectSink
from tests.support.harness import Harness
from tests.unit.steps.common import MiB, assert_copied, harness


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
