"""Multipart part plans within S3's limits: 5 MiB to 5 GiB a part, at most 10,000 parts."""

from __future__ import annotations

from dataclasses import dataclass

from azs3copy.errors import BlobRejectedError, ConfigError

MiB = 1024 * 1024
GiB = 1024 * MiB
MIN_PART_SIZE = 5 * MiB
MAX_PART_SIZE = 5 * GiB
MAX_PARTS = 10_000
MAX_OBJECT_SIZE = MAX_PARTS * MAX_PART_SIZE  # 48.8 TiB: what 10,000 parts of 5 GiB can hold


@dataclass(frozen=True)
class Part:
    number: int  # 1-based, as S3 counts
    offset: int
    length: int


@dataclass(frozen=True)
class PartPlan:
    size: int
    part_size: int
    count: int

    def part(self, number: int) -> Part:
        if not 1 <= number <= self.count:
            raise ValueError(f"part {number} is outside 1..{self.count}")
        offset = (number - 1) * self.part_size
        return Part(number, offset, min(self.part_size, self.size - offset))

    def parts(self) -> list[Part]:
        return [self.part(number) for number in range(1, self.count + 1)]


def check_part_size(part_size: int) -> int:
    if not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
        raise ConfigError(
            f"part size {part_size} bytes is outside S3's limits of {MIN_PART_SIZE} (5 MiB) to "
            f"{MAX_PART_SIZE} (5 GiB)"
        )
    return part_size


def plan_parts(size: int, part_size: int, max_part_size: int = MAX_PART_SIZE) -> PartPlan:
    """The part plan of a blob of `size` bytes: the configured part size, raised (to whole MiB) as far as
    needed to stay within 10,000 parts. A blob that needs parts larger than `max_part_size` (what one
    parter invocation can hold in memory) is rejected with the reason and the fix."""
    check_part_size(part_size)
    if size <= 0:
        raise ValueError("a multipart plan needs at least one byte; empty blobs are copied as empty objects")
    if size > MAX_OBJECT_SIZE:
        raise BlobRejectedError(
            f"blob of {size} bytes exceeds the {MAX_OBJECT_SIZE} bytes (48.8 TiB) that S3's "
            "10,000 parts of 5 GiB can hold"
        )
    needed = -(-size // MAX_PARTS)  # the smallest part size that fits in 10,000 parts
    if needed > part_size:
        raised = min(MAX_PART_SIZE, -(-needed // MiB) * MiB)
        if raised > max_part_size:
            raise BlobRejectedError(
                f"blob of {size} bytes needs parts of {raised // MiB} MiB to stay within S3's 10,000 parts, "
                f"but a largefile-parter invocation holds parts of at most {max_part_size // MiB} MiB in "
                f"memory: raise the parter's memory (function_memory_mb) to at least "
                f"{2 * raised // MiB + 256} MB"
            )
        part_size = raised
    count = -(-size // part_size)
    return PartPlan(size=size, part_size=part_size, count=count)
