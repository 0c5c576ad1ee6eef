"""The scale model (azs3copy.scale): its counts mirror the pipeline's, its limits bind where they should, its
time falls as concurrency rises, and its cost is the arithmetic of the price table. Expected numbers are
worked out here from the inputs, not read back from the model."""

from __future__ import annotations

import itertools
import json
import math
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from azs3copy.backends.s3 import S3ObjectSink
from azs3copy.errors import ConfigError
from azs3copy.functions import PIPELINE
from azs3copy.messages import BlobRef, download_tasks
from azs3copy.scale.inputs import (
    MODULE_CONCURRENCY,
    MODULE_MEMORY_MB,
    MODULE_TIMEOUT_S,
    Calibration,
    Deployment,
    Limits,
    StepCost,
    load_calibration,
)
from azs3copy.scale.model import LEDGER_BOUND, Usage, predict
from azs3copy.scale.prices import PRICES, datasync_usd, egress_usd, estimate_cost, load_prices
from azs3copy.scale.workload import SizeHistogram, WorkloadCounter, workload_of_mix
from azs3copy.steps.context import Tuning
from tests.support.fakes import MemoryBlobSource, MemoryObjectSink
from tests.support.harness import Harness
from tests.unit.steps.common import settings as step_settings

MiB = 1 << 20
ROOT = Path(__file__).resolve().parents[2]
NO_LATENCY = Limits(s3_latency_s=0, dynamodb_latency_s=0, azure_latency_s=0, sns_latency_s=0)


def calibration(listing_per_blob: float = 0.001, **steps: StepCost) -> Calibration:
    """Every step 1 s an invocation and no CPU (so no slowdown) unless given; a listing of 1 ms a blob; no
    hop, no cold start."""
    return Calibration(
        "lambda",
        "test",
        {name: steps.get(name.replace("-", "_"), StepCost(fixed=1.0, cpu_share=0.0)) for name in PIPELINE},
        listing_per_blob=listing_per_blob,
        hop_seconds=0.0,
    )


# --- the work, counted as the pipeline counts it -------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=90 * MiB), max_size=120))
def test_download_batches_are_the_batches_find_blobs_publishes(sizes: list[int]) -> None:
    tuning = Tuning()
    moment = datetime(2024, 1, 1, tzinfo=UTC)
    refs = [
        (BlobRef("c", f"b{i:04d}", size, f'"{i}"', moment), f"c/b{i:04d}") for i, size in enumerate(sizes)
    ]
    counter = WorkloadCounter(tuning)
    counter.add_page("c", len(sizes), sizes)
    assert counter.workload().batches == len(download_tasks("run", refs))


def test_a_runs_messages_and_azure_reads_are_what_the_pipeline_sends_on_the_fakes() -> None:
    tuning = Tuning(large_threshold=12 * MiB, part_size=5 * MiB, chunk_size=5 * MiB)
    source = MemoryBlobSource()
    sizes = {"a": [1000] * 30 + [7 * MiB] * 3 + [0], "b": [13 * MiB, 26 * MiB + 1, 2 * MiB]}
    for container, group in sizes.items():
        for index, size in enumerate(group):
            source.put(container, f"blob-{index:03d}", bytes(size))
    harness = Harness(source=source, sink=MemoryObjectSink(), settings=step_settings(), tuning=tuning)
    run_id = harness.run()
    assert run_id is not None and harness.report(run_id).counts["copied"] == 37
    sent: dict[str, int] = {}
    for topic, _ in harness.publisher.sent:
        sent[topic] = sent.get(topic, 0) + 1
    counter = WorkloadCounter(tuning)
    for container, group in sizes.items():
        counter.add_page(container, len(group), group)
    work = counter.workload()
    assert sent == {
        "find-blobs": work.containers,
        "download": work.batches,
        "largefile-initializer": work.large_blobs,
        "largefile-parter": work.parts,
        "largefile-recombinator": work.large_blobs,
    }
    # Each ranged read is split by the SDK into requests of 4 MiB at most.
    assert work.azure_reads == sum(math.ceil(length / (4 * MiB)) for _, _, length in source.reads)
    assert (work.blobs, work.bytes) == (37, sum(map(sum, sizes.values())))


