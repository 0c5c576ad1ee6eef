"""What makes an object a copy: the metadata written with it, the checks of its bytes against what was read
from Azure, and the verified mark it carries once they pass.

Two ways to verify (AZS3COPY_VERIFY). `checksum`, the default: every write carries the CRC32 of the bytes read
from Azure (and, for a PutObject, their MD5), a multipart completion the CRC32 of the whole object
(FULL_OBJECT), and S3 refuses bytes that do not match; the mark is user metadata written with the object
(PutObject and CreateMultipartUpload), because the object exists only once S3 accepted its checksum, and all
10 of the object's tags are left to the blob's index tags. `readback`, for audits: the object is written
unmarked, read back whole, compared, and only then marked, with a tag (metadata cannot change without writing
the object again). A large blob with a Content-MD5 is marked that way in either mode: its parts are read by
separate invocations and MD5s do not combine, so only the object read back whole can be compared with it."""

from __future__ import annotations

import base64
import hashlib
import re
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from aws_lambda_powertools import Logger

from azs3copy.checksums import Segment, combined_crc32, composite_crc32, crc32_b64
from azs3copy.errors import (
    Azs3copyError,
    BlobRejectedError,
    ChecksumMismatchError,
    FatalError,
)
from azs3copy.messages import (
    BlobRef,
    iso,
)
from azs3copy.settings import RunSettings
from azs3copy.steps.context import Deps
from azs3copy.transports import WRITE_ID_BYTES, ObjectAttrs, ObjectInfo, ObjectSink

logger = Logger(child=True)


META_PREFIX = "azs3copy-source-"


MAX_METADATA_BYTES = 2048  # S3's limit on user-defined metadata


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
    size = sum(len(k.encode()) + len(v.encode()) for k, v in metadata.items()) + WRITE_ID_BYTES + MARK_BYTES
    if size > MAX_METADATA_BYTES:
        raise BlobRejectedError(
            f"{blob.blob_id}: its metadata needs {size} bytes in S3, which allows {MAX_METADATA_BYTES}"
        )
    return metadata


#: The verified mark: the name of the user metadata (or, where the check comes after the write, of the tag)
#: whose value names the blob version an object was verified as a copy of. It is only ever on bytes that were
#: checked: written with a request whose checksum S3 checked (the metadata of a verify=checksum write), or set
#: on the exact version read back (the tag). An object whose check failed, could not run, or whose writer died
#: before it, is never taken for a copy (its other metadata is written with it, before any check): it is
#: copied again.
VERIFIED_MARK = "azs3copy-verified"


_NOT_IN_TAG = re.compile(r"[^\w.:/=+\-@ ]")  # what S3 tag values cannot hold (an ETag's quotes)


def verified_mark(blob: BlobRef) -> str:
    """The value of the verified mark for this blob version: its ETag and size."""
    return f"{_NOT_IN_TAG.sub('', blob.etag)}:{blob.size}"[:256]


MARK_BYTES = len(VERIFIED_MARK) + 256  # the room the mark may take in the metadata


def checked_on_arrival(deps: Deps) -> bool:
    """Whether S3's check of the checksums a write carries is the verification (verify=checksum): the object
    is then written with its mark, and nothing is read back."""
    return deps.tuning.verify == "checksum"


def marked_on_write(deps: Deps, blob: BlobRef, *, across_invocations: bool) -> bool:
    """Whether the object is written with its mark: in checksum mode, unless its Content-MD5 can only be
    compared once the object is read back whole (a large blob, whose parts are read by separate
    invocations: MD5s do not combine)."""
    return checked_on_arrival(deps) and not (across_invocations and blob.content_md5)


def verified_copy(sink: ObjectSink, key: str, blob: BlobRef) -> bool:
    """Whether the object at key was verified as a copy of this blob version: one HEAD, and its tags read
    only when it was written from this version without the mark in its metadata (marked after a read-back)."""
    info = sink.head(key)
    if info is None or not written_from(info, blob):
        return False
    if info.metadata.get(VERIFIED_MARK) == verified_mark(blob):
        return True
    tags = sink.get_tags(key)
    return tags is not None and tags.get(VERIFIED_MARK) == verified_mark(blob)


def written_from(info: ObjectInfo, blob: BlobRef) -> bool:
    """Whether the object was written from this blob version (verified or not)."""
    return (
        info.size == blob.size
        and info.metadata.get(f"{META_PREFIX}etag") == blob.etag
        and info.metadata.get(f"{META_PREFIX}size") == str(blob.size)
    )


def already_copied(sink: ObjectSink, key: str, blob: BlobRef) -> bool:
    """Whether the object at key was written from this blob version (verified or not)."""
    info = sink.head(key)
    return info is not None and written_from(info, blob)


