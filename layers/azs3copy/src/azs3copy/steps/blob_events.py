"""blob-events: Azure Event Grid's BlobCreated events, delivered to a function URL, queue the blobs they name on
the copy path a listed blob takes (small → download, large → largefile-initializer), within seconds of the
upload instead of at the next scheduled run.

Event Grid delivers at least once and out of order, so an event says only *which* blob to look at: the blob's
properties are read from Azure now, and the version read (its ETag) is the one queued. A blob S3 holds verified
at that ETag is skipped; an older event arriving late queues nothing older than what Azure holds, and the
download reads with If-Match, so no older version can overwrite a newer copy. Within a delivery only the event
with the highest `sequencer` of each blob counts. BlobDeleted is recorded (logged and counted), not applied:
S3 keeps its object.

The blobs go into one run a day, `<YYYYMMDD>-events`, so `azs3copy status`, the report and the dead-letter tools
see them. It is opened with `Ledger.open_run`, never made the current run: it neither blocks the scheduled
launch nor is taken over by it. The next day's first delivery closes it, and its report is written once its
blobs are settled. A blob the day's run settled already is not queued again that day (the ledger holds one
state per blob and run): a blob rewritten after its event copy waits for the next scheduled run, which copies
every blob S3 does not hold verified at its current ETag."""

from __future__ import annotations

import hmac
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger

from azs3copy.errors import Azs3copyError, BlobRejectedError
from azs3copy.keys import object_key
from azs3copy.ledger import EVENTS_LISTING, TERMINAL_STATES, Decided, ListedBlob
from azs3copy.messages import SourceBlob, iso
from azs3copy.planner import MAX_OBJECT_SIZE, plan_parts
from azs3copy.redaction import redact
from azs3copy.settings import Settings
from azs3copy.steps.context import Deps, Outcome
from azs3copy.steps.find_blobs import publish_blobs, selected
from azs3copy.steps.report import maybe_report
from azs3copy.steps.verify import source_metadata, verified_copy

logger = Logger(child=True)

#: The request header Event Grid sends the events token in (a delivery attribute marked secret).
TOKEN_HEADER = "x-azs3copy-token"
BLOB_CREATED = "Microsoft.Storage.BlobCreated"
BLOB_DELETED = "Microsoft.Storage.BlobDeleted"
VALIDATION = "Microsoft.EventGrid.SubscriptionValidationEvent"
_SUBJECT = "/blobServices/default/containers/"


class MalformedEventsError(ValueError):
    """The body is not a batch of events of the documented shapes (answered 400)."""


@dataclass(frozen=True)
class EventsRequest:
    """One HTTP request to the function URL: its method, headers (names in lower case) and body."""

    method: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class EventsReply:
    status: int
    body: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BlobEvent:
    """A BlobCreated or BlobDeleted event, in either schema."""

    created: bool
    container: str
    name: str
    sequencer: str

    @property
    def blob_id(self) -> str:
        return f"{self.container}/{self.name}"

    @property
    def order(self) -> tuple[int, str]:
        """Sequencers of one blob compare as hex strings of one width; a shorter one is older."""
        return len(self.sequencer), self.sequencer


def events_run_id(now: datetime) -> str:
    return f"{now.astimezone(UTC):%Y%m%d}-events"


def blob_events(deps: Deps, request: EventsRequest, now: datetime | None = None) -> EventsReply:
    """Answer one delivery: a handshake, a refusal, or the events' blobs queued to copy.

    401: the token is wrong or missing (nothing is read or queued). 400: the body is no batch of events.
    An error while queuing is raised (the handler answers 5xx and Event Grid delivers again)."""
    if request.method == "OPTIONS":  # CloudEvents 1.0 abuse protection: allow the origin that asks
        origin = request.headers.get("webhook-request-origin")
        if not origin:
            return EventsReply(400, {"error": "OPTIONS without WebHook-Request-Origin"})
        return EventsReply(200, headers={"WebHook-Allowed-Origin": origin, "WebHook-Allowed-Rate": "*"})
    if request.method != "POST":
        return EventsReply(
            405, {"error": f"method {request.method} is not allowed"}, {"Allow": "OPTIONS, POST"}
        )
    try:
        raw = _raw_events(request.body)
    except MalformedEventsError as error:
        raw, malformed = [], str(error)
    else:
        malformed = ""
    code = _validation_code(raw)
    if code is not None:  # Event Grid schema handshake: it carries no event and queues nothing
        logger.info("subscription validated")
        return EventsReply(200, {"validationResponse": code})
    settings = deps.need_settings()
    if not _authorized(settings, request.headers):
        logger.warning("delivery refused: wrong or missing events token", extra={"header": TOKEN_HEADER})
        return EventsReply(401, {"error": "unauthorized"})
    try:
        if malformed:
            raise MalformedEventsError(malformed)
        events = [event for event in map(_blob_event, raw) if event is not None]
    except MalformedEventsError as error:
        logger.warning("delivery refused: malformed body", extra={"error": str(error)})
        return EventsReply(400, {"error": str(error)})
    if not settings.isactive:
        logger.info("events recorded, not queued: isactive is false", extra={"events": len(events)})
        return EventsReply(
            200, {"queued": 0, "ignored": len(events), "reason": "isactive is false in the secret"}
        )
    outcome = queue_events(deps, settings, events, now or datetime.now(UTC))
    return EventsReply(200, {"events": len(raw), **outcome.to_dict()})