def test_a_mix_counts_like_its_listing_class_by_class() -> None:
    tuning = Tuning()
    mix = [(60, 3 * MiB), (7, 40 * MiB), (3, 300 * MiB)]
    counter = WorkloadCounter(tuning)
    for count, size in mix:  # each class on a page of its own: no batch mixes two classes
        counter.add_page("c", count, [size] * count)
    listed, planned = counter.workload(), workload_of_mix(mix, tuning)
    assert (planned.batches, planned.parts, planned.azure_reads, planned.chunks) == (
        listed.batches,
        listed.parts,
        listed.azure_reads,
        listed.chunks,
    )
    # 3 MiB: 21 to a batch of 64 MiB (3 batches); 40 MiB: one a batch; 300 MiB: 19 parts of 16 MiB
    assert planned.batches == 3 + 7 and planned.parts == 3 * 19


def test_a_sample_scaled_up_keeps_its_largest_blob() -> None:
    work = workload_of_mix([(10, MiB), (1, 200 * MiB)], Tuning())
    scaled = work.scaled(3.0, page_size=5000)
    assert (scaled.blobs, scaled.bytes, scaled.parts) == (33, 3 * (10 * MiB + 200 * MiB), 3 * 13)
    assert scaled.largest_blob == 200 * MiB and scaled.containers == 1
    assert (scaled.pages, scaled.register_writes) == (1, 1)  # 33 blobs: one page, one transaction
    big = workload_of_mix([(5000, 1000)], Tuning()).scaled(2.5, page_size=5000)
    assert (big.pages, big.register_writes) == (3, 2 * 51 + 26)  # 12,500 blobs: 5,000 + 5,000 + 2,500


def test_the_histogram_bins_grow_fourfold_from_one_kib() -> None:
    histogram = SizeHistogram()
    for size in (0, 1023, 1024, 4095, 4096, MiB, 100 * MiB):
        histogram.add(size)
    rows = [(row["bin"], row["blobs"], row["bytes"]) for row in histogram.rows()]
    assert rows == [
        ("< 1 KiB", 2, 1023),
        ("1 KiB – 4 KiB", 2, 1024 + 4095),
        ("4 KiB – 16 KiB", 1, 4096),
        ("1 MiB – 4 MiB", 1, MiB),
        ("64 MiB – 256 MiB", 1, 100 * MiB),
    ]


# --- time --------------------------------------------------------------------------------------------------


def test_a_steps_seconds_are_its_measured_cost_slowed_by_the_cpu_share_of_its_memory() -> None:
    step = StepCost(fixed=0.5, per_blob=0.1, per_mib=0.02, cpu_share=0.6)
    cal = calibration(download=step)
    work = workload_of_mix([(50, MiB)], Tuning())  # two batches of 25
    deployment = Deployment(memory_mb={**MODULE_MEMORY_MB, "download": 512})
    load = predict(work, deployment, cal, NO_LATENCY).functions["download"]
    measured = 2 * 0.5 + 50 * 0.1 + 50 * 0.02
    slowdown = 0.6 * 1769 / 512 + 0.4
    assert load.invocations == 2
    assert load.busy_seconds == pytest.approx(measured * slowdown)
    assert load.gb_seconds == pytest.approx(measured * slowdown * 512 / 1024)


def test_more_memory_than_one_vcpu_is_no_faster() -> None:
    cal = calibration(download=StepCost(fixed=2.0, cpu_share=1.0))
    work = workload_of_mix([(25, MiB)], Tuning())
    at = {
        mb: predict(work, Deployment(memory_mb={**MODULE_MEMORY_MB, "download": mb}), cal, NO_LATENCY)
        for mb in (1769, 4096)
    }
    assert at[1769].functions["download"].busy_seconds == at[4096].functions["download"].busy_seconds == 2.0


@pytest.mark.parametrize("containers", [1, 8])
def test_the_predicted_time_never_rises_as_concurrency_rises(containers: int) -> None:
    cal = load_calibration("lambda")
    work = workload_of_mix([(200_000, 2 * MiB), (500, 500 * MiB)], Tuning(), containers=containers)
    hours = [
        predict(work, Deployment(account_concurrency=100_000).scaled(k), cal).seconds
        for k in (0.25, 0.5, 1, 2, 4, 8, 16, 64)
    ]
    assert all(later <= earlier + 1e-6 for earlier, later in itertools.pairwise(hours))
    assert hours[0] > hours[-1]


