"""launch-qualification: whether a run starts, and that a retried launch announces the run it started."""

from __future__ import annotations

import dataclasses

import pytest

from azs3copy.errors import TransientError
from azs3copy.steps.context import Invocation
from azs3copy.steps.launch_qualification import launch_qualification
from tests.support.fakes import MemoryBlobSource
from tests.support.harness import QueuePublisher
from tests.unit.steps.common import assert_copied, harness, settings


def test_inactive_secret_starts_no_run() -> None:
    source = MemoryBlobSource()
    source.put("alpha", "x", b"x")
    h = harness(source, settings=settings(isactive="False"))
    assert h.run() is None
    assert not h.sink.objects  # type: ignore[attr-defined]


def test_a_second_run_does_not_start_while_one_is_unfinished_unless_forced() -> None:
    source = MemoryBlobSource()
    source.put("alpha", "x", b"x")
    h = harness(source)
    first = launch_qualification(h.deps())  # started, not drained
    refused = launch_qualification(
        h.deps()
    )  # the next scheduled tick: answered, not raised (no retries, no DLQ)
    assert refused.detail["started"] is False
    assert refused.detail["run_in_progress"] == first.detail["run_id"]
    assert first.detail["run_id"] in refused.detail["reason"] and "force" in refused.detail["reason"]
    assert launch_qualification(h.deps(), force=True).detail["started"] is True


class FlakyPublisher(QueuePublisher):
    """Refuses the first `failures` publishes, as SNS does when it throttles or the network drops."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def publish(self, topic: str, bodies: list[str]) -> None:
        if self.failures:
            self.failures -= 1
            raise TransientError("publish to containers: 503 ServiceUnavailable")
        super().publish(topic, bodies)


@pytest.mark.parametrize("force", [False, True])
def test_a_launch_that_died_before_announcing_its_run_announces_it_when_lambda_retries(force: bool) -> None:
    source = MemoryBlobSource()
    source.put("alpha", "x", b"x")
    source.put("beta", "y", b"y")
    h = harness(source, publisher=FlakyPublisher(failures=1))
    attempt = Invocation(request_id="launch-request-1")  # Lambda keeps the request id across retries
    with pytest.raises(TransientError):
        launch_qualification(h.deps(), force=force, invocation=attempt)
    started_by_first = h.ledger.current_run_id()
    assert started_by_first and not h.publisher.sent
    retried = launch_qualification(h.deps(), force=force, invocation=attempt)
    assert retried.detail["started"] is True and retried.detail["run_id"] == started_by_first
    assert retried.published == 2 and h.ledger.latest_run_id() == started_by_first  # no second run
    other = launch_qualification(h.deps(), invocation=Invocation(request_id="the-next-tick"))
    assert other.detail["started"] is False  # the retried run is in progress, and it is not orphaned:
    h.drain()
    run = h.report(started_by_first)
    assert run.complete and run.counts["copied"] == 2 and run.report_key
    assert_copied(source, h.sink)  # type: ignore[arg-type]


def test_a_container_named_twice_in_the_secret_is_listed_once_and_the_run_completes() -> None:
    source = MemoryBlobSource()
    source.put("alpha", "x", b"x")
    source.put("beta", "y", b"y")
    named = settings(
        containers=["alpha", "beta"]
    )  # the secret's parser refuses a repeat; other callers may not
    h = harness(source, settings=dataclasses.replace(named, containers=("alpha", "beta", "alpha")))
    run_id = h.run()
    assert run_id
    run = h.report(run_id)
    assert run.containers == ("alpha", "beta")
    assert run.complete and run.listing_pending == 0 and run.counts["copied"] == 2 and run.report_key
