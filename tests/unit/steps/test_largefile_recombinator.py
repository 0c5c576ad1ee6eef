"""largefile-recombinator: complete once, verify, and hand a long read-back to fresh invocations."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator

from azs3copy.errors import Azs3copyError
from azs3copy.messages import decode
from azs3copy.steps.context import Invocation, Tuning
from azs3copy.steps.dispatch import dispatch
from azs3copy.steps.launch_qualification import launch_qualification
from azs3copy.steps.verify import VERIFIED_MARK
from azs3copy.transports import CompletedPart, UploadedPart
from tests.support.fakes import MemoryBlobSource, MemoryObjectSink
from tests.support.harness import Harness
from tests.unit.steps.common import MiB, RecordingRefused, harness


def test_recombinator_that_finds_the_upload_already_completed_verifies_and_counts_success() -> None:
    from azs3copy.messages import LargefileRecombinatorTask, decode
    from azs3copy.transports import CompletedPart

    source = MemoryBlobSource()
    source.put("alpha", "big", os.urandom(13 * MiB))
    sink = MemoryObjectSink()
    h = harness(source, sink)
    run_id = launch_qualification(h.deps()).detail["run_id"]
    recombines = []
    while h.publisher.queue:
        topic, body = h.publisher.queue.popleft()
        if topic == "largefile-recombinator":
            recombines.append(body)
        else:
            h.deliver(topic, body)
    assert len(recombines) == 1
    task = decode(recombines[0])
    assert isinstance(task, LargefileRecombinatorTask)
    # an earlier attempt completed the upload and died before recording it
    checksums = h.ledger.part_checksums(run_id, "alpha/big")
    parts = [
        CompletedPart(p.number, p.etag, checksums[p.number])
        for p in sink.list_parts(task.key, task.upload_id)
    ]
    sink.complete(task.key, task.upload_id, parts)
    h.deliver("largefile-recombinator", recombines[0])
    h.deliver("largefile-recombinator", recombines[0])  # and once more: still success, counted once
    run = h.report(run_id)
    assert run.counts["copied"] == 1 and run.counts["failed"] == 0 and run.complete
    assert sink.objects["alpha/big"].data == source.containers["alpha"]["big"].data


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
            invocation = Invocation(request_id, final, remaining(topic), attempt)
            try:
                dispatch(h.deps(), decode(body), invocation)
                break
            except Azs3copyError:
                if final:
                    h.dead_letters.append((topic, body, "failed"))
    return delivered


def test_large_blobs_whose_names_extend_each_other_past_a_hash_are_each_copied() -> None:
    source = MemoryBlobSource()
    names = ["archive", "archive#2024", "archive#2024#00001", "archive#"]
    for name in names:
        source.put("alpha", name, os.urandom(13 * MiB))  # 3 parts each, checksums recorded per part
    h = harness(source)
    run_id = h.run()
    assert run_id
    run = h.report(run_id)
    assert run.complete and run.report_key and run.counts["copied"] == len(names) == run.found
    for name in names:
        assert h.sink.objects[f"alpha/{name}"].data == source.containers["alpha"][name].data  # type: ignore[attr-defined]
    assert not h.dead_letters


def running_out(topic: str) -> Callable[[], float]:
    """A recombinator with 15 minutes at its claim and 30 seconds once it is reading back."""
    calls = iter([900.0])
    return (lambda: next(calls, 30.0)) if topic == "largefile-recombinator" else (lambda: 900.0)


def test_a_read_back_too_long_for_one_invocation_continues_in_fresh_ones_without_rereading() -> None:
    source = MemoryBlobSource()
    data = os.urandom(23 * MiB + 17)  # 5 parts of 5 MiB
    source.put("alpha", "huge.bin", data)
    sink = MemoryObjectSink(versioned=True)
    h = harness(source, sink)
    run_id = launch_qualification(h.deps()).detail["run_id"]
    delivered = drive(h, running_out)
    recombines = [decode(body) for topic, body in delivered if topic == "largefile-recombinator"]
    assert [task.verify_from for task in recombines] == [0, 2, 3, 4, 5]  # type: ignore[union-attr]
    assert len({task.version_id for task in recombines[1:]}) == 1  # type: ignore[union-attr]
    run = h.report(run_id)
    assert run.complete and run.counts["copied"] == 1 and run.report_key
    assert sink.objects["alpha/huge.bin"].data == data
    assert sink.objects["alpha/huge.bin"].tags.get(VERIFIED_MARK)  # marked with a tag after the read-back
    assert sink.bytes_read == len(data)  # every byte read back once, across five invocations
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
    run_id = launch_qualification(h.deps()).detail["run_id"]
    drive(h, running_out)
    run = h.report(run_id)
    assert run.complete and run.counts["failed"] == 1
    assert "alpha/huge.bin" not in sink.objects
    report = json.loads(sink.objects[f"_azs3copy/reports/{run_id}.json"].data)
    assert "part 5" in report["failures"][0]["reason"]


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


class PartUploadedAgainWhileCompleting(MemoryObjectSink):
    """S3 with SSE-KMS, where a duplicate delivery of one part's message is handled while the recombinator
    is between ListParts and CompleteMultipartUpload: the part it listed now has another ETag."""

    def __init__(self) -> None:
        super().__init__(kms=True)
        self.between: Callable[[], None] | None = None

    def list_parts(self, key: str, upload_id: str) -> Iterator[UploadedPart]:
        yield from super().list_parts(key, upload_id)
        if self.between is not None:
            between, self.between = self.between, None
            between()


def test_a_part_uploaded_again_between_listing_and_completion_is_listed_again_and_the_blob_completes() -> (
    None
):
    source = MemoryBlobSource()
    data = os.urandom(13 * MiB)  # 3 parts of 5 MiB
    source.put("alpha", "big", data)
    sink = PartUploadedAgainWhileCompleting()
    # One attempt: the completion itself must list the parts again, not wait for Lambda to retry it.
    h = harness(source, sink, tuning=Tuning(large_threshold=12 * MiB, part_size=5 * MiB, max_attempts=1))
    run_id = launch_qualification(h.deps()).detail["run_id"]

    def duplicate_of_part_two() -> None:
        body = next(
            body
            for topic, body in h.publisher.sent
            if topic == "largefile-parter" and getattr(decode(body), "part", None) == 2
        )
        h.deliver("largefile-parter", body)

    sink.between = duplicate_of_part_two
    h.drain()
    run = h.report(run_id)
    assert sink.between is None  # the duplicate came between the listing and the completion
    assert run.complete and run.counts["copied"] == 1 and run.counts["failed"] == 0, h.dead_letters
    assert sink.objects["alpha/big"].data == data
    assert not sink.uploads and not h.dead_letters and not h.fatal


def test_a_large_copy_that_could_not_be_recorded_is_recorded_by_a_redrive_without_copying_again() -> None:
    source = MemoryBlobSource()
    data = os.urandom(13 * MiB)
    source.put("alpha", "big", data)
    sink = MemoryObjectSink(versioned=True)
    ledger = RecordingRefused(refusals=1_000)
    h = harness(source, sink, ledger=ledger)
    run_id = h.run()
    assert run_id and [topic for topic, _, _ in h.dead_letters] == ["largefile-recombinator"]
    assert ledger.get_blob(run_id, "alpha/big").state == "pending"  # type: ignore[union-attr]
    ledger.refusals = 0  # DynamoDB answers again; the operator redrives the dead letter (a new request id)
    topic, body, _ = h.dead_letters.pop()
    h.deliver(topic, body)
    run = h.report(run_id)
    assert run.complete and run.counts["copied"] == 1 and run.report_key
    assert sink.objects["alpha/big"].data == data and len(sink.versions["alpha/big"]) == 1
