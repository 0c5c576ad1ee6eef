"""find-blobs: list one container page by page, skip what S3 already holds verified, and hand each page's
blobs to download (small) or largefile-initializer (large)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from fnmatch import fnmatchcase

from aws_lambda_powertools import Logger

from azs3copy.errors import (
    Azs3copyError,
    BlobRejectedError,
)
from azs3copy.keys import object_key
from azs3copy.ledger import ListedBlob
from azs3copy.messages import (
    BlobRef,
    FindBlobsTask,
    LargefileInitializerTask,
    SourceBlob,
    download_tasks,
    encode,
)
from azs3copy.planner import MAX_OBJECT_SIZE, plan_parts
from azs3copy.redaction import redact
from azs3copy.settings import RunSettings
from azs3copy.steps.context import Deps, Invocation, Outcome, run_settings
from azs3copy.steps.report import maybe_report
from azs3copy.steps.verify import source_metadata, verified_copy
from azs3copy.transports import ObjectSink

logger = Logger(child=True)


def selected(settings: RunSettings, blob: SourceBlob) -> bool:
    """Whether the settings pick this listed blob: modified at or after begindate, a file (not a directory
    marker), and matching include/exclude."""
    name = blob.ref.name
    if blob.is_directory or blob.ref.last_modified < settings.begindate:
        return False
    if settings.include and not any(fnmatchcase(name, pattern) for pattern in settings.include):
        return False
    return not any(fnmatchcase(name, pattern) for pattern in settings.exclude)


#: The ledger page that records a container whose listing could not go on.
LISTING_FAILED_PAGE = 99_999_999


def find_blobs(deps: Deps, task: FindBlobsTask, invocation: Invocation) -> Outcome:
    """List one container page by page; register, then publish, each page's blobs.

    A listing that cannot go on (wrong credentials, a deleted container, or retries used up) is recorded as
    a failed entry `<container>/` with the reason, so the run still ends and its report says why."""
    outcome = Outcome()
    try:
        return _list_container(deps, task, invocation, outcome)
    except Azs3copyError as error:
        if error.retryable and not invocation.final_attempt:
            raise
        reason = redact(
            f"listing of container {task.container} stopped: {type(error).__name__}: {error}", deps.secrets
        )
        deps.ledger.register_page(
            task.run_id,
            task.container,
            LISTING_FAILED_PAGE,
            [],
            [(f"{task.container}/", 0, "failed", reason)],
        )
        deps.ledger.finish_container(task.run_id, task.container)
        if not error.retryable and deps.on_fatal:
            deps.on_fatal(task.run_id, f"{task.container}/", reason)
        logger.error(
            "listing failed", extra={"run_id": task.run_id, "container": task.container, "reason": reason}
        )
        outcome.count("failed")
        maybe_report(deps, task.run_id, invocation)
        if error.retryable:
            raise  # the last attempt failed: recorded, and on to the dead-letter queue
        return outcome


def _list_container(deps: Deps, task: FindBlobsTask, invocation: Invocation, outcome: Outcome) -> Outcome:
    settings, tuning = run_settings(deps, task.run_id), deps.tuning
    marker, page = task.marker, task.page
    while True:
        known = deps.ledger.get_page(task.run_id, task.container, page)
        if known is not None and known.status != "registering":
            # An earlier attempt (or another delivery) registered this page: publish what it registered, not
            # what a listing shows now, and go on where that listing went on.
            if known.status == "registered":
                _publish(deps, task, page, deps.ledger.page_blobs(task.run_id, task.container, page), outcome)
            following = known.next_marker
        else:
            following = _register_page(deps, settings, task, marker, page, outcome)
        outcome.detail["pages"] = outcome.detail.get("pages", 0) + 1
        marker, page = following, page + 1
        if marker is None:
            deps.ledger.finish_container(task.run_id, task.container)
            maybe_report(deps, task.run_id, invocation)
            return outcome
        if invocation.remaining_seconds() < tuning.listing_reserve_seconds:
            following_task = FindBlobsTask(task.run_id, task.container, marker, page)
            deps.publisher.publish(deps.topics.find_blobs, [encode(following_task)])
            outcome.detail["continued_at_page"] = page
            return outcome


def tags_unreadable(container: str) -> str:
    return (
        f"container {container}: the credential may not read blob index tags, so its blobs were copied "
        "without their tags (grant the blob tags read action, or a SAS with the t permission: "
        "docs/azure-access.md); a later run does not add them to copies already made"
    )


def _register_page(
    deps: Deps, settings: RunSettings, task: FindBlobsTask, marker: str | None, page: int, outcome: Outcome
) -> str | None:
    """List one page, record its blobs in the ledger, publish those to copy; returns the listing's marker."""
    source = deps.need_source()
    listing = source.list_page(task.container, settings.prefix, marker, deps.tuning.page_size)
    candidates = [blob for blob in listing.blobs if selected(settings, blob)]
    if any(blob.ref.tags is None for blob in candidates):
        deps.ledger.add_note(task.run_id, tags_unreadable(task.container))
    pending, decided = _triage(deps, settings, candidates)
    registration = deps.ledger.register_page(
        task.run_id,
        task.container,
        page,
        [ListedBlob(blob, key) for blob, key in pending],
        [(blob.blob_id, blob.size, state, reason) for blob, state, reason in decided],
        listing.marker,
    )
    for _, state, _ in decided:
        outcome.count(state)
    for _ in registration.refused:
        outcome.count("failed")
    # Each blob refused for good is told once: one refused as listed (key, size) by the page's first attempt,
    # one whose record the ledger could not hold by the attempt that recorded it failed instead.
    told = list(registration.refused)
    if registration.status == "new":
        told += [(blob.blob_id, reason) for blob, state, reason in decided if state == "failed"]
    for blob_id, reason in told:
        if deps.on_fatal:
            deps.on_fatal(task.run_id, blob_id, reason)
    _publish(deps, task, page, registration.pending, outcome)
    outcome.detail["candidates"] = outcome.detail.get("candidates", 0) + len(candidates)
    logger.info(
        "listed page",
        extra={"run_id": task.run_id, "container": task.container, "page": page, "blobs": len(candidates)},
    )
    return listing.marker


