"""find-blobs splits a container into listing shards, its virtual directories one `/` down, each listed by a
chain of tasks of its own: every blob is still copied once, the run still ends, and a split is decided once
even when two deliveries race for it."""

from __future__ import annotations

import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from azs3copy.errors import AzureAuthError
from azs3copy.ledger import Ledger
from azs3copy.messages import FindBlobsTask, decode
from azs3copy.steps.context import Tuning
from azs3copy.steps.find_blobs import MAX_SPLIT_BYTES, listing_unit
from tests.support.fakes import MemoryBlobSource
from tests.unit.steps.common import MiB, assert_copied, harness, settings


def tuning(**extra: object) -> Tuning:
    values: dict[str, object] = {"large_threshold": 12 * MiB, "part_size": 5 * MiB, "chunk_size": 5 * MiB}
    return Tuning(**{**values, **extra})  # type: ignore[arg-type]


def shard_tasks(sent: list[tuple[str, str]]) -> list[FindBlobsTask]:
    tasks = [decode(body) for topic, body in sent if topic == "find-blobs"]
    return [task for task in tasks if isinstance(task, FindBlobsTask) and task.shard is not None]


def copied_keys(h) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(key for key in h.sink.objects if not key.startswith("_"))


def test_each_directory_is_listed_as_a_shard_and_every_blob_is_copied_once() -> None:
    source = MemoryBlobSource()
    for directory in ["logs", "images", "raw"]:
        for i in range(7):
            source.put("alpha", f"{directory}/{i:02d}.bin", os.urandom(300 + i))
    source.put("alpha", "readme.txt", b"top level, listed by the container's own task")
    h = harness(source)
    h.tuning = tuning(page_size=5)
    run_id = h.run()
    assert run_id
    run = h.report(run_id)
    assert run.complete and run.found == 22 and run.counts["copied"] == 22
    assert_copied(source, h.sink)  # type: ignore[arg-type]
    assert sorted(task.shard for task in shard_tasks(h.publisher.sent) if task.page == 0) == [
        "images/",
        "logs/",
        "raw/",
    ]
    # Each shard's 7 blobs are two pages of 5: the second carries the shard on.
    assert {task.shard for task in shard_tasks(h.publisher.sent) if task.page == 1} <= {
        "images/",
        "logs/",
        "raw/",
    }
    assert h.sink.puts == 22  # every blob once


def test_a_container_with_more_directories_than_the_cap_is_listed_whole() -> None:
    source = MemoryBlobSource()
    for i in range(6):
        source.put("alpha", f"d{i}/blob", b"%d" % i)
    h = harness(source)
    h.tuning = tuning(listing_shards=5)
    run_id = h.run()
    assert run_id
    assert h.report(run_id).complete and h.report(run_id).counts["copied"] == 6
    assert shard_tasks(h.publisher.sent) == []


def test_listing_shards_0_lists_every_container_whole() -> None:
    source = MemoryBlobSource()
    for i in range(3):
        source.put("alpha", f"d{i}/blob", b"%d" % i)
    h = harness(source)
    h.tuning = tuning(listing_shards=0)
    run_id = h.run()
    assert run_id and h.report(run_id).counts["copied"] == 3
    assert shard_tasks(h.publisher.sent) == []


def test_a_single_directory_splits_again_and_a_shard_of_many_does_not() -> None:
    source = MemoryBlobSource()
    for month in ["01", "02"]:
        for day in ["a", "b"]:
            source.put("alpha", f"data/2024/{month}/{day}/blob", month.encode() + day.encode())
    h = harness(source)
    run_id = h.run()
    assert run_id and h.report(run_id).counts["copied"] == 4
    # data/ was the container's only directory, and 2024/ the only one of data/: each split again; 2024/'s
    # months were two, so each month is listed whole.
    assert sorted({task.shard or "" for task in shard_tasks(h.publisher.sent)}) == [
        "data/",
        "data/2024/",
        "data/2024/01/",
        "data/2024/02/",
    ]


def test_the_run_prefix_is_where_the_split_starts() -> None:
    source = MemoryBlobSource()
    for name in ["data/x/1", "data/y/2", "data-old/z/3", "other/4"]:
        source.put("alpha", name, name.encode())
    h = harness(source, settings=settings(prefix="data"))
    run_id = h.run()
    assert run_id
    assert copied_keys(h) == ["alpha/data-old/z/3", "alpha/data/x/1", "alpha/data/y/2"]
    assert h.report(run_id).complete


