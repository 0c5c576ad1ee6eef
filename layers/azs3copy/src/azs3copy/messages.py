"""Blob identities and the versioned JSON messages that pass between the functions.

A message carries what a function needs to do its step (the run id, the blob's identity and content
settings, the upload id and part range) and nothing secret: credentials are read from the secret by each
function, never carried in a message.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from azs3copy.errors import MessageError

VERSION = 1
#: SNS' limit on a message; batches are kept under it with room for the envelope.
SNS_MAX_BYTES = 256 * 1024
MESSAGE_BUDGET = 240 * 1024


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ContentSettings:
    content_type: str | None = None
    content_encoding: str | None = None
    content_language: str | None = None
    content_disposition: str | None = None
    cache_control: str | None = None


@dataclass(frozen=True)
class BlobRef:
    """A blob as it was listed: what the copy must find unchanged (ETag) and carry over."""

    container: str
    name: str
    size: int
    etag: str
    last_modified: datetime
    content_md5: str | None = None  # base64, as Azure reports it
    content: ContentSettings = field(default_factory=ContentSettings)
    metadata: dict[str, str] = field(default_factory=dict)
    #: Azure's access tier when listed (Hot, Cool, Cold, Archive): it picks the copy's S3 storage class.
    tier: str | None = None
    #: The blob's index tags as listed; None when the credential may not read them (the copy goes on without).
    tags: dict[str, str] | None = field(default_factory=dict)

    @property
    def blob_id(self) -> str:
        return f"{self.container}/{self.name}"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "container": self.container,
            "name": self.name,
            "size": self.size,
            "etag": self.etag,
            "last_modified": iso(self.last_modified),
        }
        if self.content_md5:
            data["content_md5"] = self.content_md5
        data.update({key: value for key, value in asdict(self.content).items() if value})
        if self.metadata:
            data["metadata"] = dict(self.metadata)
        if self.tier:
            data["tier"] = self.tier
        if self.tags is None or self.tags:
            data["tags"] = None if self.tags is None else dict(self.tags)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BlobRef:
        try:
            return cls(
                container=str(data["container"]),
                name=str(data["name"]),
                size=int(data["size"]),
                etag=str(data["etag"]),
                last_modified=parse_iso(str(data["last_modified"])),
                content_md5=data.get("content_md5"),
                content=ContentSettings(
                    **{key: data.get(key) for key in ContentSettings.__dataclass_fields__}
                ),
                metadata={str(k): str(v) for k, v in (data.get("metadata") or {}).items()},
                tier=str(data["tier"]) if data.get("tier") else None,
                tags=(
                    None
                    if "tags" in data and data["tags"] is None
                    else {str(k): str(v) for k, v in (data.get("tags") or {}).items()}
                ),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise MessageError(f"malformed blob in message: {error!r}") from None


@dataclass(frozen=True)
class SourceBlob:
    """A listing entry: the blob plus what decides whether it can be copied at all."""

    ref: BlobRef
    archive_status: str | None = None
    is_directory: bool = False

    @property
    def archived(self) -> bool:
        return (self.ref.tier or "").lower() == "archive" or bool(self.archive_status)


# --- messages ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FindBlobsTask:
    kind: ClassVar[str] = "find-blobs"
    run_id: str
    container: str
    marker: str | None = None
    page: int = 0
    #: The name prefix of the listing shard this task lists (None: the container, under the run's prefix).
    shard: str | None = None
    #: Whether this shard may split in turn: it was the only one its listing split into.
    divisible: bool = False

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"container": self.container, "marker": self.marker, "page": self.page}
        if self.shard is not None:
            body["shard"], body["divisible"] = self.shard, self.divisible
        return body


@dataclass(frozen=True)
class DownloadTask:
    kind: ClassVar[str] = "download"
    run_id: str
    blobs: tuple[BlobRef, ...]
    #: The destination key of each blob, decided when it was listed (the key the skip check looked at), so
    #: a destination_prefix changed mid-run does not split the run. Empty in messages written before keys
    #: were carried; the key is then computed from the settings.
    keys: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.keys and len(self.keys) != len(self.blobs):
            raise MessageError(f"small batch has {len(self.blobs)} blobs but {len(self.keys)} keys")

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"blobs": [blob.to_dict() for blob in self.blobs]}
        if self.keys:
            body["keys"] = list(self.keys)
        return body


@dataclass(frozen=True)
class LargefileInitializerTask:
    kind: ClassVar[str] = "largefile-initializer"
    run_id: str
    blob: BlobRef
    key: str

    def body(self) -> dict[str, Any]:
        return {"blob": self.blob.to_dict(), "key": self.key}


@dataclass(frozen=True)
class LargefileParterTask:
    kind: ClassVar[str] = "largefile-parter"
    run_id: str
    blob: BlobRef
    key: str
    upload_id: str
    part: int
    offset: int
    length: int
    parts: int
    part_size: int

    def body(self) -> dict[str, Any]:
        return {
            "blob": self.blob.to_dict(),
            "key": self.key,
            "upload_id": self.upload_id,
            "part": self.part,
            "offset": self.offset,
            "length": self.length,
            "parts": self.parts,
            "part_size": self.part_size,
        }


@dataclass(frozen=True)
class LargefileRecombinatorTask:
    kind: ClassVar[str] = "largefile-recombinator"
    run_id: str
    blob: BlobRef
    key: str
    upload_id: str
    #: A read-back that continues in a fresh invocation: the first part not verified yet (0: the upload is
    #: still to be completed) and the object version being read.
    verify_from: int = 0
    version_id: str | None = None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"blob": self.blob.to_dict(), "key": self.key, "upload_id": self.upload_id}
        if self.verify_from:
            body.update(verify_from=self.verify_from, version_id=self.version_id)
        return body


Message = (
    FindBlobsTask | DownloadTask | LargefileInitializerTask | LargefileParterTask | LargefileRecombinatorTask
)


def encode(message: Message) -> str:
    text = json.dumps(
        {"v": VERSION, "kind": message.kind, "run_id": message.run_id, **message.body()},
        separators=(",", ":"),
        ensure_ascii=False,
    )
    if len(text.encode()) > SNS_MAX_BYTES:
        raise MessageError(f"{message.kind} message of {len(text.encode())} bytes exceeds SNS' 256 KiB")
    return text


def decode(text: str) -> Message:
    try:
        data = json.loads(text)
    except ValueError as error:
        raise MessageError(f"message is not JSON: {error}") from None
    if not isinstance(data, dict):
        raise MessageError("message is not a JSON object")
    if data.get("v") != VERSION:
        raise MessageError(f"message version {data.get('v')!r} is not supported (this code reads v{VERSION})")
    kind, run_id = data.get("kind"), data.get("run_id")
    if not isinstance(run_id, str) or not run_id:
        raise MessageError("message has no run_id")
    try:
        if kind == "find-blobs":
            shard = data.get("shard")
            return FindBlobsTask(
                run_id,
                str(data["container"]),
                data.get("marker"),
                int(data.get("page", 0)),
                None if shard is None else str(shard),
                bool(data.get("divisible", False)),
            )
        if kind == "download":
            return DownloadTask(
                run_id,
                tuple(BlobRef.from_dict(blob) for blob in data["blobs"]),
                tuple(str(key) for key in data.get("keys") or ()),
            )
        if kind == "largefile-initializer":
            return LargefileInitializerTask(run_id, BlobRef.from_dict(data["blob"]), str(data["key"]))
        if kind == "largefile-parter":
            return LargefileParterTask(
                run_id,
                BlobRef.from_dict(data["blob"]),
                str(data["key"]),
                str(data["upload_id"]),
                int(data["part"]),
                int(data["offset"]),
                int(data["length"]),
                int(data["parts"]),
                int(data["part_size"]),
            )
        if kind == "largefile-recombinator":
            version = data.get("version_id")
            return LargefileRecombinatorTask(
                run_id,
                BlobRef.from_dict(data["blob"]),
                str(data["key"]),
                str(data["upload_id"]),
                int(data.get("verify_from") or 0),
                str(version) if version is not None else None,
            )
    except (KeyError, TypeError, ValueError) as error:
        raise MessageError(f"malformed {kind} message: {error!r}") from None
    raise MessageError(f"unknown message kind {kind!r}")


def download_tasks(
    run_id: str, blobs: list[tuple[BlobRef, str]], *, max_blobs: int = 25, max_bytes: int = 64 * 1024 * 1024
) -> list[DownloadTask]:
    """Group (blob, destination key) pairs into messages of at most max_blobs blobs, max_bytes of data and
    240 KiB of JSON."""
    overhead = len(encode(DownloadTask(run_id, ()))) + len(',"keys":[]') + 2

    def json_size(value: Any) -> int:
        return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()) + 1

    batches: list[DownloadTask] = []
    current: list[tuple[BlobRef, str]] = []
    current_json = overhead
    current_bytes = 0

    def close() -> None:
        batches.append(DownloadTask(run_id, tuple(b for b, _ in current), tuple(k for _, k in current)))

    for blob, key in blobs:
        size = json_size(blob.to_dict()) + json_size(key)
        if current and (
            len(current) >= max_blobs
            or current_json + size > MESSAGE_BUDGET
            or current_bytes + blob.size > max_bytes
        ):
            close()
            current, current_json, current_bytes = [], overhead, 0
        current.append((blob, key))
        current_json += size
        current_bytes += blob.size
    if current:
        close()
    return batches
