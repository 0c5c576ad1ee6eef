"""One contract for every Ledger: the in-memory one and DynamoDB (moto in-process); and the in-memory table
against DynamoDB, so that the fake refuses what DynamoDB refuses."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from azs3copy.backends import dynamodb, dynamodb_runs
from azs3copy.backends.dynamodb import DynamoLedger
from azs3copy.backends.dynamodb_items import COUNT_SHARDS, run_pk
from azs3copy.backends.dynamodb_items import item as _item
from azs3copy.errors import FatalError, TransientError
from azs3copy.ledger import (
    EVENTS_LISTING,
    Finish,
    Ledger,
    LedgerRefusedError,
    ListedBlob,
    PageRecord,
    RunInProgressError,
)
from azs3copy.messages import BlobRef
from azs3copy.settings import RunSettings
from tests.support import fake_ledger
from tests.support.fake_ledger import FakeTable
from tests.support.ledgers import KINDS, item_writes, moto_dynamodb, open_ledger


@pytest.fixture(params=KINDS)
def ledger(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Ledger]:
    with open_ledger(request.param, monkeypatch) as opened:
        yield opened


def listed(blob_id: str, size: int = 1, **extra: Any) -> ListedBlob:
    """A blob as a listing found it, at the key of an empty destination prefix."""
    container, name = blob_id.split("/", 1)
    ref = BlobRef(container, name, size, '"0x1"', datetime(2024, 1, 1, tzinfo=UTC), **extra)
    return ListedBlob(ref, blob_id)


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
    assert ledger.get_page(run, "c0", 0) is None
    page = [listed("c0/a", 1), listed("c0/b", 2)]
    first = ledger.register_page(run, "c0", 0, page, [("c0/c", 3, "skipped", "same")], "marker-1")
    assert first.status == "new" and first.pending == page and not first.refused
    again = ledger.register_page(run, "c0", 0, page, [("c0/c", 3, "skipped", "same")], "marker-1")
    assert again.status == "registered" and again.pending == page
    assert ledger.get_page(run, "c0", 0) == PageRecord("registered", "marker-1")
    ledger.mark_page_published(run, "c0", 0)
    assert ledger.register_page(run, "c0", 0, [listed("c0/a", 1)], []).status == "published"
    assert ledger.get_page(run, "c0", 0) == PageRecord("published", "marker-1")
    record = ledger.get_run(run)
    assert record is not None
    assert record.found == 3 and record.counts["skipped"] == 1


def test_a_blob_listed_again_on_another_page_keeps_its_state_and_is_counted_once(ledger: Ledger) -> None:
    run = start(ledger)
    ledger.register_page(run, "c0", 0, [listed("c0/a", 1), listed("c0/b", 2)], [])
    assert ledger.finish(run, "c0/a", "copied", None, 1) is True
    # the retried listing's pages are cut elsewhere: page 1 lists a and b again, and b is now decided
    ledger.register_page(
        run, "c0", 1, [listed("c0/a", 1), listed("c0/c", 3)], [("c0/b", 2, "skipped", "same")]
    )
    states = {record.blob_id: record.state for record in ledger.blobs(run)}
    assert states == {"c0/a": "copied", "c0/b": "pending", "c0/c": "pending"}
    assert ledger.claim(run, "c0/a", "w1", 60).outcome == "terminal"  # not copied a second time
    record = ledger.get_run(run)
    assert record is not None and record.found == 3
    assert record.counts["copied"] == 1 and record.counts["skipped"] == 0


def test_a_duplicate_delivery_of_a_large_page_counts_each_blob_once(ledger: Ledger) -> None:
    run = start(ledger)
    first = [listed(f"c0/{i:04d}", i) for i in range(150)]
    ledger.register_page(run, "c0", 0, first, [("c0/rejected", 9, "failed", "key too long")])
    ledger.finish(run, "c0/0007", "copied", None, 7)
    # the same blobs and 100 more, under another page number (a duplicate message, boundaries shifted)
    again = [listed(f"c0/{i:04d}", i) for i in range(250)]
    ledger.register_page(run, "c0", 5, again, [("c0/rejected", 9, "failed", "key too long")])
    record = ledger.get_run(run)
    assert record is not None and record.found == 251 and record.counts["failed"] == 1
    assert record.counts["copied"] == 1
    blob = ledger.get_blob(run, "c0/0007")
    assert blob is not None and blob.state == "copied"
    assert sum(1 for _ in ledger.blobs(run)) == 251


def test_a_blob_reaches_one_terminal_state_once(ledger: Ledger) -> None:
    run = start(ledger)
    ledger.register_page(run, "c0", 0, [listed("c0/a", 10)], [])
    assert ledger.finish(run, "c0/a", "copied", None, 10) is True
    assert ledger.finish(run, "c0/a", "copied", None, 10) is False
    assert ledger.finish(run, "c0/a", "failed", "late", 0) is False
    record = ledger.get_run(run)
    assert record is not None and record.counts["copied"] == 1 and record.counts["failed"] == 0
    assert record.bytes_copied == 10


def test_run_completes_only_after_listing_and_every_blob(ledger: Ledger) -> None:
    run = start(ledger, containers=2)
    ledger.register_page(run, "c0", 0, [listed("c0/a", 1)], [])
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
    ledger.register_page(run, "c0", 0, [listed("c0/a", 1)], [])
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
    ledger.register_page(run, "c0", 0, [listed("c0/a", 1)], [])
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
    ledger.register_page(run, "c0", 0, [listed("c0/big", 100)], [])
    assert ledger.set_upload(run, "c0/big", "u1", "c0/big", 5, 3) == "u1"
    assert ledger.set_upload(run, "c0/big", "u2", "c0/big", 5, 3) == "u1"
    assert ledger.record_part(run, "c0/big", 1, "AAAAAA==") == 1
    assert ledger.record_part(run, "c0/big", 1, "AAAAAA==") == 1
    assert ledger.record_part(run, "c0/big", 3, "BBBBBB==") == 2
    assert ledger.part_checksums(run, "c0/big") == {1: "AAAAAA==", 3: "BBBBBB=="}
    blob = ledger.get_blob(run, "c0/big")
    assert blob is not None and blob.upload_id == "u1" and blob.parts == 3 and blob.parts_done == 2
    assert blob.checksum_type == "COMPOSITE"  # what uploads recorded before the checksum type was are
    ledger.register_page(run, "c0", 1, [listed("c0/whole", 100)], [])
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


def test_an_opened_run_is_recorded_once_never_current_and_reported_once_closed(ledger: Ledger) -> None:
    chosen = RunSettings(datetime(2024, 1, 1, tzinfo=UTC), prefix="p/")
    opened = [
        ledger.open_run("20240101-events", containers=[], begindate="2024-01-01T00:00:00Z", settings=chosen)
        for _ in range(2)
    ]
    assert opened == [True, False] and ledger.current_run_id() is None
    assert ledger.run_settings("20240101-events") == chosen
    start(ledger)  # a launch is neither blocked by it nor takes it over
    assert ledger.current_run_id() == "20240101T000000Z-aaaaaa"
    ledger.register_page("20240101-events", "c0", 5, [listed("c0/a")], [])
    assert ledger.finish("20240101-events", "c0/a", "copied", None, 1)
    assert not ledger.get_run("20240101-events").complete  # type: ignore[union-attr]
    ledger.finish_container("20240101-events", EVENTS_LISTING)
    ledger.finish_container("20240101-events", EVENTS_LISTING)  # closed twice counts once
    run = ledger.get_run("20240101-events")
    assert run is not None and run.complete and run.listing_pending == 0 and run.found == 1
    assert ledger.current_run_id() == "20240101T000000Z-aaaaaa"


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
    for module in (dynamodb, dynamodb_runs, fake_ledger):
        monkeypatch.setattr(module, "time", clock)
    return clock


def test_a_run_making_progress_is_never_taken_over_however_long_it_runs(ledger: Ledger, clock: Clock) -> None:
    run = start(ledger)
    ledger.register_page(run, "c0", 0, [listed("c0/a", 1), listed("c0/big", 10)], [])
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
    ledger.register_page(run, "c0", 0, [listed("c0/a", 1)], [])
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
        run, "c0", 0, [listed("c0/a", 1), listed("c0/b", 1)], [("c0/c", 1, "needs-rehydration", "archive")]
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


@pytest.fixture(name="moto_dynamodb")
def moto_dynamodb_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setattr("azs3copy.backends.dynamodb_items.backoff", lambda attempt: None)
    with moto_dynamodb(monkeypatch) as client:
        yield client


@pytest.mark.parametrize("in_message_only", [False, True])
def test_a_finish_that_meets_a_transaction_conflict_is_sent_again_and_counted(
    moto_dynamodb: Any, in_message_only: bool
) -> None:
    client = CancellingClient(moto_dynamodb, [], in_message_only=in_message_only)
    ledger = DynamoLedger(client, "ledger")
    run = start(ledger)
    ledger.register_page(run, "c0", 0, [listed("c0/a", 10)], [])
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
    assert ledger.register_page(run, "c0", 0, [listed("c0/a", 1), listed("c0/b", 2)], []).status == "new"
    client.cancellations = [["None", "ProvisionedThroughputExceeded"]]
    ledger.finish_container(run, "c0")
    record = ledger.get_run(run)
    assert record is not None and record.found == 2 and record.listing_pending == 0


def test_a_conflict_that_does_not_clear_is_a_retryable_error_not_done_before(moto_dynamodb: Any) -> None:
    client = CancellingClient(moto_dynamodb, [])
    ledger = DynamoLedger(client, "ledger")
    run = start(ledger)
    ledger.register_page(run, "c0", 0, [listed("c0/a", 10)], [])
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


# --- names: any blob a real account holds has its own records ------------------------------------------------


def test_the_parts_of_names_that_extend_each_other_past_a_hash_stay_apart(ledger: Ledger) -> None:
    run = start(ledger)
    names = ["c0/archive", "c0/archive#2024", "c0/archive#2024#00001", "c0/archive#", "c0/archive#00001"]
    for index, blob_id in enumerate(names):
        ledger.record_part(run, blob_id, 1, f"first-{index}")
        ledger.record_part(run, blob_id, 2, f"second-{index}")
    for index, blob_id in enumerate(names):
        assert ledger.part_checksums(run, blob_id) == {1: f"first-{index}", 2: f"second-{index}"}, blob_id


@pytest.mark.parametrize(
    "blob_id",
    [
        "c0/" + "n" * 1021,  # a key of exactly 1,024 UTF-8 bytes: valid in S3
        "c0/" + "é" * 511,  # 1,025 bytes: refused by S3, recorded here with its reason
        "c0/" + "\N{MUSICAL SYMBOL G CLEF}" * 1024,  # Azure's longest name: 1,024 characters of 4 bytes
    ],
    ids=["1024-bytes", "1025-bytes", "4099-bytes"],
)
def test_a_blob_named_as_long_as_azure_allows_is_recorded_under_its_whole_name(
    ledger: Ledger, blob_id: str
) -> None:
    run = start(ledger)
    neighbour = listed("c0/neighbour")
    registration = ledger.register_page(run, "c0", 0, [listed(blob_id, 30 << 20), neighbour], [], None)
    assert not registration.refused and [blob.blob_id for blob in registration.pending] == [
        blob_id,
        "c0/neighbour",
    ]
    assert ledger.claim(run, blob_id, "w1", 60).outcome == "claimed"
    assert ledger.set_upload(run, blob_id, "u1", blob_id, 5 << 20, 6) == "u1"
    assert ledger.record_part(run, blob_id, 6, "AAAAAA==") == 1
    assert ledger.part_checksums(run, blob_id) == {6: "AAAAAA=="}
    assert ledger.finish(run, blob_id, "failed", f"{blob_id}: too long for S3", 0) is True
    record = ledger.get_blob(run, blob_id)
    assert record is not None and record.blob_id == blob_id and record.key == blob_id
    states = {record.blob_id: (record.state, record.reason) for record in ledger.blobs(run)}
    assert states == {blob_id: ("failed", f"{blob_id}: too long for S3"), "c0/neighbour": ("pending", None)}


def test_a_blob_the_ledger_cannot_hold_as_listed_is_recorded_failed_alone(ledger: Ledger) -> None:
    run = start(ledger)
    too_big = listed("c0/too-big", 5, metadata={"m": "x" * (450 * 1024)})  # more than a 400 KB item
    page = [listed("c0/a"), too_big, listed("c0/b")]
    registration = ledger.register_page(run, "c0", 0, page, [("c0/c", 1, "skipped", "same")], None)
    assert registration.pending == [page[0], page[2]]
    [(blob_id, reason)] = registration.refused
    assert blob_id == "c0/too-big" and "cannot hold" in reason
    states = {record.blob_id: record.state for record in ledger.blobs(run)}
    assert states == {"c0/a": "pending", "c0/b": "pending", "c0/c": "skipped", "c0/too-big": "failed"}
    record = ledger.get_run(run)
    assert record is not None and record.found == 4 and record.counts["failed"] == 1
    assert not ledger.register_page(
        run, "c0", 0, page, [], None
    ).refused  # recorded once: a retry adds nothing
    again = ledger.get_run(run)
    assert again is not None and again.found == 4 and again.counts["failed"] == 1


def test_a_page_listed_again_returns_the_blobs_an_earlier_attempt_listed_that_this_listing_lacks(
    ledger: Ledger,
) -> None:
    run = start(ledger)
    a, b, c, d = (listed(f"c0/{name}", size) for name, size in zip("abcd", (1, 2, 3, 4), strict=True))
    ledger.register_page(run, "c0", 0, [a, b, c], [], "c")  # the attempt that stopped before publishing
    registration = ledger.register_page(run, "c0", 0, [a, c, d], [], "d")  # b deleted since, d added
    assert sorted(registration.pending, key=lambda blob: blob.blob_id) == [a, b, c, d]
    record = ledger.get_run(run)
    assert record is not None and record.found == 4
    assert ledger.page_blobs(run, "c0", 0) == [a, b, c, d]  # as listed: the version and the key
    ledger.finish(run, "c0/b", "vanished", "deleted after it was listed", 0)
    assert ledger.page_blobs(run, "c0", 0) == [a, c, d]  # what is still to be copied
    assert ledger.get_page(run, "c0", 0) == PageRecord("registered", "d")
    assert ledger.get_page(run, "c0", 1) is None


# --- the in-memory table against DynamoDB (moto): the same writes are refused, the same keys found -------------


class RawTable:
    """Writes of whole items to the ledger table, to the fake or to DynamoDB; `refused` tells whether the table
    refused them as invalid."""

    def __init__(self, kind: str, client: Any = None) -> None:
        self.kind, self.client, self.fake = kind, client, FakeTable()

    def put(self, *items: tuple[str, str, dict[str, Any]]) -> bool:
        """Whether the table took the items (several: as one transaction)."""
        if self.kind == "memory":
            try:
                self.fake.write("put", list(items), transaction=len(items) > 1)
            except LedgerRefusedError:
                return False
            return True
        wire = [{**_item(pk=pk, sk=sk), **_item(**attributes)} for pk, sk, attributes in items]
        try:
            if len(wire) == 1:
                self.client.put_item(TableName="ledger", Item=wire[0])
            else:
                self.client.transact_write_items(
                    TransactItems=[{"Put": {"TableName": "ledger", "Item": one}} for one in wire]
                )
        except ClientError as error:
            assert error.response["Error"]["Code"] == "ValidationException", error
            return False
        return True

    def begins_with(self, pk: str, prefix: str) -> list[str]:
        if self.kind == "memory":
            return [sk for sk, _ in self.fake.query(pk, prefix)]
        response = self.client.query(
            TableName="ledger",
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues=_item(**{":pk": pk, ":prefix": prefix}),
        )
        return [item["sk"]["S"] for item in response["Items"]]


@pytest.fixture(params=KINDS)
def raw_table(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[RawTable]:
    if request.param == "memory":
        yield RawTable("memory")
        return
    with moto_dynamodb(monkeypatch) as client:
        yield RawTable("dynamodb", client)


def test_the_table_takes_keys_up_to_dynamodbs_limits_and_refuses_longer_ones(raw_table: RawTable) -> None:
    assert raw_table.put(("p", "s" * 1024, {}))
    assert raw_table.put(("p", "é" * 512, {}))  # bytes, not characters
    assert not raw_table.put(("p", "é" * 512 + "s", {}))
    assert not raw_table.put(("p", "s" * 1025, {}))
    assert raw_table.put(("p" * 2048, "s", {}))
    assert not raw_table.put(("p" * 2049, "s", {}))


def test_the_table_takes_items_up_to_400_kb_and_transactions_up_to_100_items(raw_table: RawTable) -> None:
    assert raw_table.put(("p", "fits", {"v": "x" * (395 * 1024)}))
    assert not raw_table.put(("p", "too-big", {"v": "x" * (410 * 1024)}))
    assert raw_table.put(*[("p", f"item-{i}", {}) for i in range(100)])
    assert not raw_table.put(*[("p", f"more-{i}", {}) for i in range(101)])
    assert not raw_table.put(("p", "twice", {}), ("p", "twice", {"n": 1}))  # one operation per item
    assert raw_table.begins_with("p", "more-") == [] and raw_table.begins_with("p", "twice") == []


def test_begins_with_finds_every_key_that_extends_the_prefix_in_byte_order(raw_table: RawTable) -> None:
    keys = ["PART#a#00001", "PART#a#2024#00001", "PART#a%00001", "PART#ab#00001", "PART#a#é", "PART#a#z"]
    for sk in keys:
        assert raw_table.put(("p", sk, {}))
    assert raw_table.begins_with("p", "PART#a#") == [
        "PART#a#00001",
        "PART#a#2024#00001",
        "PART#a#z",
        "PART#a#é",
    ]


def test_a_note_added_again_is_kept_once_and_notes_belong_to_their_run(ledger: Ledger) -> None:
    run = start(ledger)
    ledger.add_note(run, "container c0: tags not readable")
    ledger.add_note(run, "container c0: tags not readable")
    ledger.add_note(run, "container c1: tags not readable")
    assert sorted(ledger.notes(run)) == ["container c0: tags not readable", "container c1: tags not readable"]
    assert ledger.notes("20000101T000000Z-bbbbbb") == []


# --- no hot item: counters in shards, batched finishes, sparse failures, one report ---------------------------


def test_no_ledger_item_takes_more_than_a_small_share_of_a_runs_writes(ledger: Ledger) -> None:
    run = start(ledger)
    writes = item_writes(ledger)
    blobs = [f"c0/{i:04d}" for i in range(192)]
    for page in range(4):
        ledger.register_page(run, "c0", page, [listed(blob_id, 10) for blob_id in blobs[page::4]], [])
    ledger.finish_container(run, "c0")
    for blob_id in blobs:  # every blob finished on its own: the worst case for the counters
        assert ledger.claim(run, blob_id, "worker", 60).outcome == "claimed"
        assert ledger.finish(run, blob_id, "copied", None, 10)
    record = ledger.get_run(run)
    assert record is not None and record.complete
    assert record.found == 192 and record.counts["copied"] == 192 and record.bytes_copied == 1920
    hottest = max(writes.values())
    # one counter shard of 32 takes about 1/32 of the finishes (the META item used to take every one of them)
    assert hottest <= 3 * len(blobs) / COUNT_SHARDS, sorted(writes.items(), key=lambda kv: -kv[1])[:3]
    assert writes[run_pk(run), "META"] <= 2  # the container's listing done; nothing else


def test_a_batch_of_finishes_is_recorded_once_each_and_counted_exactly(ledger: Ledger) -> None:
    run = start(ledger)
    blobs = [listed(f"c0/{i:03d}", i) for i in range(150)]
    ledger.register_page(run, "c0", 0, blobs, [("c0/refused", 1, "failed", "key too long")])
    ledger.finish_container(run, "c0")
    assert ledger.finish(run, "c0/000", "copied", None, 0)  # recorded before: by another delivery
    assert ledger.finish(run, "c0/001", "vanished", "deleted", 0)
    finishes = [
        Finish(blob.blob_id, "failed", f"{blob.blob_id}: broken", 0)
        if index % 15 == 0
        else Finish(blob.blob_id, "copied", None, blob.ref.size)
        for index, blob in enumerate(blobs)
    ]
    recorded = ledger.finish_many(run, finishes + finishes[5:7])  # a blob twice in a batch counts once
    assert recorded == {blob.blob_id for blob in blobs} - {"c0/000", "c0/001"}
    assert ledger.finish_many(run, finishes) == set()  # the batch again: nothing twice
    record = ledger.get_run(run)
    assert record is not None and record.complete and record.found == 151
    failed = {f.blob_id for f in finishes if f.state == "failed"} - {"c0/000"}
    assert record.counts["failed"] == len(failed) + 1 and record.counts["vanished"] == 1
    assert record.counts["copied"] == 150 - len(failed) - 1
    assert record.bytes_copied == sum(
        f.nbytes for f in finishes if f.state == "copied" and f.blob_id != "c0/001"
    )
    problems = {r.blob_id: (r.state, r.reason) for r in ledger.failures(run, 1000)}
    assert problems == {
        "c0/refused": ("failed", "key too long"),
        "c0/001": ("vanished", "deleted"),
        **{blob_id: ("failed", f"{blob_id}: broken") for blob_id in failed},
    }
    assert len(ledger.failures(run, 3)) == 3


def test_one_caller_writes_the_report_until_it_lets_go_or_its_lease_runs_out(ledger: Ledger) -> None:
    run = start(ledger)
    assert ledger.claim_report(run, "a", 60)
    assert not ledger.claim_report(run, "b", 60)
    assert ledger.claim_report(run, "a", 60)  # the same invocation, retried
    ledger.release_report(run, "b")  # not b's to let go
    assert not ledger.claim_report(run, "b", 60)
    ledger.release_report(run, "a")  # a could not write it
    assert ledger.claim_report(run, "b", -1)  # b dies at once: its lease is over
    assert ledger.claim_report(run, "c", 60)
    ledger.mark_reported(run, "reports/run.json", 1.0)
    assert not ledger.claim_report(run, "c", 60) and not ledger.claim_report(run, "d", -1)
    record = ledger.get_run(run)
    assert record is not None and record.report_key == "reports/run.json"


def test_a_batch_of_copied_blobs_is_one_transaction(moto_dynamodb: Any) -> None:
    client = CancellingClient(moto_dynamodb, [])
    ledger = DynamoLedger(client, "ledger")
    run = start(ledger)
    blobs = [listed(f"c0/{i:03d}") for i in range(99)]
    ledger.register_page(run, "c0", 0, blobs, [])
    before = client.transactions
    assert len(ledger.finish_many(run, [Finish(blob.blob_id, "copied", None, 1) for blob in blobs])) == 99
    assert client.transactions - before == 1  # 99 blobs and one counter shard: DynamoDB's 100 items