def test_few_copies_at_once_make_the_download_function_the_limit() -> None:
    cal = calibration()
    work = workload_of_mix([(5000, MiB)], Tuning())  # 200 batches of 1 s
    deployment = Deployment(concurrency={**MODULE_CONCURRENCY, "download": 2})
    prediction = predict(work, deployment, cal, NO_LATENCY)
    assert prediction.binding == "download at concurrency 2"
    first_page = 5000 * 0.001
    assert prediction.bounds[prediction.binding] == pytest.approx(first_page + 200 / 2 + 10 * 2 / 1000 / 2)


def test_no_ledger_item_limits_a_run_of_many_small_blobs() -> None:
    cal = calibration(download=StepCost(fixed=0.01))
    work = workload_of_mix([(1_000_000, 1000)], Tuning(), containers=100)
    prediction = predict(work, Deployment(account_concurrency=10**6).scaled(100), cal, NO_LATENCY)
    assert prediction.binding != LEDGER_BOUND
    # the busiest of 32 counter shards: its share of one transaction per download batch of 25 and one per 99
    # blobs created (pages of 5,000: 51 a page); two WCU each, 1,000 WCU a second. Or META's reads: each
    # batch and container reads it once (3,000 RCU a second), whichever takes longer.
    writes = math.ceil((1_000_000 / 25 + 100 * 2 * 51) / 32)
    reads = 1_000_000 / 25 + 100
    first_page = 5000 * 0.001
    assert prediction.bounds[LEDGER_BOUND] == pytest.approx(first_page + max(writes * 2 / 1000, reads / 3000))
    assert prediction.hottest_item_writes_per_1000_blobs == pytest.approx(1000 * writes / 1_000_000)
    assert prediction.hottest_item_writes_per_1000_blobs <= 50  # issue 14's target


def test_one_big_container_is_limited_by_its_serial_listing() -> None:
    cal = calibration(listing_per_blob=0.01, download=StepCost(fixed=0.01))
    work = workload_of_mix([(2_000_000, 1000)], Tuning(), containers=1)
    prediction = predict(work, Deployment(account_concurrency=10**6).scaled(50), cal, NO_LATENCY)
    assert prediction.binding == "listing, then the last piece of work"
    assert prediction.listing_seconds == pytest.approx(2_000_000 * 0.01)  # more find-blobs do not help


@pytest.mark.parametrize(("shards", "find_blobs", "at_once"), [(32, 4, 4), (32, 200, 32), (1, 200, 1)])
def test_a_containers_shards_are_listed_as_many_at_once_as_find_blobs_has_slots(
    shards: int, find_blobs: int, at_once: int
) -> None:
    cal = calibration(listing_per_blob=0.01)
    work = workload_of_mix([(2_000_000, 1000)], Tuning(), containers=1, listing_chains=shards)
    deployment = Deployment(concurrency={**MODULE_CONCURRENCY, "find-blobs": find_blobs})
    prediction = predict(work, deployment, cal, NO_LATENCY)
    assert prediction.listing_seconds == pytest.approx(2_000_000 * 0.01 / at_once)


def test_s3s_request_rate_per_prefix_binds_when_it_is_the_smallest() -> None:
    cal = calibration(download=StepCost(fixed=0.001))
    work = workload_of_mix([(10_000, 1000)], Tuning(), containers=2)
    limits = Limits(
        s3_put_per_prefix=1.0, s3_latency_s=0, dynamodb_latency_s=0, azure_latency_s=0, sns_latency_s=0
    )
    prediction = predict(work, Deployment(), cal, limits)
    assert prediction.binding == "S3 PUT requests per prefix"
    # a small blob: its PutObject, marked as it is written; a batch: its manifest part; a page: its
    # ListObjectsV2; the report
    puts = 10_000 + work.batches + 2 + 1
    assert prediction.bounds[prediction.binding] == pytest.approx(5000 * 0.001 + puts / 2)