def queue_events(deps: Deps, settings: Settings, events: list[BlobEvent], now: datetime) -> Outcome:
    """Queue the current version of each selected blob the events name into the day's events run."""
    settings.require_azure()
    outcome = Outcome()
    latest: dict[str, BlobEvent] = {}
    for event in events:
        known = latest.get(event.blob_id)
        if known is None or event.order > known.order:
            latest[event.blob_id] = event
    for event in latest.values():
        if not event.created:
            outcome.count("deleted-in-azure")
            logger.info("blob deleted in Azure; S3 keeps its object", extra={"blob": event.blob_id})
    wanted = [event for event in latest.values() if event.created and _wanted(settings, event)]
    outcome.detail["not_selected"] = sum(1 for e in latest.values() if e.created) - len(wanted)
    run_id = events_run_id(now)
    outcome.detail["run_id"] = run_id
    if not wanted:
        return outcome
    _open_day(deps, settings, run_id, now)
    with ThreadPoolExecutor(max_workers=max(1, min(deps.tuning.head_threads, len(wanted)))) as pool:
        found = list(pool.map(lambda event: deps.need_source().get_blob(event.container, event.name), wanted))
    blobs = [blob for blob in found if blob is not None and selected(settings.run_settings(), blob)]
    outcome.detail["gone"] = sum(1 for blob in found if blob is None)
    by_container: dict[str, list[SourceBlob]] = {}
    for blob in blobs:
        by_container.setdefault(blob.ref.container, []).append(blob)
    page = _page_number(now)
    for container, chosen in sorted(by_container.items()):
        pending, decided = _triage(deps, settings, run_id, chosen, outcome)
        if not pending and not decided:
            continue
        registration = deps.ledger.register_page(run_id, container, page, pending, decided)
        for _, _, state, _ in decided:
            outcome.count(state)
        queued = {blob.blob_id for blob in pending}
        to_copy = [blob for blob in registration.pending if blob.blob_id in queued]
        outcome.published += publish_blobs(deps, run_id, to_copy)
        deps.ledger.mark_page_published(run_id, container, page)
        if to_copy:
            outcome.states["queued"] = outcome.states.get("queued", 0) + len(to_copy)
    logger.info("events queued", extra={"run_id": run_id, "states": outcome.states})
    return outcome


def _triage(
    deps: Deps, settings: Settings, run_id: str, blobs: list[SourceBlob], outcome: Outcome
) -> tuple[list[ListedBlob], list[Decided]]:
    """The blobs to copy (with their keys), and those whose outcome is known at once (recorded in the run)."""
    sink = deps.need_sink()
    candidates: list[ListedBlob] = []
    decided: list[Decided] = []
    for blob in blobs:
        ref = blob.ref
        try:
            key = object_key(settings.destination_prefix, ref.container, ref.name)
            if ref.size > MAX_OBJECT_SIZE:
                plan_parts(ref.size, deps.tuning.part_size)  # raises with the reason
            source_metadata(ref)
        except BlobRejectedError as error:
            decided.append((ref.blob_id, ref.size, "failed", str(error)))
            continue
        if blob.archived:
            decided.append(
                (ref.blob_id, ref.size, "needs-rehydration", "in the archive tier: rehydrate it first")
            )
            continue
        candidates.append(ListedBlob(ref, key))

    def check(blob: ListedBlob) -> tuple[ListedBlob, str | None]:
        """Why the blob is not queued (None: queue it). A copy S3 holds verified at this ETag is neither
        queued nor recorded, so the run keeps room for the blob's next version that day."""
        if verified_copy(sink, blob.key, blob.ref):
            return blob, "skipped"
        record = deps.ledger.get_blob(run_id, blob.blob_id)
        if record is not None and record.state in TERMINAL_STATES:
            return blob, "left-to-schedule"
        return blob, None

    pending: list[ListedBlob] = []
    with ThreadPoolExecutor(max_workers=max(1, min(deps.tuning.head_threads, len(candidates) or 1))) as pool:
        try:
            checked = list(pool.map(check, candidates))
        except Azs3copyError as error:
            raise type(error)(redact(str(error), deps.secrets)) from None
    for listed, why in checked:
        if why is None:
            pending.append(listed)
        else:
            outcome.count(why)
    return pending, decided


