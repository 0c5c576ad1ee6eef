"""The S3 storage class of each copy: the run's setting, or its blob's access tier's class by the tier rule."""

from __future__ import annotations

import json
import os

import pytest

from azs3copy.errors import ConfigError
from azs3copy.steps.context import Tuning
from azs3copy.steps.launch_qualification import launch_qualification
from tests.support.fakes import MemoryBlobSource, MemoryObjectSink
from tests.unit.steps.common import MiB, assert_copied, harness, settings

TUNING = Tuning(large_threshold=12 * MiB, part_size=5 * MiB, chunk_size=5 * MiB)


def tiered_source() -> MemoryBlobSource:
    source = MemoryBlobSource()
    source.put("alpha", "hot.bin", os.urandom(3000), tier="Hot")
    source.put("alpha", "cool.bin", os.urandom(7 * MiB), tier="Cool")  # streamed as parts by download
    source.put("alpha", "cold-large.bin", os.urandom(13 * MiB), tier="Cold")  # a multipart upload of its own
    source.put("alpha", "untiered.bin", os.urandom(10))
    return source


def classes(sink: MemoryObjectSink) -> dict[str, str | None]:
    return {key: obj.attrs.storage_class for key, obj in sink.objects.items() if not key.startswith("_")}


def test_every_copy_is_written_in_the_runs_class_or_its_tiers_class() -> None:
    source, sink = tiered_source(), MemoryObjectSink()
    rule = {"Cool": "STANDARD_IA", "Cold": "GLACIER_IR"}
    h = harness(
        source, sink, settings=settings(storage_class="INTELLIGENT_TIERING", tier_storage_classes=rule)
    )
    h.tuning = TUNING
    run_id = h.run()
    assert run_id and h.report(run_id).complete
    assert_copied(source, sink)
    assert classes(sink) == {
        "alpha/hot.bin": "INTELLIGENT_TIERING",
        "alpha/cool.bin": "STANDARD_IA",
        "alpha/cold-large.bin": "GLACIER_IR",
        "alpha/untiered.bin": "INTELLIGENT_TIERING",
    }
    assert sink.head("alpha/cool.bin").storage_class == "STANDARD_IA"  # type: ignore[union-attr]
    # the manifest records each object's class
    lines = [
        json.loads(line)
        for key, obj in sink.objects.items()
        if key.startswith(f"_azs3copy/reports/{run_id}/manifest/")
        for line in obj.data.decode().splitlines()
    ]
    assert {line["key"]: line["storage_class"] for line in lines} == classes(sink)


def test_without_settings_the_deployments_default_class_applies() -> None:
    source, sink = tiered_source(), MemoryObjectSink()
    h = harness(source, sink)
    h.tuning = Tuning(
        large_threshold=12 * MiB, part_size=5 * MiB, chunk_size=5 * MiB, storage_class="STANDARD_IA"
    )
    run_id = h.run()
    assert run_id and h.report(run_id).complete
    assert set(classes(sink).values()) == {"STANDARD_IA"}


def test_a_secret_edited_mid_run_does_not_change_the_class_of_that_runs_copies() -> None:
    source, sink = tiered_source(), MemoryObjectSink()
    h = harness(source, sink, settings=settings(storage_class="STANDARD_IA"))
    h.tuning = TUNING
    started = launch_qualification(h.deps())
    assert started.detail["started"]
    h.settings = settings(storage_class="ONEZONE_IA")  # the secret as the copies run
    h.drain()
    assert set(classes(sink).values()) == {"STANDARD_IA"}


def test_readback_into_a_class_s3_serves_only_restored_is_refused_at_the_launch_naming_the_key() -> None:
    source, sink = tiered_source(), MemoryObjectSink()
    h = harness(source, sink, settings=settings(tier_storage_classes={"Cool": "DEEP_ARCHIVE"}))
    h.tuning = Tuning(large_threshold=12 * MiB, part_size=5 * MiB, chunk_size=5 * MiB, verify="readback")
    with pytest.raises(ConfigError, match=r"tier_storage_classes.*DEEP_ARCHIVE.*readback"):
        h.run()
    assert classes(sink) == {}
