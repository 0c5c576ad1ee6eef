"""download: copy each blob of a batch into one S3 object (one PutObject, or streamed as parts)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from aws_lambda_powertools import Logger

from azs3copy.checksums import Digest, Segment, crc32_of
from azs3copy.errors import (
    Azs3copyError,
    ChecksumMismatchError,
    SourceChangedError,
    TransientError,
    UploadGoneError,
)
from azs3copy.keys import object_key
from azs3copy.ledger import Finish
from azs3copy.messages import (
    BlobRef,
    DownloadTask,
)
from azs3copy.redaction import redact
from azs3copy.steps.context import Deps, Invocation, Outcome, run_settings
from azs3copy.steps.manifest import ManifestLine, copied_line, write_manifest_part
from azs3copy.steps.report import maybe_report
from azs3copy.steps.settle import release, settle
from azs3copy.steps.verify import (
    completed_before,
    marked_on_write,
    object_attrs,
    verified_copy,
    verify_and_mark,
)
from azs3copy.transports import CompletedPart

logger = Logger(child=True)


#: What a copy wrote: the object version and the CRC32 it sent (None, None when an earlier attempt wrote it).
Written = tuple[str | None, str | None]


def _copy_small_blob(deps: Deps, run_id: str, blob: BlobRef, key: str) -> Written:
    """Copy one blob: one PutObject, or streamed as parts when it is longer than a chunk. With
    verify=checksum the write carries the verified mark (in its metadata) and S3's check of its checksums is the proof; the
    blob's Content-MD5 is compared with the bytes read before the object can exist (one invocation reads
    them all)."""
    source, sink, chunk = deps.need_source(), deps.need_sink(), deps.tuning.chunk_size
    marked = marked_on_write(deps, blob, across_invocations=False)
    attrs = object_attrs(blob, run_settings(deps, run_id), marked=marked)
    if blob.size <= chunk:
        data, md5 = source.read_blob(blob)
        if len(data) != blob.size:
            raise SourceChangedError(f"{blob.blob_id}: read {len(data)} bytes of {blob.size}")
        if blob.content_md5 and md5 != blob.content_md5:
            raise ChecksumMismatchError(
                f"{blob.blob_id}: bytes read have MD5 {md5}, the blob's Content-MD5 is {blob.content_md5}"
            )
        crc = crc32_of(data)
        version = sink.put(key, data, crc32=crc, md5=md5, attrs=attrs)
        del data
        if not marked:
            verify_and_mark(deps, key, version, [Segment(blob.size, crc)], blob)
        return version, crc
    upload_id = sink.create_upload(key, attrs)
    try:
        digest, parts = Digest(), []
        for number, offset in enumerate(range(0, blob.size, chunk), start=1):
            data = source.read_range(blob, offset, min(chunk, blob.size - offset))
            crc = digest.update(data)
            parts.append(CompletedPart(number, sink.upload_part(key, upload_id, number, data, crc), crc))
            del data
        if digest.size != blob.size:
            raise SourceChangedError(f"{blob.blob_id}: read {digest.size} bytes of {blob.size}")
        if blob.content_md5 and digest.md5 != blob.content_md5:
            raise ChecksumMismatchError(
                f"{blob.blob_id}: bytes read have MD5 {digest.md5}, the blob's Content-MD5 is {blob.content_md5}"
            )
        try:
            version = sink.complete(key, upload_id, parts, crc32=digest.crc32)
        except UploadGoneError:  # completed, but the answer was lost and the resend found no upload
            done = completed_before(sink, key, blob)
            if done.verified:
                return None, None
            version, marked = done.version, False  # not written by this upload: checked below
    except BaseException:
        sink.abort(key, upload_id)
        raise
    if not marked:
        verify_and_mark(deps, key, version, [Segment(blob.size, digest.crc32)], blob)
    return version, digest.crc32


def download(deps: Deps, batch: DownloadTask, invocation: Invocation) -> Outcome:
    """Copy each blob of a batch into one S3 object, a few at a time, at the key it was listed for; then write
    the batch's manifest part and record the blobs copied together (one transaction for the batch)."""
    outcome = Outcome()

    def one(blob: BlobRef, listed_key: str | None) -> tuple[str, int, str | None, ManifestLine | None]:
        claim = deps.ledger.claim(
            batch.run_id, blob.blob_id, invocation.request_id, invocation.remaining_seconds()
        )
        if claim.outcome != "claimed":
            return ("done-before" if claim.outcome == "terminal" else "busy"), 0, None, None
        try:
            key = listed_key or object_key(
                run_settings(deps, batch.run_id).destination_prefix, blob.container, blob.name
            )
            written: Written = (None, None)
            if invocation.attempt > 1 and verified_copy(deps.need_sink(), key, blob):
                # An earlier attempt copied and verified this blob version, then could not record it.
                logger.info(
                    "verified copy found: recording it", extra={"run_id": batch.run_id, "blob": blob.blob_id}
                )
            else:
                written = _copy_small_blob(deps, batch.run_id, blob, key)
            line = copied_line(deps, batch.run_id, blob, key, *written)
        except Azs3copyError as error:
            state = settle(deps, batch.run_id, blob.blob_id, error, invocation)
            if state is None or error.retryable:
                if state is None:
                    deps.ledger.release(batch.run_id, blob.blob_id, invocation.request_id)
                return state or "retry", 0, redact(str(error), deps.secrets), None
            return state, 0, None, None
        except BaseException:
            deps.ledger.release(batch.run_id, blob.blob_id, invocation.request_id)
            raise
        return "copied", blob.size, None, line

    copied: list[tuple[BlobRef, ManifestLine]] = []
    with ThreadPoolExecutor(max_workers=max(1, min(deps.tuning.copy_threads, len(batch.blobs)))) as pool:
        keys: list[str | None] = list(batch.keys) if batch.keys else [None] * len(batch.blobs)
        for blob, (state, nbytes, why, line) in zip(
            batch.blobs, pool.map(one, batch.blobs, keys), strict=True
        ):
            if line is not None:
                copied.append((blob, line))
                continue
            outcome.count(state, nbytes)
            if why:
                outcome.retry.append(why)
    _record_copied(deps, batch.run_id, copied, invocation, outcome)
    maybe_report(deps, batch.run_id, invocation)
    if outcome.retry:
        what = "failed after their last attempt" if invocation.final_attempt else "will be retried"
        raise TransientError(f"{len(outcome.retry)} blob(s) of the batch {what}: {outcome.retry[0]}")
    return outcome


