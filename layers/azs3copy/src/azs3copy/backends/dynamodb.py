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
    attempt_sk,
    batch_get,
    blob_digest,
    blob_sk,
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
from azs3copy.backends.dynamodb_items import item as _item
from azs3copy.backends.dynamodb_items import plain as _plain
from azs3copy.backends.dynamodb_runs import DynamoRuns
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
    blob_record,
    increments,
    page_entries,
    unique_finishes,
)


class DynamoLedger(DynamoRuns):
    """The Ledger protocol over one DynamoDB table: the run's items (DynamoRuns), the listing pages, the
    blobs."""

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

    def open_shards(self, run_id: str, unit: str, shards: list[str]) -> list[str]:
        failed = self._transact(
            [
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": {
                            **self._key(run_id, shards_sk(unit)),
                            **_item(shards=list(shards), expires_at=self._expires()),
                        },
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": self._key(run_id, "META"),
                        "UpdateExpression": "ADD listing_pending :more",
                        "ExpressionAttributeValues": _item(**{":more": len(shards)}),
                    }
                },
            ],
            "open_shards",
        )
        if not failed:
            return list(shards)
        return self.get_shards(run_id, unit) or []  # decided by an earlier attempt or another delivery

    def get_shards(self, run_id: str, unit: str) -> list[str] | None:
        item = self._get(run_pk(run_id), shards_sk(unit))
        return None if item is None else [str(shard) for shard in item.get("shards") or []]

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
