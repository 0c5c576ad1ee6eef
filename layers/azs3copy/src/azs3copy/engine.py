"""The copy engine: what each function does, over a BlobSource, an ObjectSink, a Ledger and a Publisher.

It names no SDK. Every step is safe to run twice on the same message: the ledger's conditional writes decide
who does a piece of work and record its outcome once.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
import uuid
import zlib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Any, Literal, Protocol

from aws_lambda_powertools import Logger

from azs3copy.checksums import Digest, crc32_b64, crc32_of, md5_b64
from azs3copy.errors import (
    Azs3copyError,
    BlobRejectedError,
    ChecksumMismatchError,
    FatalError,
    SourceChangedError,
    TransientError,
    UploadGoneError,
)
from azs3copy.keys import object_key
from azs3copy.ledger import TERMINAL_STATES, Ledger, RunInProgressError, RunRecord
from azs3copy.model import (
    BlobRef,
    ContainerTask,
    LargeBlob,
    Message,
    PartTask,
    RecombineTask,
    SmallBatch,
    SourceBlob,
    batch_small_blobs,
    encode,
    iso,
)
from azs3copy.planner import MAX_OBJECT_SIZE, MAX_PART_SIZE, MiB, PartPlan, check_part_size, plan_parts
from azs3copy.settings import Settings
from azs3copy.transports import WRITE_ID_BYTES, BlobSource, CompletedPart, ObjectAttrs, ObjectSink

logger = Logger(child=True)

META_PREFIX = "azs3copy-source-"
MAX_METADATA_BYTES = 2048  # S3's limit on user-defined metadata


@dataclass(frozen=True)
class Tuning:
    large_threshold: int = 100 * MiB
    part_size: int = 16 * MiB
    chunk_size: int = 8 * MiB
    page_size: int = 5000
    max_attempts: int = 3
    verify: Literal["readback", "checksum"] = "readback"
    report_prefix: str = "_azs3copy/reports/"
    stale_run_seconds: float = 24 * 3600
    batch_blobs: int = 25
    batch_bytes: int = 64 * MiB
    copy_threads: int = 4
    #: The largest part a parter can hold (AZS3COPY_MAX_PART_SIZE, from its memory size): larger parts are
    #: refused when the upload is planned, not found out by an out-of-memory parter.
    max_part_size: int = MAX_PART_SIZE
    head_threads: int = 8
    #: find-blobs hands the rest of a container to a fresh invocation when less than this is left.
    listing_reserve_seconds: float = 120.0
    #: The recombinator hands the rest of a read-back to a fresh invocation when less than this (and twice
    #: the slowest part's read) is left.
    verify_reserve_seconds: float = 60.0

    def __post_init__(self) -> None:
        check_part_size(self.part_size)
        if self.chunk_size < 5 * MiB:
            raise ValueError("chunk size must be at least 5 MiB (S3's smallest multipart part)")


@dataclass(frozen=True)
class Topics:
    """Topic ARNs; empty for the topics a function does not publish to (config.PUBLISHES)."""

    containers: str = ""
    small: str = ""
    large: str = ""
    parts: str = ""
    recombine: str = ""


class Publisher(Protocol):
    def publish(self, topic: str, bodies: list[str]) -> None:
        """Publish every body to the topic (batched by the implementation); raises on any failure."""
        ...


@dataclass
class Invocation:
    """What the engine needs to know about the running invocation."""

    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    final_attempt: bool = True
    remaining_seconds: Callable[[], float] = lambda: 900.0


@dataclass
class Deps:
    """The transports and settings of a function. Only what the function uses needs to be set."""

    ledger: Ledger
    publisher: Publisher
    topics: Topics
    tuning: Tuning = field(default_factory=Tuning)
    sink: ObjectSink | None = None
    source: BlobSource | None = None
    settings: Settings | None = None
    #: Credential values to blank out of every recorded reason and log line.
    secrets: tuple[str, ...] = ()
    #: Told of every blob failed for good by an error no retry can fix, as (run id, blob id, reason); the
    #: handler puts them in the function's dead-letter queue, where exhausted retries land too.
    on_fatal: Callable[[str, str, str], None] | None = None

    def need_sink(self) -> ObjectSink:
        if self.sink is None:
            raise FatalError("this function has no destination bucket configured")
        return self.sink

    def need_source(self) -> BlobSource:
        if self.source is None:
            raise FatalError("this function has no Azure source configured")
        return self.source

    def need_settings(self) -> Settings:
        if self.settings is None:
            raise FatalError("this function has no settings loaded")
        return self.settings


def new_run_id(now: datetime | None = None) -> str:
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


_SIG = re.compile(r"(sig|se|sv|sp|sr|st|skoid|sktid|skt|ske|sks|skv)=[^&\s'\"]+", re.IGNORECASE)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """The text with every credential value and SAS signature parameter blanked."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _SIG.sub(lambda match: f"{match.group(1)}=***", text)


