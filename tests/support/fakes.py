"""In-memory BlobSource, ObjectSink and Ledger: fast, deterministic fakes for the engine's tests and the contract
tests. They keep the real services' rules that matter to a copy (ETags change on overwrite, If-Match
reads, parts listed in pages, uploads that vanish when aborted)."""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

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
from azs3copy.ledger import (
    COUNTER,
    TERMINAL_STATES,
    BlobRecord,
    Claim,
    PageStatus,
    RunInProgressError,
    RunRecord,
    blob_record,
    page_entries,
    run_record,
)
from azs3copy.messages import BlobRef, ContentSettings, SourceBlob
from azs3copy.settings import RunSettings
from azs3copy.transports import (
    CompletedPart,
    ListPage,
    ObjectAttrs,
    ObjectInfo,
    UploadedPart,
)

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
            start = 0 if marker is None else int(marker)
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
        return ListPage(blobs, str(following) if following < len(names) else None)

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
    def __init__(self, *, versioned: bool = False, list_page_size: int = 1000, kms: bool = False) -> None:
        self.objects: dict[str, _Object] = {}
        #: As S3 with SSE-KMS: a part's ETag is not its MD5, and a part uploaded again gets a new one.
        self.kms = kms
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


# --- the ledger ----------------------------------------------------------------------------------------


@dataclass
class _MemRun:
    record: dict[str, Any]
    blobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    pages: dict[tuple[str, int], str] = field(default_factory=dict)
    listed: set[str] = field(default_factory=set)
    parts: dict[str, dict[int, str]] = field(default_factory=dict)
    attempts: dict[tuple[str, str], int] = field(default_factory=dict)
    settings: RunSettings | None = None


@dataclass
class _Current:
    run_id: str
    started_at: float
    launched_by: str | None
    finished: bool = False


