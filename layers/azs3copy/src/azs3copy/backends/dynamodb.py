"""The run ledger in one DynamoDB table (keys `pk`, `sk`; TTL on `expires_at`). See ledger.py and
docs/design.md for the items. Every state change is a conditional write, so redelivered messages and
retried invocations change nothing twice."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from azs3copy.backends.dynamodb_items import (
    COUNT_PREFIX,
    COUNT_SHARDS,
    FAILURE_PREFIX,
    REPORT_SK,
    RETENTION_SECONDS,
    attempt_sk,
    batch_get,
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
    send,
    transact,
    transaction_chunks,
)
from azs3copy.backends.dynamodb_items import item as _item
from azs3copy.backends.dynamodb_items import plain as _plain
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
    page_entries,
    run_record,
    unique_finishes,
)
from azs3copy.settings import RunSettings

#: A container stamps a run's progress from claims, parts and pages at most this often (they come by the
#: thousand); counting writes stamp it anyway.
PROGRESS_INTERVAL = 60.0


class DynamoLedger:
    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table
        self._progressed: dict[str, float] = {}  # run id → when this container last stamped its progress
        self._shards: dict[str, int] = {}  # run id → its counter shards, as recorded with it

    # -- helpers
    def _key(self, run_id: str, sk: str) -> dict[str, Any]:
        return _item(pk=run_pk(run_id), sk=sk)

    def _call(self, operation: str, **kwargs: Any) -> Any:
        return send(self.client, self.table, operation, **kwargs)

    def _transact(self, items: list[dict[str, Any]], action: str) -> set[int]:
        return transact(self.client, items, action)

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        response = self._call("get_item", Key=_item(pk=pk, sk=sk), ConsistentRead=True)
        return _plain(response["Item"]) if "Item" in response else None

    def _expires(self) -> int:
        return int(time.time()) + RETENTION_SECONDS

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
        current = self._get("CURRENT", "CURRENT") or {}
        if launch_id and current.get("launched_by") == launch_id:
            return str(current["run_id"])  # this launch started it: a retry of the invocation
        now = time.time()
        put_current: dict[str, Any] = {
            "TableName": self.table,
            "Item": _item(
                pk="CURRENT",
                sk="CURRENT",
                run_id=run_id,
                started_at=Decimal(str(now)),
                finished=False,
                launched_by=launch_id,
            ),
        }
        stalled: list[dict[str, Any]] = []
        if not force and current.get("run_id") and not current.get("finished"):
            running = str(current["run_id"])
            stale = _item(**{":stale": Decimal(str(now - stale_after))})
            # Taken over only when it recorded no progress for stale_after seconds (a run that copies is never
            # taken over, however long it takes), and only while CURRENT still names it.
            put_current.update(
                ConditionExpression="run_id = :old",
                ExpressionAttributeValues=_item(**{":old": current["run_id"]}),
            )
            stalled.append(
                {
                    "ConditionCheck": {
                        "TableName": self.table,
                        "Key": self._key(running, "META"),
                        "ConditionExpression": "attribute_not_exists(pk) OR progress_at < :stale OR "
                        "(attribute_not_exists(progress_at) AND started_at < :stale)",
                        "ExpressionAttributeValues": stale,
                    }
                }
            )
            # Its progress is stamped on its counter shards: none may have moved since either.
            stalled += [
                {
                    "ConditionCheck": {
                        "TableName": self.table,
                        "Key": self._key(running, count_sk(shard)),
                        "ConditionExpression": "attribute_not_exists(pk) OR progress_at < :stale",
                        "ExpressionAttributeValues": stale,
                    }
                }
                for shard in range(self._shard_count(running))
            ]
        elif not force:
            put_current.update(
                ConditionExpression="attribute_not_exists(run_id) OR finished = :yes",
                ExpressionAttributeValues=_item(**{":yes": True}),
            )
        meta = _item(
            pk=run_pk(run_id),
            sk="META",
            run_id=run_id,
            started_at=Decimal(str(now)),
            progress_at=Decimal(str(now)),
            containers=list(containers),
            begindate=begindate,
            listing_pending=len(containers),
            count_shards=COUNT_SHARDS,
            expires_at=self._expires(),
            launched_by=launch_id,
        )
        # The settings get their own item, written once: a write is billed by the size of the item it changes.
        text = settings.to_json() if settings else None
        recorded = _item(pk=run_pk(run_id), sk="SETTINGS", settings=text, expires_at=self._expires())
        failed = self._transact(
            [
                {"Put": put_current},
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": meta,
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": _item(
                            pk="RUNS", sk=run_id, started_at=Decimal(str(now)), expires_at=self._expires()
                        ),
                    }
                },
                {"Put": {"TableName": self.table, "Item": recorded}},
                *stalled,
            ],
            "start_run",
        )
        if 0 in failed or failed & set(range(4, 4 + len(stalled))):
            current = self._get("CURRENT", "CURRENT") or {}
            holder = str(current["run_id"]) if current.get("run_id") else None
            raise RunInProgressError(
                f"run {holder} has not finished; wait for it, or start anyway with force", run_id=holder
            )
        if failed:
            raise FatalError(f"run {run_id} is in the ledger already")
        return run_id

    def get_run(self, run_id: str) -> RunRecord | None:
        item = self._get(run_pk(run_id), "META")
        return run_record(item, list(self._query(run_id, COUNT_PREFIX))) if item else None

    def _shard_count(self, run_id: str) -> int:
        """The run's counter shards as recorded with it (read once per container); 0 for no such run."""
        if run_id not in self._shards:
            item = self._get(run_pk(run_id), "META")
            if item is None:
                return 0
            self._shards[run_id] = int(item.get("count_shards") or 0)
        return self._shards[run_id]

    def run_settings(self, run_id: str) -> RunSettings | None:
        item = self._get(run_pk(run_id), "SETTINGS") or {}
        return RunSettings.from_json(str(item["settings"])) if item.get("settings") else None

    def current_run_id(self) -> str | None:
        item = self._get("CURRENT", "CURRENT")
        return str(item["run_id"]) if item and not item.get("finished") else None

    def latest_run_id(self) -> str | None:
        response = self._call(
            "query",
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=_item(**{":pk": "RUNS"}),
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        )
        items = response.get("Items") or []
        return str(_plain(items[0])["sk"]) if items else None

    # -- listing
    def get_page(self, run_id: str, container: str, page: int) -> PageRecord | None:
        item = self._get(run_pk(run_id), page_sk(container, page))
        if not item:
            return None
        return PageRecord(item.get("status", "registering"), item.get("next_marker") or None)

    def register_page(
        self,
        run_id: str,
        container: str,
        page: int,
        pending: list[ListedBlob],
        decided: list[Decided],
        next_marker: str | None = None,
    ) -> Registration:
        self._progress(run_id, blob_digest(page_sk(container, page)))  # a page that selects nothing moves too
        entries = page_entries(pending, decided)
        digests = {blob_digest(entry.blob_id) for entry in entries}
        # The page's blobs first (a set: every attempt's listing adds to it), so that an attempt that stops
        # while creating them leaves a record of each blob it may have created.
        update = "SET #s = if_not_exists(#s, :registering), expires_at = :e"
        values: dict[str, Any] = _item(**{":registering": "registering", ":e": self._expires()})
        if digests:
            update += " ADD blobs :d"
            values[":d"] = {"BS": sorted(digests)}
        response = self._call(
            "update_item",
            Key=self._key(run_id, page_sk(container, page)),
            UpdateExpression=update,
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=values,
            ReturnValues="ALL_OLD",
        )
        before = _plain(response.get("Attributes") or {})
        status: PageStatus = before.get("status", "new")
        refused: list[tuple[str, str]] = []
        weights = [2 if entry.state in NOT_COPIED_STATES else 1 for entry in entries]
        for group in transaction_chunks(weights):
            refused += self._create_blobs(run_id, [entries[index] for index in group])
        earlier = set(before.get("blobs") or ()) - digests  # listed by an earlier attempt, not by this one
        try:
            self._call(
                "update_item",
                Key=self._key(run_id, page_sk(container, page)),
                UpdateExpression="SET #s = :registered, next_marker = :m",
                ConditionExpression="#s <> :published",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=_item(
                    **{":registered": "registered", ":published": "published", ":m": next_marker or ""}
                ),
            )
        except ClientError:
            pass  # published by another delivery of the listing meanwhile: that one's boundary stands
        dropped = {blob_id for blob_id, _ in refused}
        listed = [entry.listed for entry in entries if entry.listed and entry.blob_id not in dropped]
        return Registration(status, listed + self._listed(run_id, earlier), refused)

    def page_blobs(self, run_id: str, container: str, page: int) -> list[ListedBlob]:
        item = self._get(run_pk(run_id), page_sk(container, page)) or {}
        return self._listed(run_id, set(item.get("blobs") or ()))

    def _listed(self, run_id: str, digests: set[bytes]) -> list[ListedBlob]:
        """The blobs of these digests that are still to be copied, as they were listed (BatchGetItem)."""
        keys = [self._key(run_id, digest_sk(digest)) for digest in sorted(digests)]
        found = batch_get(
            self.client, self.table, keys, "#s, listed, #k", {"#s": "state", "#k": "key"}, "ledger page_blobs"
        )
        blobs = [
            ListedBlob.stored(item["listed"], item["key"])
            for item in found
            if item.get("listed") and item.get("state") not in TERMINAL_STATES
        ]
        return sorted(blobs, key=lambda blob: blob.blob_id)

    def _create_blobs(self, run_id: str, entries: list[PageEntry]) -> list[tuple[str, str]]:
        """Create the items of the blobs the run does not hold yet and count them in one counter shard, in one
        transaction: an item and its count are written together or not at all. Blobs whose item exists already
        are dropped and the transaction is sent again with the rest. A transaction DynamoDB refuses as invalid
        is written blob by blob, and a blob it refuses alone is recorded failed with the reason; returns those
        (blob id, reason)."""
        while entries:
            try:
                items, owners = [], []
                for index, entry in enumerate(entries):
                    for write in self._blob_puts(run_id, entry):
                        items.append(write)
                        owners.append(index)
                decided = [entry.state for entry in entries if entry.state != "pending"]
                added = increments(decided, found=len(entries))
                items.append(self._count(run_id, blob_digest(entries[0].blob_id), added))
                exist = self._transact(items, "register_page")
            except LedgerRefusedError as error:
                if len(entries) > 1:
                    return [refused for entry in entries for refused in self._create_blobs(run_id, [entry])]
                [entry] = entries
                reason = f"the ledger cannot hold the record of this blob as listed: {error}"[:REASON_CHARS]
                self._create_blobs(run_id, [PageEntry(entry.blob_id, entry.size, "failed", reason)])
                return [(entry.blob_id, reason)]
            existing = {owners[index] for index in exist if index < len(owners)}
            entries = [entry for index, entry in enumerate(entries) if index not in existing] if exist else []
        return []

    def _blob_puts(self, run_id: str, entry: PageEntry) -> list[dict[str, Any]]:
        """The blob's item, created only if the run does not hold it; and its failure item when its listing
        decided a state that leaves it uncopied."""
        listed = entry.listed
        reason = entry.reason[:REASON_CHARS] if entry.reason else None
        values = _item(
            blob_id=entry.blob_id,
            state=entry.state,
            size=entry.size,
            reason=reason,
            listed=listed.ref_json() if listed else None,
            key=listed.key if listed else None,
            expires_at=self._expires(),
        )
        puts: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": {**self._key(run_id, blob_sk(entry.blob_id)), **values},
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        ]
        if entry.state in NOT_COPIED_STATES:
            puts.append(self._failure_put(run_id, entry.blob_id, entry.state, reason, entry.size))
        return puts

    def _failure_put(
        self, run_id: str, blob_id: str, state: str, reason: str | None, size: int
    ) -> dict[str, Any]:
        values = _item(blob_id=blob_id, state=state, reason=reason, size=size, expires_at=self._expires())
        return {
            "Put": {"TableName": self.table, "Item": {**self._key(run_id, failure_sk(blob_id)), **values}}
        }

    def _count(self, run_id: str, digest: bytes, added: dict[str, int]) -> dict[str, Any]:
        """What a write adds to the run's counters, in the counter shard the digest picks; it stamps the run's
        progress there too."""
        return {"Update": {"TableName": self.table, **self._count_update(run_id, digest, added)}}

    def _count_update(self, run_id: str, digest: bytes, added: dict[str, int]) -> dict[str, Any]:
        names = {f"#c{i}": name for i, name in enumerate(added)}
        adds = {f":c{i}": count for i, count in enumerate(added.values())}
        update = "SET progress_at = :now, expires_at = :e"
        if added:
            update += " ADD " + ", ".join(f"{name} {value}" for name, value in zip(names, adds, strict=True))
        return {
            "Key": self._key(run_id, count_sk(count_shard(digest, self._shard_count(run_id)))),
            "UpdateExpression": update,
            **({"ExpressionAttributeNames": names} if names else {}),
            "ExpressionAttributeValues": _item(
                **adds, **{":now": Decimal(str(time.time())), ":e": self._expires()}
            ),
        }

    def mark_page_published(self, run_id: str, container: str, page: int) -> None:
        self._call(
            "update_item",
            Key=self._key(run_id, page_sk(container, page)),
            UpdateExpression="SET #s = :s",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=_item(**{":s": "published"}),
        )

    def finish_container(self, run_id: str, container: str) -> None:
        self._transact(
            [
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": {
                            **self._key(run_id, listed_sk(container)),
                            **_item(expires_at=self._expires()),
                        },
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": self._key(run_id, "META"),
                        "UpdateExpression": "ADD listing_pending :minus",
                        "ExpressionAttributeValues": _item(**{":minus": -1}),
                    }
                },
            ],
            "finish_container",
        )  # a failed condition: this container's listing was counted as done before

    # -- blobs
    def claim(self, run_id: str, blob_id: str, owner: str, lease_seconds: float) -> Claim:
        now = time.time()
        try:
            response = self._call(
                "update_item",
                Key=self._key(run_id, blob_sk(blob_id)),
                UpdateExpression="SET #s = :working, #o = :me, lease_until = :until, blob_id = :id",
                ConditionExpression=(
                    "attribute_not_exists(#s) OR #s = :pending OR "
                    "(#s = :working AND (#o = :me OR lease_until < :now))"
                ),
                ExpressionAttributeNames={"#s": "state", "#o": "owner"},
                ExpressionAttributeValues=_item(
                    **{
                        ":working": "working",
                        ":pending": "pending",
                        ":me": owner,
                        ":now": Decimal(str(now)),
                        ":until": Decimal(str(now + lease_seconds)),
                        ":id": blob_id,
                    }
                ),
                ReturnValues="ALL_NEW",
            )
        except ClientError:
            record = self.get_blob(run_id, blob_id)
            if record and record.state in TERMINAL_STATES:
                return Claim("terminal", record)
            return Claim("busy", record)
        self._progress(run_id, blob_digest(blob_id))
        return Claim("claimed", blob_record(blob_id, _plain(response["Attributes"])))

    def release(self, run_id: str, blob_id: str, owner: str) -> None:
        try:
            self._call(
                "update_item",
                Key=self._key(run_id, blob_sk(blob_id)),
                UpdateExpression="SET #s = :pending, lease_until = :zero REMOVE #o",
                ConditionExpression="#s = :working AND #o = :me",
                ExpressionAttributeNames={"#s": "state", "#o": "owner"},
                ExpressionAttributeValues=_item(
                    **{":pending": "pending", ":working": "working", ":me": owner, ":zero": 0}
                ),
            )
        except ClientError:
            pass  # not ours any more: finished, or taken over after our lease ran out

    def finish(self, run_id: str, blob_id: str, state: str, reason: str | None, nbytes: int) -> bool:
        return blob_id in self.finish_many(run_id, [Finish(blob_id, state, reason, nbytes)])

    def finish_many(self, run_id: str, finishes: list[Finish]) -> set[str]:
        finishes = unique_finishes(finishes)
        weights = [2 if finish.state in NOT_COPIED_STATES else 1 for finish in finishes]
        recorded: set[str] = set()
        for group in transaction_chunks(weights):
            recorded |= self._finish_group(run_id, [finishes[index] for index in group])
        return recorded

    def _finish_group(self, run_id: str, group: list[Finish]) -> set[str]:
        """One transaction: each blob's terminal state (only if it has none yet), a failure item for each blob
        not copied, and their counts in one counter shard. Blobs that reached a terminal state before are
        dropped and the rest sent again."""
        while group:
            now = Decimal(str(time.time()))
            items, owners = [], []
            for index, finish in enumerate(group):
                items.append(self._finish_update(run_id, finish, now))
                owners.append(index)
                if finish.state in NOT_COPIED_STATES:
                    reason = finish.reason[:REASON_CHARS] if finish.reason else None
                    items.append(self._failure_put(run_id, finish.blob_id, finish.state, reason, 0))
                    owners.append(index)
            nbytes = sum(finish.nbytes for finish in group)
            added = increments([finish.state for finish in group], nbytes)
            items.append(self._count(run_id, blob_digest(group[0].blob_id), added))
            failed = self._transact(items, "finish")
            if not failed:
                return {finish.blob_id for finish in group}
            done_before = {owners[index] for index in failed if index < len(owners)}
            group = [finish for index, finish in enumerate(group) if index not in done_before]
        return set()

    def _finish_update(self, run_id: str, finish: Finish, now: Decimal) -> dict[str, Any]:
        terminal = {f":t{i}": s for i, s in enumerate(TERMINAL_STATES)}
        # Every write that can create a blob's item names the blob: its key is only a digest of the id.
        update = "SET #s = :state, finished_at = :now, blob_id = :id"
        values: dict[str, Any] = {":state": finish.state, ":now": now, ":id": finish.blob_id, **terminal}
        if finish.reason:
            update += ", reason = :reason"
            values[":reason"] = finish.reason[:REASON_CHARS]
        return {
            "Update": {
                "TableName": self.table,
                "Key": self._key(run_id, blob_sk(finish.blob_id)),
                "UpdateExpression": update + " REMOVE #o",
                "ConditionExpression": f"attribute_not_exists(#s) OR NOT #s IN ({', '.join(terminal)})",
                "ExpressionAttributeNames": {"#s": "state", "#o": "owner"},
                "ExpressionAttributeValues": _item(**values),
            }
        }

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
        try:
            self._call(
                "update_item",
                Key=self._key(run_id, blob_sk(blob_id)),
                UpdateExpression=(
                    "SET upload_id = :u, #k = :k, part_size = :ps, parts = :n, checksum_type = :ct, blob_id = :id"
                ),
                ConditionExpression="attribute_not_exists(upload_id)",
                ExpressionAttributeNames={"#k": "key"},
                ExpressionAttributeValues=_item(
                    **{
                        ":u": upload_id,
                        ":k": key,
                        ":ps": part_size,
                        ":n": parts,
                        ":ct": checksum_type,
                        ":id": blob_id,
                    }
                ),
            )
        except ClientError:
            record = self.get_blob(run_id, blob_id)
            if record and record.upload_id:
                return record.upload_id
            raise
        return upload_id

    def get_blob(self, run_id: str, blob_id: str) -> BlobRecord | None:
        item = self._get(run_pk(run_id), blob_sk(blob_id))
        return blob_record(blob_id, item) if item else None

    def record_part(self, run_id: str, blob_id: str, number: int, crc32: str) -> int:
        self._call(
            "put_item",
            Item={
                **self._key(run_id, part_sk(blob_id, number)),
                **_item(crc32=crc32, expires_at=self._expires()),
            },
        )
        response = self._call(
            "update_item",
            Key=self._key(run_id, blob_sk(blob_id)),
            UpdateExpression="ADD parts_done :p SET blob_id = :id",
            ExpressionAttributeValues={":p": {"NS": [str(number)]}, **_item(**{":id": blob_id})},
            ReturnValues="ALL_NEW",
        )
        self._progress(run_id, blob_digest(blob_id))
        return len(response["Attributes"].get("parts_done", {}).get("NS", []))

    def _progress(self, run_id: str, digest: bytes) -> None:
        """Stamp the run's progress, which keeps a later launch from taking it over, in the counter shard the
        digest picks (every counting write stamps it too)."""
        now = time.time()
        if now - self._progressed.get(run_id, 0.0) < PROGRESS_INTERVAL:
            return
        if self._shard_count(run_id):  # else no such run
            self._call("update_item", **self._count_update(run_id, digest, {}))
        self._progressed[run_id] = now

    def _query(self, run_id: str, prefix: str, limit: int | None = None) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": _item(**{":pk": run_pk(run_id), ":prefix": prefix}),
            "ConsistentRead": True,
        }
        left = limit
        while left is None or left > 0:
            if left is not None:
                kwargs["Limit"] = left
            response = self._call("query", **kwargs)
            for item in response.get("Items", []):
                yield _plain(item)
            if left is not None:
                left -= len(response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def part_checksums(self, run_id: str, blob_id: str) -> dict[int, str]:
        prefix = part_prefix(blob_id)
        return {int(item["sk"][len(prefix) :]): str(item["crc32"]) for item in self._query(run_id, prefix)}

    def bump_attempt(self, run_id: str, function: str, message_id: str) -> int:
        response = self._call(
            "update_item",
            Key=self._key(run_id, attempt_sk(function, message_id)),
            UpdateExpression="ADD n :one SET expires_at = :e",
            ExpressionAttributeValues=_item(**{":one": 1, ":e": self._expires()}),
            ReturnValues="UPDATED_NEW",
        )
        return int(response["Attributes"]["n"]["N"])

    def blobs(self, run_id: str) -> Iterator[BlobRecord]:
        for item in self._query(run_id, "BLOB#"):
            yield blob_record(str(item["blob_id"]), item)

    def failures(self, run_id: str, limit: int) -> list[BlobRecord]:
        return [
            blob_record(str(item["blob_id"]), item) for item in self._query(run_id, FAILURE_PREFIX, limit)
        ]

    def claim_report(self, run_id: str, owner: str, lease_seconds: float) -> bool:
        now = time.time()
        try:
            self._call(
                "put_item",
                Item={
                    **self._key(run_id, REPORT_SK),
                    **_item(
                        owner=owner,
                        lease_until=Decimal(str(now + lease_seconds)),
                        expires_at=self._expires(),
                    ),
                },
                ConditionExpression="attribute_not_exists(pk) OR "
                "(attribute_not_exists(reported) AND (#o = :me OR lease_until < :now))",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues=_item(**{":me": owner, ":now": Decimal(str(now))}),
            )
        except ClientError:
            return False  # another function writes it, or wrote it
        return True

    def release_report(self, run_id: str, owner: str) -> None:
        try:
            self._call(
                "delete_item",
                Key=self._key(run_id, REPORT_SK),
                ConditionExpression="#o = :me AND attribute_not_exists(reported)",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues=_item(**{":me": owner}),
            )
        except ClientError:
            pass  # not ours any more

    def mark_reported(self, run_id: str, report_key: str, finished_at: float) -> None:
        self._call(
            "update_item",
            Key=self._key(run_id, REPORT_SK),
            UpdateExpression="SET reported = :k, expires_at = :e",
            ExpressionAttributeValues=_item(**{":k": report_key, ":e": self._expires()}),
        )
        self._call(
            "update_item",
            Key=self._key(run_id, "META"),
            UpdateExpression="SET report_key = :k, finished_at = if_not_exists(finished_at, :f)",
            ExpressionAttributeValues=_item(**{":k": report_key, ":f": Decimal(str(finished_at))}),
        )
        try:
            self._call(
                "update_item",
                Key=_item(pk="CURRENT", sk="CURRENT"),
                UpdateExpression="SET finished = :yes",
                ConditionExpression="run_id = :r",
                ExpressionAttributeValues=_item(**{":yes": True, ":r": run_id}),
            )
        except ClientError:
            pass  # a newer run (forced) is current now