# --- results ----------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one invocation did, for the handler's response, logs and metrics."""

    states: dict[str, int] = field(default_factory=dict)
    bytes_copied: int = 0
    published: int = 0
    retry: list[str] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)

    def count(self, state: str, nbytes: int = 0) -> None:
        self.states[state] = self.states.get(state, 0) + 1
        self.bytes_copied += nbytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "states": dict(self.states),
            "bytes_copied": self.bytes_copied,
            "published": self.published,
            **({"retry": self.retry} if self.retry else {}),
            **self.detail,
        }


# --- launch -----------------------------------------------------------------------------------------------


def launch(
    deps: Deps, *, force: bool = False, now: datetime | None = None, invocation: Invocation | None = None
) -> Outcome:
    """Start a run when the secret says so: one listing message per container.

    A retry of the invocation that started a run (same request id) publishes that run's containers again (a
    listing delivered twice changes nothing), so a launch that died between starting its run and announcing
    it still gets the run going. While another run is unfinished no run starts, and the answer says why."""
    settings = deps.need_settings()
    invocation = invocation or Invocation()
    outcome = Outcome()
    if not settings.isactive:
        outcome.detail = {"started": False, "reason": "isactive is false in the secret"}
        logger.info("run not started: isactive is false")
        return outcome
    settings.require_azure()
    listed = list(settings.containers) if settings.containers else deps.need_source().list_containers()
    containers = list(dict.fromkeys(listed))  # a container named twice is listed once
    if len(containers) < len(listed):
        logger.warning("containers named more than once are listed once", extra={"containers": containers})
    if not containers:
        outcome.detail = {"started": False, "reason": "the storage account has no containers"}
        return outcome
    fresh = new_run_id(now)
    try:
        run_id = deps.ledger.start_run(
            fresh,
            containers=containers,
            begindate=iso(settings.begindate),
            force=force,
            stale_after=deps.tuning.stale_run_seconds,
            launch_id=invocation.request_id,
        )
    except RunInProgressError as error:
        reason = f"run {error.run_id} has not finished (wait for it, or start one anyway with force)"
        outcome.detail = {"started": False, "reason": reason, "run_in_progress": error.run_id}
        logger.warning("run not started: another run is in progress", extra={"run_id": error.run_id})
        return outcome
    resumed = run_id != fresh
    if resumed:  # an earlier attempt of this launch started the run: announce the containers it recorded
        run = deps.ledger.get_run(run_id)
        containers = list(run.containers) if run is not None else containers
    bodies = [encode(ContainerTask(run_id, container)) for container in containers]
    deps.publisher.publish(deps.topics.containers, bodies)
    outcome.published = len(bodies)
    outcome.detail = {"started": True, "run_id": run_id, "containers": containers}
    if resumed:
        outcome.detail["announced_again"] = True
    logger.info(
        "run started", extra={"run_id": run_id, "containers": len(containers), "announced_again": resumed}
    )
    return outcome


# --- find-blobs -------------------------------------------------------------------------------------------


def selected(settings: Settings, blob: SourceBlob) -> bool:
    """Whether the settings pick this listed blob: modified at or after begindate, a file (not a directory
    marker), and matching include/exclude."""
    name = blob.ref.name
    if blob.is_directory or blob.ref.last_modified < settings.begindate:
        return False
    if settings.include and not any(fnmatchcase(name, pattern) for pattern in settings.include):
        return False
    return not any(fnmatchcase(name, pattern) for pattern in settings.exclude)


def source_metadata(blob: BlobRef) -> dict[str, str]:
    """The S3 user metadata of a copied blob: the blob's own metadata and where it came from."""
    metadata = dict(blob.metadata)
    metadata.update(
        {
            f"{META_PREFIX}etag": blob.etag,
            f"{META_PREFIX}size": str(blob.size),
            f"{META_PREFIX}last-modified": iso(blob.last_modified),
            f"{META_PREFIX}container": blob.container,
        }
    )
    if blob.content_md5:
        metadata[f"{META_PREFIX}content-md5"] = blob.content_md5
    size = sum(len(k.encode()) + len(v.encode()) for k, v in metadata.items()) + WRITE_ID_BYTES
    if size > MAX_METADATA_BYTES:
        raise BlobRejectedError(
            f"{blob.blob_id}: its metadata needs {size} bytes in S3, which allows {MAX_METADATA_BYTES}"
        )
    return metadata


#: The tag that marks an object verified as a copy of one blob version. It is set only after the object was
#: verified, on the exact version written, so an object whose verification failed, could not run, or whose
#: writer died before it, is never taken for a copy (its metadata is written with it, before any check).
VERIFIED_TAG = "azs3copy-verified"
_NOT_IN_TAG = re.compile(r"[^\w.:/=+\-@ ]")  # what S3 tag values cannot hold (an ETag's quotes)


def verified_mark(blob: BlobRef) -> str:
    """The value of the verified tag for this blob version: its ETag and size."""
    return f"{_NOT_IN_TAG.sub('', blob.etag)}:{blob.size}"[:256]


def _verified_copy(sink: ObjectSink, key: str, blob: BlobRef) -> bool:
    """Whether the object at key was verified as a copy of this blob version."""
    tags = sink.get_tags(key)
    return tags is not None and tags.get(VERIFIED_TAG) == verified_mark(blob)


