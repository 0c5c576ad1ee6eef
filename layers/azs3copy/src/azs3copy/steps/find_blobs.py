"""find-blobs: list one container page by page, skip what S3 already holds verified, and hand each page's
blobs to download (small) or largefile-initializer (large)."""

from __future__ import annotations

import hashlib
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
from azs3copy.transports import ListPage, ObjectSink

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
#: Listing shards are the virtual directories one level down: the names up to the next `/`.
SHARD_DELIMITER = "/"
#: The most bytes of prefixes one split records: the ledger holds them in one item (DynamoDB: 400 KB), and
#: 256 prefixes of 1,024 four-byte characters would not fit. A split past it is not made: the unit is listed
#: whole, as without shards.
MAX_SPLIT_BYTES = 256 * 1024


def listing_unit(container: str, shard: str | None) -> str:
    """The ledger's name for what one chain of find-blobs tasks lists: a container, or one shard of it.

    A shard's name is a digest of its prefix: a prefix may be 1 KiB of any characters, the ledger's sort keys
    hold the unit whole and use `#` as a separator."""
    if shard is None:
        return container
    return f"{container}~{hashlib.sha256(shard.encode()).hexdigest()[:32]}"


def _failed_entry(task: FindBlobsTask) -> str:
    return f"{task.container}/{task.shard or ''}"


def find_blobs(deps: Deps, task: FindBlobsTask, invocation: Invocation) -> Outcome:
    """List one container (or one shard of it) page by page; register, then publish, each page's blobs.

    A listing that cannot go on (wrong credentials, a deleted container, or retries used up) is recorded as
    a failed entry `<container>/` (`<container>/<shard>` for a shard) with the reason, so the run still ends
    and its report says why."""
    outcome = Outcome()
    unit = listing_unit(task.container, task.shard)
    try:
        return _list_container(deps, task, invocation, outcome)
    except Azs3copyError as error:
        if error.retryable and not invocation.final_attempt:
            raise
        what = f"container {task.container}" + (f" under {task.shard}" if task.shard else "")
        reason = redact(f"listing of {what} stopped: {type(error).__name__}: {error}", deps.secrets)
        entry = _failed_entry(task)
        deps.ledger.register_page(task.run_id, unit, LISTING_FAILED_PAGE, [], [(entry, 0, "failed", reason)])
        deps.ledger.finish_container(task.run_id, unit)
        if not error.retryable and deps.on_fatal:
            deps.on_fatal(task.run_id, entry, reason)
        logger.error(
            "listing failed",
            extra={"run_id": task.run_id, "container": task.container, "shard": task.shard, "reason": reason},
        )
        outcome.count("failed")
        maybe_report(deps, task.run_id, invocation)
        if error.retryable:
            raise  # the last attempt failed: recorded, and on to the dead-letter queue
        return outcome


def _list_container(deps: Deps, task: FindBlobsTask, invocation: Invocation, outcome: Outcome) -> Outcome:
    settings, tuning = run_settings(deps, task.run_id), deps.tuning
    unit = listing_unit(task.container, task.shard)
    prefix = task.shard if task.shard is not None else settings.prefix
    marker, page = task.marker, task.page
    first: ListPage | None = None
    if page == 0 and marker is None:
        shards, first = _shards(deps, task, unit, prefix)
        if shards:
            divisible = len(shards) == 1
            deps.publisher.publish(
                deps.topics.find_blobs,
                [
                    encode(FindBlobsTask(task.run_id, task.container, shard=shard, divisible=divisible))
                    for shard in shards
                ],
            )
    else:
        shards = deps.ledger.get_shards(task.run_id, unit) or []
    outcome.detail["shards"] = len(shards)
    # A split unit lists only its own blobs, those above the next `/`: its shards list the rest.
    delimiter = SHARD_DELIMITER if shards else None
    while True:
        known = deps.ledger.get_page(task.run_id, unit, page)
        if known is not None and known.status != "registering":
            # An earlier attempt (or another delivery) registered this page: publish what it registered, not
            # what a listing shows now, and go on where that listing went on.
            if known.status == "registered":
                _publish(
                    deps, task.run_id, unit, page, deps.ledger.page_blobs(task.run_id, unit, page), outcome
                )
            following = known.next_marker
        else:
            listing = first or deps.need_source().list_page(
                task.container, prefix, marker, tuning.page_size, delimiter
            )
            following = _register_page(deps, settings, task, unit, page, listing, outcome)
        first = None
        outcome.detail["pages"] = outcome.detail.get("pages", 0) + 1
        marker, page = following, page + 1
        if marker is None:
            deps.ledger.finish_container(task.run_id, unit)
            maybe_report(deps, task.run_id, invocation)
            return outcome
        if invocation.remaining_seconds() < tuning.listing_reserve_seconds:
            following_task = FindBlobsTask(task.run_id, task.container, marker, page, task.shard)
            deps.publisher.publish(deps.topics.find_blobs, [encode(following_task)])
            outcome.detail["continued_at_page"] = page
            return outcome


