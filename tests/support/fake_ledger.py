"""The in-memory ledger: the items the DynamoDB ledger writes, under the same keys, in a table that keeps
DynamoDB's rules (key and item sizes, transactions of at most 100 items and 4 MB with one operation per item,
`begins_with` over sort keys in byte order). A key or an item DynamoDB would refuse is refused here too, so a
test on this ledger fails where the real table would."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from azs3copy.backends.dynamodb_items import (
    COUNT_PREFIX,
    COUNT_SHARDS,
    FAILURE_PREFIX,
    REPORT_SK,
    RETENTION_SECONDS,
    attempt_sk,
    blob_digest,
    blob_sk,
    count_shard,
    count_sk,
    digest_sk,
    failure_sk,
    listed_sk,
    page_sk,
    part_prefix,
    part_sk,
    run_pk,
    shards_sk,
    transaction_chunks,
)
from azs3copy.backends.dynamodb_runs import PROGRESS_INTERVAL
from azs3copy.errors import FatalError
from azs3copy.ledger import (
    NOT_COPIED_STATES,
    REASON_CHARS,
    TERMINAL_STATES,
    BlobRecord,
    Claim,
    Decided,
    Finish,
    LedgerRefusedError,
    ListedBlob,
    PageEntry,
    PageRecord,
    PageStatus,
    Registration,
    RunInProgressError,
    RunRecord,
    blob_record,
    increments,
    note_sk,
    page_entries,
    run_record,
    unique_finishes,
)
from azs3copy.settings import RunSettings

#: DynamoDB's limits (developer guide, "Quotas"): key attribute values, an item with its attribute names,
#: and a TransactWriteItems request.
MAX_PARTITION_KEY_BYTES = 2048
MAX_SORT_KEY_BYTES = 1024
MAX_ITEM_BYTES = 400 * 1024
MAX_TRANSACTION_ITEMS = 100
MAX_TRANSACTION_BYTES = 4 * 1024 * 1024

Item = dict[str, Any]


def value_size(value: Any) -> int:
    """What DynamoDB counts for an attribute value: UTF-8 bytes of a string, bytes of a binary, about one byte
    per two significant digits of a number, the elements of a set, 3 bytes plus the elements of a list or map."""
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    if isinstance(value, bytes):
        return len(value)
    if isinstance(value, int | float):
        digits = len(str(abs(value)).replace(".", "").strip("0")) or 1
        return (digits + 1) // 2 + 1
    if isinstance(value, set | frozenset):
        return sum(value_size(element) for element in value)
    if isinstance(value, list | tuple):
        return 3 + sum(1 + value_size(element) for element in value)
    if isinstance(value, dict):
        return 3 + sum(1 + len(key.encode("utf-8")) + value_size(element) for key, element in value.items())
    raise TypeError(f"DynamoDB holds no {type(value).__name__}")


def item_size(pk: str, sk: str, attributes: Item) -> int:
    values = {"pk": pk, "sk": sk, **attributes}
    return sum(len(name.encode("utf-8")) + value_size(value) for name, value in values.items())


def _copy(item: Item) -> Item:
    return {name: set(value) if isinstance(value, set) else value for name, value in item.items()}


class FakeTable:
    """Items by partition key and sort key, written whole; every write is checked as DynamoDB checks it."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Item]] = {}
        #: Writes by (pk, sk), as DynamoDB would meter them per item: what makes an item hot.
        self.writes: dict[tuple[str, str], int] = {}

    def get(self, pk: str, sk: str) -> Item | None:
        found = self.items.get(pk, {}).get(sk)
        return _copy(found) if found is not None else None

    def query(self, pk: str, prefix: str) -> list[tuple[str, Item]]:
        """`pk = :pk AND begins_with(sk, :prefix)`: every sort key that starts with the prefix, in UTF-8 order."""
        found = [(sk, item) for sk, item in self.items.get(pk, {}).items() if sk.startswith(prefix)]
        return [(sk, _copy(item)) for sk, item in sorted(found, key=lambda pair: pair[0].encode("utf-8"))]

    def write(self, action: str, writes: list[tuple[str, str, Item]], *, transaction: bool = False) -> None:
        """Put every item, or none when DynamoDB would refuse the request (LedgerRefusedError)."""

        def refuse(why: str) -> LedgerRefusedError:
            return LedgerRefusedError(f"ledger {action}: ValidationException: {why}")

        if transaction and len(writes) > MAX_TRANSACTION_ITEMS:
            raise refuse(f"a transaction holds at most {MAX_TRANSACTION_ITEMS} items, not {len(writes)}")
        if len({(pk, sk) for pk, sk, _ in writes}) < len(writes):
            raise refuse("Transaction request cannot include multiple operations on one item")
        total = 0
        for pk, sk, attributes in writes:
            if not pk or len(pk.encode("utf-8")) > MAX_PARTITION_KEY_BYTES:
                raise refuse(
                    f"Size of hashkey has exceeded the maximum size limit of {MAX_PARTITION_KEY_BYTES} bytes"
                )
            if not sk or len(sk.encode("utf-8")) > MAX_SORT_KEY_BYTES:
                raise refuse(
                    f"Aggregated size of all range keys has exceeded the size limit of {MAX_SORT_KEY_BYTES} bytes"
                )
            size = item_size(pk, sk, attributes)
            if size > MAX_ITEM_BYTES:
                raise refuse(f"Item size has exceeded the maximum allowed size ({size} bytes)")
            total += size
        if transaction and total > MAX_TRANSACTION_BYTES:
            raise refuse(f"a transaction holds at most 4 MB of items, not {total} bytes")
        for pk, sk, attributes in writes:
            self.items.setdefault(pk, {})[sk] = _copy(attributes)
            self.writes[pk, sk] = self.writes.get((pk, sk), 0) + 1

    def delete(self, pk: str, sk: str) -> None:
        self.items.get(pk, {}).pop(sk, None)
        self.writes[pk, sk] = self.writes.get((pk, sk), 0) + 1


