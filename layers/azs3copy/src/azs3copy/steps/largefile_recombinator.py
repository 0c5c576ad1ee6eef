"""largefile-recombinator: complete the multipart upload once, verify the object, record the blob copied."""

from __future__ import annotations

from collections.abc import Callable

from aws_lambda_powertools import Logger

from azs3copy.checksums import Segment, combined_crc32, composite_crc32
from azs3copy.errors import (
    Azs3copyError,
    ChecksumMismatchError,
    FatalError,
    PartReplacedError,
    TransientError,
    UploadGoneError,
)
from azs3copy.messages import (
    LargefileRecombinatorTask,
    encode,
)
from azs3copy.planner import PartPlan, plan_parts
from azs3copy.steps.context import Deps, Invocation, Outcome
from azs3copy.steps.manifest import copied_line, write_manifest_part
from azs3copy.steps.report import maybe_report
from azs3copy.steps.settle import abandon_upload, release, settle
from azs3copy.steps.verify import (
    Completed,
    compare_checksum,
    completed_before,
    discard,
    mark_verified,
    marked_on_write,
    read_back,
)
from azs3copy.transports import CompletedPart

logger = Logger(child=True)


def largefile_recombinator(deps: Deps, task: LargefileRecombinatorTask, invocation: Invocation) -> Outcome:
    """Complete the object once every planned part is in S3 with its planned size, then verify it.

    A read-back that cannot end before the invocation's time runs out is continued by a fresh invocation:
    the claim is released and a LargefileRecombinatorTask naming the first part still to check is published."""
    blob = task.blob
    outcome = Outcome()
    claim = deps.ledger.claim(
        task.run_id, blob.blob_id, invocation.request_id, invocation.remaining_seconds()
    )
    if claim.outcome != "claimed" or claim.record is None:
        outcome.count("done-before" if claim.outcome == "terminal" else "busy")
        if claim.outcome == "terminal":
            maybe_report(deps, task.run_id, invocation)  # an earlier attempt may have failed writing it
        return outcome
    record = claim.record
    try:
        plan = plan_parts(blob.size, record.part_size)
        checksums = deps.ledger.part_checksums(task.run_id, blob.blob_id)
        absent = [number for number in range(1, plan.count + 1) if number not in checksums]
        segments = [Segment(part.length, checksums.get(part.number, "")) for part in plan.parts()]
        version = task.version_id
        if task.verify_from:  # a read-back this blob's earlier invocation handed over
            handed_over = _verify(
                deps, task, invocation, segments, absent, task.version_id, task.verify_from - 1
            )
        else:
            completed = _complete_upload(deps, task, plan, record.checksum_type, segments, absent)
            version = completed.version
            # verified: S3 checked the whole object this completion made, marked when the upload was opened,
            # or an earlier attempt completed and marked it, then died before recording it
            handed_over = (
                None
                if completed.verified
                else _verify(deps, task, invocation, segments, absent, completed.version, 0)
            )
        if handed_over is not None:
            return handed_over
    except Azs3copyError as error:
        state = settle(deps, task.run_id, blob.blob_id, error, invocation)
        if state is None:
            deps.ledger.release(task.run_id, blob.blob_id, invocation.request_id)
            raise
        abandon_upload(deps, task.key, task.upload_id)
        outcome.count(state)
        maybe_report(deps, task.run_id, invocation)
        if error.retryable:
            raise  # the last attempt failed: recorded, and on to the dead-letter queue
        return outcome
    except BaseException:
        deps.ledger.release(task.run_id, blob.blob_id, invocation.request_id)
        raise
    try:
        whole = record.checksum_type == "FULL_OBJECT"
        crc = combined_crc32(segments) if whole else composite_crc32(segments)
        line = copied_line(deps, task.run_id, blob, task.key, version, crc, record.checksum_type)
        write_manifest_part(
            deps, task.run_id, [line]
        )  # before the record: a blob counted copied has its line
        deps.ledger.finish(task.run_id, blob.blob_id, "copied", None, blob.size)
    except Azs3copyError:
        # The object is verified and marked; only its record is missing. The claim is let go, so the retry (or
        # a redrive) takes the blob at once: it finds the upload gone and the object verified, and records it.
        release(deps, task.run_id, blob.blob_id, invocation)
        raise
    outcome.count("copied", blob.size)
    logger.info("large blob copied", extra={"run_id": task.run_id, "blob": blob.blob_id, "bytes": blob.size})
    maybe_report(deps, task.run_id, invocation)
    return outcome


