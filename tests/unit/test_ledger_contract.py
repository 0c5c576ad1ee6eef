"""One contract for every Ledger: the in-memory one and DynamoDB (moto in-process)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from azs3copy.backends import dynamodb
from azs3copy.backends.dynamodb import DynamoLedger
from azs3copy.errors import FatalError, TransientError
from azs3copy.ledger import Ledger, RunInProgressError
from tests.support import fakes
from tests.support.aws import create_ledger_table
from tests.support.fakes import MemoryLedger


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


@pytest.fixture(params=["memory", "dynamodb"])
def ledger(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Ledger]:
    if request.param == "memory":
        yield MemoryLedger()
        return
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_ledger_table(client, "ledger")
        yield DynamoLedger(AtomicRequests(client), "ledger")


def start(ledger: Ledger, run_id: str = "20240101T000000Z-aaaaaa", containers: int = 1) -> str:
    ledger.start_run(
        run_id,
        containers=[f"c{i}" for i in range(containers)],
        begindate="2024-01-01T00:00:00Z",
        force=False,
        stale_after=3600,
    )
    return run_id


def test_a_page_registered_twice_counts_its_blobs_once(ledger: Ledger) -> None:
    run = start(ledger)
    assert (
        ledger.register_page(run, "c0", 0, [("c0/a", 1), ("c0/b", 2)], [("c0/c", 3, "skipped", "same")])
        == "new"
    )
    assert (
        ledger.register_page(run, "c0", 0, [("c0/a", 1), ("c0/b", 2)], [("c0/c", 3, "skipped", "same")])
        == "registered"
    )
    ledger.mark_page_published(run, "c0", 0)
    assert ledger.register_page(run, "c0", 0, [("c0/a", 1)], []) == "published"
    record = ledger.get_run(run)
    assert record is not None
    assert record.found == 3 and record.counts["skipped"] == 1


def test_a_blob_listed_again_on_another_page_keeps_its_state_and_is_counted_once(ledger: Ledger) -> None:
    run = start(ledger)
    ledger.register_page(run, "c0", 0, [("c0/a", 1), ("c0/b", 2)], [])
    assert ledger.finish(run, "c0/a", "copied", None, 1) is True
    # the retried listing's pages are cut elsewhere: page 1 lists a and b again, and b is now decided
    ledger.register_page(run, "c0", 1, [("c0/a", 1), ("c0/c", 3)], [("c0/b", 2, "skipped", "same")])
    states = {record.blob_id: record.state for record in ledger.blobs(run)}
    assert states == {"c0/a": "copied", "c0/b": "pending", "c0/c": "pending"}
    assert ledger.claim(run, "c0/a", "w1", 60).outcome == "terminal"  # not copied a second time
    record = ledger.get_run(run)
    assert record is not None and record.found == 3
    assert record.counts["copied"] == 1 and record.counts["skipped"] == 0


def test_a_duplicate_delivery_of_a_large_page_counts_each_blob_once(ledger: Ledger) -> None:
    run = start(ledger)
    first = [(f"c0/{i:04d}", i) for i in range(150)]
    ledger.register_page(run, "c0", 0, first, [("c0/rejected", 9, "failed", "key too long")])
    ledger.finish(run, "c0/0007", "copied", None, 7)
    # the same blobs and 100 more, under another page number (a duplicate message, boundaries shifted)
    again = [(f"c0/{i:04d}", i) for i in range(250)]
    ledger.register_page(run, "c0", 5, again, [("c0/rejected", 9, "failed", "key too long")])
    record = ledger.get_run(run)
    assert record is not None and record.found == 251 and record.counts["failed"] == 1
    assert record.counts["copied"] == 1
    blob = ledger.get_blob(run, "c0/0007")
    assert blob is not None and blob.state == "copied"
    assert sum(1 for _ in ledger.blobs(run)) == 251


def test_a_blob_reaches_one_terminal_state_once(ledger: Ledger) -> None:
    run = start(ledger)
    ledger.register_page(run, "c0", 0, [("c0/a", 10)], [])
    assert ledger.finish(run, "c0/a", "copied", None, 10) is True
    assert ledger.finish(run, "c0/a", "copied", None, 10) is False
    assert ledger.finish(run, "c0/a", "failed", "late", 0) is False
    record = ledger.get_run(run)
    assert record is not None and record.counts["copied"] == 1 and record.counts["failed"] == 0
    assert record.bytes_copied == 10


def test_run_completes_only_after_listing_and_every_blob(ledger: Ledger) -> None:
    run = start(ledger, containers=2)
    ledger.register_page(run, "c0", 0, [("c0/a", 1)], [])
    ledger.finish_container(run, "c0")
    ledger.finish_container(run, "c0")  # redelivered: counted once
    ledger.finish(run, "c0/a", "copied", None, 1)
    record = ledger.get_run(run)
    assert record is not None and not record.complete
    ledger.finish_container(run, "c1")
    record = ledger.get_run(run)
    assert record is not None and record.complete


def test_claims_exclude_a_second_worker_until_release_or_lease_expiry(ledger: Ledger) -> None:
    run = start(ledger)
    ledger.register_page(run, "c0", 0, [("c0/a", 1)], [])
    assert ledger.claim(run, "c0/a", "w1", 60).outcome == "claimed"
    assert ledger.claim(run, "c0/a", "w2", 60).outcome == "busy"
    assert ledger.claim(run, "c0/a", "w1", 60).outcome == "claimed"  # the same invocation, retried
    ledger.release(run, "c0/a", "w1")
    assert ledger.claim(run, "c0/a", "w2", -1).outcome == "claimed"  # lease already over
    assert ledger.claim(run, "c0/a", "w3", 60).outcome == "claimed"
    ledger.finish(run, "c0/a", "copied", None, 1)
    assert ledger.claim(run, "c0/a", "w4", 60).outcome == "terminal"


def test_concurrent_claims_have_exactly_one_winner(ledger: Ledger) -> None:
    run = start(ledger)
    ledger.register_page(run, "c0", 0, [("c0/a", 1)], [])
    outcomes: list[str] = []
    threads = [
        threading.Thread(target=lambda i=i: outcomes.append(ledger.claim(run, "c0/a", f"w{i}", 60).outcome))
        for i in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("claimed") == 1


def test_upload_is_recorded_once_and_parts_count_each_number_once(ledger: Ledger) -> None:
    run = start(ledger)
    ledger.register_page(run, "c0", 0, [("c0/big", 100)], [])
    assert ledger.set_upload(run, "c0/big", "u1", "c0/big", 5, 3) == "u1"
    assert ledger.set_upload(run, "c0/big", "u2", "c0/big", 5, 3) == "u1"
    assert ledger.record_part(run, "c0/big", 1, "AAAAAA==") == 1
    assert ledger.record_part(run, "c0/big", 1, "AAAAAA==") == 1
    assert ledger.record_part(run, "c0/big", 3, "BBBBBB==") == 2
    assert ledger.part_checksums(run, "c0/big") == {1: "AAAAAA==", 3: "BBBBBB=="}
    blob = ledger.get_blob(run, "c0/big")
    assert blob is not None and blob.upload_id == "u1" and blob.parts == 3 and blob.parts_done == 2
    assert blob.checksum_type == "COMPOSITE"  # what uploads recorded before the checksum type was are
    ledger.register_page(run, "c0", 1, [("c0/whole", 100)], [])
    ledger.set_upload(run, "c0/whole", "u3", "c0/whole", 5, 3, "FULL_OBJECT")
    whole = ledger.get_blob(run, "c0/whole")
    assert whole is not None and whole.checksum_type == "FULL_OBJECT"


def test_attempts_are_counted_per_request(ledger: Ledger) -> None:
    run = start(ledger)
    assert [ledger.bump_attempt(run, "download", "req-1") for _ in range(3)] == [1, 2, 3]
    assert ledger.bump_attempt(run, "download", "req-2") == 1


def test_second_run_waits_for_the_first_unless_forced(ledger: Ledger) -> None:
    run = start(ledger)
    with pytest.raises(RunInProgressError):
        start(ledger, "20240101T000001Z-bbbbbb")
    ledger.start_run("20240101T000002Z-cccccc", containers=["c0"], begindate="", force=True, stale_after=3600)
    assert ledger.current_run_id() == "20240101T000002Z-cccccc"
    assert ledger.latest_run_id() == "20240101T000002Z-cccccc"
    ledger.mark_reported("20240101T000002Z-cccccc", "k", 1.0)
    assert ledger.current_run_id() is None
    start(ledger, "20240101T000003Z-dddddd")  # allowed now
    assert run != ledger.latest_run_id()


def test_a_retried_launch_gets_the_run_it_started_and_no_second_one(ledger: Ledger) -> None:
    def launch(run_id: str, launch_id: str, force: bool = False) -> str:
        return ledger.start_run(
            run_id, containers=["c0"], begindate="", force=force, stale_after=3600, launch_id=launch_id
        )

    assert launch("20240101T000000Z-aaaaaa", "request-1") == "20240101T000000Z-aaaaaa"
    assert launch("20240101T000001Z-bbbbbb", "request-1") == "20240101T000000Z-aaaaaa"
    assert launch("20240101T000002Z-cccccc", "request-1", force=True) == "20240101T000000Z-aaaaaa"
    with pytest.raises(RunInProgressError) as refused:
        launch("20240101T000003Z-dddddd", "request-2")
    assert refused.value.run_id == "20240101T000000Z-aaaaaa"
    assert ledger.latest_run_id() == "20240101T000000Z-aaaaaa"
    ledger.mark_reported("20240101T000000Z-aaaaaa", "k", 1.0)
    # finished before Lambda's retry came: still that run, not a second one
    assert launch("20240101T000004Z-eeeeee", "request-1") == "20240101T000000Z-aaaaaa"
    assert launch("20240101T000005Z-ffffff", "request-3") == "20240101T000005Z-ffffff"


class Clock:
    """The ledgers' time.time(), moved by the test (both ledgers stamp runs with it)."""

    def __init__(self) -> None:
        self.now = time.time()

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    for module in (dynamodb, fakes):
        monkeypatch.setattr(module, "time", clock)
    return clock


