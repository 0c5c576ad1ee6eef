"""In-memory BlobSource, ObjectSink and Ledger: fast, deterministic fakes for the engine's tests and the contract
tests. They keep the real services' rules that matter to a copy (ETags change on overwrite, If-Match
reads, parts listed in pages, uploads that vanish when aborted) and their limits (S3's key and metadata
sizes, its versions; the ledger, in fake_ledger.py, DynamoDB's)."""

from __future__ import annotations

import bisect
import hashlib
import itertools
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from azs3copy.checksums import crc32_of, md5_b64
from azs3copy.errors import (
    ChecksumMismatchError,
    FatalError,
    NeedsRehydrationError,
    SourceChangedError,
    SourceVanishedError,
    UploadGoneError,
)
from azs3copy.messages import BlobRef, ContentSettings, SourceBlob
from azs3copy.transports import (
    CompletedPart,
    ListPage,
    ObjectAttrs,
    ObjectInfo,
    UploadedPart,
)
from tests.support.fake_ledger import MemoryLedger as MemoryLedger  # the ledger's fake, with the others

_etags = itertools.count(1)


@dataclass
class _Blob:
    data: bytes
    etag: str
    last_modified: datetime
    content_md5: str | None
    content: ContentSettings
    metadata: dict[str, str]
    tier: str | None = None
    is_directory: bool = False


class MemoryBlobSource:
    def __init__(self) -> None:
        self.containers: dict[str, dict[str, _Blob]] = {}
        self._lock = threading.Lock()
        #: Called before every ranged read with (blob, offset, length): tests change the source here.
        self.before_read: Callable[[BlobRef, int, int], None] | None = None
        self.reads: list[tuple[str, int, int]] = []

    def put(
        self,
        container: str,
        name: str,
        data: bytes,
        *,
        last_modified: datetime | None = None,
        content: ContentSettings | None = None,
        metadata: dict[str, str] | None = None,
        store_md5: bool = True,
        tier: str | None = None,
        is_directory: bool = False,
    ) -> BlobRef:
        blob = _Blob(
            data=data,
            etag=f'"0x{next(_etags):016X}"',
            last_modified=last_modified or datetime.now(UTC).replace(microsecond=0),
            content_md5=md5_b64(data) if store_md5 else None,
            content=content or ContentSettings(),
            metadata=dict(metadata or {}),
            tier=tier,
            is_directory=is_directory,
        )
        with self._lock:
            self.containers.setdefault(container, {})[name] = blob
        return self._ref(container, name, blob)

    def delete(self, container: str, name: str) -> None:
        with self._lock:
            del self.containers[container][name]

    @staticmethod
    def _ref(container: str, name: str, blob: _Blob) -> BlobRef:
        return BlobRef(
            container=container,
            name=name,
            size=len(blob.data),
            etag=blob.etag,
            last_modified=blob.last_modified,
            content_md5=blob.content_md5,
            content=blob.content,
            metadata=dict(blob.metadata),
        )

    def list_containers(self) -> list[str]:
        return sorted(self.containers)

    def list_page(self, container: str, prefix: str, marker: str | None, page_size: int) -> ListPage:
        with self._lock:
            names = sorted(name for name in self.containers.get(container, {}) if name.startswith(prefix))
            # Azure's continuation names the next blob to list, not a position: a listing resumed after blobs
            # were added or deleted starts at that name (or the first one after it).
            start = 0 if marker is None else bisect.bisect_left(names, marker)
            chosen = names[start : start + page_size]
            blobs = [
                SourceBlob(
                    self._ref(container, name, self.containers[container][name]),
                    tier=self.containers[container][name].tier,
                    is_directory=self.containers[container][name].is_directory,
                )
                for name in chosen
            ]
        following = start + page_size
        return ListPage(blobs, names[following] if following < len(names) else None)

    def read_range(self, blob: BlobRef, offset: int, length: int) -> bytes:
        if self.before_read:
            self.before_read(blob, offset, length)
        with self._lock:
            current = self.containers.get(blob.container, {}).get(blob.name)
            self.reads.append((blob.blob_id, offset, length))
        if current is None:
            raise SourceVanishedError(f"{blob.blob_id} was deleted after it was listed")
        if current.etag != blob.etag:
            raise SourceChangedError(f"{blob.blob_id} changed after it was listed (ETag {current.etag})")
        if (current.tier or "").lower() == "archive":
            raise NeedsRehydrationError(f"{blob.blob_id} is in the archive tier")
        return current.data[offset : offset + length]


@dataclass
class _Object:
    data: bytes
    attrs: ObjectAttrs
    version_id: str | None
    tags: dict[str, str] = field(default_factory=dict)
    #: What S3 computed from the bytes it received (before any corruption at rest, which only a read finds).
    crc32: str | None = None


@dataclass
class _Upload:
    key: str
    attrs: ObjectAttrs
    parts: dict[int, tuple[bytes, str, str]] = field(default_factory=dict)  # data, ETag, CRC32


