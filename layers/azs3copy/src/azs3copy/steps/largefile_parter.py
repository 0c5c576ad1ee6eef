"""largefile-parter: read one byte range from Azure (If-Match on the listed ETag) and upload it as one part."""

from __future__ import annotations

from azs3copy.checksums import crc32_of
from azs3copy.errors import (
    Azs3copyError,
    FatalError,
    SourceChangedError,
    UploadGoneError,
)
from azs3copy.ledger import TERMINAL_STATES
from azs3copy.messages import (
    LargefileParterTask,
    LargefileRecombinatorTask,
    encode,
)
from azs3copy.steps.context import Deps, Invocation, Outcome
from azs3copy.steps.report import maybe_report
from azs3copy.steps.settle import abandon_upload, settle


def largefile_parter(deps: Deps, task: LargefileParterTask, invocation: Invocation) -> Outcome:
    """Read one byte range from Azure (If-Match on the listed ETag) and upload it as one part."""
    source, sink, blob = deps.need_source(), deps.need_sink(), task.blob
    outcome = Outcome()
    record = deps.ledger.get_blob(task.run_id, blob.blob_id)
    if record and record.state in TERMINAL_STATES:
        outcome.count("done-before")
        maybe_report(deps, task.run_id, invocation)  # an earlier attempt may have failed writing it
        return outcome
    try:
        data = source.read_range(blob, task.offset, task.length)
        if len(data) != task.length:
            raise SourceChangedError(
                f"{blob.blob_id}: part {task.part} read {len(data)} bytes of {task.length}"
            )
        crc = crc32_of(data)
        sink.upload_part(task.key, task.upload_id, task.part, data, crc)
        del data
    except UploadGoneError as error:
        record = deps.ledger.get_blob(task.run_id, blob.blob_id)
        if record and record.state in TERMINAL_STATES:
            outcome.count("done-before")
            return outcome
        if task.part in deps.ledger.part_checksums(task.run_id, blob.blob_id):
            # This part went in before: the message came again (SNS redelivery, a retried invocation, a late
            # initializer) after the recombinator completed the upload. The blob is being verified.
            outcome.count("done-before")
            return outcome
        state = settle(
            deps, task.run_id, blob.blob_id, FatalError(f"multipart upload vanished: {error}"), invocation
        )
        outcome.count(state or "failed")
        maybe_report(deps, task.run_id, invocation)
        return outcome
    except Azs3copyError as error:
        record = deps.ledger.get_blob(task.run_id, blob.blob_id)
        if record and record.state in TERMINAL_STATES:  # another part already ended this blob
            outcome.count("done-before")
            return outcome
        state = settle(deps, task.run_id, blob.blob_id, error, invocation)
        if state is None:
            raise
        abandon_upload(deps, task.key, task.upload_id)
        outcome.count(state)
        maybe_report(deps, task.run_id, invocation)
        if error.retryable:
            raise  # the last attempt failed: recorded, and on to the dead-letter queue
        return outcome
    done = deps.ledger.record_part(task.run_id, blob.blob_id, task.part, crc)
    outcome.count("part-uploaded", task.length)
    if done >= task.parts:
        deps.publisher.publish(
            deps.topics.largefile_recombinator,
            [encode(LargefileRecombinatorTask(task.run_id, blob, task.key, task.upload_id))],
        )
        outcome.published = 1
    return outcome
