"""What every step is given and gives back: the transports and settings (Deps), the running invocation, the
tuning, and the Outcome a handler turns into logs, metrics and a response."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from aws_lambda_powertools import Logger

from azs3copy.errors import (
    FatalError,
)
from azs3copy.ledger import Ledger
from azs3copy.planner import MAX_PART_SIZE, MiB, check_part_size
from azs3copy.settings import RunSettings, Settings
from azs3copy.transports import BlobSource, ObjectSink

logger = Logger(child=True)


#: Azure lists at most 5,000 blobs a page; a page's ledger item holds a 16-byte digest of each (80 KB of 400).
MAX_PAGE_SIZE = 5000
#: The most shards one listing splits into: their prefixes are kept in one ledger item, and each is one more
#: listing the run waits for.
MAX_LISTING_SHARDS = 256


@dataclass(frozen=True)
class Tuning:
    large_threshold: int = 100 * MiB
    part_size: int = 16 * MiB
    #: A download's blob up to this size is one read and one PutObject, a longer one streams as parts of
    #: this size (docs/design.md, "Sizes"): 16 MiB makes the 8-16 MiB blobs one request instead of four.
    chunk_size: int = 16 * MiB
    page_size: int = 5000
    max_attempts: int = 3
    #: checksum: S3 checks the checksums each write carries and the object is written with its verified mark;
    #: readback (for audits): each object is written, read back whole and compared, then marked.
    verify: Literal["checksum", "readback"] = "checksum"
    #: The deployment's S3 storage class (AZS3COPY_STORAGE_CLASS), for runs whose secret names none.
    storage_class: str = "STANDARD"
    report_prefix: str = "_azs3copy/reports/"
    #: A run that made no progress for this long (AZS3COPY_STALE_RUN_SECONDS) is taken over by the next launch;
    #: one that makes progress never is. Longer than a message can wait in Lambda's queue (6 h at most).
    stale_run_seconds: float = 12 * 3600
    batch_blobs: int = 25
    batch_bytes: int = 64 * MiB
    copy_threads: int = 4
    #: The largest part a parter can hold (AZS3COPY_MAX_PART_SIZE, from its memory size): larger parts are
    #: refused when the upload is planned, not found out by an out-of-memory parter.
    max_part_size: int = MAX_PART_SIZE
    head_threads: int = 8
    #: find-blobs hands the rest of a container to a fresh invocation when less than this is left.
    listing_reserve_seconds: float = 120.0
    #: A listing whose next level (names up to the next `/`) holds at most this many virtual directories,
    #: all on one page, lists each of them as a shard of its own, at once (AZS3COPY_LISTING_SHARDS; 0: every
    #: container is listed whole, page after page).
    listing_shards: int = 32
    #: The recombinator hands the rest of a read-back to a fresh invocation when less than this (and twice
    #: the slowest part's read) is left.
    verify_reserve_seconds: float = 60.0

    def __post_init__(self) -> None:
        check_part_size(self.part_size)
        if self.chunk_size < 5 * MiB:
            raise ValueError("chunk size must be at least 5 MiB (S3's smallest multipart part)")
        if not 0 <= self.listing_shards <= MAX_LISTING_SHARDS:
            raise ValueError(f"listing shards must be 0 to {MAX_LISTING_SHARDS}")
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise ValueError(
                f"page size must be 1 to {MAX_PAGE_SIZE} blobs (Azure lists at most that many a page)"
            )


@dataclass(frozen=True)
class Topics:
    """Topic ARNs; empty for the topics a function does not publish to (functions.HANDS_TO)."""

    find_blobs: str = ""
    download: str = ""
    largefile_initializer: str = ""
    largefile_parter: str = ""
    largefile_recombinator: str = ""


class Publisher(Protocol):
    def publish(self, topic: str, bodies: list[str]) -> None:
        """Publish every body to the topic (batched by the implementation); raises on any failure."""
        ...


@dataclass
class Invocation:
    """What the engine needs to know about the running invocation."""

    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    final_attempt: bool = True
    remaining_seconds: Callable[[], float] = lambda: 900.0
    #: Which attempt at this message this is (1 for the first): a retry first looks for what an earlier
    #: attempt finished but could not record.
    attempt: int = 1


@dataclass
class Deps:
    """The transports and settings of a function. Only what the function uses needs to be set."""

    ledger: Ledger
    publisher: Publisher
    topics: Topics
    tuning: Tuning = field(default_factory=Tuning)
    sink: ObjectSink | None = None
    source: BlobSource | None = None
    #: The secret's settings as they are now: the launch's. The other steps use the run's (`run_settings`).
    settings: Settings | None = None
    #: Reads the secret's settings when `settings` is not set (only for a run recorded without its own).
    load_settings: Callable[[], Settings] | None = None
    #: Credential values to blank out of every recorded reason and log line.
    secrets: tuple[str, ...] = ()
    #: Told of every blob failed for good by an error no retry can fix, as (run id, blob id, reason); the
    #: handler puts them in the function's dead-letter queue, where exhausted retries land too.
    on_fatal: Callable[[str, str, str], None] | None = None
    #: The settings of the runs this process has worked for, read once: a run's recorded settings never change.
    recorded_settings: dict[str, RunSettings] = field(default_factory=dict)

    def need_sink(self) -> ObjectSink:
        if self.sink is None:
            raise FatalError("this function has no destination bucket configured")
        return self.sink

    def need_source(self) -> BlobSource:
        if self.source is None:
            raise FatalError("this function has no Azure source configured")
        return self.source

    def need_settings(self) -> Settings:
        if self.settings is None and self.load_settings is not None:
            self.settings = self.load_settings()
        if self.settings is None:
            raise FatalError("this function has no settings loaded")
        return self.settings


def run_settings(deps: Deps, run_id: str) -> RunSettings:
    """The settings run `run_id` was launched with: each of its steps selects and names blobs by them, whatever
    the secret says now. A run recorded without them (launched by a release that did not record them) goes
    on with the secret's current settings, as that release did."""
    recorded = deps.recorded_settings.get(run_id) or deps.ledger.run_settings(run_id)
    if recorded is None:
        return deps.need_settings().run_settings(deps.tuning.storage_class)
    deps.recorded_settings[run_id] = recorded
    return recorded


def new_run_id(now: datetime | None = None) -> str:
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


@dataclass
class Outcome:
    """What one invocation did, for the handler's response, logs and metrics."""

    states: dict[str, int] = field(default_factory=dict)
    bytes_copied: int = 0
    published: int = 0
    retry: list[str] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)

    def count(self, state: str, nbytes: int = 0) -> None:
        self.states[state] = self.states.get(state, 0) + 1
        self.bytes_copied += nbytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "states": dict(self.states),
            "bytes_copied": self.bytes_copied,
            "published": self.published,
            **({"retry": self.retry} if self.retry else {}),
            **self.detail,
        }
