"""moto in server mode, with five fixes for what the local environment relies on.

DynamoDB requests are taken one at a time. moto's DynamoDB backend has no lock: two concurrent
UpdateItem/TransactWriteItems calls that ADD to the same attribute can both read the old value, and one
increment is lost (seen here: 313 blobs recorded copied, the run's counter at 312, so the run never
finished). Real DynamoDB applies them atomically. The ledger's counters rely on that, so locally DynamoDB
calls are serialized; every other service stays concurrent.

TransactWriteItems keeps, for its rollback, a copy of the items it is about to write instead of a deep copy
of every table it touches (moto copies the whole table once per item of the transaction). With the ledger's
table at 2,000 items a two-item transaction took 160 ms of moto's CPU here, at 8,000 items 570 ms, and
they queue behind the lock above; real DynamoDB's cost does not grow with the table. A cancelled
transaction still leaves every item as it was (tests/integration/test_local_moto.py).

A repeated CreateFunction that asks for exactly the function that exists (same code, role, handler,
runtime, environment, layers, sizing) gets that function back instead of a 409. The AWS SDK resends a
request whose response it did not receive; when the first attempt had created the function, the resend
got "Function already exist", which the Terraform provider retries for five minutes while it holds its
lock on every function create, and the apply failed (seen in CI: the whole of `terraform apply` stalled
5 minutes, then `azs3copy-download` failed with 409). A request for a different function of the same
name still gets the 409.

An SQS queue with a Lambda event source mapping does not deliver to the function itself. moto receives a
batch at every SendMessage and invokes the function through Docker; without Docker the invocation fails and
the batch is made visible again with its receive count raised, so messages would reach their
maxReceiveCount and the dead-letter queue untouched. The local runtime polls the queues as Lambda's event
source mappings do (devenv.event_sources); moto keeps the mappings for it to read. A queue's RedrivePolicy
reads back as compact JSON, as SQS answers (with moto's spaces every Terraform plan showed a change).

S3 checks the checksums a PutObject, UploadPart or CompleteMultipartUpload carries and refuses bytes that do
not match them, and keeps a PutObject's checksum and reports it on HEAD with its type, as S3 does; moto
accepts any checksum and keeps none sent without an SDK header (devenv.moto_s3_checksums).

With AZS3COPY_DYNAMODB_WRITE_LOG naming a file, the key of every item a DynamoDB request wrote is appended to
it (`pk<TAB>sk` a line: each PutItem, UpdateItem, DeleteItem, each write of a TransactWriteItems and a
BatchWriteItem; a ConditionCheck reads): the bench counts from it the writes the ledger's busiest item took.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import threading
from types import SimpleNamespace
from typing import Any

import moto.dynamodb.models as dynamodb_models
import moto.sqs.models as sqs_models
from moto.awslambda.exceptions import UnknownFunctionException
from moto.awslambda.responses import LambdaResponse
from moto.dynamodb.exceptions import MockValidationException
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler
from moto.server import main

from devenv import moto_s3_checksums

_lock = threading.Lock()
_call_action = DynamoHandler.call_action


_WRITE_LOG = os.environ.get("AZS3COPY_DYNAMODB_WRITE_LOG")


def _key_text(key: Any) -> str | None:
    if not isinstance(key, dict):
        return None
    pk, sk = (next(iter((key.get(name) or {"S": ""}).values()), "") for name in ("pk", "sk"))
    return f"{pk}\t{sk}"


def _written_keys(action: str, body: Any) -> list[str]:
    """The keys of the items a successful write request wrote."""
    if not isinstance(body, dict):
        return []
    found: list[Any] = []
    if action == "PutItem":
        found.append(body.get("Item"))
    elif action in ("UpdateItem", "DeleteItem"):
        found.append(body.get("Key"))
    elif action == "TransactWriteItems":
        for entry in body.get("TransactItems") or []:
            for operation, request in entry.items():
                if operation != "ConditionCheck" and isinstance(request, dict):
                    found.append(request.get("Item") or request.get("Key"))
    elif action == "BatchWriteItem":
        for requests in (body.get("RequestItems") or {}).values():
            for request in requests:
                put, delete = request.get("PutRequest") or {}, request.get("DeleteRequest") or {}
                found.append(put.get("Item") or delete.get("Key"))
    return [text for text in map(_key_text, found) if text is not None]


def _serialized(self: DynamoHandler) -> Any:
    with _lock:
        result = _call_action(self)
        if _WRITE_LOG and isinstance(result, tuple) and str(result[0]) == "200":
            keys = _written_keys(str(self._get_action()), self.body)
            if keys:
                with open(_WRITE_LOG, "a", encoding="utf-8") as log:
                    log.write("".join(f"{key}\n" for key in keys))
        return result


DynamoHandler.call_action = _serialized  # type: ignore[method-assign]


def _deepcopy_but_tables(value: Any, memo: dict[int, Any] | None = None) -> Any:
    """copy.deepcopy for moto's DynamoDB module, except that a Table is not copied: the transaction below
    restores the items it wrote itself, so moto's own table backup is the table (and its rollback, which
    puts that backup back in place, changes nothing)."""
    return value if isinstance(value, Table) else copy.deepcopy(value, memo)


dynamodb_models.copy = SimpleNamespace(deepcopy=_deepcopy_but_tables)  # type: ignore[attr-defined,assignment]

_transact_write_items = DynamoDBBackend.transact_write_items
Written = tuple[Table, DynamoType, DynamoType | None, Item | None]


def _items_written(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> list[Written]:
    """Each item a transaction names, as it is now (None where it does not exist yet)."""
    written: list[Written] = []
    for entry in transact_items:
        for operation in entry.values():
            table = backend.tables.get(operation.get("TableName"))
            keys = operation.get("Item") if "Item" in operation else operation.get("Key")
            if table is None or not isinstance(keys, dict):
                continue  # moto refuses the operation itself
            try:
                hash_key, range_key = backend.get_keys_value(table, keys)
            except MockValidationException:
                continue
            current = table.get_item(hash_key, range_key)
            written.append((table, hash_key, range_key, copy.deepcopy(current)))
    return written


def _restore(written: list[Written]) -> None:
    for table, hash_key, range_key, item in reversed(written):
        if table.get_item(hash_key, range_key) is not None:
            table.delete_item(hash_key, range_key)
        if item is None:
            continue
        if range_key is not None:
            table.items[hash_key][range_key] = item
        else:
            table.items[hash_key] = item  # type: ignore[assignment]


def _transact_write_restoring_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    written = _items_written(self, transact_items) if len(transact_items) <= 100 else []
    try:
        _transact_write_items(self, transact_items)
    except BaseException:
        _restore(written)
        raise


DynamoDBBackend.transact_write_items = _transact_write_restoring_items  # type: ignore[method-assign]

_create_function = LambdaResponse.create_function
_create_lock = threading.Lock()


def _requested(spec: dict[str, Any]) -> dict[str, Any]:
    """What a CreateFunction request asks for, in the terms of the stored function's configuration."""
    code = spec.get("Code", {})
    digest = hashlib.sha256(base64.b64decode(code["ZipFile"])).digest() if "ZipFile" in code else None
    return {
        "CodeSha256": base64.b64encode(digest).decode() if digest else None,
        "Role": spec.get("Role"),
        "Handler": spec.get("Handler"),
        "Runtime": spec.get("Runtime"),
        "Environment": spec.get("Environment", {}).get("Variables", {}),
        "Layers": sorted(spec.get("Layers", [])),
        "MemorySize": spec.get("MemorySize", 128),
        "Timeout": spec.get("Timeout", 3),
    }