def test_a_backlog_older_than_the_event_age_is_reported_as_lost_work() -> None:
    cal = calibration()
    work = workload_of_mix([(50_000, MiB)], Tuning(), containers=10)  # 2,000 batches of 1 s
    deployment = Deployment(concurrency={**MODULE_CONCURRENCY, "download": 1}, max_event_age_s=600)
    prediction = predict(work, deployment, cal, NO_LATENCY)
    listing = 50_000 * 0.001 / 4  # ten containers of 5,000 blobs, four listed at once
    drain = 2000 / 1  # the batches arrive in 12.5 s and are taken one at a time
    assert prediction.expired_share["download"] == pytest.approx(1 - 600 / (drain - listing))
    assert any("download's tasks would wait longer" in warning for warning in prediction.warnings)


def test_locally_the_machines_cores_and_moto_are_the_limits() -> None:
    cal = Calibration(
        "local",
        "test",
        {name: StepCost(fixed=1.0) for name in PIPELINE},
        listing_per_blob=0.001,
        hop_seconds=0.0,
        cores=2.0,
        cpu_per_step_second=1.5,
        moto_per_step_second=0.4,
    )
    work = workload_of_mix([(500, MiB)], Tuning())  # 20 batches
    prediction = predict(work, Deployment(concurrency=dict.fromkeys(PIPELINE, 6)), cal)
    busy = 1 + 500 * 0.001 + 20  # the launch, the listing, 20 batches of a second
    assert prediction.binding == "this machine's 2 cores"
    assert prediction.bounds["this machine's 2 cores"] == pytest.approx(500 * 0.001 + 1.5 * busy / 2)
    assert prediction.bounds["moto (one process, one core)"] == pytest.approx(500 * 0.001 + 0.4 * busy)


# --- cost --------------------------------------------------------------------------------------------------


def test_the_cost_is_the_usage_times_the_list_prices() -> None:
    usage = Usage(
        lambda_requests=2_000_000,
        gb_seconds={"download": 300_000.0, "largefile-parter": 100_000.0},
        s3_put_requests=3_000_000,
        s3_get_requests=1_000_000,
        dynamodb_write_units=8_000_000,
        dynamodb_read_units=2_000_000,
        sns_requests=400_000,
        kms_requests=50_000,
        secrets_requests=20_000,
        log_bytes=2 * 1024**3,
        xray_traces=100_000,
        azure_reads=1_000_000,
        azure_lists=100,
        egress_bytes=20_000 * 1024**3,
    )
    cost = {line.service: line.usd for line in estimate_cost(usage, load_prices()).lines}
    assert cost["Lambda compute"] == pytest.approx(400_000 * 0.0000133334)
    assert cost["Lambda requests"] == pytest.approx(2 * 0.20)
    assert cost["S3 requests"] == pytest.approx(3000 * 0.005 + 1000 * 0.0004)
    assert cost["DynamoDB"] == pytest.approx(8 * 0.625 + 2 * 0.125)
    assert cost["SNS"] == pytest.approx(0.4 * 0.50)
    assert cost["KMS"] == pytest.approx(5 * 0.03)
    assert cost["Secrets Manager"] == pytest.approx(2 * 0.05)
    assert cost["CloudWatch Logs"] == pytest.approx(2 * 0.50)
    assert cost["X-Ray"] == pytest.approx(0.1 * 5.00)
    assert cost["Azure operations"] == pytest.approx(100 * 0.0044 + 0.01 * 0.055)
    # the first 100 GB free, then 0.087 a GB to 10 TB, then 0.083
    assert cost["Azure egress"] == pytest.approx((10240 - 100) * 0.087 + (20_000 - 10240) * 0.083)
    assert estimate_cost(usage, load_prices(), "x86_64").lines[0].usd == pytest.approx(400_000 * 0.0000166667)


def test_egress_past_the_last_tier_stays_at_its_price() -> None:
    prices = load_prices()
    assert egress_usd(600_000 * 1024**3, prices) == pytest.approx(
        (10240 - 100) * 0.087 + (51200 - 10240) * 0.083 + (153600 - 51200) * 0.07 + (600_000 - 153600) * 0.05
    )


def test_datasync_charges_its_per_gb_fee_and_a_task_execution() -> None:
    assert datasync_usd(1000 * 1024**3, load_prices()) == pytest.approx(1000 * 0.0125 + 0.55)


