"""The run ledger in one DynamoDB table (keys `pk`, `sk`; TTL on `expires_at`). See ledger.py and
docs/design.md for the items. Every state change is a conditional write, so redelivered messages and
retried invocations change nothing twice."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from azs3copy.backends.aws_errors import classify_client_error
from azs3copy.errors import FatalError, TransientError
from azs3copy.ledger import (
    COUNTER,
    TERMINAL_STATES,
    BlobRecord,
    Claim,
    PageEntry,
    PageStatus,
    RunInProgressError,
    RunRecord,
    blob_record,
    page_entries,
    run_record,
)
from azs3copy.settings import RunSettings

_ser = TypeSerializer()
_de = TypeDeserializer()
RETENTION_SECONDS = 90 * 24 * 3600
#: Blob items created per transaction: DynamoDB's 100 items, less the run's counters.
_CREATE_CHUNK = 99
#: A container stamps a run's progress from claims and parts at most this often (they come by the thousand).
PROGRESS_INTERVAL = 60.0


def _item(**values: Any) -> dict[str, Any]:
    return {key: _ser.serialize(value) for key, value in values.items() if value is not None}


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    def convert(value: Any) -> Any:
        if isinstance(value, Decimal):
            return int(value) if value == int(value) else float(value)
        if isinstance(value, set):
            return {convert(v) for v in value}
        if isinstance(value, list):
            return [convert(v) for v in value]
        return value

    return {key: convert(_de.deserialize(value)) for key, value in item.items()}


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _conditional_failed(error: ClientError) -> bool:
    return _code(error) == "ConditionalCheckFailedException"


#: Why DynamoDB cancels a transaction that may go through when sent again: another transaction on one of its
#: items at the same moment (every finish and listing write touches the run's META item), or throttling.
_RETRY_REASONS = frozenset(
    {
        "TransactionConflict",
        "ThrottlingError",
        "ProvisionedThroughputExceeded",
        "RequestLimitExceeded",
        "InternalServerError",
        "None",
    }
)
#: Sends of one write before a conflict or throttling is reported as a TransientError (Lambda retries the event).
WRITE_ATTEMPTS = 8


def _backoff(attempt: int) -> None:
    """Full jitter: writers that collided on an item do not collide again in step."""
    time.sleep(random.uniform(0.0, min(1.0, 0.02 * 2**attempt)))


def _cancellation_reasons(error: ClientError) -> list[str]:
    """The code of each item of a cancelled transaction, in the order the items were sent."""
    listed = error.response.get("CancellationReasons")
    if isinstance(listed, list) and listed:
        return [str((reason or {}).get("Code") or "None") for reason in listed]
    # Only in the message otherwise: "Transaction cancelled, please refer cancellation reasons for specific
    # reasons [None, ConditionalCheckFailed]"
    message = str(error.response.get("Error", {}).get("Message", ""))
    match = re.search(r"\[([^\[\]]*)\]\s*$", message)
    return [code.strip() or "None" for code in match.group(1).split(",")] if match else []


class DynamoLedger:
    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table
        self._progressed: dict[str, float] = {}  # run id → when this container last stamped its progress

    # -- helpers
    def _key(self, run_id: str, sk: str) -> dict[str, Any]:
        return _item(pk=f"RUN#{run_id}", sk=sk)

    def _call(self, operation: str, **kwargs: Any) -> Any:
        """One request. A failed condition is re-raised as the ClientError for the caller to read; a write
        that met a transaction on the same item is sent again; anything else is an azs3copy error."""
        for attempt in range(WRITE_ATTEMPTS):
            try:
                return getattr(self.client, operation)(TableName=self.table, **kwargs)
            except ClientError as error:
                if _conditional_failed(error):
                    raise
                if _code(error) != "TransactionConflictException" or attempt == WRITE_ATTEMPTS - 1:
                    raise classify_client_error(error, f"ledger {operation}") from error
            _backoff(attempt)
        raise AssertionError("unreachable")

    def _transact(self, items: list[dict[str, Any]], action: str) -> set[int]:
        """Write the items in one transaction. Returns the indexes of the items whose condition failed (the
        transaction then wrote nothing), or an empty set when it was written.

        DynamoDB cancels a transaction for other reasons too: a conflict with another transaction on one of the
        items, throttling. Those are sent again after a jittered pause, and are a TransientError (a retry of the
        invocation can help) when they do not clear; they never pass for a failed condition."""
        last = "no reason given"
        for attempt in range(WRITE_ATTEMPTS):
            try:
                self.client.transact_write_items(TransactItems=items)
                return set()
            except ClientError as error:
                code = _code(error)
                if code == "TransactionConflictException":
                    last = code
                elif code != "TransactionCanceledException":
                    raise classify_client_error(error, f"ledger {action}") from error
                else:
                    reasons = _cancellation_reasons(error)
                    failed = {
                        index for index, reason in enumerate(reasons) if reason == "ConditionalCheckFailed"
                    }
                    if failed:
                        return failed
                    refused = sorted(set(reasons) - _RETRY_REASONS)
                    if refused:
                        raise FatalError(
                            f"ledger {action}: transaction refused ({', '.join(refused)})"
                        ) from error
                    last = ", ".join(sorted(set(reasons) - {"None"})) or last
            _backoff(attempt)
        raise TransientError(
            f"ledger {action}: transaction still cancelled after {WRITE_ATTEMPTS} attempts ({last})"
        )

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
        meta = _item(
            pk=f"RUN#{run_id}",
            sk="META",
            run_id=run_id,
            started_at=Decimal(str(now)),
            progress_at=Decimal(str(now)),
            containers=list(containers),
            begindate=begindate,
            listing_pending=len(containers),
            found=0,
            bytes_copied=0,
            expires_at=self._expires(),
            launched_by=launch_id,
            **{COUNTER[state]: 0 for state in TERMINAL_STATES},
        )
        # The settings get their own item, written once: META is rewritten by every finish, billed by its size.
        text = settings.to_json() if settings else None
        recorded = _item(pk=f"RUN#{run_id}", sk="SETTINGS", settings=text, expires_at=self._expires())
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
        if 0 in failed or (stalled and 4 in failed):
            current = self._get("CURRENT", "CURRENT") or {}
            running = str(current["run_id"]) if current.get("run_id") else None
            raise RunInProgressError(
                f"run {running} has not finished; wait for it, or start anyway with force", run_id=running
            )
        if failed:
            raise FatalError(f"run {run_id} is in the ledger already")
        return run_id

    def get_run(self, run_id: str) -> RunRecord | None:
        item = self._get(f"RUN#{run_id}", "META")
        return run_record(item) if item else None

    def run_settings(self, run_id: str) -> RunSettings | None:
        item = self._get(f"RUN#{run_id}", "SETTINGS") or {}
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
    def register_page(
        self,
        run_id: str,
        container: str,
        page: int,
        pending: list[tuple[str, int]],
        decided: list[tuple[str, int, str, str]],
    ) -> PageStatus:
        page_key = self._key(run_id, f"PAGE#{container}#{page:08d}")
        status: PageStatus = "new"
        self._progress(run_id)  # a listing whose pages select nothing makes progress too
        try:
            self._call(
                "put_item",
                Item={**page_key, **_item(status="registering", expires_at=self._expires())},
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError:
            existing = self._get(f"RUN#{run_id}", f"PAGE#{container}#{page:08d}") or {}
            status = existing.get("status", "registering")
            if status in ("registered", "published"):
                return status
        entries = page_entries(pending, decided)
        for start in range(0, len(entries), _CREATE_CHUNK):
            self._create_blobs(run_id, entries[start : start + _CREATE_CHUNK])
        self._call(
            "update_item",
            Key=page_key,
            UpdateExpression="SET #s = :s",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=_item(**{":s": "registered"}),
        )
        return status

    def _create_blobs(self, run_id: str, entries: list[PageEntry]) -> None:
        """Create the items of the blobs the run does not hold yet and count them, in one transaction: an item
        and its count are written together or not at all. Blobs whose item exists already are dropped and the
        transaction is sent again with the rest."""
        while entries:
            increments = {"found": len(entries)}
            for _, _, state, _ in entries:
                if state != "pending":
                    increments[COUNTER[state]] = increments.get(COUNTER[state], 0) + 1
            names = {f"#c{i}": name for i, name in enumerate(increments)}
            values = {f":c{i}": count for i, count in enumerate(increments.values())}
            puts = [
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": {
                            **self._key(run_id, f"BLOB#{blob_id}"),
                            **_item(state=state, size=size, reason=reason, expires_at=self._expires()),
                        },
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
                for blob_id, size, state, reason in entries
            ]
            count = {
                "Update": {
                    "TableName": self.table,
                    "Key": self._key(run_id, "META"),
                    "UpdateExpression": "ADD "
                    + ", ".join(f"{n} {v}" for n, v in zip(names, values, strict=True)),
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": _item(**values),
                }
            }
            exist = self._transact([*puts, count], "register_page")
            entries = [entry for index, entry in enumerate(entries) if index not in exist] if exist else []

    def mark_page_published(self, run_id: str, container: str, page: int) -> None:
        self._call(
            "update_item",
            Key=self._key(run_id, f"PAGE#{container}#{page:08d}"),
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
                            **self._key(run_id, f"LISTED#{container}"),
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
                Key=self._key(run_id, f"BLOB#{blob_id}"),
                UpdateExpression="SET #s = :working, #o = :me, lease_until = :until",
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
                Key=self._key(run_id, f"BLOB#{blob_id}"),
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
        update = "SET #s = :state, finished_at = :now REMOVE #o"
        values: dict[str, Any] = {":state": state, ":now": Decimal(str(time.time())), **terminal}
        if reason:
            update = "SET #s = :state, finished_at = :now, reason = :reason REMOVE #o"
            values[":reason"] = reason[:2000]
        failed = self._transact(
            [
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": self._key(run_id, f"BLOB#{blob_id}"),
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
                Key=self._key(run_id, f"BLOB#{blob_id}"),
                UpdateExpression="SET upload_id = :u, #k = :k, part_size = :ps, parts = :n, checksum_type = :ct",
                ConditionExpression="attribute_not_exists(upload_id)",
                ExpressionAttributeNames={"#k": "key"},
                ExpressionAttributeValues=_item(
                    **{":u": upload_id, ":k": key, ":ps": part_size, ":n": parts, ":ct": checksum_type}
                ),
            )
        except ClientError:
            record = self.get_blob(run_id, blob_id)
            if record and record.upload_id:
                return record.upload_id
            raise
        return upload_id

    def get_blob(self, run_id: str, blob_id: str) -> BlobRecord | None:
        item = self._get(f"RUN#{run_id}", f"BLOB#{blob_id}")
        return blob_record(blob_id, item) if item else None

    def record_part(self, run_id: str, blob_id: str, number: int, crc32: str) -> int:
        self._call(
            "put_item",
            Item={
                **self._key(run_id, f"PART#{blob_id}#{number:05d}"),
                **_item(crc32=crc32, expires_at=self._expires()),
            },
        )
        response = self._call(
            "update_item",
            Key=self._key(run_id, f"BLOB#{blob_id}"),
            UpdateExpression="ADD parts_done :p",
            ExpressionAttributeValues={":p": {"NS": [str(number)]}},
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
            "ExpressionAttributeValues": _item(**{":pk": f"RUN#{run_id}", ":prefix": prefix}),
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
        prefix = f"PART#{blob_id}#"
        return {int(item["sk"][len(prefix) :]): str(item["crc32"]) for item in self._query(run_id, prefix)}

    def bump_attempt(self, run_id: str, function: str, message_id: str) -> int:
        response = self._call(
            "update_item",
            Key=self._key(run_id, f"TRY#{function}#{message_id}"),
            UpdateExpression="ADD n :one SET expires_at = :e",
            ExpressionAttributeValues=_item(**{":one": 1, ":e": self._expires()}),
            ReturnValues="UPDATED_NEW",
        )
        return int(response["Attributes"]["n"]["N"])

    def blobs(self, run_id: str) -> Iterator[BlobRecord]:
        for item in self._query(run_id, "BLOB#"):
            yield blob_record(str(item["sk"])[len("BLOB#") :], item)

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
