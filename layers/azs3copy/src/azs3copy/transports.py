"""The two sides of a copy, as the engine sees them. The engine imports no SDK: Azure, S3 and the in-memory
fakes implement these protocols, and one contract test module runs against every implementation."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from azs3copy.messages import BlobRef, ContentSettings, SourceBlob


@dataclass(frozen=True)
class ListPage:
    blobs: list[SourceBlob]
    marker: str | None  # continuation; None when the container is done
    #: Listed with a delimiter: the names going on past it, each up to and including it (Azure's BlobPrefix).
    prefixes: list[str] = field(default_factory=list)


class BlobSource(Protocol):
    def list_containers(self) -> list[str]:
        """Every container of the account, in name order."""
        ...

    def list_page(
        self, container: str, prefix: str, marker: str | None, page_size: int, delimiter: str | None = None
    ) -> ListPage:
        """One page of blobs under `prefix`, with their properties and metadata; with a delimiter, the names
        that go on past it are listed as prefixes (one each) instead."""
        ...

    def get_blob(self, container: str, name: str) -> SourceBlob | None:
        """The blob as it is now (properties and metadata, as a listing shows them); None when it is gone."""
        ...

    def read_range(self, blob: BlobRef, offset: int, length: int) -> bytes:
        """Exactly `length` bytes from `offset` of the blob version `blob.etag`, each request checked against
        the transactional checksum Azure sends. Raises SourceChangedError when the blob no longer has that
        ETag, SourceVanishedError when it is gone, ChecksumMismatchError when the bytes do not match."""
        ...

    def read_blob(self, blob: BlobRef) -> tuple[bytes, str]:
        """The whole blob, checked as read_range checks, and the MD5 (base64) of its bytes. A blob of one
        checked range has the MD5 Azure sent and the bytes matched: its bytes are not hashed twice."""
        ...


#: User metadata a sink may add to every object it writes (an id of the write, to find the versions an
#: SDK's resent request left behind); the engine keeps room for it within S3's 2 KiB of metadata.
WRITE_ID_METADATA = "azs3copy-write-id"
WRITE_ID_BYTES = len(WRITE_ID_METADATA) + 32


@dataclass(frozen=True)
class ObjectAttrs:
    content: ContentSettings = field(default_factory=ContentSettings)
    metadata: dict[str, str] = field(default_factory=dict)
    #: The S3 storage class to write the object in (None: the bucket's default, S3 Standard).
    storage_class: str | None = None
    #: The object's tags, written with it (the blob's index tags).
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    metadata: dict[str, str]
    version_id: str | None = None
    etag: str | None = None
    content: ContentSettings = field(default_factory=ContentSettings)
    #: S3's CRC32 of the object (asked for with checksums=True): of the whole object when checksum_type is
    #: FULL_OBJECT, of the parts' CRC32s followed by "-<parts>" when COMPOSITE; None when S3 has none.
    crc32: str | None = None
    checksum_type: str | None = None
    #: The object's S3 storage class; None for S3 Standard (HEAD names the class only when it is another).
    storage_class: str | None = None


@dataclass(frozen=True)
class UploadedPart:
    number: int
    size: int
    etag: str


@dataclass(frozen=True)
class CompletedPart:
    number: int
    etag: str
    crc32: str


class ObjectSink(Protocol):
    def head(self, key: str, version_id: str | None = None, *, checksums: bool = False) -> ObjectInfo | None:
        """The object (that version, or the current one), None when there is none; with checksums=True also
        the CRC32 S3 holds for it."""
        ...

    def list_sizes(self, prefix: str, start_after: str, stop_after: str) -> Iterator[tuple[str, int]]:
        """(key, size) of the objects with start_after < key <= stop_after (UTF-8 byte order) under prefix."""
        ...

    def put(
        self,
        key: str,
        data: bytes,
        *,
        crc32: str,
        md5: str,
        attrs: ObjectAttrs,
    ) -> str | None:
        """One object, with its checksums for S3 to check, its metadata and its tags, in one request (S3
        stores nothing when the bytes do not match: ChecksumMismatchError); returns the version id (None if
        unversioned)."""
        ...

    def create_upload(self, key: str, attrs: ObjectAttrs) -> str:
        """Open a multipart upload whose object gets a full-object CRC32 (ChecksumType FULL_OBJECT); its
        metadata and tags are the object's once the upload completes."""
        ...

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes, crc32: str) -> str:
        """Returns the part's ETag. Raises UploadGoneError when the upload was aborted or completed."""
        ...

    def list_parts(self, key: str, upload_id: str) -> Iterator[UploadedPart]:
        """Every part uploaded so far, following pagination to the end."""
        ...

    def complete(
        self, key: str, upload_id: str, parts: list[CompletedPart], *, crc32: str | None = None
    ) -> str | None:
        """Complete the upload; with crc32 (of the whole object) S3 refuses an assembly that does not match it
        (ChecksumMismatchError). Returns the version id."""
        ...

    def abort(self, key: str, upload_id: str) -> None:
        """Abort; an upload that is already gone is not an error."""
        ...

    def read(self, key: str, version_id: str | None = None, start: int = 0) -> Iterator[bytes]:
        """The object's bytes from offset `start` to the end, in chunks."""
        ...

    def delete(self, key: str, version_id: str | None) -> None: ...

    def put_json(self, key: str, body: bytes) -> None: ...

    def put_tags(self, key: str, version_id: str | None, tags: dict[str, str]) -> None:
        """Set the tags of the object version (the current one when version_id is None), replacing any."""
        ...

    def get_tags(self, key: str) -> dict[str, str] | None:
        """The tags of the current version of the object; None when there is no object."""
        ...