class MemoryObjectSink:
    def __init__(self, *, versioned: bool = False, list_page_size: int = 1000) -> None:
        self.objects: dict[str, _Object] = {}
        self.versions: dict[str, list[str]] = {}
        self.uploads: dict[str, _Upload] = {}
        self.versioned = versioned
        self.list_page_size = list_page_size
        self.puts = 0
        #: Bytes handed out by read(): what a read-back cost.
        self.bytes_read = 0
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        #: Called with the bytes about to be stored; a test may return different bytes (corruption).
        self.on_store: Callable[[str, bytes], bytes] | None = None

    def _store(self, key: str, data: bytes, attrs: ObjectAttrs) -> str | None:
        crc = crc32_of(data)
        if self.on_store:
            data = self.on_store(key, data)
        version = f"v{next(self._ids)}" if self.versioned else None
        self.objects[key] = _Object(data, attrs, version, crc32=crc)
        if version:
            self.versions.setdefault(key, []).append(version)
        self.puts += 1
        return version

    def head(self, key: str, version_id: str | None = None, *, checksums: bool = False) -> ObjectInfo | None:
        with self._lock:
            found = self.objects.get(key)
        if found is None or (version_id is not None and found.version_id != version_id):
            return None
        etag = '"' + hashlib.md5(found.data).hexdigest() + '"'
        return ObjectInfo(
            len(found.data),
            dict(found.attrs.metadata),
            found.version_id,
            etag,
            found.attrs.content,
            crc32=found.crc32 if checksums else None,
            checksum_type="FULL_OBJECT" if checksums and found.crc32 else None,
        )

    def list_sizes(self, prefix: str, start_after: str, stop_after: str) -> Iterator[tuple[str, int]]:
        with self._lock:
            keys = sorted((key for key in self.objects if key.startswith(prefix)), key=str.encode)
            sizes = [(key, len(self.objects[key].data)) for key in keys]
        low, high = start_after.encode(), stop_after.encode()
        yield from ((key, size) for key, size in sizes if low < key.encode() <= high)

    @staticmethod
    def _check(action: str, data: bytes, crc32: str, md5: str | None = None) -> None:
        """What S3 does with the checksums a request carries: BadDigest when the bytes do not match."""
        if crc32 != crc32_of(data):
            raise ChecksumMismatchError(
                f"{action}: BadDigest: the CRC32 you specified did not match the data"
            )
        if md5 is not None and md5 != md5_b64(data):
            raise ChecksumMismatchError(f"{action}: BadDigest: the Content-MD5 you specified did not match")

    def put(self, key: str, data: bytes, *, crc32: str, md5: str, attrs: ObjectAttrs) -> str | None:
        self._check(f"PUT {key}", data, crc32, md5)
        with self._lock:
            return self._store(key, data, attrs)

    def create_upload(self, key: str, attrs: ObjectAttrs) -> str:
        upload_id = f"upload-{next(self._ids)}"
        with self._lock:
            self.uploads[upload_id] = _Upload(key, attrs)
        return upload_id

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes, crc32: str) -> str:
        with self._lock:
            upload = self.uploads.get(upload_id)
            if upload is None or upload.key != key:
                raise UploadGoneError(f"upload {upload_id} of {key} does not exist")
            self._check(f"upload part {number} of {key}", data, crc32)
            etag = '"' + hashlib.md5(data).hexdigest() + '"'
            upload.parts[number] = (data, etag, crc32)
        return etag

    def list_parts(self, key: str, upload_id: str) -> Iterator[UploadedPart]:
        with self._lock:
            upload = self.uploads.get(upload_id)
            if upload is None:
                raise UploadGoneError(f"upload {upload_id} of {key} does not exist")
            listed = sorted(upload.parts.items())
        for start in range(0, len(listed), self.list_page_size):  # pages, like ListParts
            for number, (data, etag, _) in listed[start : start + self.list_page_size]:
                yield UploadedPart(number, len(data), etag)

    def complete(
        self, key: str, upload_id: str, parts: list[CompletedPart], *, crc32: str | None = None
    ) -> str | None:
        with self._lock:
            upload = self.uploads.get(upload_id)
            if upload is None:
                raise UploadGoneError(f"upload {upload_id} of {key} does not exist")
            for part in parts:  # S3: InvalidPart, and the upload stays open
                held = upload.parts.get(part.number)
                if held is None or held[1] != part.etag or held[2] != part.crc32:
                    raise FatalError(f"complete {key}: InvalidPart: part {part.number} is not as given")
            data = b"".join(upload.parts[part.number][0] for part in parts)
            if crc32 is not None:
                self._check(f"complete {key}", data, crc32)
            del self.uploads[upload_id]
            return self._store(key, data, upload.attrs)

    def abort(self, key: str, upload_id: str) -> None:
        with self._lock:
            self.uploads.pop(upload_id, None)

    def read(self, key: str, version_id: str | None = None, start: int = 0) -> Iterator[bytes]:
        with self._lock:
            data = self.objects[key].data
        for offset in range(start, len(data), 1 << 20):
            chunk = data[offset : offset + (1 << 20)]
            self.bytes_read += len(chunk)
            yield chunk
        if not data:
            yield b""

    def delete(self, key: str, version_id: str | None) -> None:
        with self._lock:
            found = self.objects.get(key)
            if found and (version_id is None or found.version_id == version_id):
                del self.objects[key]
            if version_id and key in self.versions and version_id in self.versions[key]:
                self.versions[key].remove(version_id)

    def put_json(self, key: str, body: bytes) -> None:
        with self._lock:
            self.objects[key] = _Object(
                body, ObjectAttrs(replace(ContentSettings(), content_type="application/json")), None
            )

    def put_tags(self, key: str, version_id: str | None, tags: dict[str, str]) -> None:
        with self._lock:
            found = self.objects.get(key)
            if found is not None and (version_id is None or found.version_id == version_id):
                found.tags = dict(tags)
                return
            if version_id is not None and version_id in self.versions.get(key, []):
                return  # a version no longer current: its tags are not kept here
        raise FatalError(f"tag {key}: NoSuchKey or NoSuchVersion")

    def get_tags(self, key: str) -> dict[str, str] | None:
        with self._lock:
            found = self.objects.get(key)
            return dict(found.tags) if found is not None else None