def _already_copied(sink: ObjectSink, key: str, blob: BlobRef) -> bool:
    """Whether the object at key was written from this blob version (verified or not)."""
    info = sink.head(key)
    return (
        info is not None
        and info.size == blob.size
        and info.metadata.get(f"{META_PREFIX}etag") == blob.etag
        and info.metadata.get(f"{META_PREFIX}size") == str(blob.size)
    )


#: The ledger page that records a container whose listing could not go on.
LISTING_FAILED_PAGE = 99_999_999


def find_blobs(deps: Deps, task: ContainerTask, invocation: Invocation) -> Outcome:
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
        maybe_report(deps, task.run_id)
        if error.retryable:
            raise  # the last attempt failed: recorded, and on to the dead-letter queue
        return outcome


def _list_container(deps: Deps, task: ContainerTask, invocation: Invocation, outcome: Outcome) -> Outcome:
    settings, source, tuning = deps.need_settings(), deps.need_source(), deps.tuning
    marker, page = task.marker, task.page
    while True:
        listing = source.list_page(task.container, settings.prefix, marker, tuning.page_size)
        candidates = [blob for blob in listing.blobs if selected(settings, blob)]
        pending, decided = _triage(deps, candidates)
        status = deps.ledger.register_page(
            task.run_id,
            task.container,
            page,
            [(blob.blob_id, blob.size) for blob, _ in pending],
            [(blob.blob_id, blob.size, state, reason) for blob, state, reason in decided],
        )
        for blob, state, reason in decided:
            outcome.count(state)
            if state == "failed" and status == "new" and deps.on_fatal:  # refused as listed (key, size)
                deps.on_fatal(task.run_id, blob.blob_id, reason)
        if status != "published":
            small = [(blob, key) for blob, key in pending if blob.size < tuning.large_threshold]
            large = [(blob, key) for blob, key in pending if blob.size >= tuning.large_threshold]
            batches = batch_small_blobs(
                task.run_id, small, max_blobs=tuning.batch_blobs, max_bytes=tuning.batch_bytes
            )
            if batches:
                deps.publisher.publish(deps.topics.small, [encode(batch) for batch in batches])
            if large:
                deps.publisher.publish(
                    deps.topics.large, [encode(LargeBlob(task.run_id, blob, key)) for blob, key in large]
                )
            deps.ledger.mark_page_published(task.run_id, task.container, page)
            outcome.published += len(batches) + len(large)
        outcome.detail["pages"] = outcome.detail.get("pages", 0) + 1
        outcome.detail["candidates"] = outcome.detail.get("candidates", 0) + len(candidates)
        logger.info(
            "listed page",
            extra={
                "run_id": task.run_id,
                "container": task.container,
                "page": page,
                "blobs": len(candidates),
            },
        )
        marker, page = listing.marker, page + 1
        if marker is None:
            deps.ledger.finish_container(task.run_id, task.container)
            maybe_report(deps, task.run_id)
            return outcome
        if invocation.remaining_seconds() < tuning.listing_reserve_seconds:
            following = ContainerTask(task.run_id, task.container, marker, page)
            deps.publisher.publish(deps.topics.containers, [encode(following)])
            outcome.detail["continued_at_page"] = page
            return outcome


def _triage(
    deps: Deps, candidates: list[SourceBlob]
) -> tuple[list[tuple[BlobRef, str]], list[tuple[BlobRef, str, str]]]:
    """Split a page into blobs to copy (with their keys) and blobs whose outcome is known at once."""
    settings, sink = deps.need_settings(), deps.need_sink()
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
    unchanged = _unchanged_in_s3(sink, pending, deps.tuning.head_threads)
    decided += [
        (ref, "skipped", "already in S3, verified as a copy of the same source ETag and size")
        for ref, _ in pending
        if ref.blob_id in unchanged
    ]
    pending = [(ref, key) for ref, key in pending if ref.blob_id not in unchanged]
    return pending, decided


def _unchanged_in_s3(sink: ObjectSink, pending: list[tuple[BlobRef, str]], threads: int) -> set[str]:
    """Blob ids whose S3 object was verified as a copy of the same source ETag and size.

    One ranged listing of the page's key span finds which keys exist with the right size; only those have
    their tags read (one request each, where a HEAD was before)."""
    if not pending:
        return set()
    keys = sorted((key for _, key in pending), key=str.encode)
    prefix = _common_prefix(keys)
    low = keys[0]
    start_after = low[:-1] if low else low  # just before the lowest key
    sizes = dict(sink.list_sizes(prefix, start_after, keys[-1]))
    maybe = [(ref, key) for ref, key in pending if sizes.get(key) == ref.size]
    if not maybe:
        return set()
    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(maybe)))) as pool:
        results = pool.map(lambda pair: (pair[0].blob_id, _verified_copy(sink, pair[1], pair[0])), maybe)
        return {blob_id for blob_id, same in results if same}


def _common_prefix(keys: list[str]) -> str:
    first, last = keys[0], keys[-1]
    length = 0
    while length < min(len(first), len(last)) and first[length] == last[length]:
        length += 1
    return first[:length]


