"""The run ledger: every blob a run finds ends in exactly one recorded state.

The protocol and its records. Two implementations: `DynamoLedger` (backends/dynamodb.py: one DynamoDB table,
conditional writes and transactions) for Lambda, and `MemoryLedger` (tests/support/fakes.py) for the tests.
The state machine of a blob:

    pending ──claim──► working ──finish──► copied | skipped | failed | changed | vanished | needs-rehydration
       ▲                  │ release (a retryable failure, or the lease of a killed invocation ran out)
       └──────────────────┘

A terminal state is written once: a second `finish` of the same blob changes nothing and counts nothing.

A run's counters are not one item: they are summed over the run's counter shards (found, each terminal state,
bytes copied), so that no item takes every finish of a run (docs/design.md, "The ledger").
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from azs3copy.errors import Azs3copyError, FatalError
from azs3copy.messages import BlobRef
from azs3copy.settings import RunSettings

TERMINAL_STATES = ("copied", "skipped", "failed", "changed", "vanished", "needs-rehydration")
COUNTER = {state: state.replace("needs-", "") for state in TERMINAL_STATES}  # attribute names
#: The terminal states of a blob S3 does not hold a copy of: the report lists them (each also has an item in
#: the run's sparse FAILURE# range, so the report reads only those).
NOT_COPIED_STATES = tuple(state for state in TERMINAL_STATES if state not in ("copied", "skipped"))
#: The attributes of a counter shard that are summed into a RunRecord.
SUMMED = ("found", "bytes_copied", *COUNTER.values())
PageStatus = Literal["new", "registering", "registered", "published"]
ClaimOutcome = Literal["claimed", "busy", "terminal"]
#: The one listing of a run opened with `open_run`: what closes it.
EVENTS_LISTING = "events"
#: A run's counters are summed over this many counter shards (recorded with the run): the busiest takes
#: about 1/COUNT_SHARDS of a run's counting writes.
COUNT_SHARDS = 32
#: A recorded reason is cut to this many characters.
REASON_CHARS = 2000


class RunInProgressError(Azs3copyError):
    """Another run has not finished yet; starting a second one would copy the same blobs twice."""

    def __init__(self, message: str, *, run_id: str | None = None) -> None:
        super().__init__(message)
        self.run_id = run_id


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    started_at: float
    containers: tuple[str, ...]
    found: int
    counts: dict[str, int]
    bytes_copied: int
    listing_pending: int
    begindate: str = ""
    finished_at: float | None = None
    report_key: str | None = None
    #: When the run last moved: a page listed, a blob claimed or settled, a part uploaded (epoch seconds).
    progress_at: float = 0.0

    @property
    def done(self) -> int:
        return sum(self.counts.values())

    @property
    def complete(self) -> bool:
        return self.listing_pending <= 0 and self.done >= self.found


@dataclass(frozen=True)
class BlobRecord:
    blob_id: str
    state: str
    reason: str | None = None
    size: int = 0
    upload_id: str | None = None
    part_size: int = 0
    parts: int = 0
    parts_done: int = 0
    key: str | None = None
    #: How S3 checksums the upload's object: FULL_OBJECT, or COMPOSITE for uploads recorded before that.
    checksum_type: str = "COMPOSITE"


@dataclass(frozen=True)
class Finish:
    """A blob's terminal state to record: `finish_many` records a batch of them in as few writes as it can."""

    blob_id: str
    state: str
    reason: str | None = None
    nbytes: int = 0

    def __post_init__(self) -> None:
        if self.state not in TERMINAL_STATES:
            raise ValueError(f"{self.state!r} is not a terminal state")


def unique_finishes(finishes: list[Finish]) -> list[Finish]:
    """Each blob once (the first mention wins): a transaction cannot write one item twice."""
    seen: dict[str, Finish] = {}
    for finish in finishes:
        seen.setdefault(finish.blob_id, finish)
    return list(seen.values())


def increments(states: list[str], nbytes: int = 0, found: int = 0) -> dict[str, int]:
    """What a write adds to a counter shard: found, one per state, bytes copied (zeros left out)."""
    added: dict[str, int] = {}
    if found:
        added["found"] = found
    for state in states:
        added[COUNTER[state]] = added.get(COUNTER[state], 0) + 1
    if nbytes:
        added["bytes_copied"] = nbytes
    return added


@dataclass(frozen=True)
class Claim:
    outcome: ClaimOutcome
    record: BlobRecord | None = None