def _open_day(deps: Deps, settings: Settings, run_id: str, now: datetime) -> None:
    """Open the day's events run; the first delivery of a day closes the day before's (reported once done)."""
    opened = deps.ledger.open_run(
        run_id,
        containers=list(settings.containers or ()),
        begindate=iso(settings.begindate),
        settings=settings.run_settings(deps.tuning.storage_class),
    )
    if not opened:
        return
    logger.info("events run opened", extra={"run_id": run_id})
    before = events_run_id(now - timedelta(days=1))
    run = deps.ledger.get_run(before)
    if run is not None and run.listing_pending > 0:
        deps.ledger.finish_container(before, EVENTS_LISTING)
        maybe_report(deps, before)


def _page_number(now: datetime) -> int:
    """The ledger page a delivery registers its blobs under: the millisecond of the day (at most 8 digits)."""
    moment = now.astimezone(UTC)
    return ((moment.hour * 60 + moment.minute) * 60 + moment.second) * 1000 + moment.microsecond // 1000


def _wanted(settings: Settings, event: BlobEvent) -> bool:
    """Whether the settings select the blob by container and prefix (include/exclude and begindate are
    checked on the properties read from Azure)."""
    if settings.containers is not None and event.container not in settings.containers:
        return False
    return event.name.startswith(settings.prefix)


def _authorized(settings: Settings, headers: dict[str, str]) -> bool:
    expected, sent = settings.events_token, headers.get(TOKEN_HEADER, "")
    return bool(expected) and hmac.compare_digest(sent.encode(), (expected or "").encode())


def _raw_events(body: bytes) -> list[dict[str, Any]]:
    """The events of a body: an Event Grid schema array, a CloudEvents batch, or one CloudEvent."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise MalformedEventsError("the body is not JSON") from None
    events = document if isinstance(document, list) else [document]
    if not events or not all(isinstance(event, dict) for event in events):
        raise MalformedEventsError("the body must be an event or a non-empty array of events")
    return events


def _event_type(event: dict[str, Any]) -> str:
    kind = event.get("eventType", event.get("type"))  # Event Grid schema, CloudEvents 1.0
    if not isinstance(kind, str):
        raise MalformedEventsError(f"event {str(event.get('id'))[:64]!r} has no eventType or type")
    return kind


def _validation_code(events: list[dict[str, Any]]) -> str | None:
    for event in events:
        if event.get("eventType") == VALIDATION:
            data = event.get("data")
            code = data.get("validationCode") if isinstance(data, dict) else None
            return str(code) if code else None
    return None


def _blob_event(event: dict[str, Any]) -> BlobEvent | None:
    """The blob an event names; None for event types other than BlobCreated and BlobDeleted."""
    kind = _event_type(event)
    if kind not in (BLOB_CREATED, BLOB_DELETED):
        return None
    subject, data = event.get("subject"), event.get("data")
    if not isinstance(subject, str) or not subject.startswith(_SUBJECT) or "/blobs/" not in subject:
        raise MalformedEventsError(f"{kind} event has no blob subject: {str(subject)[:200]!r}")
    container, _, name = subject[len(_SUBJECT) :].partition("/blobs/")
    if not container or not name:
        raise MalformedEventsError(f"{kind} event subject names no blob: {subject[:200]!r}")
    sequencer = data.get("sequencer") if isinstance(data, dict) else None
    if not isinstance(sequencer, str):
        raise MalformedEventsError(f"{kind} event for {container}/{name[:200]} has no data.sequencer")
    return BlobEvent(kind == BLOB_CREATED, container, name, sequencer.lower())
