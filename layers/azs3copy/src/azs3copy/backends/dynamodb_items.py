"""The items of the ledger table: their keys, how values are written and read, and how a request is sent and
DynamoDB's answer read (a failed condition, a conflict to send again, a write refused as invalid).
backends/dynamodb.py builds the requests; the in-memory ledger of the tests stores the same items under the
same keys.

Keys. DynamoDB holds a partition key of at most 2,048 bytes and a sort key of at most 1,024, and `begins_with`
on a sort key matches any key that extends the prefix. A blob's items are therefore keyed by a fixed-width
digest of its id, never by its name: a name as long as S3 allows (or longer, to be refused with its reason) fits,
and the prefix of one blob's parts never reaches another blob's (`a` and `a#b` share no `PART#<digest>#`).
The blob id itself is an attribute of the blob item.
"""

from __future__ import annotations

import hashlib
import random
import re
import time
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from azs3copy.backends.aws_errors import classify_client_error
from azs3copy.errors import FatalError, TransientError
from azs3copy.ledger import COUNT_SHARDS as COUNT_SHARDS
from azs3copy.ledger import LedgerRefusedError

_ser = TypeSerializer()
_de = TypeDeserializer()
RETENTION_SECONDS = 90 * 24 * 3600
#: Items of one TransactWriteItems request (DynamoDB's limit): a listing's or a batch's blob items and the one
#: counter item they are counted in.
TRANSACTION_ITEMS = 100
#: Keys per BatchGetItem request (DynamoDB's limit).
BATCH_GET = 100
#: Bytes of a blob id's digest: 2^128 ids before two are likely to share one.
DIGEST_BYTES = 16


#: A run's counters (found, each terminal state, bytes copied, progress_at) are summed over COUNT_SHARDS
#: items, `COUNT#000`..
COUNT_PREFIX = "COUNT#"
FAILURE_PREFIX = "FAILURE#"
#: The item whose conditional write lets one function, and only one, write a finished run's report.
REPORT_SK = "REPORT"


def blob_digest(blob_id: str) -> bytes:
    return hashlib.sha256(blob_id.encode("utf-8")).digest()[:DIGEST_BYTES]


def run_pk(run_id: str) -> str:
    return f"RUN#{run_id}"


def count_sk(shard: int) -> str:
    return f"{COUNT_PREFIX}{shard:03d}"


def count_shard(digest: bytes, shards: int) -> int:
    """The counter item a write chosen by this digest goes to: spread evenly over the run's shards."""
    return int.from_bytes(digest[:4], "big") % max(1, shards)


def failure_sk(blob_id: str) -> str:
    """A blob that ended in a state other than copied or skipped, for the report (a sparse key range)."""
    return f"{FAILURE_PREFIX}{blob_digest(blob_id).hex()}"


def blob_sk(blob_id: str) -> str:
    return f"BLOB#{blob_digest(blob_id).hex()}"


def digest_sk(digest: bytes) -> str:
    return f"BLOB#{digest.hex()}"


def part_prefix(blob_id: str) -> str:
    return f"PART#{blob_digest(blob_id).hex()}#"


def part_sk(blob_id: str, number: int) -> str:
    return f"{part_prefix(blob_id)}{number:05d}"


def page_sk(container: str, page: int) -> str:
    """Container names are 3 to 63 of [a-z0-9-]: no `#`, and short."""
    return f"PAGE#{container}#{page:08d}"


def listed_sk(container: str) -> str:
    return f"LISTED#{container}"


def shards_sk(unit: str) -> str:
    return f"SHARDS#{unit}"


def attempt_sk(function: str, message_id: str) -> str:
    return f"TRY#{function}#{message_id}"


def transaction_chunks(weights: list[int], reserve: int = 1) -> list[list[int]]:
    """The indexes of entries grouped so that each group's items (an entry's weight) and `reserve` more fit in
    one transaction, in order."""
    groups: list[list[int]] = []
    room = 0
    for index, weight in enumerate(weights):
        if not groups or room < weight:
            groups.append([])
            room = TRANSACTION_ITEMS - reserve
        groups[-1].append(index)
        room -= weight
    return groups


def item(**values: Any) -> dict[str, Any]:
    """Attributes in DynamoDB's wire form; None values are left out."""
    return {key: _ser.serialize(value) for key, value in values.items() if value is not None}


def plain(wire: dict[str, Any]) -> dict[str, Any]:
    """Attributes as plain values: numbers as int or float, binary as bytes."""

    def convert(value: Any) -> Any:
        if isinstance(value, Decimal):
            return int(value) if value == int(value) else float(value)
        if isinstance(value, Binary):
            return bytes(value)
        if isinstance(value, set):
            return {convert(v) for v in value}
        if isinstance(value, list):
            return [convert(v) for v in value]
        return value

    return {key: convert(_de.deserialize(value)) for key, value in wire.items()}


