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