def test_a_run_making_progress_is_never_taken_over_however_long_it_runs(ledger: Ledger, clock: Clock) -> None:
    run = start(ledger)
    ledger.register_page(run, "c0", 0, [("c0/a", 1), ("c0/big", 10)], [])
    ledger.claim(run, "c0/big", "parter", 900)
    for part in range(1, 5):  # a large blob's parts go in, 50 minutes apart: 3 h 20 min in all
        clock.advance(3000)
        ledger.record_part(run, "c0/big", part, "crc")
    clock.advance(3000)
    ledger.claim(run, "c0/a", "download", 900)
    ledger.finish(run, "c0/a", "copied", None, 1)
    clock.advance(3000)  # the run is 4 h 10 min old, its last progress 50 minutes ago: not stalled
    with pytest.raises(RunInProgressError) as refused:
        start(ledger, "20240101T000001Z-bbbbbb")  # stale_after 3600
    assert refused.value.run_id == run
    assert ledger.current_run_id() == run


def test_a_run_without_progress_for_stale_after_seconds_is_taken_over(ledger: Ledger, clock: Clock) -> None:
    run = start(ledger)
    ledger.register_page(run, "c0", 0, [("c0/a", 1)], [])
    clock.advance(3000)
    ledger.claim(run, "c0/a", "download", 900)  # then the invocation died: the run stalls here
    clock.advance(3599)
    with pytest.raises(RunInProgressError):
        start(ledger, "20240101T000001Z-bbbbbb")
    clock.advance(2)
    assert start(ledger, "20240101T000002Z-cccccc") == "20240101T000002Z-cccccc"
    assert ledger.current_run_id() == "20240101T000002Z-cccccc"


