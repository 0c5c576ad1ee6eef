"""The function's environment: sizes are checked when it is read, with the variable's name."""

from __future__ import annotations

import pytest

from azs3copy.config import RuntimeConfig
from azs3copy.errors import ConfigError

MiB = 1 << 20


@pytest.mark.parametrize("name", ["AZS3COPY_CHUNK_SIZE", "AZS3COPY_PART_SIZE"])
def test_a_size_below_s3s_smallest_part_names_its_variable(name: str) -> None:
    with pytest.raises(ConfigError, match=f"{name} must be at least {5 * MiB}, found 65536"):
        RuntimeConfig({name: "65536"}).tuning()


def test_sizes_at_s3s_smallest_part_are_accepted() -> None:
    tuning = RuntimeConfig({"AZS3COPY_CHUNK_SIZE": str(5 * MiB), "AZS3COPY_PART_SIZE": str(5 * MiB)}).tuning()
    assert tuning.chunk_size == tuning.part_size == 5 * MiB
