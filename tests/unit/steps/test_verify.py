"""Verification: corrupted bytes never land in S3, a mark is only ever on checked bytes, an unverified object
is copied again; verify=checksum (the default) and verify=readback."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
from collections.abc import Iterator

import pytest

from azs3copy.checksums import Segment, crc32_of, md5_b64
from azs3copy.errors import AccessDeniedError, TransientError
from azs3copy.steps.verify import META_PREFIX, VERIFIED_MARK, compare_checksum, verified_mark
from azs3copy.transports import ObjectAttrs, ObjectInfo
from tests.support.fakes import MemoryBlobSource, MemoryObjectSink
from tests.support.harness import Harness
from tests.unit.steps.common import MiB, assert_copied, harness, mark_of


def flip_last_byte(key: str, data: bytes) -> bytes:
    return data if key.startswith("_") else data[:-1] + bytes([data[-1] ^ 1])


def verify_mode(h: Harness, mode: str) -> Harness:
    h.tuning = dataclasses.replace(h.tuning, verify=mode)  # type: ignore[arg-type]
    return h


@pytest.mark.parametrize("mode", ["checksum", "readback"])
def test_bytes_corrupted_on_the_way_to_s3_are_refused_and_leave_nothing_behind(mode: str) -> None:
    source = MemoryBlobSource()
    source.put("alpha", "small", os.urandom(4000))
    source.put("alpha", "chunked", os.urandom(7 * MiB))  # small, streamed as parts
    source.put("alpha", "large", os.urandom(13 * MiB), store_md5=False)  # through the parters
    sink = MemoryObjectSink(versioned=True)
    sink.on_arrival = flip_last_byte
    h = verify_mode(harness(source, sink), mode)
    run_id = h.run()
    assert run_id
    assert [k for k in sink.objects if not k.startswith("_")] == []  # no object, so no mark either
    assert all(not ids for key, ids in sink.versions.items() if not key.startswith("_"))  # not one version
    report = json.loads(sink.objects[f"_azs3copy/reports/{run_id}.json"].data)
    assert report["counts"]["failed"] == 3
    assert all("BadDigest" in failure["reason"] for failure in report["failures"]), report["failures"]
    assert not sink.uploads
    sink.on_arrival = None  # the fault is gone: the next run copies exactly what is missing
    harness(source, sink).run()
    assert_copied(source, sink)


def test_bytes_s3_stored_other_than_it_checked_are_found_by_a_readback_audit() -> None:
    """verify=readback reads every object back: what it finds is what S3's check on arrival cannot (bytes
    S3 kept other than those it checked), and such an object is removed, never marked."""
    source = MemoryBlobSource()
    source.put("alpha", "small", os.urandom(4000))
    source.put("alpha", "large", os.urandom(13 * MiB))
    sink = MemoryObjectSink(versioned=True)
    sink.on_store = flip_last_byte
    h = verify_mode(harness(source, sink), "readback")
    run_id = h.run()
    assert run_id
    assert [k for k in sink.objects if not k.startswith("_")] == []
    report = json.loads(sink.objects[f"_azs3copy/reports/{run_id}.json"].data)
    assert report["counts"]["failed"] == 2
    assert all("differ" in failure["reason"] for failure in report["failures"])
    assert not sink.uploads


class CountingSink(MemoryObjectSink):
    def __init__(self) -> None:
        super().__init__()
        self.tagged_after = 0

    def put_tags(self, key: str, version_id: str | None, tags: dict[str, str]) -> None:
        self.tagged_after += 1
        super().put_tags(key, version_id, tags)


def test_by_default_each_object_is_written_with_its_mark_and_nothing_is_read_back_or_tagged_after() -> None:
    source = MemoryBlobSource()
    refs = [
        source.put("alpha", "small", os.urandom(4000)),
        source.put("alpha", "empty", b""),
        source.put("alpha", "chunked", os.urandom(7 * MiB)),  # small, multipart in 5 MiB chunks
        source.put("alpha", "large", os.urandom(23 * MiB + 17), store_md5=False),  # no Content-MD5
    ]
    sink = CountingSink()
    h = harness(source, sink)
    assert h.tuning.verify == "checksum"
    run_id = h.run()
    assert run_id and h.report(run_id).counts["copied"] == 4
    assert sink.bytes_read == 0 and sink.tagged_after == 0
    assert_copied(source, sink)
    # the mark is metadata written with each object: none of its tags
    assert all(sink.objects[ref.blob_id].attrs.metadata[VERIFIED_MARK] == verified_mark(ref) for ref in refs)
    assert all(sink.objects[ref.blob_id].tags == {} for ref in refs)


@pytest.mark.parametrize("fault", ["corrupt-and-delete-denied", "verification-cannot-read"])
def test_an_object_never_verified_is_copied_again_by_the_next_run_not_skipped(fault: str) -> None:
    """An audit (verify=readback) leaves objects it could not verify unmarked; the next run, in the default
    mode, copies them again rather than skipping them."""
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
        sink.on_store = flip_last_byte
        sink.delete = denied  # type: ignore[method-assign]
    else:
        sink.read = unreadable  # type: ignore[method-assign]
    first = verify_mode(harness(source, sink), "readback").run()
    assert first
    left = sorted(k for k in sink.objects if not k.startswith("_"))
    assert left == ["alpha/large", "alpha/small"]  # unverified objects, with the source's metadata
    assert all(sink.objects[k].attrs.metadata[f"{META_PREFIX}etag"] for k in left)
    assert all(mark_of(sink, k) is None for k in left)
    report = json.loads(sink.objects[f"_azs3copy/reports/{first}.json"].data)
    assert report["counts"]["failed"] == 2
    sink.on_store, sink.delete, sink.read = None, real_delete, real_read  # type: ignore[method-assign]
    second = harness(source, sink)
    run_id = second.run()
    assert run_id
    run = second.report(run_id)
    assert run.counts["copied"] == 2 and run.counts["skipped"] == 0
    assert_copied(source, sink)
    assert all(mark_of(sink, k) for k in left)
    third = harness(source, sink)  # and now, verified, they are skipped
    assert third.report(third.run() or "").counts["skipped"] == 2


class ReportedChecksum(MemoryObjectSink):
    """A sink whose HEAD reports the CRC32 a test chooses, as S3 would hold it."""

    def __init__(self, crc32: str | None, checksum_type: str) -> None:
        super().__init__()
        self.reported, self.checksum_type = crc32, checksum_type

    def head(self, key: str, version_id: str | None = None, *, checksums: bool = False) -> ObjectInfo | None:
        info = super().head(key, version_id, checksums=checksums)
        if info is None or not checksums:
            return info
        return dataclasses.replace(info, crc32=self.reported, checksum_type=self.checksum_type)


def test_an_object_not_written_with_its_mark_is_compared_with_s3s_crc32_full_or_composite() -> None:
    """verify=checksum's check of an object that was not written with its mark (a completion whose answer
    was lost, an upload an earlier release opened): S3's CRC32 of it, against the CRC32s read from Azure."""
    from azs3copy.errors import ChecksumMismatchError

    data = os.urandom(23 * MiB + 17)
    parts = [data[i : i + 5 * MiB] for i in range(0, len(data), 5 * MiB)]
    segments = [Segment(len(part), crc32_of(part)) for part in parts]
    composite = crc32_of(b"".join(base64.b64decode(crc32_of(p)) for p in parts)) + f"-{len(parts)}"
    cases = [(crc32_of(data), "FULL_OBJECT", None), (composite, "COMPOSITE", None)]
    cases += [("AAAAAA==", "FULL_OBJECT", "differs from"), (None, None, "holds no CRC32")]
    for reported, kind, refused in cases:
        sink = ReportedChecksum(reported, kind or "")
        sink.put("k", data, crc32=crc32_of(data), md5=md5_b64(data), attrs=ObjectAttrs())
        deps = harness(MemoryBlobSource(), sink).deps()
        if refused is None:
            compare_checksum(deps, "k", None, segments)
        else:
            with pytest.raises(ChecksumMismatchError, match=refused):
                compare_checksum(deps, "k", None, segments)


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
    h = verify_mode(harness(source, sink), mode)
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
    h = verify_mode(harness(source, sink), mode)
    run_id = h.run()
    assert run_id
    report = json.loads(sink.objects[f"_azs3copy/reports/{run_id}.json"].data)
    assert {state: n for state, n in report["counts"].items() if n} == {"copied": 1, "failed": 1}
    [failure] = report["failures"]
    assert failure["blob"] == f"alpha/{name}" and "Content-MD5" in failure["reason"], failure
    assert f"alpha/{name}" not in sink.objects
    assert not sink.uploads  # no multipart upload left open
    assert sink.objects["alpha/fine.txt"].data == b"the other blob is copied"