def test_blobs_lists_every_state_with_reasons(ledger: Ledger) -> None:
    run = start(ledger)
    ledger.register_page(
        run, "c0", 0, [("c0/a", 1), ("c0/b", 1)], [("c0/c", 1, "needs-rehydration", "archive")]
    )
    ledger.finish(run, "c0/a", "failed", "boom", 0)
    states = {record.blob_id: (record.state, record.reason) for record in ledger.blobs(run)}
    assert states == {
        "c0/a": ("failed", "boom"),
        "c0/b": ("pending", None),
        "c0/c": ("needs-rehydration", "archive"),
    }


# --- DynamoDB only: transactions cancelled for reasons other than a failed condition -------------------------


class CancellingClient:
    """moto's DynamoDB client, except that the next transactions are cancelled with the given reasons, the way
    DynamoDB cancels one that meets another transaction on the same item (TransactionConflict) or throttling."""

    def __init__(self, real: Any, cancellations: list[list[str]], *, in_message_only: bool = False) -> None:
        self.real = real
        self.cancellations = cancellations
        self.in_message_only = in_message_only
        self.transactions = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def transact_write_items(self, **kwargs: Any) -> Any:
        self.transactions += 1
        if self.cancellations:
            codes = self.cancellations.pop(0)
            message = f"Transaction cancelled, please refer cancellation reasons for specific reasons [{', '.join(codes)}]"
            response: dict[str, Any] = {"Error": {"Code": "TransactionCanceledException", "Message": message}}
            if not self.in_message_only:
                response["CancellationReasons"] = [{"Code": code} for code in codes]
            raise ClientError(response, "TransactWriteItems")  # type: ignore[arg-type]
        return self.real.transact_write_items(**kwargs)