def _verify(
    deps: Deps,
    task: LargefileRecombinatorTask,
    invocation: Invocation,
    segments: list[Segment],
    absent: list[int],
    version: str | None,
    first: int,
) -> Outcome | None:
    """Verify the completed object from segment `first` on and mark it verified. Returns the outcome of an
    invocation that handed the rest of the read-back to a fresh one, None when the object is verified."""
    blob = task.blob
    if absent:
        raise FatalError(f"{task.key}: the ledger lacks the checksums of parts {absent[:10]} to verify")
    resume: int | None = None
    try:
        # A blob with a Content-MD5 is read back in either mode: only the bytes can be compared with it.
        if deps.tuning.verify == "readback" or blob.content_md5:
            stop = _time_is_short(deps, invocation)
            resume = read_back(deps, task.key, version, segments, blob.content_md5, first=first, stop=stop)
        else:
            compare_checksum(deps, task.key, version, segments)
    except ChecksumMismatchError as error:
        discard(deps, task.key, version)
        raise FatalError(f"verification failed, object removed: {error}") from None
    if resume is None:
        mark_verified(deps, task.key, version, blob)
        return None
    deps.ledger.release(task.run_id, blob.blob_id, invocation.request_id)
    following = LargefileRecombinatorTask(task.run_id, blob, task.key, task.upload_id, resume + 1, version)
    deps.publisher.publish(deps.topics.largefile_recombinator, [encode(following)])
    outcome = Outcome(published=1, detail={"verified_parts": resume, "parts": len(segments)})
    outcome.count("verifying")
    logger.info(
        "read-back continues in a fresh invocation",
        extra={"run_id": task.run_id, "blob": blob.blob_id, "verified_parts": resume, "parts": len(segments)},
    )
    return outcome


def _time_is_short(deps: Deps, invocation: Invocation) -> Callable[[float], bool]:
    """Whether a read-back should hand over now: less time left than the reserve and twice the slowest part."""
    return lambda slowest: invocation.remaining_seconds() < deps.tuning.verify_reserve_seconds + 2 * slowest


#: How often the recombinator lists the parts and completes when a part was uploaded again in between.
COMPLETE_ATTEMPTS = 3


def _complete_upload(
    deps: Deps,
    task: LargefileRecombinatorTask,
    plan: PartPlan,
    checksum_type: str,
    segments: list[Segment],
    absent: list[int],
) -> Completed:
    """Complete the multipart upload once every planned part is in with its planned size. An upload that is
    gone was completed by an earlier attempt when the object at the key was written from this blob.

    A part uploaded again after the listing (a duplicate delivery of its message) has another ETag when S3
    encrypts with KMS, and S3 refuses the completion (InvalidPart): the parts are listed again."""
    sink, blob = deps.need_sink(), task.blob
    whole = combined_crc32(segments) if checksum_type == "FULL_OBJECT" else None
    # The initializer opened the upload with the mark in its metadata (verify=checksum, no Content-MD5): S3
    # checks the assembly against `whole` and the object exists only if it matches. An upload opened unmarked
    # (by readback mode) completes unmarked, and is read back and marked with a tag.
    marked = whole is not None and marked_on_write(deps, blob, across_invocations=True)
    for attempt in range(1, COMPLETE_ATTEMPTS + 1):
        try:
            parts = _listed_parts(deps, task, plan, segments, absent)
            return Completed(sink.complete(task.key, task.upload_id, parts, crc32=whole), verified=marked)
        except UploadGoneError:
            # Completed before, or S3 completed it but the answer was lost and the SDK's resend found the
            # upload gone (NoSuchUpload): the object is there, to be verified like any other.
            return completed_before(sink, task.key, blob)
        except PartReplacedError as error:
            if attempt == COMPLETE_ATTEMPTS:
                raise
            logger.warning(
                "a part was uploaded again after the parts were listed: listing them again",
                extra={"run_id": task.run_id, "blob": blob.blob_id, "error": str(error)},
            )
    raise AssertionError("unreachable")


def _listed_parts(
    deps: Deps, task: LargefileRecombinatorTask, plan: PartPlan, segments: list[Segment], absent: list[int]
) -> list[CompletedPart]:
    """The parts to complete with, as ListParts has them now; TransientError until every planned part is in
    with its planned size and its recorded checksum."""
    listed = {part.number: part for part in deps.need_sink().list_parts(task.key, task.upload_id)}
    missing = [part.number for part in plan.parts() if part.number not in listed]
    wrong = [p.number for p in plan.parts() if p.number in listed and listed[p.number].size != p.length]
    if missing or wrong:
        raise TransientError(
            f"{task.key}: not every part is in yet (missing {missing[:10]}, wrong size {wrong[:10]})"
        )
    if absent:
        raise TransientError(f"{task.key}: no recorded checksum for parts {absent[:10]}")
    return [CompletedPart(n, listed[n].etag, segments[n - 1].crc32) for n in range(1, plan.count + 1)]