def _record_copied(
    deps: Deps,
    run_id: str,
    copied: list[tuple[BlobRef, ManifestLine]],
    invocation: Invocation,
    outcome: Outcome,
) -> None:
    """The batch's manifest part, then the blobs' outcomes in as few ledger writes as DynamoDB allows. The
    objects are verified and marked: when either write fails only their records are missing, so the claims
    are let go and the retry of the batch (or a redrive) takes the blobs at once and finds the verified
    copies."""
    if not copied:
        return
    try:
        write_manifest_part(deps, run_id, [line for _, line in copied])
        recorded = deps.ledger.finish_many(
            run_id, [Finish(blob.blob_id, "copied", None, blob.size) for blob, _ in copied]
        )
    except Azs3copyError as error:
        for blob, _ in copied:
            release(deps, run_id, blob.blob_id, invocation)
            why = f"{blob.blob_id} was copied and verified, but recording it failed: {error}"
            outcome.count("retry")
            outcome.retry.append(redact(why, deps.secrets))
        return
    for blob, _ in copied:
        if blob.blob_id not in recorded:
            outcome.count("done-before")  # another delivery of the batch recorded it first
            continue
        outcome.count("copied", blob.size)
        logger.info("blob copied", extra={"run_id": run_id, "blob": blob.blob_id, "bytes": blob.size})