@pytest.fixture
def moto_dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setattr("azs3copy.backends.dynamodb._backoff", lambda attempt: None)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_ledger_table(client, "ledger")
        yield client


@pytest.mark.parametrize("in_message_only", [False, True])
def test_a_finish_that_meets_a_transaction_conflict_is_sent_again_and_counted(
    moto_dynamodb: Any, in_message_only: bool
) -> None:
    client = CancellingClient(moto_dynamodb, [], in_message_only=in_message_only)
    ledger = DynamoLedger(client, "ledger")
    run = start(ledger)
    ledger.register_page(run, "c0", 0, [("c0/a", 10)], [])
    ledger.finish_container(run, "c0")
    client.cancellations = [["None", "TransactionConflict"], ["ThrottlingError", "None"]]
    assert ledger.finish(run, "c0/a", "copied", None, 10) is True
    record = ledger.get_run(run)
    assert record is not None and record.counts["copied"] == 1 and record.bytes_copied == 10
    assert record.complete
    blob = ledger.get_blob(run, "c0/a")
    assert blob is not None and blob.state == "copied"


def test_listing_writes_that_meet_a_conflict_are_counted_once(moto_dynamodb: Any) -> None:
    client = CancellingClient(moto_dynamodb, [])
    ledger = DynamoLedger(client, "ledger")
    run = start(ledger)
    client.cancellations = [["None", "TransactionConflict"]] * 3
    assert ledger.register_page(run, "c0", 0, [("c0/a", 1), ("c0/b", 2)], []) == "new"
    client.cancellations = [["None", "ProvisionedThroughputExceeded"]]
    ledger.finish_container(run, "c0")
    record = ledger.get_run(run)
    assert record is not None and record.found == 2 and record.listing_pending == 0


def test_a_conflict_that_does_not_clear_is_a_retryable_error_not_done_before(moto_dynamodb: Any) -> None:
    client = CancellingClient(moto_dynamodb, [])
    ledger = DynamoLedger(client, "ledger")
    run = start(ledger)
    ledger.register_page(run, "c0", 0, [("c0/a", 10)], [])
    client.cancellations = [["None", "TransactionConflict"]] * 100
    with pytest.raises(TransientError, match="TransactionConflict") as raised:
        ledger.finish(run, "c0/a", "copied", None, 10)
    assert raised.value.retryable
    blob = ledger.get_blob(run, "c0/a")
    assert blob is not None and blob.state == "pending"  # nothing recorded: the retry will record it
    client.cancellations = []
    assert ledger.finish(run, "c0/a", "copied", None, 10) is True


def test_a_cancellation_no_retry_can_clear_is_a_fatal_error(moto_dynamodb: Any) -> None:
    client = CancellingClient(moto_dynamodb, [])
    ledger = DynamoLedger(client, "ledger")
    run = start(ledger)
    client.cancellations = [["ValidationError", "None"]]
    with pytest.raises(FatalError, match="ValidationError"):
        ledger.finish(run, "c0/a", "copied", None, 10)