def _shards(deps: Deps, task: FindBlobsTask, unit: str, prefix: str) -> tuple[list[str], ListPage | None]:
    """The prefixes this unit is split into (none: it is listed whole), decided once; and the listing that
    decided them when it is also the unit's first page, so it is not asked for twice.

    A container is split when the level one `/` below its prefix fits on one page and holds 1 to
    `listing_shards` virtual directories: each is then listed by its own chain of tasks, at once, where a
    single chain would list the container page after page (Azure hands out the next page only to whoever
    holds the marker). A shard splits in turn only when it was its listing's only one (`data/` holding
    everything): splitting every level would spend a task on each small directory of a deep tree."""
    recorded = deps.ledger.get_shards(task.run_id, unit)
    if recorded is not None:
        return recorded, None
    cap = deps.tuning.listing_shards
    if cap == 0 or (task.shard is not None and not task.divisible):
        return [], None
    listing = deps.need_source().list_page(
        task.container, prefix, None, deps.tuning.page_size, SHARD_DELIMITER
    )
    split = listing.prefixes if listing.marker is None and 1 <= len(listing.prefixes) <= cap else []
    if sum(len(shard.encode()) for shard in split) > MAX_SPLIT_BYTES:
        split = []
    shards = deps.ledger.open_shards(task.run_id, unit, split)
    # Listed with the delimiter, the page is the split unit's first; with nothing below it, the whole unit's.
    same = shards == split and (shards or (listing.marker is None and not listing.prefixes))
    return shards, listing if same else None


def tags_unreadable(container: str) -> str:
    return (
        f"container {container}: the credential may not read blob index tags, so its blobs were copied "
        "without their tags (grant the blob tags read action, or a SAS with the t permission: "
        "docs/azure-access.md); a later run does not add them to copies already made"
    )


def _register_page(
    deps: Deps,
    settings: RunSettings,
    task: FindBlobsTask,
    unit: str,
    page: int,
    listing: ListPage,
    outcome: Outcome,
) -> str | None:
    """Record one listed page's blobs in the ledger, publish those to copy; returns the listing's marker."""
    candidates = [blob for blob in listing.blobs if selected(settings, blob)]
    if any(blob.ref.tags is None for blob in candidates):
        deps.ledger.add_note(task.run_id, tags_unreadable(task.container))
    pending, decided = _triage(deps, settings, candidates)
    registration = deps.ledger.register_page(
        task.run_id,
        unit,
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
    _publish(deps, task.run_id, unit, page, registration.pending, outcome)
    outcome.detail["candidates"] = outcome.detail.get("candidates", 0) + len(candidates)
    logger.info(
        "listed page",
        extra={
            "run_id": task.run_id,
            "container": task.container,
            "shard": task.shard,
            "page": page,
            "blobs": len(candidates),
        },
    )
    return listing.marker


def _publish(
    deps: Deps, run_id: str, unit: str, page: int, blobs: list[ListedBlob], outcome: Outcome
) -> None:
    """Hand the page's blobs to their copy path, then mark the page published."""
    outcome.published += publish_blobs(deps, run_id, blobs)
    deps.ledger.mark_page_published(run_id, unit, page)


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
