"""The run-level items of the DynamoDB ledger: the run (`META`, `SETTINGS`, `CURRENT`, the `RUNS` index), its
counter shards (`COUNT#<n>`, summed into a RunRecord), its failure items (`FAILURE#<digest>`, what the report
lists) and its report claim (`REPORT`). backends/dynamodb.py adds the listing pages and the blobs."""

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
    count_shard,
    count_sk,
    run_pk,
    send,
    transact,
)
from azs3copy.backends.dynamodb_items import item as _item
from azs3copy.backends.dynamodb_items import plain as _plain
from azs3copy.errors import FatalError
from azs3copy.ledger import BlobRecord, RunInProgressError, RunRecord, blob_record, note_sk, run_record
from azs3copy.settings import RunSettings

#: A container stamps a run's progress from claims, parts and pages at most this often (they come by the
#: thousand); counting writes stamp it anyway.
PROGRESS_INTERVAL = 60.0


class DynamoRuns:
    """A run's own items; the base of DynamoLedger."""

    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table
        self._progressed: dict[str, float] = {}  # run id → when this container last stamped its progress
        self._shards: dict[str, int] = {}  # run id → its counter shards, as recorded with it

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
        failed = self._transact(
            [
                {"Put": put_current},
                *self._run_puts(run_id, now, containers, len(containers), begindate, launch_id, settings),
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

    def _run_puts(
        self,
        run_id: str,
        now: float,
        containers: list[str],
        listings: int,
        begindate: str,
        launch_id: str | None,
        settings: RunSettings | None,
    ) -> list[dict[str, Any]]:
        """A new run's record (`META`, only if there is none), its entry in `RUNS` and its settings, as the Puts
        of a transaction: `start_run` adds `CURRENT` to them, `open_run` does not."""
        meta = _item(
            pk=run_pk(run_id),
            sk="META",
            run_id=run_id,
            started_at=Decimal(str(now)),
            progress_at=Decimal(str(now)),
            containers=list(containers),
            begindate=begindate,
            listing_pending=listings,
            count_shards=COUNT_SHARDS,
            expires_at=self._expires(),
            launched_by=launch_id,
        )
        # The settings get their own item, written once: a write is billed by the size of the item it changes.
        text = settings.to_json() if settings else None
        recorded = _item(pk=run_pk(run_id), sk="SETTINGS", settings=text, expires_at=self._expires())
        listed = _item(pk="RUNS", sk=run_id, started_at=Decimal(str(now)), expires_at=self._expires())
        return [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": meta,
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {"Put": {"TableName": self.table, "Item": listed}},
            {"Put": {"TableName": self.table, "Item": recorded}},
        ]

    def open_run(self, run_id: str, *, containers: list[str], begindate: str, settings: RunSettings) -> bool:
        if self._get(run_pk(run_id), "META") is not None:
            return False
        puts = self._run_puts(run_id, time.time(), containers, 1, begindate, None, settings)
        return not self._transact(puts, "open_run")  # a failed condition: another delivery opened it first

    def add_note(self, run_id: str, note: str) -> None:
        item = _item(pk=run_pk(run_id), sk=note_sk(note), note=note[:2000], expires_at=self._expires())
        self._call("put_item", Item=item)

    def notes(self, run_id: str) -> list[str]:
        return [str(item["note"]) for item in self._query(run_id, "NOTE#")]

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