def _publish(deps: Deps, task: FindBlobsTask, page: int, blobs: list[ListedBlob], outcome: Outcome) -> None:
    """Hand the page's blobs to their copy path, then mark the page published."""
    outcome.published += publish_blobs(deps, task.run_id, blobs)
    deps.ledger.mark_page_published(task.run_id, task.container, page)


def publish_blobs(deps: Deps, run_id: str, blobs: list[ListedBlob]) -> int:
    """Hand blobs to download (small, in batches) or largefile-initializer (large); returns the messages sent."""
    tuning = deps.tuning
    small = [(blob.ref, blob.key) for blob in blobs if blob.ref.size < tuning.large_threshold]
    large = [(blob.ref, blob.key) for blob in blobs if blob.ref.size >= tuning.large_threshold]
    batches = download_tasks(run_id, small, max_blobs=tuning.batch_blobs, max_bytes=tuning.batch_bytes)
    if batches:
        deps.publisher.publish(deps.topics.download, [encode(batch) for batch in batches])
    if large:
        deps.publisher.publish(
            deps.topics.largefile_initializer,
            [encode(LargefileInitializerTask(run_id, blob, key)) for blob, key in large],
        )
    return len(batches) + len(large)


def _triage(
    deps: Deps, settings: RunSettings, candidates: list[SourceBlob]
) -> tuple[list[tuple[BlobRef, str]], list[tuple[BlobRef, str, str]]]:
    """Split a page into blobs to copy (with their keys) and blobs whose outcome is known at once."""
    sink = deps.need_sink()
    pending: list[tuple[BlobRef, str]] = []
    decided: list[tuple[BlobRef, str, str]] = []
    for blob in candidates:
        ref = blob.ref
        try:
            key = object_key(settings.destination_prefix, ref.container, ref.name)
            if ref.size > MAX_OBJECT_SIZE:
                plan_parts(ref.size, deps.tuning.part_size)  # raises with the reason
            source_metadata(ref)
        except BlobRejectedError as error:
            decided.append((ref, "failed", str(error)))
            continue
        if blob.archived:
            decided.append((ref, "needs-rehydration", "in the archive tier: rehydrate it in Azure first"))
            continue
        pending.append((ref, key))
    checked = _unchanged_in_s3(sink, pending, deps.tuning.head_threads)
    for ref, _ in pending:
        found = checked.get(ref.blob_id)
        if isinstance(found, Azs3copyError):  # this blob alone: the others of the page go on
            why = redact(
                f"could not check the object S3 holds for it: {type(found).__name__}: {found}", deps.secrets
            )
            decided.append((ref, "failed", why))
        elif found:
            decided.append(
                (ref, "skipped", "already in S3, verified as a copy of the same source ETag and size")
            )
    pending = [(ref, key) for ref, key in pending if ref.blob_id not in checked]
    return pending, decided


def _unchanged_in_s3(
    sink: ObjectSink, pending: list[tuple[BlobRef, str]], threads: int
) -> dict[str, bool | Azs3copyError]:
    """True for the blob ids whose S3 object was verified as a copy of the same source ETag and size, and the
    error for those whose object could not be checked for a reason no retry clears (a retryable one is raised:
    the listing is tried again).

    One ranged listing of the page's key span finds which keys exist with the right size; only those have
    their tags read (one request each, where a HEAD was before)."""
    if not pending:
        return {}
    keys = sorted((key for _, key in pending), key=str.encode)
    prefix = _common_prefix(keys)
    low = keys[0]
    start_after = low[:-1] if low else low  # just before the lowest key
    sizes = dict(sink.list_sizes(prefix, start_after, keys[-1]))
    maybe = [(ref, key) for ref, key in pending if sizes.get(key) == ref.size]

    def check(pair: tuple[BlobRef, str]) -> tuple[str, bool | Azs3copyError]:
        try:
            return pair[0].blob_id, verified_copy(sink, pair[1], pair[0])
        except Azs3copyError as error:
            if error.retryable:
                raise
            return pair[0].blob_id, error

    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(maybe) or 1))) as pool:
        return {blob_id: found for blob_id, found in pool.map(check, maybe) if found is not False}


def _common_prefix(keys: list[str]) -> str:
    first, last = keys[0], keys[-1]
    length = 0
    while length < min(len(first), len(last)) and first[length] == last[length]:
        length += 1
    return first[:length]
