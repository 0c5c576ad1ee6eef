import pytest
from hypothesis import given
from hypothesis import strategies as st

from azs3copy.errors import BlobRejectedError, ConfigError
from azs3copy.planner import MAX_OBJECT_SIZE, MAX_PART_SIZE, MAX_PARTS, MIN_PART_SIZE, MiB, plan_parts

sizes = st.integers(min_value=1, max_value=MAX_OBJECT_SIZE)
part_sizes = st.integers(min_value=MIN_PART_SIZE, max_value=MAX_PART_SIZE)


@given(sizes, part_sizes)
def test_parts_cover_every_byte_exactly_once_within_s3_limits(size: int, part_size: int) -> None:
    plan = plan_parts(size, part_size)
    assert 1 <= plan.count <= MAX_PARTS
    assert MIN_PART_SIZE <= plan.part_size <= MAX_PART_SIZE
    assert plan.part_size >= part_size
    first, last = plan.part(1), plan.part(plan.count)
    assert first.offset == 0
    assert last.offset + last.length == size
    assert last.length > 0  # no empty trailing part
    if plan.count > 1:
        assert plan.part(2).offset == first.length
        assert all(plan.part(n).length == plan.part_size for n in (1, plan.count - 1))


@given(st.integers(min_value=1, max_value=200 * MiB), part_sizes)
def test_every_part_but_the_last_has_the_plan_size(size: int, part_size: int) -> None:
    plan = plan_parts(size, part_size)
    parts = plan.parts()
    assert sum(part.length for part in parts) == size
    assert all(part.length == plan.part_size for part in parts[:-1])
    assert [part.number for part in parts] == list(range(1, plan.count + 1))


def test_part_size_is_raised_to_fit_ten_thousand_parts() -> None:
    size = 10_000 * 8 * MiB + 1
    plan = plan_parts(size, 8 * MiB)
    assert plan.count <= MAX_PARTS
    assert plan.part_size == 9 * MiB


def test_blob_past_what_ten_thousand_five_gib_parts_hold_is_rejected_with_a_reason() -> None:
    with pytest.raises(BlobRejectedError, match=r"48\.8 TiB"):
        plan_parts(MAX_OBJECT_SIZE + 1, 16 * MiB)
    assert plan_parts(MAX_OBJECT_SIZE, 16 * MiB).count == MAX_PARTS


@pytest.mark.parametrize("part_size", [MIN_PART_SIZE - 1, MAX_PART_SIZE + 1, 0])
def test_part_size_outside_s3_limits_is_a_configuration_error(part_size: int) -> None:
    with pytest.raises(ConfigError, match="part size"):
        plan_parts(100 * MiB, part_size)


@given(
    size=st.integers(min_value=1, max_value=MAX_OBJECT_SIZE),
    max_part_mib=st.integers(min_value=5, max_value=5 * 1024),
)
def test_parts_never_exceed_what_a_parter_holds_and_a_blob_that_would_need_more_is_rejected(
    size: int, max_part_mib: int
) -> None:
    try:
        plan = plan_parts(size, 16 * MiB, max_part_mib * MiB)
    except BlobRejectedError as error:
        assert -(-size // MAX_PARTS) > max(max_part_mib * MiB, 16 * MiB)  # it really needs larger parts
        assert "raise the parter's memory (function_memory_mb) to at least" in str(error)
        return
    assert plan.part_size <= max(max_part_mib * MiB, 16 * MiB) and plan.count <= MAX_PARTS


def test_a_blob_too_large_for_the_parters_memory_names_the_memory_that_copies_it() -> None:
    size = 5 * 1024**4  # 5 TiB needs parts of 525 MiB
    with pytest.raises(BlobRejectedError, match=r"parts of 525 MiB .* at most 384 MiB .* at least 1306 MB"):
        plan_parts(size, 16 * MiB, 384 * MiB)
    assert plan_parts(size, 16 * MiB, 1024 * MiB).part_size == 525 * MiB