# --- copying ----------------------------------------------------------------------------------------------


def _attrs(blob: BlobRef) -> ObjectAttrs:
    return ObjectAttrs(content=blob.content, metadata=source_metadata(blob))


@dataclass(frozen=True)
class Segment:
    length: int
    crc32: str


_CRC32_POLY = 0xEDB88320  # CRC-32 as zlib and S3 compute it, bit-reflected


def _gf2_multiply(a: int, b: int) -> int:
    """a·b modulo the CRC-32 polynomial, both bit-reflected (bit 31 is x^0)."""
    product, mask = 0, 1 << 31
    while mask:
        if a & mask:
            product ^= b
        b = (b >> 1) ^ _CRC32_POLY if b & 1 else b >> 1
        mask >>= 1
    return product


def _x_to_8n(n: int) -> int:
    """x^(8n) modulo the polynomial: what appending n bytes does to a CRC register."""
    result, square = 1 << 31, 1 << 23  # x^0, x^8
    while n:
        if n & 1:
            result = _gf2_multiply(square, result)
        square = _gf2_multiply(square, square)
        n >>= 1
    return result


def crc32_combine(crc1: int, crc2: int, length2: int) -> int:
    """The CRC-32 of A followed by B, from crc32(A), crc32(B) and len(B), without the bytes."""
    return _gf2_multiply(_x_to_8n(length2), crc1) ^ crc2


def combined_crc32(segments: list[Segment]) -> str:
    """The CRC32 (base64) of the whole object from the CRC32 of each of its segments, in order."""
    shifts: dict[int, int] = {}  # parts share one length: x^(8n) is computed once
    crc = 0
    for segment in segments:
        shift = shifts.get(segment.length)
        if shift is None:
            shift = shifts[segment.length] = _x_to_8n(segment.length)
        crc = _gf2_multiply(shift, crc) ^ int.from_bytes(base64.b64decode(segment.crc32), "big")
    return crc32_b64(crc)


def composite_crc32(segments: list[Segment]) -> str:
    """S3's COMPOSITE checksum of a multipart object: the CRC32 of the parts' CRC32s, then -<parts>."""
    raw = b"".join(base64.b64decode(segment.crc32) for segment in segments)
    return f"{crc32_of(raw)}-{len(segments)}"


def _compare_checksum(deps: Deps, key: str, version_id: str | None, segments: list[Segment]) -> None:
    """verify=checksum: the size and the CRC32 S3 holds for the object version, against the CRC32s of what
    was read from Azure (S3 computed its own from the bytes it received)."""
    expected_size = sum(segment.length for segment in segments)
    info = deps.need_sink().head(key, version_id, checksums=True)
    if info is None or info.size != expected_size:
        found = "no object" if info is None else f"{info.size} bytes"
        raise ChecksumMismatchError(f"s3 object {key}: expected {expected_size} bytes, found {found}")
    if info.crc32 is None:
        raise ChecksumMismatchError(
            f"s3 object {key}: S3 holds no CRC32 for it, so verify=checksum cannot compare one"
        )
    composite = (info.checksum_type or "").upper() == "COMPOSITE"
    expected = composite_crc32(segments) if composite else combined_crc32(segments)
    if info.crc32 != expected:
        kind = "composite" if composite else "full-object"
        raise ChecksumMismatchError(
            f"s3 object {key}: S3's {kind} CRC32 {info.crc32} differs from the {expected} of what was read "
            "from Azure"
        )


def verify_object(
    deps: Deps, key: str, version_id: str | None, segments: list[Segment], md5: str | None
) -> None:
    """Check the object S3 holds: in checksum mode its size and S3's CRC32, in readback mode the CRC32 of
    every segment read back, and the MD5. Raises ChecksumMismatchError naming what differs. (A small blob's
    Content-MD5 was compared with the bytes as they were read from Azure, before this.)"""
    if deps.tuning.verify != "readback":
        _compare_checksum(deps, key, version_id, segments)
        return
    read_back(deps, key, version_id, segments, md5)