MAX_TAGS = 10  # S3's limit on an object's tags (Azure's on a blob's index tags is the same)


def object_tags(blob: BlobRef, *, mark_tag: bool) -> dict[str, str]:
    """The blob's index tags as the copy's S3 tags, keys and values as stored. Azure allows only characters S3
    allows too, and the same lengths; what S3 still refuses fails the blob alone, saying which tag and why,
    rather than copying it without a tag its owner relies on. With mark_tag (the mark is set as a tag after a
    read-back) the mark needs one of the 10 tags."""
    tags = dict(blob.tags or {})
    for name in tags:
        reserved = name.lower().startswith("aws:")
        if reserved or name == VERIFIED_MARK:
            whose = (
                "S3 keeps tags starting with aws: for AWS" if reserved else "the name of azs3copy's own tag"
            )
            raise BlobRejectedError(
                f"{blob.blob_id}: its index tag {name!r} cannot be an S3 tag ({whose}): rename it in Azure"
            )
    if mark_tag and len(tags) + 1 > MAX_TAGS:
        raise BlobRejectedError(
            f"{blob.blob_id}: it has {len(tags)} index tags, and S3 holds {MAX_TAGS} tags of which azs3copy's "
            "verified mark needs one when the object is marked after it is read back (verify=readback, or a "
            "large blob with a Content-MD5)"
        )
    return tags


def object_attrs(blob: BlobRef, settings: RunSettings, *, marked: bool) -> ObjectAttrs:
    """What an object is written with: the blob's content settings, metadata and index tags, in the run's
    storage class for the blob's access tier; and, when `marked` (S3's check of the write is the
    verification), the verified mark in its metadata."""
    metadata = source_metadata(blob)
    if marked:
        metadata[VERIFIED_MARK] = verified_mark(blob)
    return ObjectAttrs(
        content=blob.content,
        metadata=metadata,
        storage_class=settings.storage_class_for(blob.tier),
        tags=object_tags(blob, mark_tag=not marked),
    )


def compare_checksum(deps: Deps, key: str, version_id: str | None, segments: list[Segment]) -> None:
    """The size and the CRC32 S3 holds for the object version, against the CRC32s of what was read from
    Azure (S3 computed its own from the bytes it received). verify=checksum's check of an object that was not
    written with its mark: a completion whose answer was lost, an upload opened by a release or setting that
    did not tag it, one without a FULL_OBJECT checksum."""
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
    """Check the object S3 holds: in checksum mode its size and S3's CRC32 (one HEAD), in readback mode the
    CRC32 of every segment read back, and the MD5. Raises ChecksumMismatchError naming what differs. (A
    download's Content-MD5 was compared with the bytes as they were read from Azure, before this.)"""
    if deps.tuning.verify != "readback":
        compare_checksum(deps, key, version_id, segments)
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


def discard(deps: Deps, key: str, version_id: str | None) -> None:
    """Remove an object this invocation wrote and could not verify (its own version only)."""
    try:
        deps.need_sink().delete(key, version_id)
    except Azs3copyError as error:
        logger.error("could not delete unverified object", extra={"key": key, "error": str(error)})
        raise


def verify_and_mark(
    deps: Deps, key: str, version: str | None, segments: list[Segment], blob: BlobRef
) -> None:
    """Verify the object version just written; remove it when its bytes differ, mark it verified when they
    do not. An object that is not marked is copied again by the next run, whatever its metadata says."""
    try:
        verify_object(deps, key, version, segments, blob.content_md5)
    except ChecksumMismatchError:
        discard(deps, key, version)
        raise
    mark_verified(deps, key, version, blob)


def mark_verified(deps: Deps, key: str, version: str | None, blob: BlobRef) -> None:
    # A tag set is replaced whole: the blob's own tags are written again beside the mark.
    tags = object_tags(blob, mark_tag=True)
    deps.need_sink().put_tags(key, version, {**tags, VERIFIED_MARK: verified_mark(blob)})


@dataclass(frozen=True)
class Completed:
    version: str | None
    #: The object carries its mark on bytes S3 checked: this completion's (an upload opened with the mark,
    #: completed with its FULL_OBJECT CRC32), or an earlier attempt's that died before recording it.
    verified: bool = False


def completed_before(sink: ObjectSink, key: str, blob: BlobRef) -> Completed:
    """The object a multipart upload that no longer exists left at `key`: completed by an earlier attempt
    (or by a completion whose answer was lost) when it was written from this blob."""
    if verified_copy(sink, key, blob):
        return Completed(None, verified=True)
    if already_copied(sink, key, blob):
        info = sink.head(key)
        return Completed(info.version_id if info else None)
    raise FatalError(f"multipart upload of {key} is gone and no complete object is there") from None
