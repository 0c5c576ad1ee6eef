"""largefile-parter: one ranged read, one part; a blob changed mid-copy and parts delivered again."""

from __future__ import annotations

import os

from azs3copy.messages import BlobRef
from azs3copy.steps.launch_qualification import launch_qualification
from azs3copy.steps.verify import VERIFIED_MARK
from tests.support.fakes import MemoryBlobSource, MemoryObjectSink
from tests.unit.steps.common import MiB, assert_copied, harness
from tests.unit.steps.test_largefile_recombinator import drive, running_out


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


def test_part_messages_delivered_again_after_the_upload_was_completed_leave_the_copy_copied() -> None:
    source = MemoryBlobSource()
    data = os.urandom(23 * MiB + 17)  # 5 parts of 5 MiB
    source.put("alpha", "huge.bin", data)
    sink = MemoryObjectSink(versioned=True)
    h = harness(source, sink)
    run_id = launch_qualification(h.deps()).detail["run_id"]
    redelivered = False

    def redeliver_parts_mid_read_back(delivered: list[tuple[str, str]]) -> None:
        """Once the recombinator has completed the upload and handed its read-back over, every part message
        arrives again (SNS redelivery, a retried parter), ahead of the read-back's continuation."""
        nonlocal redelivered
        topic, _ = delivered[-1]
        if topic == "largefile-recombinator" and not redelivered:
            redelivered = True
            assert not sink.uploads and "alpha/huge.bin" in sink.objects  # completed, not yet verified
            for part in reversed([entry for entry in delivered if entry[0] == "largefile-parter"]):
                h.publisher.queue.appendleft(part)

    delivered = drive(h, running_out, after=redeliver_parts_mid_read_back)
    assert redelivered and sum(topic == "largefile-parter" for topic, _ in delivered) == 10
    run = h.report(run_id)
    assert run.complete and run.counts["copied"] == 1 and not run.counts.get("failed")
    assert sink.objects["alpha/huge.bin"].data == data
    assert sink.objects["alpha/huge.bin"].tags.get(VERIFIED_MARK)  # marked with a tag after the read-back
    assert len(sink.versions["alpha/huge.bin"]) == 1
    assert not h.dead_letters