def read_back(
    deps: Deps,
    key: str,
    version_id: str | None,
    segments: list[Segment],
    md5: str | None,
    *,
    first: int = 0,
    stop: Callable[[float], bool] | None = None,
) -> int | None:
    """Read the object back from segment `first` on and check the CRC32 of each segment (and, read from the
    start in one go, the whole object's MD5). Raises ChecksumMismatchError naming what differs.

    `stop` is asked after each segment, with the seconds the slowest segment took; when it says so, reading
    stops and the index of the next segment to check is returned (None when every segment was checked). MD5
    state cannot be carried to another invocation: a read-back that stops compares the CRC32s only.

    The GET itself checks the size (no HEAD first), and every byte is hashed once."""
    sink = deps.need_sink()
    expected_size = sum(segment.length for segment in segments)
    start = sum(segment.length for segment in segments[:first])
    whole_md5 = hashlib.md5() if md5 and first == 0 else None
    size = start
    index, crc, filled = first, 0, 0
    slowest, began = 0.0, time.monotonic()
    chunks = sink.read(key, version_id, start) if index < len(segments) else iter(())
    try:
        for chunk in chunks:
            view = memoryview(chunk)
            size += len(view)
            if whole_md5 is not None:
                whole_md5.update(view)
            while len(view) and index < len(segments):
                room = segments[index].length - filled
                piece, view = view[:room], view[room:]
                crc, filled = zlib.crc32(piece, crc), filled + len(piece)
                if filled == segments[index].length:
                    if crc32_b64(crc) != segments[index].crc32:
                        raise ChecksumMismatchError(
                            f"s3 object {key}: bytes of part {index + 1} differ from what was read from Azure "
                            f"(CRC32 {crc32_b64(crc)}, expected {segments[index].crc32})"
                        )
                    index, crc, filled = index + 1, 0, 0
                    now = time.monotonic()
                    slowest, began = max(slowest, now - began), now
                    if stop is not None and index < len(segments) and stop(slowest):
                        return index
    except ChecksumMismatchError:
        raise
    except Azs3copyError:
        if sink.head(key, version_id) is None:
            raise ChecksumMismatchError(
                f"s3 object {key}: expected {expected_size} bytes, found no object"
            ) from None
        raise
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()  # a read-back that stops early releases its connection
    if size != expected_size:
        raise ChecksumMismatchError(f"s3 object {key}: read back {size} bytes, expected {expected_size}")
    if md5 and whole_md5 is not None:
        found_md5 = base64.b64encode(whole_md5.digest()).decode()
        if found_md5 != md5:
            raise ChecksumMismatchError(
                f"s3 object {key}: MD5 {found_md5} differs from the blob's Content-MD5 {md5}"
            )
    elif md5:
        logger.warning(
            "Content-MD5 not compared: the read-back spanned invocations; every part's CRC32 matched",
            extra={"key": key},
        )
    return None


def _discard(deps: Deps, key: str, version_id: str | None) -> None:
    """Remove an object this invocation wrote and could not verify (its own version only)."""
    try:
        deps.need_sink().delete(key, version_id)
    except Azs3copyError as error:
        logger.error("could not delete unverified object", extra={"key": key, "error": str(error)})
        raise


def _copy_small_blob(deps: Deps, run_id: str, blob: BlobRef, key: str) -> None:
    source, sink, chunk = deps.need_source(), deps.need_sink(), deps.tuning.chunk_size
    attrs = _attrs(blob)
    if blob.size <= chunk:
        data = source.read_range(blob, 0, blob.size) if blob.size else b""
        if len(data) != blob.size:
            raise SourceChangedError(f"{blob.blob_id}: read {len(data)} bytes of {blob.size}")
        md5 = md5_b64(data)
        if blob.content_md5 and md5 != blob.content_md5:
            raise ChecksumMismatchError(
                f"{blob.blob_id}: bytes read have MD5 {md5}, the blob's Content-MD5 is {blob.content_md5}"
            )
        crc = crc32_of(data)
        version = sink.put(key, data, crc32=crc, md5=md5, attrs=attrs)
        del data
        _verify_and_mark(deps, key, version, [Segment(blob.size, crc)], blob)
        return
    upload_id = sink.create_upload(key, attrs)
    try:
        digest, parts = Digest(), []
        for number, offset in enumerate(range(0, blob.size, chunk), start=1):
            data = source.read_range(blob, offset, min(chunk, blob.size - offset))
            digest.update(data)
            crc = crc32_of(data)
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
            done = _completed_before(sink, key, blob)
            if done.verified:
                return
            version = done.version
    except BaseException:
        sink.abort(key, upload_id)
        raise
    _verify_and_mark(deps, key, version, [Segment(blob.size, digest.crc32)], blob)


def _verify_and_mark(
    deps: Deps, key: str, version: str | None, segments: list[Segment], blob: BlobRef
) -> None:
    """Verify the object version just written; remove it when its bytes differ, mark it verified when they
    do not. An object that is not marked is copied again by the next run, whatever its metadata says."""
    try:
        verify_object(deps, key, version, segments, blob.content_md5)
    except ChecksumMismatchError:
        _discard(deps, key, version)
        raise
    _mark_verified(deps, key, version, blob)


def _mark_verified(deps: Deps, key: str, version: str | None, blob: BlobRef) -> None:
    deps.need_sink().put_tags(key, version, {VERIFIED_TAG: verified_mark(blob)})


def _settle(
    deps: Deps, run_id: str, blob_id: str, error: Azs3copyError, invocation: Invocation
) -> str | None:
    """Record what an error means for the blob. Returns the state recorded, or None when a later attempt
    will try again (the error is retryable and attempts remain)."""
    reason = redact(f"{type(error).__name__}: {error}", deps.secrets)
    if error.retryable and not invocation.final_attempt:
        logger.warning("blob will be retried", extra={"run_id": run_id, "blob": blob_id, "reason": reason})
        return None
    if error.retryable:
        reason = f"{reason} (gave up after {deps.tuning.max_attempts} attempts)"
    recorded = deps.ledger.finish(run_id, blob_id, error.state, reason, 0)
    if recorded and error.state == "failed" and not error.retryable and deps.on_fatal:
        deps.on_fatal(run_id, blob_id, reason)
    log = logger.error if error.state == "failed" else logger.warning
    log("blob not copied", extra={"run_id": run_id, "blob": blob_id, "state": error.state, "reason": reason})
    return error.state