@dataclass(frozen=True)
class ListedBlob:
    """A blob to copy as a listing page registered it: the version listed and its destination key. A retried
    page publishes these, not what a listing shows by then."""

    ref: BlobRef
    key: str

    @property
    def blob_id(self) -> str:
        return self.ref.blob_id

    def ref_json(self) -> str:
        """The listed version as the ledger stores it (the blob's message form)."""
        return json.dumps(self.ref.to_dict(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def stored(cls, ref_json: str, key: str) -> ListedBlob:
        return cls(BlobRef.from_dict(json.loads(ref_json)), key)


#: A blob whose outcome a listing decided at once: (blob id, size, state, reason).
Decided = tuple[str, int, str, str]


@dataclass(frozen=True)
class PageEntry:
    """One blob of a listing page as the ledger records it."""

    blob_id: str
    size: int
    state: str = "pending"
    reason: str | None = None
    listed: ListedBlob | None = None


def page_entries(pending: list[ListedBlob], decided: list[Decided]) -> list[PageEntry]:
    """The blobs of a page to register, each id once (the first mention wins)."""
    entries: dict[str, PageEntry] = {}
    for blob in pending:
        entries.setdefault(blob.blob_id, PageEntry(blob.blob_id, blob.ref.size, listed=blob))
    for blob_id, size, state, reason in decided:
        entries.setdefault(blob_id, PageEntry(blob_id, size, state, reason))
    return list(entries.values())


@dataclass(frozen=True)
class PageRecord:
    status: Literal["registering", "registered", "published"]
    #: Where the listing went on after this page when it was registered; None after the container's last page
    #: (and while the page is still registering).
    next_marker: str | None = None


@dataclass(frozen=True)
class Registration:
    #: The page's status before this call.
    status: PageStatus
    #: The blobs to publish: those just listed as pending, and those an earlier attempt at the page registered
    #: that this listing no longer shows (deleted since, or moved to the next page), still to be copied.
    pending: list[ListedBlob]
    #: Blobs the ledger could not hold as listed, recorded failed instead: (blob id, reason).
    refused: list[tuple[str, str]] = field(default_factory=list)


class LedgerRefusedError(FatalError):
    """The ledger refused a write as invalid (a key or an item over DynamoDB's limits): sending it again
    cannot help, writing something else can."""


class Ledger(Protocol):
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
        """Make `run_id` the current run and return it, with the settings it copies by (`run_settings`). Raises RunInProgressError while another run has not
        finished, unless forced or that run has made no progress (`RunRecord.progress_at`: a page listed, a
        blob claimed or settled, a part uploaded) for stale_after seconds: a run that is copying is never taken
        over, however long it takes.

        `launch_id` names the launch (the Lambda request id, which a retry of the invocation keeps): when the
        current run was started by the same launch, nothing is written and that run's id is returned, so a
        launch that died after starting its run publishes that run's containers again instead of being
        refused by its own run."""
        ...

    def open_run(self, run_id: str, *, containers: list[str], begindate: str, settings: RunSettings) -> bool:
        """Record `run_id`, unless it is recorded already, as a run no launch waits for and none takes over:
        the current run (`current_run_id`) is left as it is. Its listing stays pending (one
        `finish_container(run_id, EVENTS_LISTING)` closes it), so it is reported only once closed and done.
        Returns whether this call recorded it. blob-events keeps one such run a day."""
        ...

    def get_run(self, run_id: str) -> RunRecord | None: ...
    def run_settings(self, run_id: str) -> RunSettings | None:
        """The settings the run was started with; None for a run recorded without them (an older release)."""
        ...

    def current_run_id(self) -> str | None: ...
    def latest_run_id(self) -> str | None: ...
    def get_page(self, run_id: str, container: str, page: int) -> PageRecord | None:
        """The listing page as an earlier attempt (or a second delivery) recorded it; None when it was not."""
        ...

    def register_page(
        self,
        run_id: str,
        container: str,
        page: int,
        pending: list[ListedBlob],
        decided: list[Decided],
        next_marker: str | None = None,
    ) -> Registration:
        """Record a listing page and create an item for each of its blobs that the run does not hold yet.

        Only blobs new to the run are counted (`found`, and the counter of a decided state); a blob the run
        already holds keeps its state, whichever page listed it first (a message can be delivered twice). Every
        blob listed is recorded as the page's before any is created, so a later attempt at the page finds the
        blobs an attempt that stopped half way created (Registration.pending). A blob whose record the ledger
        cannot hold is recorded failed with the reason, alone (Registration.refused): no blob stops a page."""
        ...

    def page_blobs(self, run_id: str, container: str, page: int) -> list[ListedBlob]:
        """The blobs the page registered to copy that have not reached a terminal state, as they were listed."""
        ...

    def mark_page_published(self, run_id: str, container: str, page: int) -> None: ...
    def finish_container(self, run_id: str, container: str) -> None: ...
    def open_shards(self, run_id: str, unit: str, shards: list[str]) -> list[str]:
        """Record how the listing unit is split: the name prefixes listed as shards of their own (none: the
        unit is listed whole), each counted as one more listing to finish. The first decision recorded stands
        (a retry, or another delivery, that found other prefixes gets it back); returns it."""
        ...

    def get_shards(self, run_id: str, unit: str) -> list[str] | None:
        """The split recorded for the listing unit; None when none was."""
        ...

    def claim(self, run_id: str, blob_id: str, owner: str, lease_seconds: float) -> Claim: ...
    def release(self, run_id: str, blob_id: str, owner: str) -> None: ...
    def finish(self, run_id: str, blob_id: str, state: str, reason: str | None, nbytes: int) -> bool:
        """Record the blob's terminal state; False when it had reached one before (nothing is counted)."""
        ...

    def finish_many(self, run_id: str, finishes: list[Finish]) -> set[str]:
        """Record the terminal states of a batch of blobs in as few transactions as DynamoDB allows (100 items
        each: the blobs' items, a failure item for each blob not copied, one counter shard). Returns the ids
        of the blobs recorded now; the others had reached a terminal state before."""
        ...

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
        """Record the blob's multipart upload once; returns the upload id recorded (an earlier one wins)."""
        ...

    def get_blob(self, run_id: str, blob_id: str) -> BlobRecord | None: ...
    def record_part(self, run_id: str, blob_id: str, number: int, crc32: str) -> int: ...
    def part_checksums(self, run_id: str, blob_id: str) -> dict[int, str]: ...
    def bump_attempt(self, run_id: str, function: str, message_id: str) -> int: ...
    def blobs(self, run_id: str) -> Iterator[BlobRecord]:
        """Every blob of the run (one item each: for tests and tools, never for a step's report)."""
        ...

    def failures(self, run_id: str, limit: int) -> list[BlobRecord]:
        """Up to `limit` blobs of the run in a NOT_COPIED_STATES state, with their reasons: read from the run's
        sparse failure items, not from every blob's."""
        ...

    def claim_report(self, run_id: str, owner: str, lease_seconds: float) -> bool:
        """Whether `owner` is the one to write the run's report: a conditional write that one caller wins (and
        the same owner again, or anyone once the winner's lease ran out without a report, or after the winner
        let go), so that concurrent last finishes write one report."""
        ...

    def release_report(self, run_id: str, owner: str) -> None:
        """Let go of the report claim when the report could not be written, so another attempt writes it."""
        ...

    def mark_reported(self, run_id: str, report_key: str, finished_at: float) -> None: ...
    def add_note(self, run_id: str, note: str) -> None:
        """Record something the run's report must say (once, however often it is added)."""
        ...

    def notes(self, run_id: str) -> list[str]: ...


def note_sk(note: str) -> str:
    """A note's sort key: a digest, so a note added again (each page of a container says it) is one item."""
    return "NOTE#" + hashlib.sha256(note.encode()).hexdigest()[:32]


# --- records from items ---------------------------------------------------------------------------------


def run_record(data: dict[str, Any], shards: list[dict[str, Any]] | tuple[()] = ()) -> RunRecord:
    """The run from its META item and its counter shards: the counters are the shards' sums (META's own
    counters, which a run recorded before the counters were sharded holds, are added in), and its progress is
    the latest any of them was stamped with."""
    items = [data, *shards]
    total = {name: sum(int(item.get(name, 0) or 0) for item in items) for name in SUMMED}
    progress = max(float(item.get("progress_at") or 0) for item in items) or float(data["started_at"])
    return RunRecord(
        run_id=data["run_id"],
        started_at=float(data["started_at"]),
        containers=tuple(data.get("containers") or ()),
        found=total["found"],
        counts={state: total[COUNTER[state]] for state in TERMINAL_STATES},
        bytes_copied=total["bytes_copied"],
        listing_pending=int(data.get("listing_pending", 0)),
        begindate=str(data.get("begindate", "")),
        finished_at=float(data["finished_at"]) if data.get("finished_at") is not None else None,
        report_key=data.get("report_key"),
        progress_at=progress,
    )


def blob_record(blob_id: str, data: dict[str, Any]) -> BlobRecord:
    """A blob record from an item's attributes (as plain values)."""
    return BlobRecord(
        blob_id=blob_id,
        state=str(data.get("state", "pending")),
        reason=data.get("reason"),
        size=int(data.get("size", 0)),
        upload_id=data.get("upload_id"),
        part_size=int(data.get("part_size", 0)),
        parts=int(data.get("parts", 0)),
        parts_done=len(data.get("parts_done") or ()),
        key=data.get("key"),
        checksum_type=str(data.get("checksum_type") or "COMPOSITE"),
    )
