"""A run's work, counted the way find-blobs hands it out: download batches, large blobs and their parts,
listing pages, ledger transactions, Azure reads. From a listing, page by page (`WorkloadCounter`, exact), or
from a size mix (`workload_of_mix`, for runs that exist only on paper)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

from azs3copy.errors import BlobRejectedError
from azs3copy.planner import MiB, plan_parts
from azs3copy.steps.context import Tuning

#: With validate_content (a transactional MD5 per response) the Azure SDK reads at most 4 MiB a request.
AZURE_READ_BYTES = 4 * MiB
#: Blob items created per ledger transaction (backends/dynamodb.py: 100 items less the run's counters).
REGISTER_CHUNK = 99


# --- what a run does ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    """A run's work, counted as find-blobs hands it out. Sums add up (`+`); `largest_*` take the maximum."""

    listed: int = 0  # blobs the listing walks, selected or not
    blobs: int = 0  # selected blobs
    bytes: int = 0
    small_blobs: int = 0
    small_bytes: int = 0
    chunked_blobs: int = 0  # small blobs above the chunk size: streamed by download as a multipart upload
    chunks: int = 0  # their UploadPart requests
    batches: int = 0  # download messages: one invocation each
    large_blobs: int = 0
    large_bytes: int = 0
    parts: int = 0  # largefile-parter messages
    azure_reads: int = 0
    pages: int = 0
    register_writes: int = 0  # ledger transactions creating blob items (each also adds to the run's counters)
    not_copied: int = 0  # selected but recorded without a copy: archived, or refused (too large for S3)
    containers: int = 0
    largest_container: int = 0  # blobs listed in the largest container
    # Chains of invocations listing the largest container at once: its listing shards (steps/find_blobs.py:
    # one per top-level directory, at most listing_shards), 1 when it is listed whole.
    listing_chains: int = 1
    largest_blob: int = 0
    largest_blob_parts: int = 0

    _MAXIMA = ("largest_container", "largest_blob", "largest_blob_parts", "listing_chains")

    def __add__(self, other: Workload) -> Workload:
        values = {
            f.name: max(getattr(self, f.name), getattr(other, f.name))
            if f.name in self._MAXIMA
            else getattr(self, f.name) + getattr(other, f.name)
            for f in fields(self)
        }
        return Workload(**values)

    def scaled(self, factor: float, page_size: int) -> Workload:
        """One container's work with `factor` times the blobs (a sample scaled up): counts grow with the
        blobs, its pages and ledger transactions are those of the longer listing; the largest blob stays."""
        kept = ("containers", "largest_blob", "largest_blob_parts", "listing_chains")
        grown = Workload(
            **{
                f.name: getattr(self, f.name) if f.name in kept else round(getattr(self, f.name) * factor)
                for f in fields(self)
            }
        )
        full, rest = divmod(grown.blobs, page_size)
        return replace(
            grown,
            pages=max(1, -(-grown.listed // page_size)),
            register_writes=full * -(-page_size // REGISTER_CHUNK) + -(-rest // REGISTER_CHUNK),
        )


def azure_reads(length: int) -> int:
    """Azure read requests for `length` bytes read in one go."""
    return -(-length // AZURE_READ_BYTES)


class WorkloadCounter:
    """Counts a listing page by page, the way find-blobs splits it (steps/find_blobs.py, messages.py)."""

    def __init__(self, tuning: Tuning) -> None:
        self.tuning = tuning
        self.work = Workload()
        self._listed: dict[str, int] = {}

    def add_page(self, container: str, listed: int, sizes: Sequence[int], not_copied: int = 0) -> None:
        """One listing page: `listed` blobs walked, `sizes` of the selected ones to copy, `not_copied`
        selected ones recorded without a copy (archived)."""
        t = self.tuning
        small = [size for size in sizes if size < t.large_threshold]
        batches, count, held = 0, 0, 0
        for size in small:  # download_tasks: at most batch_blobs blobs and batch_bytes a message
            if count and (count >= t.batch_blobs or held + size > t.batch_bytes):
                batches, count, held = batches + 1, 0, 0
            count, held = count + 1, held + size
        batches += 1 if count else 0
        chunked = [size for size in small if size > t.chunk_size]
        reads = sum(_small_reads(size, t.chunk_size) for size in small)
        large_blobs = parts = large_bytes = refused = 0
        largest_parts = 0
        for size in (size for size in sizes if size >= t.large_threshold):
            try:
                plan = plan_parts(size, t.part_size, t.max_part_size)
            except BlobRejectedError:
                refused += 1
                continue
            large_blobs, large_bytes, parts = large_blobs + 1, large_bytes + size, parts + plan.count
            reads += _part_reads(size, plan.part_size, plan.count)
            largest_parts = max(largest_parts, plan.count)
        entries = len(sizes) + not_copied
        self._listed[container] = self._listed.get(container, 0) + listed
        self.work = self.work + Workload(
            listed=listed,
            blobs=len(sizes) + not_copied,
            bytes=sum(sizes),
            small_blobs=len(small),
            small_bytes=sum(small),
            chunked_blobs=len(chunked),
            chunks=sum(-(-size // t.chunk_size) for size in chunked),
            batches=batches,
            large_blobs=large_blobs,
            large_bytes=large_bytes,
            parts=parts,
            azure_reads=reads,
            pages=1,
            register_writes=-(-entries // REGISTER_CHUNK),
            not_copied=not_copied + refused,
            largest_blob=max(sizes, default=0),
            largest_blob_parts=largest_parts,
        )

    def workload(self) -> Workload:
        return replace(
            self.work, containers=len(self._listed), largest_container=max(self._listed.values(), default=0)
        )


def _small_reads(size: int, chunk: int) -> int:
    if size <= chunk:
        return azure_reads(size)
    whole, rest = divmod(size, chunk)
    return whole * azure_reads(chunk) + azure_reads(rest)


def _part_reads(size: int, part_size: int, count: int) -> int:
    return (count - 1) * azure_reads(part_size) + azure_reads(size - (count - 1) * part_size)


def workload_of_mix(
    mix: Sequence[tuple[int, int]], tuning: Tuning, containers: int = 1, listing_chains: int = 1
) -> Workload:
    """The work of a size mix, (count, size in bytes) per class, spread evenly over `containers`, each
    listed by `listing_chains` shards at once.

    Batches are packed class by class (a listing interleaves sizes, which can save a batch where two classes
    meet: at most one per class and page); nothing selected is archived or refused."""
    total = Workload()
    for index in range(containers):
        share = [
            (count // containers + (1 if index < count % containers else 0), size) for count, size in mix
        ]
        total = total + _container_of_mix(share, tuning)
    return replace(total, listing_chains=max(1, listing_chains))


def _container_of_mix(mix: Sequence[tuple[int, int]], t: Tuning) -> Workload:
    n = sum(count for count, _ in mix)
    pages = max(1, -(-n // t.page_size))
    full, rest = divmod(n, t.page_size)
    work = Workload(
        listed=n,
        blobs=n,
        pages=pages,
        register_writes=full * -(-t.page_size // REGISTER_CHUNK) + -(-rest // REGISTER_CHUNK),
        containers=1,
        largest_container=n,
    )
    for count, size in mix:
        if count == 0:
            continue
        if size < t.large_threshold:
            per_batch = max(1, min(t.batch_blobs, t.batch_bytes // size)) if size else t.batch_blobs
            chunked = size > t.chunk_size
            work = work + Workload(
                bytes=count * size,
                small_blobs=count,
                small_bytes=count * size,
                chunked_blobs=count if chunked else 0,
                chunks=count * -(-size // t.chunk_size) if chunked else 0,
                batches=-(-count // per_batch),
                azure_reads=count * _small_reads(size, t.chunk_size),
                largest_blob=size,
            )
            continue
        plan = plan_parts(size, t.part_size, t.max_part_size)
        work = work + Workload(
            bytes=count * size,
            large_blobs=count,
            large_bytes=count * size,
            parts=count * plan.count,
            azure_reads=count * _part_reads(size, plan.part_size, plan.count),
            largest_blob=size,
            largest_blob_parts=plan.count,
        )
    return work


# --- the size histogram -----------------------------------------------------------------------------------

KiB = 1024
_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB")


def _size_label(size: int) -> str:
    unit = 0
    while size >= 1024 * KiB and unit < len(_UNITS) - 1:
        size //= 1024
        unit += 1
    return f"{size // KiB} {_UNITS[unit]}"


class SizeHistogram:
    """Blobs and bytes by size, in bins that grow fourfold from 1 KiB: [0, 1 KiB), [1 KiB, 4 KiB), …"""

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.bytes: dict[int, int] = {}

    @staticmethod
    def bin_of(size: int) -> int:
        index = 0
        while size >= KiB * 4**index:
            index += 1
        return index

    def add(self, size: int, count: int = 1) -> None:
        index = self.bin_of(size)
        self.counts[index] = self.counts.get(index, 0) + count
        self.bytes[index] = self.bytes.get(index, 0) + size * count

    def merge(self, other: SizeHistogram, factor: float = 1.0) -> None:
        """Add `other`'s bins, each times `factor` (a sample scaled up)."""
        for index, count in other.counts.items():
            self.counts[index] = self.counts.get(index, 0) + round(count * factor)
            self.bytes[index] = self.bytes.get(index, 0) + round(other.bytes[index] * factor)

    def rows(self) -> list[dict[str, object]]:
        """The non-empty bins, smallest first: label, lower and upper bound (bytes), blobs, bytes."""
        found = []
        for index in sorted(self.counts):
            low = 0 if index == 0 else KiB * 4 ** (index - 1)
            high = KiB * 4**index
            label = f"< {_size_label(high)}" if index == 0 else f"{_size_label(low)} – {_size_label(high)}"
            found.append(
                {
                    "bin": label,
                    "from_bytes": low,
                    "to_bytes": high,
                    "blobs": self.counts[index],
                    "bytes": self.bytes[index],
                }
            )
        return found