def copy_small(deps: Deps, batch: SmallBatch, invocation: Invocation) -> Outcome:
    """Copy each blob of a batch into one S3 object, a few at a time, at the key it was listed for."""
    outcome = Outcome()

    def one(blob: BlobRef, listed_key: str | None) -> tuple[str, int, str | None]:
        claim = deps.ledger.claim(
            batch.run_id, blob.blob_id, invocation.request_id, invocation.remaining_seconds()
        )
        if claim.outcome != "claimed":
            return ("done-before" if claim.outcome == "terminal" else "busy"), 0, None
        try:
            key = listed_key or object_key(deps.need_settings().destination_prefix, blob.container, blob.name)
            _copy_small_blob(deps, batch.run_id, blob, key)
        except Azs3copyError as error:
            state = _settle(deps, batch.run_id, blob.blob_id, error, invocation)
            if state is None or error.retryable:
                if state is None:
                    deps.ledger.release(batch.run_id, blob.blob_id, invocation.request_id)
                return state or "retry", 0, redact(str(error), deps.secrets)
            return state, 0, None
        except BaseException:
            deps.ledger.release(batch.run_id, blob.blob_id, invocation.request_id)
            raise
        deps.ledger.finish(batch.run_id, blob.blob_id, "copied", None, blob.size)
        logger.info("blob copied", extra={"run_id": batch.run_id, "blob": blob.blob_id, "bytes": blob.size})
        return "copied", blob.size, None

    with ThreadPoolExecutor(max_workers=max(1, min(deps.tuning.copy_threads, len(batch.blobs)))) as pool:
        keys: list[str | None] = list(batch.keys) if batch.keys else [None] * len(batch.blobs)
        for state, nbytes, why in pool.map(one, batch.blobs, keys):
            outcome.count(state, nbytes)
            if why:
                outcome.retry.append(why)
    maybe_report(deps, batch.run_id)
    if outcome.retry:
        what = "failed after their last attempt" if invocation.final_attempt else "will be retried"
        raise TransientError(f"{len(outcome.retry)} blob(s) of the batch {what}: {outcome.retry[0]}")
    return outcome


def init_large(deps: Deps, message: LargeBlob, invocation: Invocation) -> Outcome:
    """Open the multipart upload of a large blob, record its part plan and publish one message a part."""
    sink, blob, key = deps.need_sink(), message.blob, message.key
    outcome = Outcome()
    record = deps.ledger.get_blob(message.run_id, blob.blob_id)
    if record and record.state in TERMINAL_STATES:
        outcome.count("done-before")
        maybe_report(deps, message.run_id)  # an earlier attempt may have failed writing it
        return outcome
    try:
        plan = plan_parts(blob.size, deps.tuning.part_size, deps.tuning.max_part_size)
        upload_id = record.upload_id if record and record.upload_id else None
        if upload_id is None:
            mine = sink.create_upload(key, _attrs(blob))
            upload_id = deps.ledger.set_upload(
                message.run_id, blob.blob_id, mine, key, plan.part_size, plan.count, "FULL_OBJECT"
            )
            if upload_id != mine:
                sink.abort(key, mine)  # another delivery of this message got there first
        elif record is not None:
            plan = plan_parts(blob.size, record.part_size)
    except Azs3copyError as error:
        state = _settle(deps, message.run_id, blob.blob_id, error, invocation)
        if state is None:
            raise
        outcome.count(state)
        maybe_report(deps, message.run_id)
        if error.retryable:
            raise  # the last attempt failed: recorded, and on to the dead-letter queue
        return outcome
    bodies = [
        encode(
            PartTask(
                message.run_id,
                blob,
                key,
                upload_id,
                part.number,
                part.offset,
                part.length,
                plan.count,
                plan.part_size,
            )
        )
        for part in plan.parts()
    ]
    deps.publisher.publish(deps.topics.parts, bodies)
    outcome.published = len(bodies)
    outcome.detail = {"parts": plan.count, "part_size": plan.part_size}
    logger.info(
        "multipart upload opened",
        extra={
            "run_id": message.run_id,
            "blob": blob.blob_id,
            "parts": plan.count,
            "part_size": plan.part_size,
        },
    )
    return outcome


def _abandon_upload(deps: Deps, key: str, upload_id: str) -> None:
    try:
        deps.need_sink().abort(key, upload_id)
    except Azs3copyError as error:  # the S3 lifecycle rule removes it later; the blob's state is what matters
        logger.error("could not abort multipart upload", extra={"key": key, "error": str(error)})


