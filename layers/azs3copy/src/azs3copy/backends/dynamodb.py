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
    CREATE_CHUNK,
    RETENTION_SECONDS,
    attempt_sk,
    batch_get,
    blob_digest,
    blob_sk,
    digest_sk,
    listed_sk,
    page_sk,
    part_prefix,
    part_sk,
    run_pk,
    run_puts,
    send,
    transact,
)
from azs3copy.backends.dynamodb_items import item as _item
from azs3copy.backends.dynamodb_items import plain as _plain
from azs3copy.errors import FatalError
from azs3copy.ledger import (
    COUNTER,
    REASON_CHARS,
    TERMINAL_STATES,
    BlobRecord,
    Claim,
    Decided,
    LedgerRefusedError,
    ListedBlob,
    PageEntry,
    PageRecord,
    PageStatus,
    Registration,
    RunInProgressError,
    RunRecord,
    blob_record,
    note_sk,
    page_entries,
    run_record,
)
from azs3copy.settings import RunSettings

#: A container stamps a run's progress from claims and parts at most this often (they come by the thousand).
PROGRESS_INTERVAL = 60.0


class DynamoLedger:
    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table
        self._progressed: dict[str, float] = {}  # run id → when this container last stamped its progress

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
                        "Key": self._key(str(current["run_id"]), "META"),
                        "ConditionExpression": "attribute_not_exists(pk) OR progress_at < :stale OR "
                        "(attribute_not_exists(progress_at) AND started_at < :stale)",
                        "ExpressionAttributeValues": _item(**{":stale": Decimal(str(now - stale_after))}),
                    }
                }
            )
        elif not force:
            put_current.update(
                ConditionExpression="attribute_not_exists(run_id) OR finished = :yes",
                ExpressionAttributeValues=_item(**{":yes": True}),
            )
        failed = self._transact(
            [
                {"Put": put_current},
                *run_puts(
                    self.table, run_id, now, containers, len(containers), begindate, launch_id, settings
                ),
                *stalled,
            ],
            "start_run",
        )
        if 0 in failed or (stalled and 4 in failed):
            current = self._get("CURRENT", "CURRENT") or {}
            running = str(current["run_id"]) if current.get("run_id") else None
            raise RunInProgressError(
                f"run {running} has not finished; wait for it, or start anyway with force", run_id=running
            )
        if failed:
            raise FatalError(f"run {run_id} is in the ledger already")
        return run_id

    def open_run(self, run_id: str, *, containers: list[str], begindate: str, settings: RunSettings) -> bool:
        if self._get(run_pk(run_id), "META") is not None:
            return False
        puts = run_puts(self.table, run_id, time.time(), containers, 1, begindate, None, settings)
        return not self._transact(puts, "open_run")  # a failed condition: another delivery opened it first

    def get_run(self, run_id: str) -> RunRecord | None:
        item = self._get(run_pk(run_id), "META")
        return run_record(item) if item else None

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
        self._progress(run_id)  # a listing whose pages select nothing makes progress too
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
        for start in range(0, len(entries), CREATE_CHUNK):
            refused += self._create_blobs(run_id, entries[start : start + CREATE_CHUNK])
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
        """Create the items of the blobs the run does not hold yet and count them, in one transaction: an item
        and its count are written together or not at all. Blobs whose item exists already are dropped and the
        transaction is sent again with the rest. A transaction DynamoDB refuses as invalid is written blob by
        blob, and a blob it refuses alone is recorded failed with the reason; returns those (blob id, reason)."""
        while entries:
            try:
                items = [*map(self._blob_put(run_id), entries), self._count(run_id, entries)]
                exist = self._transact(items, "register_page")
            except LedgerRefusedError as error:
                if len(entries) > 1:
                    return [refused for entry in entries for refused in self._create_blobs(run_id, [entry])]
                [entry] = entries
                reason = f"the ledger cannot hold the record of this blob as listed: {error}"[:REASON_CHARS]
                self._create_blobs(run_id, [PageEntry(entry.blob_id, entry.size, "failed", reason)])
                return [(entry.blob_id, reason)]
            entries = [entry for index, entry in enumerate(entries) if index not in exist] if exist else []
        return []

    def _blob_put(self, run_id: str) -> Any:
        def put(entry: PageEntry) -> dict[str, Any]:
            listed = entry.listed
            values = _item(
                blob_id=entry.blob_id,
                state=entry.state,
                size=entry.size,
                reason=entry.reason[:REASON_CHARS] if entry.reason else None,
                listed=listed.ref_json() if listed else None,
                key=listed.key if listed else None,
                expires_at=self._expires(),
            )
            return {
                "Put": {
                    "TableName": self.table,
                    "Item": {**self._key(run_id, blob_sk(entry.blob_id)), **values},
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }

        return put

    def _count(self, run_id: str, entries: list[PageEntry]) -> dict[str, Any]:
        """The run's counters for newly created blob items: found, and the counter of each decided state."""
        increments = {"found": len(entries)}
        for entry in entries:
            if entry.state != "pending":
                increments[COUNTER[entry.state]] = increments.get(COUNTER[entry.state], 0) + 1
        names = {f"#c{i}": name for i, name in enumerate(increments)}
        values = {f":c{i}": count for i, count in enumerate(increments.values())}
        return {
            "Update": {
                "TableName": self.table,
                "Key": self._key(run_id, "META"),
                "UpdateExpression": "ADD "
                + ", ".join(f"{n} {v}" for n, v in zip(names, values, strict=True)),
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": _item(**values),
            }
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
        self._progress(run_id)
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
        if state not in TERMINAL_STATES:
            raise ValueError(f"{state!r} is not a terminal state")
        terminal = {f":t{i}": s for i, s in enumerate(TERMINAL_STATES)}
        # Every write that can create a blob's item names the blob: its key is only a digest of the id.
        update = "SET #s = :state, finished_at = :now, blob_id = :id REMOVE #o"
        values: dict[str, Any] = {
            ":state": state,
            ":now": Decimal(str(time.time())),
            ":id": blob_id,
            **terminal,
        }
        if reason:
            update = "SET #s = :state, finished_at = :now, blob_id = :id, reason = :reason REMOVE #o"
            values[":reason"] = reason[:REASON_CHARS]
        failed = self._transact(
            [
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": self._key(run_id, blob_sk(blob_id)),
                        "UpdateExpression": update,
                        "ConditionExpression": f"attribute_not_exists(#s) OR NOT #s IN ({', '.join(terminal)})",
                        "ExpressionAttributeNames": {"#s": "state", "#o": "owner"},
                        "ExpressionAttributeValues": _item(**values),
                    }
                },
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": self._key(run_id, "META"),
                        "UpdateExpression": "ADD #n :one, bytes_copied :bytes SET progress_at = :now",
                        "ExpressionAttributeNames": {"#n": COUNTER[state]},
                        "ExpressionAttributeValues": _item(
                            **{":one": 1, ":bytes": nbytes, ":now": values[":now"]}
                        ),
                    }
                },
            ],
            "finish",
        )
        return not failed  # a failed condition: the blob reached a terminal state before

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
        self._progress(run_id)
        return len(response["Attributes"].get("parts_done", {}).get("NS", []))

    def _progress(self, run_id: str) -> None:
        """Stamp the run's progress, which keeps a later launch from taking it over (finish stamps it too)."""
        now = time.time()
        if now - self._progressed.get(run_id, 0.0) < PROGRESS_INTERVAL:
            return
        try:
            self._call(
                "update_item",
                Key=self._key(run_id, "META"),
                UpdateExpression="SET progress_at = :now",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues=_item(**{":now": Decimal(str(now))}),
            )
        except ClientError:
            pass  # no such run
        self._progressed[run_id] = now

    def _query(self, run_id: str, prefix: str) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": _item(**{":pk": run_pk(run_id), ":prefix": prefix}),
            "ConsistentRead": True,
        }
        while True:
            response = self._call("query", **kwargs)
            for item in response.get("Items", []):
                yield _plain(item)
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

    def add_note(self, run_id: str, note: str) -> None:
        item = _item(pk=run_pk(run_id), sk=note_sk(note), note=note[:2000], expires_at=self._expires())
        self._call("put_item", Item=item)

    def notes(self, run_id: str) -> list[str]:
        return [str(item["note"]) for item in self._query(run_id, "NOTE#")]

    def mark_reported(self, run_id: str, report_key: str, finished_at: float) -> None:
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
