"""The function's environment: sizes are checked when it is read, with the variable's name."""

from __future__ import annotations

import pytest

from azs3copy.errors import ConfigError
from azs3copy.handler.environment import RuntimeConfig

MiB = 1 << 20


@pytest.mark.parametrize("name", ["AZS3COPY_CHUNK_SIZE", "AZS3COPY_PART_SIZE"])
def test_a_size_below_s3s_smallest_part_names_its_variable(name: str) -> None:
    with pytest.raises(ConfigError, match=f"{name} must be at least {5 * MiB}, found 65536"):
        RuntimeConfig({name: "65536"}).tuning()


def test_sizes_at_s3s_smallest_part_are_accepted() -> None:
    tuning = RuntimeConfig({"AZS3COPY_CHUNK_SIZE": str(5 * MiB), "AZS3COPY_PART_SIZE": str(5 * MiB)}).tuning()
    assert tuning.chunk_size == tuning.part_size == 5 * MiB


def test_a_listing_page_of_more_than_azures_5000_blobs_names_its_variable() -> None:
    assert RuntimeConfig({"AZS3COPY_PAGE_SIZE": "5000"}).tuning().page_size == 5000
    with pytest.raises(ConfigError, match="AZS3COPY_PAGE_SIZE must be at most 5000, found 5001"):
        RuntimeConfig({"AZS3COPY_PAGE_SIZE": "5001"}).tuning()


def test_the_largest_part_a_parter_holds_comes_from_the_environment_and_defaults_to_s3s_limit() -> None:
    assert RuntimeConfig({"AZS3COPY_MAX_PART_SIZE": str(384 * MiB)}).tuning().max_part_size == 384 * MiB
    assert RuntimeConfig({}).tuning().max_part_size == 5 * 1024 * MiB
    with pytest.raises(ConfigError, match="AZS3COPY_MAX_PART_SIZE"):
        RuntimeConfig({"AZS3COPY_MAX_PART_SIZE": "1048576"}).tuning()


@pytest.mark.parametrize(
    ("function", "variable"),
    [
        ("launch-qualification", "AZS3COPY_TOPIC_FIND_BLOBS"),
        ("find-blobs", "AZS3COPY_TOPIC_FIND_BLOBS"),
        ("find-blobs", "AZS3COPY_TOPIC_DOWNLOAD"),
        ("find-blobs", "AZS3COPY_TOPIC_LARGEFILE_INITIALIZER"),
        ("largefile-initializer", "AZS3COPY_TOPIC_LARGEFILE_PARTER"),
        ("largefile-parter", "AZS3COPY_TOPIC_LARGEFILE_RECOMBINATOR"),
        ("largefile-recombinator", "AZS3COPY_TOPIC_LARGEFILE_RECOMBINATOR"),  # continues a long read-back
    ],
)
def test_a_function_missing_a_topic_it_publishes_to_fails_at_config_load_naming_it(
    function: str, variable: str
) -> None:
    from azs3copy.errors import ConfigError
    from azs3copy.functions import PIPELINE, topic_variable
    from azs3copy.handler.environment import RuntimeConfig

    env = {f"AZS3COPY_{topic_variable(to)}": f"arn:aws:sns:us-east-1:1:{to}" for to in PIPELINE[1:]}
    assert RuntimeConfig.from_env(env).topics(function)  # all set: fine
    del env[variable]
    with pytest.raises(ConfigError, match=variable):
        RuntimeConfig.from_env(env).topics(function)
    env[variable] = "  "
    with pytest.raises(ConfigError, match=variable):
        RuntimeConfig.from_env(env).topics(function)


def test_the_time_without_progress_before_a_run_is_taken_over_comes_from_the_environment() -> None:
    assert RuntimeConfig({"AZS3COPY_STALE_RUN_SECONDS": "7200"}).tuning().stale_run_seconds == 7200
    assert RuntimeConfig({}).tuning().stale_run_seconds == 12 * 3600
    with pytest.raises(ConfigError, match="AZS3COPY_STALE_RUN_SECONDS must be a whole number"):
        RuntimeConfig({"AZS3COPY_STALE_RUN_SECONDS": "a day"}).tuning()


def test_the_deployments_storage_class_comes_from_the_environment_and_a_bad_one_names_its_variable() -> None:
    assert RuntimeConfig({}).tuning().storage_class == "STANDARD"
    assert RuntimeConfig({"AZS3COPY_STORAGE_CLASS": "glacier_ir"}).tuning().storage_class == "GLACIER_IR"
    with pytest.raises(ConfigError, match="environment variable AZS3COPY_STORAGE_CLASS must be one of"):
        RuntimeConfig({"AZS3COPY_STORAGE_CLASS": "ARCHIVE"}).tuning()
