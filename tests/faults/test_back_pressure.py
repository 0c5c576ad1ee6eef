"""Back-pressure: work that waits for a free invocation waits in the step's SQS queue (14 days), not in
Lambda's asynchronous queue (at most maximum_event_age, then the dead-letter queue unprocessed). A run whose
download step may run one invocation at a time, with a backlog of batches far larger than that, copies every
blob byte for byte and finishes, although its batches wait longer than the asynchronous path would have kept
them."""

from __future__ import annotations

import os

from tests.faults.conftest import World
from tests.faults.test_faults import judge, new_container, run_once

BLOBS = 400  # 16 download batches of 25 blobs, for one invocation at a time
#: The asynchronous path's limit on how long an event may wait (the local runtime's stand-in for
#: maximum_event_age_seconds): a download event that waited longer would have been dead-lettered unprocessed.
AGE_LIMIT = 5


def test_a_backlog_far_beyond_the_download_concurrency_waits_in_its_queue_and_loses_nothing(
    world: World,
) -> None:
    blobs = {f"backlog/{i:04d}.bin": os.urandom(100 + i) for i in range(BLOBS)}
    container = new_container(world, blobs)
    world.configure([container])
    world.drain_dead_letters()
    download = world.name("download")
    [poller] = [
        p for p in world.runtime.event_sources if p.mapping.function_arn.rsplit(":", 1)[1] == download
    ]
    spec = world.runtime.functions[download]
    saved_age, before = spec.max_event_age, dict(poller.stats)
    poller.set_maximum_concurrency(1)
    poller.stats["peak"] = poller.stats["longest_wait_ms"] = 0
    spec.max_event_age = AGE_LIMIT
    try:
        run = run_once(world)
    finally:
        poller.set_maximum_concurrency(poller.concurrency)
        spec.max_event_age = saved_age
    dead = world.drain_dead_letters()
    tally = judge(world, container, blobs, run.report, dead)
    assert not tally.problems, tally.problems
    assert tally.copied == BLOBS and tally.lost == 0 and tally.corrupt == 0
    assert run.report["ok"] is True and run.report["counts"].get("copied") == BLOBS, run.report["counts"]
    assert dead == []
    batches = poller.stats["batches"] - before.get("batches", 0)
    assert batches >= BLOBS // 25, f"{batches} download invocations"
    assert poller.stats["peak"] == 1, "more than one download ran at once"
    # The backlog was real: a batch waited in the queue longer than the asynchronous path keeps an event.
    assert poller.stats["longest_wait_ms"] > AGE_LIMIT * 1000, poller.stats