def code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def message(error: ClientError) -> str:
    return f"{code(error)}: {error.response.get('Error', {}).get('Message', '')}"


def conditional_failed(error: ClientError) -> bool:
    return code(error) == "ConditionalCheckFailedException"


#: Why DynamoDB cancels a transaction that may go through when sent again: another transaction on one of its
#: items at the same moment (finishes and listing pages that count in the same counter shard), or throttling.
RETRY_REASONS = frozenset(
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


def backoff(attempt: int) -> None:
    """Full jitter: writers that collided on an item do not collide again in step."""
    time.sleep(random.uniform(0.0, min(1.0, 0.02 * 2**attempt)))


def cancellation_reasons(error: ClientError) -> list[str]:
    """The code of each item of a cancelled transaction, in the order the items were sent."""
    listed = error.response.get("CancellationReasons")
    if isinstance(listed, list) and listed:
        return [str((reason or {}).get("Code") or "None") for reason in listed]
    # Only in the message otherwise: "Transaction cancelled, please refer cancellation reasons for specific
    # reasons [None, ConditionalCheckFailed]"
    message = str(error.response.get("Error", {}).get("Message", ""))
    match = re.search(r"\[([^\[\]]*)\]\s*$", message)
    return [code.strip() or "None" for code in match.group(1).split(",")] if match else []


def batch_get(
    client: Any, table: str, keys: list[dict[str, Any]], projection: str, names: dict[str, str], action: str
) -> list[dict[str, Any]]:
    """The items of these keys that exist, as plain values (BatchGetItem, 100 keys a request, consistent reads;
    keys DynamoDB hands back unprocessed when throttled are asked for again)."""
    found: list[dict[str, Any]] = []
    for start in range(0, len(keys), BATCH_GET):
        request: dict[str, Any] = {
            table: {
                "Keys": keys[start : start + BATCH_GET],
                "ConsistentRead": True,
                "ProjectionExpression": projection,
                "ExpressionAttributeNames": names,
            }
        }
        for attempt in range(WRITE_ATTEMPTS):
            try:
                response = client.batch_get_item(RequestItems=request)
            except ClientError as error:
                raise classify_client_error(error, action) from error
            found += [plain(wire) for wire in response.get("Responses", {}).get(table, [])]
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
            backoff(attempt)
        if request:
            raise TransientError(
                f"{action}: keys still unprocessed after {WRITE_ATTEMPTS} requests (throttled)"
            )
    return found


def send(client: Any, table: str, operation: str, **kwargs: Any) -> Any:
    """One request. A failed condition is re-raised as the ClientError for the caller to read; a write
    that met a transaction on the same item is sent again; anything else is an azs3copy error."""
    for attempt in range(WRITE_ATTEMPTS):
        try:
            return getattr(client, operation)(TableName=table, **kwargs)
        except ClientError as error:
            if conditional_failed(error):
                raise
            if code(error) == "ValidationException":
                raise LedgerRefusedError(f"ledger {operation}: {message(error)}") from error
            if code(error) != "TransactionConflictException" or attempt == WRITE_ATTEMPTS - 1:
                raise classify_client_error(error, f"ledger {operation}") from error
        backoff(attempt)
    raise AssertionError("unreachable")


def transact(client: Any, items: list[dict[str, Any]], action: str) -> set[int]:
    """Write the items in one transaction. Returns the indexes of the items whose condition failed (the
    transaction then wrote nothing), or an empty set when it was written.

    DynamoDB cancels a transaction for other reasons too: a conflict with another transaction on one of the
    items, throttling. Those are sent again after a jittered pause, and are a TransientError (a retry of the
    invocation can help) when they do not clear; they never pass for a failed condition."""
    last = "no reason given"
    for attempt in range(WRITE_ATTEMPTS):
        try:
            client.transact_write_items(TransactItems=items)
            return set()
        except ClientError as error:
            answer = code(error)
            if answer == "TransactionConflictException":
                last = answer
            elif answer == "ValidationException":  # a key or an item over DynamoDB's limits, 4 MB in all
                raise LedgerRefusedError(f"ledger {action}: {message(error)}") from error
            elif answer != "TransactionCanceledException":
                raise classify_client_error(error, f"ledger {action}") from error
            else:
                reasons = cancellation_reasons(error)
                failed = {index for index, reason in enumerate(reasons) if reason == "ConditionalCheckFailed"}
                if failed:
                    return failed
                refused = sorted(set(reasons) - RETRY_REASONS)
                if "ValidationError" in refused:
                    raise LedgerRefusedError(
                        f"ledger {action}: transaction refused (ValidationError)"
                    ) from error
                if refused:
                    raise FatalError(
                        f"ledger {action}: transaction refused ({', '.join(refused)})"
                    ) from error
                last = ", ".join(sorted(set(reasons) - {"None"})) or last
        backoff(attempt)
    raise TransientError(
        f"ledger {action}: transaction still cancelled after {WRITE_ATTEMPTS} attempts ({last})"
    )
