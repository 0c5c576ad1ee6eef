"""The two ledgers every ledger-touching test runs on, as one contract: the in-memory fake and DynamoDB (moto
in-process, the table as Terraform defines it)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from moto import mock_aws

from azs3copy.backends.dynamodb import DynamoLedger
from azs3copy.ledger import Ledger
from tests.support.aws import create_ledger_table
from tests.support.fake_ledger import MemoryLedger

KINDS = ("memory", "dynamodb")


class AtomicRequests:
    """moto's in-process DynamoDB evaluates a condition and applies the write without a lock, so two threads
    can both pass one condition; DynamoDB (and the local moto server) make each request atomic. This client
    sends one request at a time."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.real, name)

        def call(**kwargs: Any) -> Any:
            with self.lock:
                return method(**kwargs)

        return call


@contextmanager
def moto_dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A DynamoDB client on moto in-process, with the ledger table created."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_ledger_table(client, "ledger")
        yield client


@contextmanager
def open_ledger(kind: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Ledger]:
    if kind == "memory":
        yield MemoryLedger()
        return
    with moto_dynamodb(monkeypatch) as client:
        yield DynamoLedger(AtomicRequests(client), "ledger")


class CountedWrites:
    """A DynamoDB client that counts the writes each item takes (PutItem, UpdateItem, DeleteItem, and each
    write of a TransactWriteItems; a ConditionCheck reads), as DynamoDB meters an item's throughput."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.writes: dict[tuple[str, str], int] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def _count(self, key: dict[str, Any]) -> None:
        pair = (str(key["pk"]["S"]), str(key["sk"]["S"]))
        self.writes[pair] = self.writes.get(pair, 0) + 1

    def put_item(self, **kwargs: Any) -> Any:
        response = self.real.put_item(**kwargs)
        self._count(kwargs["Item"])
        return response

    def update_item(self, **kwargs: Any) -> Any:
        response = self.real.update_item(**kwargs)
        self._count(kwargs["Key"])
        return response

    def delete_item(self, **kwargs: Any) -> Any:
        response = self.real.delete_item(**kwargs)
        self._count(kwargs["Key"])
        return response

    def transact_write_items(self, **kwargs: Any) -> Any:
        response = self.real.transact_write_items(**kwargs)
        for entry in kwargs["TransactItems"]:
            for operation, request in entry.items():
                if operation != "ConditionCheck":
                    self._count(request.get("Item") or request["Key"])
        return response


def item_writes(ledger: Ledger) -> dict[tuple[str, str], int]:
    """The writes each ledger item took from here on, by (pk, sk): live, as the ledger goes on writing."""
    if isinstance(ledger, MemoryLedger):
        ledger.table.writes.clear()
        return ledger.table.writes
    assert isinstance(ledger, DynamoLedger)
    counted = CountedWrites(ledger.client)
    ledger.client = counted
    return counted.writes