def copy_part(deps: Deps, task: PartTask, invocation: Invocation) -> Outcome:
    """Read one byte range from Azure (If-Match on the listed ETag) and upload it as one part."""
    source, sink, blob = deps.need_source(), deps.need_sink(), task.blob
    outcome = Outcome()
    record = deps.ledger.get_blob(task.run_id, blob.blob_id)
    if record and record.state in TERMINAL_STATES:
        outcome.count("done-before")
        maybe_report(deps, task.run_id)  # an earlier attempt may have failed writing it
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
        state = _settle(
            deps, task.run_id, blob.blob_id, FatalError(f"multipart upload vanished: {error}"), invocation
        )
        outcome.count(state or "failed")
        maybe_report(deps, task.run_id)
        return outcome
    except Azs3copyError as error:
        record = deps.ledger.get_blob(task.run_id, blob.blob_id)
        if record and record.state in TERMINAL_STATES:  # another part already ended this blob
            outcome.count("done-before")
            return outcome
        state = _settle(deps, task.run_id, blob.blob_id, error, invocation)
        if state is None:
            raise
        _abandon_upload(deps, task.key, task.upload_id)
        outcome.count(state)
        maybe_report(deps, task.run_id)
        if error.retryable:
            raise  # the last attempt failed: recorded, and on to the dead-letter queue
        return outcome
    done = deps.ledger.record_part(task.run_id, blob.blob_id, task.part, crc)
    outcome.count("part-uploaded", task.length)
    if done >= task.parts:
        deps.publisher.publish(
            deps.topics.recombine, [encode(RecombineTask(task.run_id, blob, task.key, task.upload_id))]
        )
        outcome.published = 1
    return outcome


def recombine(deps: Deps, task: RecombineTask, invocation: Invocation) -> Outcome:
    """Complete the object once every planned part is in S3 with its planned size, then verify it.

    A read-back that cannot end before the invocation's time runs out is continued by a fresh invocation:
    the claim is released and a RecombineTask naming the first part still to check is published."""
    blob = task.blob
    outcome = Outcome()
    claim = deps.ledger.claim(
        task.run_id, blob.blob_id, invocation.request_id, invocation.remaining_seconds()
    )
    if claim.outcome != "claimed" or claim.record is None:
        outcome.count("done-before" if claim.outcome == "terminal" else "busy")
        if claim.outcome == "terminal":
            maybe_report(deps, task.run_id)  # an earlier attempt may have failed writing it
        return outcome
    record = claim.record
    try:
        plan = plan_parts(blob.size, record.part_size)
        checksums = deps.ledger.part_checksums(task.run_id, blob.blob_id)
        absent = [number for number in range(1, plan.count + 1) if number not in checksums]
        segments = [Segment(part.length, checksums.get(part.number, "")) for part in plan.parts()]
        if task.verify_from:  # a read-back this blob's earlier invocation handed over
            version, first = task.version_id, task.verify_from - 1
        else:
            completed = _complete_upload(deps, task, plan, record.checksum_type, segments, absent)
            if completed.verified:
                deps.ledger.finish(task.run_id, blob.blob_id, "copied", None, blob.size)
                outcome.count("copied", blob.size)
                maybe_report(deps, task.run_id)
                return outcome
            version, first = completed.version, 0
        if absent:
            raise FatalError(f"{task.key}: the ledger lacks the checksums of parts {absent[:10]} to verify")
        resume: int | None = None
        try:
            # A blob with a Content-MD5 is read back in either mode: only the bytes can be compared with it.
            if deps.tuning.verify == "readback" or blob.content_md5:
                stop = _time_is_short(deps, invocation)
                resume = read_back(
                    deps, task.key, version, segments, blob.content_md5, first=first, stop=stop
                )
            else:
                _compare_checksum(deps, task.key, version, segments)
        except ChecksumMismatchError as error:
            _discard(deps, task.key, version)
            raise FatalError(f"verification failed, object removed: {error}") from None
        if resume is not None:
            deps.ledger.release(task.run_id, blob.blob_id, invocation.request_id)
            following = RecombineTask(task.run_id, blob, task.key, task.upload_id, resume + 1, version)
            deps.publisher.publish(deps.topics.recombine, [encode(following)])
            outcome.count("verifying")
            outcome.published = 1
            outcome.detail = {"verified_parts": resume, "parts": plan.count}
            logger.info(
                "read-back continues in a fresh invocation",
                extra={
                    "run_id": task.run_id,
                    "blob": blob.blob_id,
                    "verified_parts": resume,
                    "parts": plan.count,
                },
            )
            return outcome
        _mark_verified(deps, task.key, version, blob)
    except Azs3copyError as error:
        state = _settle(deps, task.run_id, blob.blob_id, error, invocation)
        if state is None:
            deps.ledger.release(task.run_id, blob.blob_id, invocation.request_id)
            raise
        _abandon_upload(deps, task.key, task.upload_id)
        outcome.count(state)
        maybe_report(deps, task.run_id)
        if error.retryable:
            raise  # the last attempt failed: recorded, and on to the dead-letter queue
        return outcome
    except BaseException:
        deps.ledger.release(task.run_id, blob.blob_id, invocation.request_id)
        raise
    deps.ledger.finish(task.run_id, blob.blob_id, "copied", None, blob.size)
    outcome.count("copied", blob.size)
    logger.info("large blob copied", extra={"run_id": task.run_id, "blob": blob.blob_id, "bytes": blob.size})
    maybe_report(deps, task.run_id)
    return outcome


