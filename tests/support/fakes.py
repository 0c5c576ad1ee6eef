"""In-memory BlobSource, ObjectSink and Ledger: fast, deterministic fakes for the engine's tests and the contract
tests. They keep the real services' rules that matter to a copy (ETags change on overwrite, If-Match
reads, parts listed in pages, uploads that vanish when aborted) and their limits (S3's key and metadata
sizes, its versions; the ledger, in fake_ledger.py, DynamoDB's)."""

from __future__ import annotations

import bisect
import hashlib
import itertools
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from azs3copy.checksums import crc32_of, md5_b64
from azs3copy.errors import (
    ChecksumMismatchError,
    FatalError,
    NeedsRehydrationError,
    PartReplacedError,
    SourceChangedError,
    SourceVanishedError,
    UploadGoneError,
)
from azs3copy.messages import BlobRef, ContentSettings, SourceBlob
from azs3copy.transports import (
    WRITE_ID_BYTES,
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
    tags: dict[str, str] = field(default_factory=dict)


class MemoryBlobSource:
    def __init__(self, *, tags_readable: bool = True) -> None:
        self.containers: dict[str, dict[str, _Blob]] = {}
        #: False: the credential may not read index tags, as a SAS without the t permission.
        self.tags_readable = tags_readable
        self._lock = threading.Lock()
        #: Called before every ranged read with (blob, offset, length): tests change the source here.
        self.before_read: Callable[[BlobRef, int, int], None] | None = None
        #: Called with (container, prefix) before each listing request: a test's way to refuse one.
        self.before_list: Callable[[str, str], None] | None = None
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
        tags: dict[str, str] | None = None,
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
            tags=dict(tags or {}),
        )
        with self._lock:
            self.containers.setdefault(container, {})[name] = blob
        return self._ref(container, name, blob)

    def delete(self, container: str, name: str) -> None:
        with self._lock:
            del self.containers[container][name]

    def _ref(self, container: str, name: str, blob: _Blob) -> BlobRef:
        return BlobRef(
            container=container,
            name=name,
            size=len(blob.data),
            etag=blob.etag,
            last_modified=blob.last_modified,
            content_md5=blob.content_md5,
            content=blob.content,
            metadata=dict(blob.metadata),
            tier=blob.tier,
            tags=dict(blob.tags) if self.tags_readable else None,
        )

    def list_containers(self) -> list[str]:
        return sorted(self.containers)

    def list_page(
        self, container: str, prefix: str, marker: str | None, page_size: int, delimiter: str | None = None
    ) -> ListPage:
        """As Azure lists: in name order, `page_size` entries a page. With a delimiter, the names that go on
        past it after the prefix are one entry, a BlobPrefix (up to and including the delimiter), counted in
        the page like a blob."""
        if self.before_list:
            self.before_list(container, prefix)
        with self._lock:
            held = self.containers.get(container, {})
            entries: list[tuple[str, bool]] = []  # (name, is a BlobPrefix)
            for name in sorted(name for name in held if name.startswith(prefix)):
                cut = name.find(delimiter, len(prefix)) if delimiter else -1
                entry = (name, False) if cut < 0 else (name[: cut + len(delimiter or "")], True)
                if not entries or entries[-1] != entry:
                    entries.append(entry)
            # Azure's continuation names the next entry to list, not a position: a listing resumed after blobs
            # were added or deleted starts at that name (or the first one after it).
            start = 0 if marker is None else bisect.bisect_left([name for name, _ in entries], marker)
            chosen = entries[start : start + page_size]
            blobs = [
                SourceBlob(self._ref(container, name, held[name]), is_directory=held[name].is_directory)
                for name, is_prefix in chosen
                if not is_prefix
            ]
        following = start + page_size
        return ListPage(
            blobs,
            entries[following][0] if following < len(entries) else None,
            [name for name, is_prefix in chosen if is_prefix],
        )

    def get_blob(self, container: str, name: str) -> SourceBlob | None:
        with self._lock:
            blob = self.containers.get(container, {}).get(name)
            if blob is None:
                return None
            return SourceBlob(self._ref(container, name, blob), is_directory=blob.is_directory)

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

    def read_blob(self, blob: BlobRef) -> tuple[bytes, str]:
        data = self.read_range(blob, 0, blob.size) if blob.size else b""
        return data, md5_b64(data)


#: S3's limits: a key of at most 1,024 UTF-8 bytes; user metadata of at most 2 KB, counted as the UTF-8 bytes of
#: its names and values (S3ObjectSink adds its write id to every object, so the fake counts it too).
MAX_KEY_BYTES = 1024
MAX_METADATA_BYTES = 2048
#: The storage classes S3 accepts on a write to a general-purpose bucket, and those it serves only restored.
S3_STORAGE_CLASSES = {
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER",
    "DEEP_ARCHIVE",
    "GLACIER_IR",
}
ARCHIVED_CLASSES = {"GLACIER", "DEEP_ARCHIVE"}
#: S3's rules for object tags: at most 10, keys of 1-128 and values of 0-256 characters, letters, digits,
#: spaces and + - = . _ : / @, no key starting with aws:, no key twice.
MAX_TAGS = 10
_TAG_TEXT = re.compile(r"^[\w\s+\-=.:/@]*$")


