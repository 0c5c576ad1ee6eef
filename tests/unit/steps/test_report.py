"""The run report: written once every blob is settled, by whichever step settles the last one."""

from __future__ import annotations

from azs3copy.errors import TransientError
from tests.support.fakes import MemoryBlobSource, MemoryObjectSink
from tests.unit.steps.common import harness


def test_a_report_that_could_not_be_written_is_written_by_the_retry() -> None:
    source = MemoryBlobSource()
    source.put("alpha", "only", b"one blob")
    sink = MemoryObjectSink()
    real_put_json = sink.put_json
    failures = iter([TransientError("503 SlowDown")])

    def flaky_put_json(key: str, body: bytes) -> None:
        error = next(failures, None)
        if error:
            raise error
        real_put_json(key, body)

    sink.put_json = flaky_put_json  # type: ignore[method-assign]
    h = harness(source, sink)
    run_id = h.run()
    assert run_id
    assert f"_azs3copy/reports/{run_id}.json" in sink.objects
    assert h.report(run_id).report_key and not h.dead_letters