class MemoryLedger:
    def __init__(self) -> None:
        self.runs: dict[str, _MemRun] = {}
        self.current: _Current | None = None
        self._lock = threading.RLock()

    def _run(self, run_id: str) -> _MemRun:
        run = self.runs.get(run_id)
        if run is None:
            raise KeyError(f"run {run_id} is not in the ledger")
        return run

    def start_run(
        self,
        run_id: str,
        *,
        containers: list[str],
        begindate: str,
        force: bool,
        stale_after: float,
        launch_id: str | None = None,
        settings: RunSettings | None = None,
    ) -> str:
        with self._lock:
            current = self.current
            if current and launch_id and current.launched_by == launch_id:
                return current.run_id
            if current and not force and not current.finished:
                progress = self.runs[current.run_id].record["progress_at"]
                if time.time() - progress < stale_after:  # taken over only when it made no progress
                    raise RunInProgressError(f"run {current.run_id} has not finished", run_id=current.run_id)
            if run_id in self.runs:
                raise FatalError(f"run {run_id} is in the ledger already")
            self.runs[run_id] = _MemRun(
                {
                    "run_id": run_id,
                    "started_at": time.time(),
                    "progress_at": time.time(),
                    "containers": list(containers),
                    "begindate": begindate,
                    "listing_pending": len(containers),
                },
                settings=settings,
            )
            self.current = _Current(run_id, time.time(), launch_id)
            return run_id

    def get_run(self, run_id: str) -> RunRecord | None:
        with self._lock:
            run = self.runs.get(run_id)
            return run_record(dict(run.record)) if run else None

    def run_settings(self, run_id: str) -> RunSettings | None:
        with self._lock:
            run = self.runs.get(run_id)
            return run.settings if run else None

    def current_run_id(self) -> str | None:
        with self._lock:
            return self.current.run_id if self.current and not self.current.finished else None

    def latest_run_id(self) -> str | None:
        with self._lock:
            return max(self.runs, default=None)

    def register_page(
        self,
        run_id: str,
        container: str,
        page: int,
        pending: list[tuple[str, int]],
        decided: list[tuple[str, int, str, str]],
    ) -> PageStatus:
        with self._lock:
            run = self._run(run_id)
            run.record["progress_at"] = time.time()
            status = run.pages.get((container, page))
            if status in ("registered", "published"):
                return status  # type: ignore[return-value]
            for blob_id, size, state, reason in page_entries(pending, decided):
                if blob_id in run.blobs:
                    continue  # listed before, by this page's earlier attempt or another page
                run.blobs[blob_id] = {"state": state, "size": size, "reason": reason}
                run.record["found"] = run.record.get("found", 0) + 1
                if state != "pending":
                    run.record[COUNTER[state]] = run.record.get(COUNTER[state], 0) + 1
            run.pages[(container, page)] = "registered"
            return "new" if status is None else "registering"

    def mark_page_published(self, run_id: str, container: str, page: int) -> None:
        with self._lock:
            self._run(run_id).pages[(container, page)] = "published"

    def finish_container(self, run_id: str, container: str) -> None:
        with self._lock:
            run = self._run(run_id)
            if container not in run.listed:
                run.listed.add(container)
                run.record["listing_pending"] -= 1

    def claim(self, run_id: str, blob_id: str, owner: str, lease_seconds: float) -> Claim:
        with self._lock:
            item = self._run(run_id).blobs.setdefault(blob_id, {"state": "pending"})
            state = item["state"]
            if state in TERMINAL_STATES:
                return Claim("terminal", blob_record(blob_id, item))
            now = time.time()
            if state == "working" and item.get("owner") != owner and item.get("lease_until", 0) > now:
                return Claim("busy", blob_record(blob_id, item))
            item.update(state="working", owner=owner, lease_until=now + lease_seconds)
            self._run(run_id).record["progress_at"] = now
            return Claim("claimed", blob_record(blob_id, item))

    def release(self, run_id: str, blob_id: str, owner: str) -> None:
        with self._lock:
            item = self._run(run_id).blobs.get(blob_id)
            if item and item["state"] == "working" and item.get("owner") == owner:
                item.update(state="pending", owner=None, lease_until=0)

    def finish(self, run_id: str, blob_id: str, state: str, reason: str | None, nbytes: int) -> bool:
        if state not in TERMINAL_STATES:
            raise ValueError(f"{state!r} is not a terminal state")
        with self._lock:
            run = self._run(run_id)
            item = run.blobs.setdefault(blob_id, {"state": "pending"})
            if item["state"] in TERMINAL_STATES:
                return False
            item.update(state=state, reason=reason, owner=None)
            run.record["progress_at"] = time.time()
            run.record[COUNTER[state]] = run.record.get(COUNTER[state], 0) + 1
            run.record["bytes_copied"] = run.record.get("bytes_copied", 0) + nbytes
            return True

    def set_upload(
        self,
        run_id: str,
        blob_id: str,
        upload_id: str,
        key: str,
        part_size: int,
        parts: int,
        checksum_type: str = "COMPOSITE",
    ) -> str:
        with self._lock:
            item = self._run(run_id).blobs.setdefault(blob_id, {"state": "pending"})
            if not item.get("upload_id"):
                item.update(
                    upload_id=upload_id,
                    key=key,
                    part_size=part_size,
                    parts=parts,
                    checksum_type=checksum_type,
                )
            return str(item["upload_id"])

    def get_blob(self, run_id: str, blob_id: str) -> BlobRecord | None:
        with self._lock:
            item = self._run(run_id).blobs.get(blob_id)
            return blob_record(blob_id, dict(item)) if item is not None else None

    def record_part(self, run_id: str, blob_id: str, number: int, crc32: str) -> int:
        with self._lock:
            run = self._run(run_id)
            run.parts.setdefault(blob_id, {})[number] = crc32
            item = run.blobs.setdefault(blob_id, {"state": "pending"})
            done = set(item.get("parts_done") or ())
            done.add(number)
            item["parts_done"] = done
            run.record["progress_at"] = time.time()
            return len(done)

    def part_checksums(self, run_id: str, blob_id: str) -> dict[int, str]:
        with self._lock:
            return dict(self._run(run_id).parts.get(blob_id, {}))

    def bump_attempt(self, run_id: str, function: str, message_id: str) -> int:
        with self._lock:
            run = self._run(run_id)
            count = run.attempts.get((function, message_id), 0) + 1
            run.attempts[(function, message_id)] = count
            return count

    def blobs(self, run_id: str) -> Iterator[BlobRecord]:
        with self._lock:
            items = sorted(self._run(run_id).blobs.items())
        for blob_id, item in items:
            yield blob_record(blob_id, dict(item))

    def mark_reported(self, run_id: str, report_key: str, finished_at: float) -> None:
        with self._lock:
            run = self._run(run_id)
            run.record.setdefault("finished_at", finished_at)
            run.record["report_key"] = report_key
            if self.current and self.current.run_id == run_id:
                self.current.finished = True