class MemoryLedger:
    """The Ledger protocol over a FakeTable, each operation under one lock (DynamoDB makes each request and each
    transaction atomic)."""

    def __init__(self) -> None:
        self.table = FakeTable()
        self._lock = threading.RLock()
        self._progressed: dict[str, float] = {}

    @staticmethod
    def _expires() -> int:
        return int(time.time()) + RETENTION_SECONDS

    def _meta(self, run_id: str) -> Item:
        return self.table.get(run_pk(run_id), "META") or {}

    def _shard_count(self, run_id: str) -> int:
        return int((self._meta(run_id)).get("count_shards") or 0)

    def _counted(self, run_id: str, digest: bytes, added: dict[str, int]) -> tuple[str, str, Item]:
        """The counter shard the digest picks, with `added` added and the run's progress stamped."""
        pk, sk = run_pk(run_id), count_sk(count_shard(digest, self._shard_count(run_id)))
        shard = self.table.get(pk, sk) or {}
        for name, count in added.items():
            shard[name] = shard.get(name, 0) + count
        shard.update(progress_at=time.time(), expires_at=self._expires())
        return pk, sk, shard

    def _progress(self, run_id: str, digest: bytes) -> None:
        """Stamp the run's progress (a page listed, a blob claimed, a part uploaded) in a counter shard, at
        most once a PROGRESS_INTERVAL per ledger as the DynamoDB ledger does per container: a launch takes
        over only a run that made none for stale_after seconds (counting writes stamp it anyway)."""
        now = time.time()
        if now - self._progressed.get(run_id, 0.0) < PROGRESS_INTERVAL:
            return
        if self._shard_count(run_id):
            self.table.write("progress", [self._counted(run_id, digest, {})])
        self._progressed[run_id] = now

    # -- runs
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
            current = self.table.get("CURRENT", "CURRENT") or {}
            if launch_id and current.get("launched_by") == launch_id:
                return str(current["run_id"])
            now = time.time()
            if not force and current.get("run_id") and not current.get("finished"):
                running = str(current["run_id"])
                last = self.table.get(run_pk(running), "META")
                shards = [item for _, item in self.table.query(run_pk(running), COUNT_PREFIX)]
                if last is not None and run_record(last, shards).progress_at >= now - stale_after:
                    raise RunInProgressError(
                        f"run {running} has not finished; wait for it, or start anyway with force",
                        run_id=running,
                    )
            if self.table.get(run_pk(run_id), "META") is not None:
                raise FatalError(f"run {run_id} is in the ledger already")
            current = {"run_id": run_id, "started_at": now, "finished": False}
            if launch_id:
                current["launched_by"] = launch_id
            self.table.write(
                "start_run",
                [
                    ("CURRENT", "CURRENT", current),
                    *self._run_items(
                        run_id, now, containers, len(containers), begindate, launch_id, settings
                    ),
                ],
                transaction=True,
            )
            return run_id

    def _run_items(
        self,
        run_id: str,
        now: float,
        containers: list[str],
        listings: int,
        begindate: str,
        launch_id: str | None,
        settings: RunSettings | None,
    ) -> list[tuple[str, str, Item]]:
        meta: Item = {
            "run_id": run_id,
            "started_at": now,
            "progress_at": now,
            "containers": list(containers),
            "begindate": begindate,
            "listing_pending": listings,
            "count_shards": COUNT_SHARDS,
            "expires_at": self._expires(),
        }
        if launch_id:
            meta["launched_by"] = launch_id
        recorded: Item = {"expires_at": self._expires()}
        if settings is not None:
            recorded["settings"] = settings.to_json()
        return [
            (run_pk(run_id), "META", meta),
            ("RUNS", run_id, {"started_at": now, "expires_at": self._expires()}),
            (run_pk(run_id), "SETTINGS", recorded),
        ]

    def open_run(self, run_id: str, *, containers: list[str], begindate: str, settings: RunSettings) -> bool:
        with self._lock:
            if self.table.get(run_pk(run_id), "META") is not None:
                return False
            items = self._run_items(run_id, time.time(), containers, 1, begindate, None, settings)
            self.table.write("open_run", items, transaction=True)
            return True

    def get_run(self, run_id: str) -> RunRecord | None:
        with self._lock:
            meta = self.table.get(run_pk(run_id), "META")
            shards = [item for _, item in self.table.query(run_pk(run_id), COUNT_PREFIX)]
            return run_record(meta, shards) if meta else None

    def run_settings(self, run_id: str) -> RunSettings | None:
        with self._lock:
            item = self.table.get(run_pk(run_id), "SETTINGS") or {}
        return RunSettings.from_json(str(item["settings"])) if item.get("settings") else None

    def current_run_id(self) -> str | None:
        with self._lock:
            current = self.table.get("CURRENT", "CURRENT")
            return str(current["run_id"]) if current and not current.get("finished") else None

    def latest_run_id(self) -> str | None:
        with self._lock:
            runs = self.table.query("RUNS", "")
            return runs[-1][0] if runs else None

    # -- listing
    def get_page(self, run_id: str, container: str, page: int) -> PageRecord | None:
        with self._lock:
            item = self.table.get(run_pk(run_id), page_sk(container, page))
            return PageRecord(item["status"], item.get("next_marker") or None) if item else None

    def register_page(
        self,
        run_id: str,
        container: str,
        page: int,
        pending: list[ListedBlob],
        decided: list[Decided],
        next_marker: str | None = None,
    ) -> Registration:
        pk, sk = run_pk(run_id), page_sk(container, page)
        entries = page_entries(pending, decided)
        digests = {blob_digest(entry.blob_id) for entry in entries}
        with self._lock:
            self._progress(run_id, blob_digest(sk))  # a listing whose pages select nothing makes progress too
            before = self.table.get(pk, sk) or {}
            status: PageStatus = before.get("status", "new")
            record = {**before, "status": before.get("status", "registering"), "expires_at": self._expires()}
            if digests:
                record["blobs"] = set(before.get("blobs") or ()) | digests
            self.table.write("register_page", [(pk, sk, record)])
        refused: list[tuple[str, str]] = []
        weights = [2 if entry.state in NOT_COPIED_STATES else 1 for entry in entries]
        for group in transaction_chunks(weights):
            refused += self._create_blobs(run_id, [entries[index] for index in group])
        earlier = set(before.get("blobs") or ()) - digests
        with self._lock:
            record = self.table.get(pk, sk) or {}
            if record.get("status") != "published":
                record.update(status="registered", next_marker=next_marker or "")
                self.table.write("register_page", [(pk, sk, record)])
        dropped = {blob_id for blob_id, _ in refused}
        listed = [entry.listed for entry in entries if entry.listed and entry.blob_id not in dropped]
        return Registration(status, listed + self._listed(run_id, earlier), refused)

    def _create_blobs(self, run_id: str, entries: list[PageEntry]) -> list[tuple[str, str]]:
        """As the DynamoDB ledger does it: the new blobs' items and their counts in one transaction, and blob by
        blob when the transaction is refused; a blob refused alone is recorded failed."""
        pk = run_pk(run_id)
        with self._lock:
            entries = [entry for entry in entries if self.table.get(pk, blob_sk(entry.blob_id)) is None]
            if not entries:
                return []
            decided = [entry.state for entry in entries if entry.state != "pending"]
            counted = self._counted(
                run_id, blob_digest(entries[0].blob_id), increments(decided, found=len(entries))
            )
            writes = [(pk, blob_sk(entry.blob_id), self._blob_item(entry)) for entry in entries]
            writes += [
                (
                    pk,
                    failure_sk(entry.blob_id),
                    self._failure_item(entry.blob_id, entry.state, entry.reason, entry.size),
                )
                for entry in entries
                if entry.state in NOT_COPIED_STATES
            ]
            try:
                self.table.write("register_page", [*writes, counted], transaction=True)
                return []
            except LedgerRefusedError as error:
                if len(entries) > 1:
                    return [refused for entry in entries for refused in self._create_blobs(run_id, [entry])]
                [entry] = entries
                reason = f"the ledger cannot hold the record of this blob as listed: {error}"[:REASON_CHARS]
                self._create_blobs(run_id, [PageEntry(entry.blob_id, entry.size, "failed", reason)])
                return [(entry.blob_id, reason)]

    def _failure_item(self, blob_id: str, state: str, reason: str | None, size: int) -> Item:
        item: Item = {"blob_id": blob_id, "state": state, "size": size, "expires_at": self._expires()}
        if reason:
            item["reason"] = reason[:REASON_CHARS]
        return item

    def _blob_item(self, entry: PageEntry) -> Item:
        item: Item = {
            "blob_id": entry.blob_id,
            "state": entry.state,
            "size": entry.size,
            "expires_at": self._expires(),
        }
        if entry.reason:
            item["reason"] = entry.reason[:REASON_CHARS]
        if entry.listed:
            item.update(listed=entry.listed.ref_json(), key=entry.listed.key)
        return item

    def page_blobs(self, run_id: str, container: str, page: int) -> list[ListedBlob]:
        with self._lock:
            item = self.table.get(run_pk(run_id), page_sk(container, page)) or {}
        return self._listed(run_id, set(item.get("blobs") or ()))

    def _listed(self, run_id: str, digests: set[bytes]) -> list[ListedBlob]:
        with self._lock:
            found = [self.table.get(run_pk(run_id), digest_sk(digest)) for digest in sorted(digests)]
        blobs = [
            ListedBlob.stored(item["listed"], item["key"])
            for item in found
            if item and item.get("listed") and item.get("state") not in TERMINAL_STATES
        ]
        return sorted(blobs, key=lambda blob: blob.blob_id)

    def mark_page_published(self, run_id: str, container: str, page: int) -> None:
        pk, sk = run_pk(run_id), page_sk(container, page)
        with self._lock:
            record = self.table.get(pk, sk) or {}
            self.table.write("mark_page_published", [(pk, sk, {**record, "status": "published"})])

    def finish_container(self, run_id: str, container: str) -> None:
        pk = run_pk(run_id)
        with self._lock:
            if self.table.get(pk, listed_sk(container)) is not None:
                return  # this container's listing was counted as done before
            meta = self._meta(run_id)
            meta["listing_pending"] = meta.get("listing_pending", 0) - 1
            writes = [(pk, listed_sk(container), {"expires_at": self._expires()}), (pk, "META", meta)]
            self.table.write("finish_container", writes, transaction=True)

    def open_shards(self, run_id: str, unit: str, shards: list[str]) -> list[str]:
        pk = run_pk(run_id)
        with self._lock:
            held = self.table.get(pk, shards_sk(unit))
            if held is not None:
                return list(held["shards"])  # decided by an earlier attempt or another delivery
            meta = self._meta(run_id)
            meta["listing_pending"] = meta.get("listing_pending", 0) + len(shards)
            record = {"shards": list(shards), "expires_at": self._expires()}
            self.table.write(
                "open_shards", [(pk, shards_sk(unit), record), (pk, "META", meta)], transaction=True
            )
            return list(shards)

    def get_shards(self, run_id: str, unit: str) -> list[str] | None:
        with self._lock:
            held = self.table.get(run_pk(run_id), shards_sk(unit))
        return None if held is None else list(held["shards"])

    # -- blobs
    def _blob(self, run_id: str, blob_id: str) -> Item | None:
        return self.table.get(run_pk(run_id), blob_sk(blob_id))

    def _put_blob(self, action: str, run_id: str, blob_id: str, item: Item) -> None:
        self.table.write(action, [(run_pk(run_id), blob_sk(blob_id), {**item, "blob_id": blob_id})])

    def claim(self, run_id: str, blob_id: str, owner: str, lease_seconds: float) -> Claim:
        now = time.time()
        with self._lock:
            item = self._blob(run_id, blob_id)
            state = item.get("state") if item else None
            mine_or_over = (item or {}).get("owner") == owner or (item or {}).get("lease_until", 0) < now
            free = state in (None, "pending") or (state == "working" and mine_or_over)
            if item is not None and (state in TERMINAL_STATES or not free):
                outcome = "terminal" if state in TERMINAL_STATES else "busy"
                return Claim(outcome, blob_record(blob_id, item))
            claimed = {**(item or {}), "state": "working", "owner": owner, "lease_until": now + lease_seconds}
            self._put_blob("claim", run_id, blob_id, claimed)
            self._progress(run_id, blob_digest(blob_id))
            return Claim("claimed", blob_record(blob_id, claimed))

    def release(self, run_id: str, blob_id: str, owner: str) -> None:
        with self._lock:
            item = self._blob(run_id, blob_id)
            if item and item.get("state") == "working" and item.get("owner") == owner:
                item.pop("owner")
                self._put_blob("release", run_id, blob_id, {**item, "state": "pending", "lease_until": 0})

    def finish(self, run_id: str, blob_id: str, state: str, reason: str | None, nbytes: int) -> bool:
        return blob_id in self.finish_many(run_id, [Finish(blob_id, state, reason, nbytes)])

    def finish_many(self, run_id: str, finishes: list[Finish]) -> set[str]:
        """As the DynamoDB ledger does it: per transaction of at most 100 items, the blobs' terminal states,
        their failure items and one counter shard; blobs already terminal are left out."""
        finishes = unique_finishes(finishes)
        weights = [2 if finish.state in NOT_COPIED_STATES else 1 for finish in finishes]
        recorded: set[str] = set()
        for group in transaction_chunks(weights):
            recorded |= self._finish_group(run_id, [finishes[index] for index in group])
        return recorded

    def _finish_group(self, run_id: str, group: list[Finish]) -> set[str]:
        pk = run_pk(run_id)
        with self._lock:
            writes: list[tuple[str, str, Item]] = []
            fresh: list[Finish] = []
            for finish in group:
                item = self._blob(run_id, finish.blob_id) or {}
                if item.get("state") in TERMINAL_STATES:
                    continue  # the blob reached a terminal state before
                fresh.append(finish)
                item.pop("owner", None)
                item.update(state=finish.state, finished_at=time.time(), blob_id=finish.blob_id)
                if finish.reason:
                    item["reason"] = finish.reason[:REASON_CHARS]
                writes.append((pk, blob_sk(finish.blob_id), item))
                if finish.state in NOT_COPIED_STATES:
                    failure = self._failure_item(finish.blob_id, finish.state, finish.reason, 0)
                    writes.append((pk, failure_sk(finish.blob_id), failure))
            if not fresh:
                return set()
            nbytes = sum(finish.nbytes for finish in fresh)
            added = increments([finish.state for finish in fresh], nbytes)
            writes.append(self._counted(run_id, blob_digest(fresh[0].blob_id), added))
            self.table.write("finish", writes, transaction=True)
            return {finish.blob_id for finish in fresh}

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
            item = self._blob(run_id, blob_id) or {}
            if item.get("upload_id"):
                return str(item["upload_id"])  # an earlier one wins
            upload = {"upload_id": upload_id, "key": key, "part_size": part_size, "parts": parts}
            self._put_blob("set_upload", run_id, blob_id, {**item, **upload, "checksum_type": checksum_type})
            return upload_id

    def get_blob(self, run_id: str, blob_id: str) -> BlobRecord | None:
        with self._lock:
            item = self._blob(run_id, blob_id)
            return blob_record(blob_id, item) if item else None

    def record_part(self, run_id: str, blob_id: str, number: int, crc32: str) -> int:
        pk = run_pk(run_id)
        with self._lock:
            part = {"crc32": crc32, "expires_at": self._expires()}
            self.table.write("record_part", [(pk, part_sk(blob_id, number), part)])
            item = self._blob(run_id, blob_id) or {}
            done = set(item.get("parts_done") or ()) | {number}
            self._put_blob("record_part", run_id, blob_id, {**item, "parts_done": done})
            self._progress(run_id, blob_digest(blob_id))
            return len(done)

    def part_checksums(self, run_id: str, blob_id: str) -> dict[int, str]:
        prefix = part_prefix(blob_id)
        with self._lock:
            found = self.table.query(run_pk(run_id), prefix)
        return {int(sk[len(prefix) :]): str(item["crc32"]) for sk, item in found}

    def bump_attempt(self, run_id: str, function: str, message_id: str) -> int:
        pk, sk = run_pk(run_id), attempt_sk(function, message_id)
        with self._lock:
            item = self.table.get(pk, sk) or {}
            count = int(item.get("n", 0)) + 1
            self.table.write("bump_attempt", [(pk, sk, {"n": count, "expires_at": self._expires()})])
            return count

    def blobs(self, run_id: str) -> Iterator[BlobRecord]:
        with self._lock:
            found = self.table.query(run_pk(run_id), "BLOB#")
        for _, item in found:
            yield blob_record(str(item["blob_id"]), item)

    def add_note(self, run_id: str, note: str) -> None:
        with self._lock:
            item: Item = {"note": note[:2000], "expires_at": self._expires()}
            self.table.write("add note", [(run_pk(run_id), note_sk(note), item)])

    def notes(self, run_id: str) -> list[str]:
        with self._lock:
            found = self.table.query(run_pk(run_id), "NOTE#")
        return [str(item["note"]) for _, item in found]

    def failures(self, run_id: str, limit: int) -> list[BlobRecord]:
        with self._lock:
            found = self.table.query(run_pk(run_id), FAILURE_PREFIX)[:limit]
        return [blob_record(str(item["blob_id"]), item) for _, item in found]

    def claim_report(self, run_id: str, owner: str, lease_seconds: float) -> bool:
        pk, now = run_pk(run_id), time.time()
        with self._lock:
            claim = self.table.get(pk, REPORT_SK)
            if claim is not None and (
                claim.get("reported") or (claim["owner"] != owner and claim["lease_until"] >= now)
            ):
                return False  # another function writes it, or wrote it
            mine = {"owner": owner, "lease_until": now + lease_seconds, "expires_at": self._expires()}
            self.table.write("claim_report", [(pk, REPORT_SK, mine)])
            return True

    def release_report(self, run_id: str, owner: str) -> None:
        pk = run_pk(run_id)
        with self._lock:
            claim = self.table.get(pk, REPORT_SK)
            if claim is not None and claim["owner"] == owner and not claim.get("reported"):
                self.table.delete(pk, REPORT_SK)

    def mark_reported(self, run_id: str, report_key: str, finished_at: float) -> None:
        pk = run_pk(run_id)
        with self._lock:
            claim = self.table.get(pk, REPORT_SK) or {}
            self.table.write("mark_reported", [(pk, REPORT_SK, {**claim, "reported": report_key})])
            meta = self._meta(run_id)
            meta["report_key"] = report_key
            meta.setdefault("finished_at", finished_at)
            self.table.write("mark_reported", [(pk, "META", meta)])
            current = self.table.get("CURRENT", "CURRENT")
            if current and current.get("run_id") == run_id:  # else a newer run (forced) is current now
                self.table.write("mark_reported", [("CURRENT", "CURRENT", {**current, "finished": True})])