def _existing(config: dict[str, Any]) -> dict[str, Any]:
    return {
        "CodeSha256": config.get("CodeSha256"),
        "Role": config.get("Role"),
        "Handler": config.get("Handler"),
        "Runtime": config.get("Runtime"),
        "Environment": config.get("Environment", {}).get("Variables", {}),
        "Layers": sorted(layer["Arn"] for layer in config.get("Layers", [])),
        "MemorySize": config.get("MemorySize"),
        "Timeout": config.get("Timeout"),
    }


def _idempotent_create(self: LambdaResponse) -> Any:
    with _create_lock:
        name = self.json_body["FunctionName"].rsplit(":", 1)[-1]
        try:
            existing = self.backend.get_function(name, None)
        except UnknownFunctionException:
            return _create_function(self)
        config = existing.get_configuration(on_create=True)
        if _existing(config) == _requested(self.json_body):
            return 201, {"status": 201}, json.dumps(config)
        return _create_function(self)  # the 409 for a different function of the same name


LambdaResponse.create_function = _idempotent_create  # type: ignore[method-assign]


class _NoQueueDelivery:
    """Queue.lambda_event_source_mappings that holds nothing: the mappings stay in the Lambda backend."""

    def __get__(self, queue: object, owner: type | None = None) -> dict[str, Any]:
        return {}

    def __set__(self, queue: object, value: object) -> None:
        pass


sqs_models.Queue.lambda_event_source_mappings = _NoQueueDelivery()  # type: ignore[assignment]

_queue_attributes = sqs_models.Queue.attributes


def _compact_redrive_policy(queue: sqs_models.Queue) -> dict[str, Any]:
    """A queue's RedrivePolicy as SQS returns it: compact JSON, as it was set (moto adds spaces, which
    Terraform shows as a change to the queue on every plan)."""
    result: dict[str, Any] = _queue_attributes.fget(queue)  # type: ignore[attr-defined]
    if "RedrivePolicy" in result:
        result["RedrivePolicy"] = json.dumps(queue.redrive_policy, separators=(",", ":"))
    return result


sqs_models.Queue.attributes = property(_compact_redrive_policy)  # type: ignore[assignment,method-assign]

moto_s3_checksums.install()

if __name__ == "__main__":
    main()