@dataclass
class _Object:
    data: bytes
    attrs: ObjectAttrs
    version_id: str | None
    tags: dict[str, str] = field(default_factory=dict)
    #: What S3 computed from the bytes it received (before any corruption at rest, which only a read finds).
    crc32: str | None = None
    #: A delete marker: the current version of a key deleted without a version id in a versioned bucket.
    marker: bool = False


@dataclass
class _Upload:
    key: str
    attrs: ObjectAttrs
    tags: dict[str, str] = field(default_factory=dict)
    parts: dict[int, tuple[bytes, str, str]] = field(default_factory=dict)  # data, ETag, CRC32


class MemoryObjectSink:
    """A bucket, versioned or not, as S3 keeps it: every version of a key (the last is current), a delete
    marker for a key deleted without a version id in a versioned bucket, tags per version, and S3's limits on
    keys and metadata."""

    def __init__(self, *, versioned: bool = False, list_page_size: int = 1000, kms: bool = False) -> None:
        self.history: dict[str, list[_Object]] = {}
        #: As S3 with SSE-KMS: a part's ETag is not its MD5, and a part uploaded again gets a new one.
        self.kms = kms
        self.uploads: dict[str, _Upload] = {}
        self.versioned = versioned
        self.list_page_size = list_page_size
        self.puts = 0
        #: Bytes handed out by read(): what a read-back cost.
        self.bytes_read = 0
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        #: Called with the bytes of a PutObject or UploadPart as they arrive, before S3 checks them against
        #: the checksums sent with them; a test may return different bytes (corruption on the way).
        self.on_arrival: Callable[[str, bytes], bytes] | None = None
        #: Called with the bytes about to be stored, after S3's checks; a test may return different bytes
        #: (S3 storing other bytes than it checked: what only a read-back can find).
        self.on_store: Callable[[str, bytes], bytes] | None = None

    @property
    def objects(self) -> dict[str, _Object]:
        """The current version of every key that has one (not a delete marker)."""
        with self._lock:
            return {key: kept[-1] for key, kept in self.history.items() if kept and not kept[-1].marker}

    @property
    def versions(self) -> dict[str, list[str]]:
        """The version ids a versioned bucket holds for each key, oldest first (delete markers left out)."""
        with self._lock:
            return {
                key: [str(obj.version_id) for obj in kept if not obj.marker]
                for key, kept in self.history.items()
                if self.versioned
            }

    def _version(self, key: str, version_id: str | None) -> _Object | None:
        """That version of the key, or the current one; None for none or a delete marker."""
        kept = self.history.get(key) or []
        if version_id is None:
            found = kept[-1] if kept else None
        else:
            found = next((obj for obj in kept if obj.version_id == version_id), None)
        return found if found is not None and not found.marker else None

    @staticmethod
    def _check_key(action: str, key: str) -> None:
        if len(key.encode("utf-8")) > MAX_KEY_BYTES:
            raise FatalError(f"{action}: KeyTooLongError: Your key is too long")

    @staticmethod
    def _check_metadata(action: str, attrs: ObjectAttrs) -> None:
        if attrs.storage_class is not None and attrs.storage_class not in S3_STORAGE_CLASSES:
            raise FatalError(f"{action}: InvalidStorageClass: The storage class you specified is not valid")
        size = sum(len(k.encode("utf-8")) + len(v.encode("utf-8")) for k, v in attrs.metadata.items())
        if size + WRITE_ID_BYTES > MAX_METADATA_BYTES:
            raise FatalError(
                f"{action}: MetadataTooLarge: Your metadata headers exceed the maximum allowed metadata size"
            )

    @staticmethod
    def _check_tags(action: str, tags: dict[str, str]) -> None:
        """S3's InvalidTag: too many tags, a key or value too long, or a character S3 does not allow."""
        if len(tags) > MAX_TAGS:
            raise FatalError(f"{action}: InvalidTag: Object tags cannot be greater than {MAX_TAGS}")
        for name, value in tags.items():
            if (
                not 0 < len(name) <= 128
                or len(value) > 256
                or not (_TAG_TEXT.match(name) and _TAG_TEXT.match(value))
                or name.lower().startswith("aws:")  # S3 keeps the aws: prefix for its own tags
            ):
                raise FatalError(f"{action}: InvalidTag: The TagKey or TagValue you have provided is invalid")

    def _arrived(self, key: str, data: bytes) -> bytes:
        return self.on_arrival(key, data) if self.on_arrival and not key.startswith("_") else data

    def _store(
        self, key: str, data: bytes, attrs: ObjectAttrs, tags: dict[str, str] | None = None
    ) -> str | None:
        crc = crc32_of(data)
        if self.on_store:
            data = self.on_store(key, data)
        version = self._keep(key, _Object(data, attrs, None, tags=dict(tags or {}), crc32=crc))
        self.puts += 1
        return version

    def _keep(self, key: str, stored: _Object) -> str | None:
        """Make `stored` the key's current version: one more version in a versioned bucket, the only one else."""
        stored.version_id = f"v{next(self._ids)}" if self.versioned else None
        self.history[key] = [*self.history.get(key, []), stored] if self.versioned else [stored]
        return stored.version_id

    def head(self, key: str, version_id: str | None = None, *, checksums: bool = False) -> ObjectInfo | None:
        with self._lock:
            found = self._version(key, version_id)
        if found is None:
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
            storage_class=None
            if found.attrs.storage_class in (None, "STANDARD")
            else found.attrs.storage_class,
        )

    def list_sizes(self, prefix: str, start_after: str, stop_after: str) -> Iterator[tuple[str, int]]:
        current = self.objects
        keys = sorted((key for key in current if key.startswith(prefix)), key=str.encode)
        sizes = [(key, len(current[key].data)) for key in keys]
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

    def put(
        self,
        key: str,
        data: bytes,
        *,
        crc32: str,
        md5: str,
        attrs: ObjectAttrs,
    ) -> str | None:
        """PutObject: nothing is stored (neither bytes nor metadata nor tags) unless the bytes as they arrived
        match both checksums and the key, metadata and tags are within S3's limits."""
        self._check_key(f"PUT {key}", key)
        self._check_metadata(f"PUT {key}", attrs)
        self._check_tags(f"PUT {key}", attrs.tags)
        data = self._arrived(key, data)
        self._check(f"PUT {key}", data, crc32, md5)
        with self._lock:
            return self._store(key, data, attrs, attrs.tags)

    def create_upload(self, key: str, attrs: ObjectAttrs) -> str:
        """CreateMultipartUpload; its metadata and tags become the object's when the upload completes."""
        self._check_key(f"create multipart upload of {key}", key)
        self._check_metadata(f"create multipart upload of {key}", attrs)
        self._check_tags(f"create multipart upload of {key}", attrs.tags)
        upload_id = f"upload-{next(self._ids)}"
        with self._lock:
            self.uploads[upload_id] = _Upload(key, attrs, dict(attrs.tags))
        return upload_id

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes, crc32: str) -> str:
        with self._lock:
            upload = self.uploads.get(upload_id)
            if upload is None or upload.key != key:
                raise UploadGoneError(f"upload {upload_id} of {key} does not exist")
            data = self._arrived(key, data)
            self._check(f"upload part {number} of {key}", data, crc32)
            digest = hashlib.md5(data if not self.kms else f"{upload_id}/{number}/{next(self._ids)}".encode())
            etag = '"' + digest.hexdigest() + '"'
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
                    raise PartReplacedError(
                        f"complete {key}: InvalidPart: part {part.number} is not as given"
                    )
            data = b"".join(upload.parts[part.number][0] for part in parts)
            if crc32 is not None:
                self._check(f"complete {key}", data, crc32)
            del self.uploads[upload_id]
            return self._store(key, data, upload.attrs, upload.tags)

    def abort(self, key: str, upload_id: str) -> None:
        with self._lock:
            self.uploads.pop(upload_id, None)

    def read(self, key: str, version_id: str | None = None, start: int = 0) -> Iterator[bytes]:
        with self._lock:
            found = self._version(key, version_id)
        if found is None:
            raise FatalError(f"GET {key}: {'NoSuchVersion' if version_id else 'NoSuchKey'}")
        if found.attrs.storage_class in ARCHIVED_CLASSES:
            raise FatalError(
                f"GET {key}: InvalidObjectState: The operation is not valid for the object's storage class"
            )
        data = found.data
        for offset in range(start, len(data), 1 << 20):
            chunk = data[offset : offset + (1 << 20)]
            self.bytes_read += len(chunk)
            yield chunk
        if not data:
            yield b""

    def delete(self, key: str, version_id: str | None) -> None:
        """With a version id that version goes for good (the one before it is current again, if it was the
        current one); without one, a versioned bucket puts a delete marker on top, an unversioned one drops
        the object."""
        with self._lock:
            kept = self.history.get(key, [])
            if version_id is not None:
                self.history[key] = [obj for obj in kept if obj.version_id != version_id]
            elif self.versioned:
                self._keep(key, _Object(b"", ObjectAttrs(), None, marker=True))
            else:
                self.history[key] = []

    def put_json(self, key: str, body: bytes) -> None:
        self._check_key(f"PUT {key}", key)
        with self._lock:
            self._keep(
                key,
                _Object(body, ObjectAttrs(replace(ContentSettings(), content_type="application/json")), None),
            )

    def put_tags(self, key: str, version_id: str | None, tags: dict[str, str]) -> None:
        self._check_tags(f"tag {key}", tags)
        with self._lock:
            found = self._version(key, version_id)
            if found is None:
                raise FatalError(f"tag {key}: {'NoSuchVersion' if version_id else 'NoSuchKey'}")
            found.tags = dict(tags)

    def get_tags(self, key: str) -> dict[str, str] | None:
        """The tags of the current version; None when the key has none (or a delete marker)."""
        with self._lock:
            found = self._version(key, None)
            return dict(found.tags) if found is not None else None