def test_a_price_file_replaces_the_prices_it_names(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"s3_put_copy_post_list_per_1000": 0.01}))
    prices = load_prices(path)
    assert prices["s3_put_copy_post_list_per_1000"] == 0.01
    assert prices["s3_get_and_other_per_1000"] == PRICES["s3_get_and_other_per_1000"]
    assert prices.as_of.startswith(PRICES["as_of"]) and "prices.json" in prices.as_of


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('{"s3_puts": 1}', "unknown key(s) s3_puts"),
        ('{"sns_requests_per_million": "cheap"}', "must be a number"),
        ("[1, 2]", "JSON object"),
        ("{", "not valid JSON"),
    ],
)
def test_a_wrong_price_file_is_refused_with_what_is_wrong(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "prices.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(says)):
        load_prices(path)


# --- what the model is given ---------------------------------------------------------------------------------


def _terraform_defaults(variable: str) -> dict[str, int]:
    text = (ROOT / "terraform" / "modules" / "azs3copy" / "variables.tf").read_text()
    block = re.search(rf'variable "{variable}" \{{(.*?)\n\}}', text, re.S)
    assert block is not None
    found = re.findall(r"(\w+)\s*=\s*optional\(number,\s*(\d+)\)", block.group(1))
    # The model is of a scheduled run: blob-events, fed by Event Grid, takes no part in one.
    return {name.replace("_", "-"): int(value) for name, value in found if name.replace("_", "-") in PIPELINE}


def test_the_models_deployment_defaults_are_the_terraform_modules() -> None:
    assert _terraform_defaults("function_reserved_concurrency") == MODULE_CONCURRENCY
    assert _terraform_defaults("function_memory_mb") == MODULE_MEMORY_MB
    assert _terraform_defaults("function_timeout_seconds") == {k: int(v) for k, v in MODULE_TIMEOUT_S.items()}


def test_the_shipped_calibration_loads_for_both_places() -> None:
    for name in ("lambda", "local"):
        cal = load_calibration(name)
        assert set(cal.steps) == set(PIPELINE)
        assert cal.listing_per_blob > 0 and cal.steps["download"].per_mib > 0
    assert load_calibration("local").cores


# S3's request classes as billed: PUT, COPY, POST and LIST; GET and the rest (HEAD among them).
S3_PUT_CLASS = {
    "PutObject",
    "CreateMultipartUpload",
    "UploadPart",
    "CompleteMultipartUpload",
    "ListParts",
    "ListObjectsV2",
    "PutObjectTagging",
}


@pytest.mark.parametrize("verify", ["checksum", "readback"])
def test_the_s3_requests_priced_are_the_ones_the_steps_send_to_s3(
    verify: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real S3 sink on moto, counted at botocore: what a first copy sends is what the model prices
    (for large blobs without a Content-MD5: one with it is read back whole, which the model leaves out)."""
    tuning = Tuning(large_threshold=12 * MiB, part_size=5 * MiB, chunk_size=5 * MiB, verify=verify)  # type: ignore[arg-type]
    source = MemoryBlobSource()
    sizes = {"a": [1000] * 30 + [7 * MiB] * 3 + [0], "b": [13 * MiB, 26 * MiB + 1, 2 * MiB]}
    for container, group in sizes.items():
        for index, size in enumerate(group):
            source.put(container, f"blob-{index:03d}", bytes(size), store_md5=size < 12 * MiB)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    sent: dict[str, int] = {}
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="dest")
        client.put_bucket_versioning(Bucket="dest", VersioningConfiguration={"Status": "Enabled"})

        def count(model: Any, **_: Any) -> None:
            sent[model.name] = sent.get(model.name, 0) + 1

        client.meta.events.register("before-call.s3", count)
        harness = Harness(
            source=source, sink=S3ObjectSink(client, "dest"), settings=step_settings(), tuning=tuning
        )
        run_id = harness.run()
    assert run_id is not None and harness.report(run_id).counts["copied"] == 37
    counter = WorkloadCounter(tuning)
    for container, group in sizes.items():
        counter.add_page(container, len(group), group)
    usage = predict(counter.workload(), Deployment(tuning=tuning), calibration(), NO_LATENCY).usage
    puts = sum(n for name, n in sent.items() if name in S3_PUT_CLASS)
    assert (usage.s3_put_requests, usage.s3_get_requests) == (puts, sum(sent.values()) - puts), sorted(
        sent.items()
    )
