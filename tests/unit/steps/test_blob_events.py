"""blob-events: Event Grid deliveries queue the current version of the blobs they name, once, on the copy path
a listed blob takes; refusals, handshakes and the day's events run."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any

from azs3copy.ledger import EVENTS_LISTING
from azs3copy.messages import decode
from azs3copy.steps.blob_events import EventsReply, EventsRequest, blob_events, events_run_id
from devenv.event_grid import blob_event, validation_event
from tests.support.fakes import MemoryBlobSource, MemoryObjectSink
from tests.support.harness import Harness
from tests.unit.steps.common import MiB, harness, settings

TOKEN = "t" * 40


def events_harness(source: MemoryBlobSource, **extra: Any) -> Harness:
    return harness(source, MemoryObjectSink(), settings=settings(events_token=TOKEN, **extra))


def post(h: Harness, body: Any, *, token: str | None = TOKEN, now: datetime | None = None) -> EventsReply:
    headers = {"x-azs3copy-token": token} if token is not None else {}
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return blob_events(h.deps(), EventsRequest("POST", headers, raw), now)


def created(source: MemoryBlobSource, container: str, name: str, **kwargs: Any) -> dict[str, Any]:
    blob = source.containers[container][name]
    return blob_event("Created", container, name, etag=blob.etag, size=len(blob.data), **kwargs)


def test_a_batch_of_blob_created_events_copies_each_blob_byte_for_byte() -> None:
    source = MemoryBlobSource()
    data = {f"in/{i}.bin": os.urandom(1000 + i) for i in range(5)} | {"in/big.bin": os.urandom(13 * MiB)}
    for name, content in data.items():
        source.put("alpha", name, content)
    h = events_harness(source)
    reply = post(h, [created(source, "alpha", name) for name in data])
    assert reply.status == 200 and reply.body["states"]["queued"] == 6
    topics = {topic for topic, _ in h.publisher.sent}
    assert topics == {"download", "largefile-initializer"}  # small and large take their own paths
    h.drain()
    for name, content in data.items():
        assert h.sink.objects[f"alpha/{name}"].data == content  # type: ignore[attr-defined]
    run = h.report(events_run_id(datetime.now(UTC)))
    assert run.counts["copied"] == 6 and run.found == 6


def test_cloudevents_schema_is_accepted_one_event_or_a_batch() -> None:
    source = MemoryBlobSource()
    source.put("alpha", "one", b"1")
    source.put("alpha", "two", b"22")
    h = events_harness(source)
    assert post(h, created(source, "alpha", "one", schema="cloudevents")).status == 200
    assert post(h, [created(source, "alpha", "two", schema="cloudevents")]).status == 200
    h.drain()
    assert h.sink.objects["alpha/one"].data == b"1" and h.sink.objects["alpha/two"].data == b"22"  # type: ignore[attr-defined]


def test_event_grid_validation_handshake_echoes_the_code_without_a_token() -> None:
    h = events_harness(MemoryBlobSource())
    reply = post(h, validation_event("ABC-123"), token=None)
    assert reply == EventsReply(200, {"validationResponse": "ABC-123"})


def test_cloudevents_options_handshake_allows_the_origin() -> None:
    h = events_harness(MemoryBlobSource())
    request = EventsRequest("OPTIONS", {"webhook-request-origin": "eventgrid.azure.net"}, b"")
    reply = blob_events(h.deps(), request)
    assert reply.status == 200 and reply.headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"


def test_wrong_or_missing_token_is_refused_and_nothing_is_queued() -> None:
    source = MemoryBlobSource()
    source.put("alpha", "a", b"a")
    h = events_harness(source)
    for token in (None, "", "x" * 40, TOKEN[:-1]):
        assert post(h, [created(source, "alpha", "a")], token=token).status == 401
    assert h.publisher.sent == [] and h.ledger.get_run(events_run_id(datetime.now(UTC))) is None


def test_no_token_in_the_secret_refuses_every_delivery() -> None:
    source = MemoryBlobSource()
    source.put("alpha", "a", b"a")
    h = harness(source)  # settings without events_token
    assert post(h, [created(source, "alpha", "a")], token="").status == 401
    assert post(h, [created(source, "alpha", "a")]).status == 401


def test_malformed_bodies_get_400_once_the_token_is_right() -> None:
    h = events_harness(MemoryBlobSource())
    bodies: list[Any] = [
        b"not json",
        [],
        [1, 2],
        [{"eventType": "Microsoft.Storage.BlobCreated", "subject": "/nope", "data": {"sequencer": "1"}}],
        [
            {
                "eventType": "Microsoft.Storage.BlobCreated",
                "subject": "/blobServices/default/containers/c/blobs/x",
            }
        ],
        [{"id": "no type"}],
    ]
    for body in bodies:
        assert post(h, body).status == 400, body
        assert post(h, body, token="wrong" * 8).status == 401, body
    assert h.publisher.sent == []


def test_duplicate_events_copy_once_and_an_event_after_the_copy_is_skipped() -> None:
    source = MemoryBlobSource()
    source.put("alpha", "a", b"abc")
    h = events_harness(source)
    event = created(source, "alpha", "a")
    post(h, [event, event, event])
    assert len(h.publisher.sent) == 1  # one batch: the same blob once
    post(h, [event])
    h.drain()
    reply = post(h, [event])
    assert reply.body["states"] == {"skipped": 1} and h.publisher.queue == deque_empty()
    run = h.report(events_run_id(datetime.now(UTC)))
    assert run.counts["copied"] == 1 and run.found == 1


def deque_empty() -> Any:
    from collections import deque

    return deque()


def test_an_older_event_after_a_newer_version_copies_the_newer_version_only() -> None:
    source = MemoryBlobSource()
    source.put("alpha", "a", b"old")
    old = created(source, "alpha", "a")
    source.put("alpha", "a", b"new")
    new = created(source, "alpha", "a")
    h = events_harness(source)
    post(h, [new])
    h.drain()
    reply = post(h, [old])  # delivered late: Azure holds the new version, which S3 holds verified
    h.drain()
    assert h.sink.objects["alpha/a"].data == b"new"  # type: ignore[attr-defined]
    assert reply.body["states"] == {"skipped": 1}


def test_within_a_delivery_the_highest_sequencer_wins() -> None:
    source = MemoryBlobSource()
    source.put("alpha", "a", b"kept")
    h = events_harness(source)
    later = blob_event("Deleted", "alpha", "a", sequencer="0" * 31 + "9")
    earlier = created(source, "alpha", "a", sequencer="0" * 31 + "1")
    reply = post(h, [later, earlier])
    assert reply.body["states"] == {"deleted-in-azure": 1} and h.publisher.sent == []


def test_blob_deleted_is_recorded_and_s3_keeps_the_object() -> None:
    source = MemoryBlobSource()
    source.put("alpha", "a", b"abc")
    h = events_harness(source)
    post(h, [created(source, "alpha", "a")])
    h.drain()
    source.delete("alpha", "a")
    reply = post(h, [blob_event("Deleted", "alpha", "a")])
    assert reply.status == 200 and reply.body["states"] == {"deleted-in-azure": 1}
    assert h.sink.objects["alpha/a"].data == b"abc"  # type: ignore[attr-defined]


def test_isactive_false_answers_200_and_queues_nothing() -> None:
    source = MemoryBlobSource()
    source.put("alpha", "a", b"abc")
    h = events_harness(source, isactive=False)
    reply = post(h, [created(source, "alpha", "a")])
    assert reply.status == 200 and reply.body["queued"] == 0 and "isactive" in reply.body["reason"]
    assert h.publisher.sent == []


def test_only_blobs_the_settings_select_are_queued() -> None:
    source = MemoryBlobSource()
    for container, name in [
        ("alpha", "data/a.csv"),
        ("alpha", "data/b.json"),
        ("alpha", "x/c.csv"),
        ("beta", "data/d.csv"),
    ]:
        source.put(container, name, b"1")
    h = events_harness(source, containers=["alpha"], prefix="data/", include=["*.csv"])
    events = [created(source, c, n) for c, blobs in source.containers.items() for n in blobs]
    reply = post(h, events)
    h.drain()
    assert [key for key in h.sink.objects if not key.startswith("_")] == ["alpha/data/a.csv"]  # type: ignore[attr-defined]
    assert reply.body["states"] == {"queued": 1}


def test_an_event_for_a_blob_gone_since_queues_nothing() -> None:
    h = events_harness(MemoryBlobSource())
    reply = post(h, [blob_event("Created", "alpha", "gone")])
    assert reply.status == 200 and reply.body["gone"] == 1 and h.publisher.sent == []


def test_the_events_run_is_not_the_current_run_and_does_not_block_a_launch() -> None:
    source = MemoryBlobSource()
    source.put("alpha", "a", b"abc")
    h = events_harness(source)
    post(h, [created(source, "alpha", "a")])  # queued, not copied yet: the events run is open
    assert h.ledger.current_run_id() is None
    run_id = h.run()
    assert run_id is not None and h.ledger.current_run_id() in (None, run_id)


def test_the_next_days_first_delivery_closes_and_reports_the_day_before() -> None:
    source = MemoryBlobSource()
    source.put("alpha", "a", b"abc")
    h = events_harness(source)
    today = datetime(2026, 3, 1, 23, 59, tzinfo=UTC)
    post(h, [created(source, "alpha", "a")], now=today)
    h.drain()
    first = h.report(events_run_id(today))
    assert first.counts["copied"] == 1 and first.report_key is None and first.listing_pending == 1
    source.put("alpha", "b", b"def")
    post(h, [created(source, "alpha", "b")], now=today + timedelta(minutes=2))
    closed = h.report(events_run_id(today))
    assert closed.listing_pending == 0 and closed.report_key is not None
    report = json.loads(h.sink.objects[closed.report_key].data)  # type: ignore[attr-defined]
    assert report["counts"]["copied"] == 1 and report["ok"] is True
    assert EVENTS_LISTING == "events"


def test_a_blob_copied_by_an_event_and_rewritten_the_same_day_is_left_to_the_schedule() -> None:
    source = MemoryBlobSource()
    source.put("alpha", "a", b"v1")
    h = events_harness(source)
    post(h, [created(source, "alpha", "a")])
    h.drain()
    source.put("alpha", "a", b"v2")
    reply = post(h, [created(source, "alpha", "a")])
    assert reply.body["states"] == {"left-to-schedule": 1}
    h.run(force=True)  # the scheduled run copies what S3 does not hold verified at the current ETag
    assert h.sink.objects["alpha/a"].data == b"v2"  # type: ignore[attr-defined]


def test_messages_carry_the_version_read_now_not_the_one_the_event_named() -> None:
    source = MemoryBlobSource()
    source.put("alpha", "a", b"old")
    event = created(source, "alpha", "a")
    now = source.put("alpha", "a", b"newer")
    h = events_harness(source)
    post(h, [event])
    [(_, body)] = h.publisher.sent
    assert decode(body).blobs[0].etag == now.etag  # type: ignore[attr-defined]