def test_duplicate_deliveries_at_the_same_moment_copy_every_blob_once() -> None:
    source = MemoryBlobSource()
    for directory in ["a", "b", "c/d"]:
        for i in range(4):
            source.put("alpha", f"{directory}/{i}", os.urandom(100 + i))
    h = harness(source)
    h.duplicate = True
    h.tuning = tuning(page_size=3)
    run_id = h.run()
    assert run_id
    run = h.report(run_id)
    assert run.complete and run.found == 12 and run.counts["copied"] == 12
    assert_copied(source, h.sink)  # type: ignore[arg-type]
    assert h.dead_letters == []


def test_a_shard_that_cannot_be_listed_fails_naming_it_and_the_run_still_ends() -> None:
    source = MemoryBlobSource()
    source.put("alpha", "good/blob", b"fine")
    source.put("alpha", "bad/blob", b"unreachable")

    def refuse_bad(container: str, prefix: str) -> None:
        if prefix == "bad/":
            raise AzureAuthError("Azure refused the sign-in: check azure.client_secret")

    source.before_list = refuse_bad
    h = harness(source)
    run_id = h.run()
    assert run_id
    run = h.report(run_id)
    assert run.complete and run.counts["copied"] == 1 and run.counts["failed"] == 1
    report = json.loads(h.sink.objects[f"_azs3copy/reports/{run_id}.json"].data)  # type: ignore[attr-defined]
    assert [failure["blob"] for failure in report["failures"]] == ["alpha/bad/"]
    assert [blob for _, blob, _ in h.fatal] == ["alpha/bad/"]


def test_prefixes_too_long_to_record_together_are_not_split() -> None:
    # 70 directories of 1,000 four-byte characters: 280 KB of prefixes, more than one ledger item may hold.
    source = MemoryBlobSource()
    for i in range(70):
        source.put("alpha", f"{i:02d}" + "\U0001f600" * 998 + "/x", b"%d" % i)
    assert sum(len((f"{i:02d}" + "\U0001f600" * 998 + "/").encode()) for i in range(70)) > MAX_SPLIT_BYTES
    h = harness(source)
    h.tuning = tuning(listing_shards=100)
    run_id = h.run()
    assert run_id
    run = h.report(run_id)
    assert run.complete and run.found == 70  # each key is over S3's 1,024 bytes: failed alone, with a reason
    assert shard_tasks(h.publisher.sent) == []


def test_two_deliveries_racing_to_split_get_the_first_decision(ledger: Ledger) -> None:
    source = MemoryBlobSource()
    source.put("alpha", "x/1", b"1")
    h = harness(source)
    h.tuning = tuning(listing_shards=0)  # the run starts; the split is decided below, by hand
    run_id = h.run()
    assert run_id
    unit = listing_unit("alpha", "x/")
    barrier = threading.Barrier(8)

    def decide(split: list[str]) -> list[str]:
        barrier.wait(timeout=30)
        return ledger.open_shards(run_id, unit, split)

    splits = [[f"x/{i}/"] * (i % 3) for i in range(8)]  # some split, some do not
    with ThreadPoolExecutor(max_workers=8) as pool:
        decided = list(pool.map(decide, splits))
    assert len({tuple(split) for split in decided}) == 1
    assert ledger.get_shards(run_id, unit) == decided[0]


names = st.lists(
    st.lists(st.sampled_from(["a", "b", "é", "#", "x y", ""]), min_size=1, max_size=4).map("/".join),
    min_size=1,
    max_size=12,
    unique=True,
)


@hypothesis_settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(names=names, page_size=st.integers(1, 4), cap=st.sampled_from([0, 1, 2, 32]))
def test_any_tree_is_copied_whole_whatever_the_split(names: list[str], page_size: int, cap: int) -> None:
    source = MemoryBlobSource()
    source.put("alpha", "top", b"always one blob")
    for name in names:
        if name and not name.endswith("/"):
            source.put("alpha", name, name.encode() + b"!")
    h = harness(source)
    h.tuning = tuning(page_size=page_size, listing_shards=cap)
    run_id = h.run()
    assert run_id
    run = h.report(run_id)
    wanted = sorted(f"alpha/{name}" for name in source.containers.get("alpha", {}))
    assert run.complete and run.found == len(wanted)
    assert copied_keys(h) == sorted(wanted)
    assert_copied(source, h.sink)  # type: ignore[arg-type]
