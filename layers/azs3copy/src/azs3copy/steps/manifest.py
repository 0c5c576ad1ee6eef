"""The run's manifest: one JSON line per object copied, so that an auditor can check the migration object by
object against S3 (its version, size, checksum and storage class) and against Azure (the blob's ETag and Content-MD5).

It is written as blobs settle, one object per download batch and one per large blob, under
`<report prefix><run id>/manifest/`: never one object that grows. A part is written before its blobs are
recorded copied, so every blob the run counts as copied has its line; a batch retried after its part was
written writes its blobs again (a blob can have two identical lines, never none). A part is named by the
digest of its lines: a retry that writes the same lines writes the same object.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from azs3copy.messages import BlobRef
from azs3copy.steps.context import Deps, run_settings


@dataclass(frozen=True)
class ManifestLine:
    #: The S3 object and the version the copy wrote.
    key: str
    version_id: str | None
    size: int
    #: The blob it is a copy of: its id, ETag and Content-MD5 (None when the blob has none).
    blob: str
    source_etag: str
    content_md5: str | None
    #: The CRC32 S3 holds for the version (base64): of the whole object when checksum_type is FULL_OBJECT, of
    #: its parts' CRC32s followed by "-<parts>" when COMPOSITE.
    checksum_crc32: str | None
    checksum_type: str | None
    #: The S3 storage class the object was written in (STANDARD, INTELLIGENT_TIERING, GLACIER_IR, ...).
    storage_class: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))


def manifest_prefix(deps: Deps, run_id: str) -> str:
    return f"{deps.tuning.report_prefix}{run_id}/manifest/"


def copied_line(
    deps: Deps,
    run_id: str,
    blob: BlobRef,
    key: str,
    version_id: str | None,
    crc32: str | None,
    checksum_type: str = "FULL_OBJECT",
) -> ManifestLine:
    """The line of a blob copied to `key`: from what the copy wrote (no version id in a bucket without
    versioning; the class the run's settings give the blob's access tier), or, when it does not know (an
    earlier attempt wrote the object and died before recording it), from S3 (one HEAD)."""
    storage_class = run_settings(deps, run_id).storage_class_for(blob.tier)
    if crc32 is None:
        info = deps.need_sink().head(key, version_id, checksums=True)
        if info is not None:
            version_id, crc32, checksum_type = (
                info.version_id,
                info.crc32,
                info.checksum_type or checksum_type,
            )
            storage_class = info.storage_class or "STANDARD"  # HEAD names no class for S3 Standard
    return ManifestLine(
        key=key,
        version_id=version_id,
        size=blob.size,
        blob=blob.blob_id,
        source_etag=blob.etag,
        content_md5=blob.content_md5,
        checksum_crc32=crc32,
        checksum_type=checksum_type,
        storage_class=storage_class,
    )


def write_manifest_part(deps: Deps, run_id: str, lines: list[ManifestLine]) -> str | None:
    """Write these lines as one object of the run's manifest; returns its key (None for no lines)."""
    if not lines:
        return None
    body = "".join(line.to_json() + "\n" for line in lines).encode("utf-8")
    key = f"{manifest_prefix(deps, run_id)}{hashlib.sha256(body).hexdigest()[:32]}.jsonl"
    deps.need_sink().put_json(key, body)
    return key