def _time_is_short(deps: Deps, invocation: Invocation) -> Callable[[float], bool]:
    """Whether a read-back should hand over now: less time left than the reserve and twice the slowest part."""
    return lambda slowest: invocation.remaining_seconds() < deps.tuning.verify_reserve_seconds + 2 * slowest


@dataclass(frozen=True)
class _Completed:
    version: str | None
    #: An earlier attempt completed, verified and marked the object, and died before recording it.
    verified: bool = False


def _complete_upload(
    deps: Deps,
    task: RecombineTask,
    plan: PartPlan,
    checksum_type: str,
    segments: list[Segment],
    absent: list[int],
) -> _Completed:
    """Complete the multipart upload once every planned part is in with its planned size. An upload that is
    gone was completed by an earlier attempt when the object at the key was written from this blob."""
    sink, blob = deps.need_sink(), task.blob
    try:
        listed = {part.number: part for part in sink.list_parts(task.key, task.upload_id)}
    except UploadGoneError:
        return _completed_before(sink, task.key, blob)
    missing = [part.number for part in plan.parts() if part.number not in listed]
    wrong = [p.number for p in plan.parts() if p.number in listed and listed[p.number].size != p.length]
    if missing or wrong:
        raise TransientError(
            f"{task.key}: not every part is in yet (missing {missing[:10]}, wrong size {wrong[:10]})"
        )
    if absent:
        raise TransientError(f"{task.key}: no recorded checksum for parts {absent[:10]}")
    parts = [CompletedPart(n, listed[n].etag, segments[n - 1].crc32) for n in range(1, plan.count + 1)]
    whole = combined_crc32(segments) if checksum_type == "FULL_OBJECT" else None
    try:
        return _Completed(sink.complete(task.key, task.upload_id, parts, crc32=whole))
    except UploadGoneError:
        # S3 completed it but the answer was lost, and the SDK's resend found the upload gone (NoSuchUpload):
        # the object is there, to be verified like any other.
        return _completed_before(sink, task.key, blob)


def _completed_before(sink: ObjectSink, key: str, blob: BlobRef) -> _Completed:
    """The object a multipart upload that no longer exists left at `key`: completed by an earlier attempt
    (or by a completion whose answer was lost) when it was written from this blob."""
    if _verified_copy(sink, key, blob):
        return _Completed(None, verified=True)
    if _already_copied(sink, key, blob):
        info = sink.head(key)
        return _Completed(info.version_id if info else None)
    raise FatalError(f"multipart upload of {key} is gone and no complete object is there") from None


# --- the run report ---------------------------------------------------------------------------------------

MAX_LISTED_FAILURES = 1000


def build_report(deps: Deps, run: RunRecord, finished_at: float) -> dict[str, Any]:
    problems: list[dict[str, str]] = []
    total_problems = 0
    for record in deps.ledger.blobs(run.run_id):
        if record.state in ("copied", "skipped"):
            continue
        total_problems += 1
        if len(problems) < MAX_LISTED_FAILURES:
            problems.append({"blob": record.blob_id, "state": record.state, "reason": record.reason or ""})
    duration = max(0.0, finished_at - run.started_at)
    return {
        "run_id": run.run_id,
        "started_at": iso(datetime.fromtimestamp(run.started_at, UTC)),
        "finished_at": iso(datetime.fromtimestamp(finished_at, UTC)),
        "duration_seconds": round(duration, 3),
        "begindate": run.begindate,
        "containers": list(run.containers),
        "found": run.found,
        "counts": run.counts,
        "bytes_copied": run.bytes_copied,
        "throughput_mib_s": round(run.bytes_copied / MiB / duration, 2) if duration > 0 else None,
        "failures": problems,
        "failures_total": total_problems,
        "failures_listed": len(problems),
        "ok": run.counts.get("failed", 0) == 0,
    }


def report_key(deps: Deps, run_id: str) -> str:
    return f"{deps.tuning.report_prefix}{run_id}.json"


def maybe_report(deps: Deps, run_id: str) -> dict[str, Any] | None:
    """Write the run's report if every blob has reached its state (any function may be the last)."""
    run = deps.ledger.get_run(run_id)
    if run is None or not run.complete or run.report_key:
        return None
    finished_at = time.time()
    report = build_report(deps, run, finished_at)
    key = report_key(deps, run_id)
    deps.need_sink().put_json(key, json.dumps(report, indent=2, ensure_ascii=False).encode())
    deps.ledger.mark_reported(run_id, key, finished_at)
    logger.info("run finished", extra={"run_id": run_id, "counts": run.counts, "bytes": run.bytes_copied})
    return report


def dispatch(deps: Deps, message: Message, invocation: Invocation) -> Outcome:
    """Run the step a message asks for (the local runtime and tests use this; handlers call one step)."""
    if isinstance(message, ContainerTask):
        return find_blobs(deps, message, invocation)
    if isinstance(message, SmallBatch):
        return copy_small(deps, message, invocation)
    if isinstance(message, LargeBlob):
        return init_large(deps, message, invocation)
    if isinstance(message, PartTask):
        return copy_part(deps, message, invocation)
    return recombine(deps, message, invocation)
