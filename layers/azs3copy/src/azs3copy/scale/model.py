"""The scale model: how long a run takes and what it asks of each service, from the run's work, the
deployment, the services' documented limits and the per-step costs the bench measures.

One model for `azs3copy plan` and `python -m bench.scale` (BENCHMARKS.md, "The scale model"). It names no SDK:
the numbers come in as data (Workload, Deployment, Calibration, Limits) and go out as a Prediction, whose
Usage prices.py turns into money.

- Each invocation lasts what the Calibration says its step takes (the bench's single invocations on idle
  emulators), slowed on Lambda by the CPU share of the function's memory, plus the latency of the requests it
  waits for.
- The run lasts as long as its slowest constraint: each function's busy seconds over its concurrency, the
  account's concurrency, the ledger's hottest item against DynamoDB's per-item limit, S3's request rates per
  prefix, SNS's publish rate, the Azure account's request rate and egress, and the listing of the
  largest container followed by the last piece of work. Locally the machine's cores and moto's one core
  replace the services' limits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from azs3copy.ledger import COUNT_SHARDS
from azs3copy.scale.inputs import LIMITS, Calibration, Deployment, Limits, StepCost
from azs3copy.scale.workload import Workload, azure_reads
from azs3copy.steps.context import Tuning
from azs3copy.steps.report import MAX_LISTED_FAILURES

#: PublishBatch takes up to 10 messages (backends/sns.py).
PUBLISH_BATCH = 10
#: https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html: a mapping polls with 5 pollers at least,
#: each long-polling up to 20 s.
SQS_POLLERS = 5
SQS_LONG_POLL_S = 20.0
#: S3 requests a copy adds with verify=readback: the read-back GET and the verified tag.
_MARKED_AFTER = 2
#: The constraint of the ledger's busiest item: a counter shard, META, or a large blob's own item.
LEDGER_BOUND = "ledger's busiest item (DynamoDB, one item)"


# --- the prediction ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FunctionLoad:
    """One function's share of a run: how many invocations, and the seconds they add up to."""

    invocations: int
    busy_seconds: float  # cold starts included
    slots: int  # executions at once
    memory_mb: int
    cold_starts: int = 0  # new execution environments: one per slot used
    cold_seconds: float = 0.0

    @property
    def seconds_each(self) -> float:
        return self.busy_seconds / self.invocations if self.invocations else 0.0

    @property
    def warm_seconds_each(self) -> float:
        """One invocation in an environment already started."""
        return (self.busy_seconds - self.cold_seconds) / self.invocations if self.invocations else 0.0

    @property
    def gb_seconds(self) -> float:
        return self.busy_seconds * self.memory_mb / 1024

    @property
    def drain_seconds(self) -> float:
        """How long the function's work takes at its concurrency (ignoring when it arrives)."""
        if not self.invocations:
            return 0.0
        return math.inf if self.slots <= 0 else self.busy_seconds / self.slots


@dataclass(frozen=True)
class Usage:
    """What a run asks of each service, in the units they bill."""

    lambda_requests: int = 0
    gb_seconds: Mapping[str, float] = field(default_factory=dict)
    s3_put_requests: int = 0  # PUT, COPY, POST and LIST (ListObjectsV2, ListParts)
    s3_get_requests: int = 0  # GET and the others
    dynamodb_write_units: float = 0.0
    dynamodb_read_units: float = 0.0
    sns_requests: int = 0  # PublishBatch requests (each under 64 KB of payload: one billed request)
    sns_messages: int = 0
    sqs_requests: int = 0  # the steps' queues: each message sent, received and deleted, and the empty polls
    kms_requests: float = 0.0
    secrets_requests: float = 0.0
    log_bytes: float = 0.0
    xray_traces: float = 0.0
    azure_reads: int = 0
    azure_lists: int = 0
    egress_bytes: int = 0


@dataclass(frozen=True)
class Prediction:
    seconds: float
    binding: str  # the constraint that sets the duration
    bounds: Mapping[str, float]  # each constraint's lower bound on the duration, in seconds
    functions: Mapping[str, FunctionLoad]
    usage: Usage
    listing_seconds: float
    report_seconds: float
    hottest_item_writes_per_1000_blobs: float
    expired_share: Mapping[str, float]  # the share of each function's events that outlive their age limit
    warnings: tuple[str, ...]
    calibration: str


def predict(
    work: Workload,
    deployment: Deployment,
    calibration: Calibration,
    limits: Limits = LIMITS,
    *,
    cold: bool = True,
) -> Prediction:
    """The duration, load and usage of a run of `work` on `deployment` (`cold`: its execution environments
    start with the run, as on a fresh deployment or Lambda; False: they are warm from a run before)."""
    local = calibration.cores is not None
    # Locally the measured step times already hold the emulators' latency; on AWS each request adds its own.
    lat = (
        Limits(s3_latency_s=0, dynamodb_latency_s=0, azure_latency_s=0, sns_latency_s=0) if local else limits
    )
    loads, listing, first_page, chain = _loads(work, deployment, calibration, limits, lat, cold)
    # Nothing is copied before the first page is listed and published; the listing and whatever follows its
    # last page go on meanwhile.
    copy_start = first_page + calibration.hop_seconds
    bounds: dict[str, float] = {"listing, then the last piece of work": listing + chain}
    for name, load in loads.items():
        if load.invocations and name not in ("find-blobs", "launch-qualification"):
            drain = load.drain_seconds if local else _ramped(load, limits)
            bounds[f"{name} at concurrency {load.slots}"] = copy_start + drain
    busy = sum(load.busy_seconds for load in loads.values())
    cold_seconds = sum(load.cold_seconds for load in loads.values())
    # The run's counters are summed over COUNT_SHARDS items: each takes its share of the counting writes (a
    # download batch's one transaction, a large blob's finish, a listing's creating transactions). META
    # takes each container's end, the run's start and report; a blob's own item its creation, claim and
    # finish, and a large blob's one write a part. The busiest of them bounds the run.
    counting = work.batches + work.large_blobs + work.register_writes
    shard_writes = math.ceil(counting / COUNT_SHARDS)
    parts_each = math.ceil(work.parts / work.large_blobs) if work.large_blobs else 0
    hottest = max(shard_writes, work.containers + 2, 3 + (parts_each + 2 if work.large_blobs else 0))
    meta_reads = work.batches + work.large_blobs + work.containers
    prefixes = max(1, work.containers)  # keys are <destination prefix><container>/<name>
    usage = _usage(work, loads, limits, deployment.tuning)
    if local:
        # The machine spends its CPU on our steps and on the emulators serving them; a cold start is ours.
        cpu = calibration.cpu_per_step_second * (busy - cold_seconds) + cold_seconds
        cores = calibration.cores or 1.0
        bounds[f"this machine's {cores:g} cores"] = copy_start + cpu / cores
        bounds["moto (one process, one core)"] = copy_start + calibration.moto_per_step_second * (
            busy - cold_seconds
        )
    else:
        copy_bounds = {
            f"Lambda account concurrency {deployment.account_concurrency}": busy
            / deployment.account_concurrency,
            LEDGER_BOUND: max(
                hottest * limits.transact_wcu / limits.item_wcu_per_s, meta_reads / limits.item_rcu_per_s
            ),
            "S3 PUT requests per prefix": usage.s3_put_requests / (limits.s3_put_per_prefix * prefixes),
            "S3 GET requests per prefix": usage.s3_get_requests / (limits.s3_get_per_prefix * prefixes),
            "SNS publish rate": usage.sns_messages / limits.sns_messages_per_s,
            "Azure account requests": (usage.azure_reads + usage.azure_lists) / limits.azure_requests_per_s,
            "Azure account egress": work.bytes / limits.azure_egress_bytes_per_s,
            "Azure requests on the largest blob": (
                azure_reads(work.largest_blob) if work.largest_blob_parts else 0
            )
            / limits.azure_blob_requests_per_s,
        }
        bounds.update({name: copy_start + seconds for name, seconds in copy_bounds.items()})
    report = _report_seconds(work, limits, lat)
    launch = loads["launch-qualification"].busy_seconds + calibration.hop_seconds
    binding = max(bounds, key=lambda name: bounds[name])
    seconds = (launch + bounds[binding] + report) if work.listed or work.blobs else launch
    expired = _expired(loads, listing, deployment.max_event_age_s)
    warnings = _warnings(work, deployment, loads, expired, report, binding, hottest)
    return Prediction(
        seconds=seconds,
        binding=binding,
        bounds=bounds,
        functions=loads,
        usage=usage,
        listing_seconds=listing,
        report_seconds=report,
        hottest_item_writes_per_1000_blobs=1000 * hottest / work.blobs if work.blobs else 0.0,
        expired_share=expired,
        warnings=warnings,
        calibration=f"{calibration.name} calibration, {calibration.measured}",
    )


def _ramped(load: FunctionLoad, limits: Limits) -> float:
    """How long the function's work takes when its concurrency grows at Lambda's scaling rate, from none to
    its slots: the ramp costs half its length at full concurrency, or the work ends during the ramp."""
    if load.slots <= 0 or not load.invocations:
        return load.drain_seconds
    rate = limits.scale_step / limits.scale_period_s  # environments a second
    ramp = load.slots / rate
    if load.busy_seconds >= load.slots * ramp / 2:
        return load.busy_seconds / load.slots + ramp / 2
    return math.sqrt(2 * load.busy_seconds / rate)


def _arrival_windows(loads: Mapping[str, FunctionLoad], listing: float) -> dict[str, float]:
    """Over how long each function's events arrive: the listing publishes the batches and the large blobs,
    the initializers publish the parts, the parters' last parts the recombinations."""
    initializers = max(listing, loads["largefile-initializer"].drain_seconds)
    parters = max(initializers, loads["largefile-parter"].drain_seconds)
    return {
        "download": listing,
        "largefile-initializer": listing,
        "largefile-parter": initializers,
        "largefile-recombinator": parters,
    }


def _slowdown(cost: StepCost, memory_mb: int, calibration: Calibration, limits: Limits) -> float:
    """How much longer a step takes on Lambda than measured: its CPU part runs on the memory's CPU share
    (more than one vCPU is no faster: the steps' Python runs on one core at a time)."""
    if calibration.cores is not None:
        return 1.0
    vcpu = min(1.0, memory_mb / limits.mb_per_vcpu)
    return cost.cpu_share / vcpu + (1.0 - cost.cpu_share)


def _loads(
    work: Workload, dep: Deployment, cal: Calibration, limits: Limits, lat: Limits, cold: bool
) -> tuple[dict[str, FunctionLoad], float, float, float]:
    """Each function's load, the listing's duration, its first page's, and the last piece of work after the
    listing."""
    t, steps = dep.tuning, cal.steps

    def cost(function: str, invocations: float, blobs: float = 0, nbytes: float = 0) -> float:
        step = steps[function]
        slow = _slowdown(step, dep.memory_mb[function], cal, limits)
        return step.seconds(invocations, blobs, nbytes) * slow

    s3, ddb, az, sns = lat.s3_latency_s, lat.dynamodb_latency_s, lat.azure_latency_s, lat.sns_latency_s
    # download: per blob a PutObject (a streamed blob: create, its chunks, complete), with verify=readback
    # also the read-back GET and the verified tag; one Azure read call (one per chunk), the ledger's claim;
    # blobs of a batch overlap copy_threads at a time. Per invocation: the attempt counter, the run's
    # counters read, the manifest's part, the blobs' finishes in one transaction.
    plain = work.small_blobs - work.chunked_blobs
    after = _MARKED_AFTER if t.verify == "readback" else 0
    waits = ((1 + after) * plain + (2 + after) * work.chunked_blobs + work.chunks) * s3
    waits += (plain + work.chunks) * az + work.small_blobs * ddb
    overlap = max(1.0, min(t.copy_threads, work.small_blobs / work.batches)) if work.batches else 1.0
    download = cost("download", work.batches, work.small_blobs, work.small_bytes)
    download += waits / overlap + work.batches * (3 * ddb + s3)
    parts_each = work.parts / work.large_blobs if work.large_blobs else 0.0
    # initializer: the blob's record, the upload and its id recorded, the part messages (8 requests at once)
    initializer = cost("largefile-initializer", work.large_blobs)
    initializer += work.large_blobs * (3 * ddb + s3 + math.ceil(parts_each / PUBLISH_BATCH / 8) * sns)
    # parter: one ranged read (4 requests at once), one UploadPart, four ledger requests; the last part of a
    # blob publishes its recombinator message
    parter = cost("largefile-parter", work.parts, 0, work.large_bytes)
    parter += work.parts * (az + s3 + 4 * ddb) + work.large_blobs * sns
    # recombinator: ListParts, complete, the manifest's part (verify=readback: the read-back GET and the
    # verified tag); five ledger requests
    recombinator = cost("largefile-recombinator", work.large_blobs, 0, work.large_bytes)
    recombinator += work.large_blobs * ((2 + after + math.ceil(parts_each / 1000)) * s3 + 5 * ddb)
    # find-blobs: per page one Azure listing, one S3 listing, the page's ledger writes, the publishes
    per_page = az + s3 + (3 + work.register_writes / max(1, work.pages)) * ddb + sns
    listing_each = cal.listing_per_blob * _slowdown(
        steps["find-blobs"], dep.memory_mb["find-blobs"], cal, limits
    )
    listing_total = work.listed * listing_each + work.pages * per_page
    largest_share = work.largest_container / work.listed if work.listed else 0.0
    find_slots = dep.slots("find-blobs")
    # find-blobs' first environment starts before the listing can
    listing_start = cal.cold_start_seconds * _slowdown(StepCost(), dep.memory_mb["find-blobs"], cal, limits)
    listing_start = listing_start if cold else 0.0
    # The largest container's shards are listed side by side, as many at once as find-blobs has slots.
    chains = max(1, min(work.listing_chains, find_slots))
    listing = listing_start + max(
        listing_total * largest_share / chains, listing_total / find_slots if find_slots > 0 else math.inf
    )
    span = max(1.0, dep.timeout_s["find-blobs"] - t.listing_reserve_seconds)
    finds = work.containers + int(listing_total // span) if work.listed else 0
    launch = cost("launch-qualification", 1) + 2 * ddb + s3 + sns
    busy = {
        "launch-qualification": (1, launch),
        "find-blobs": (finds, listing_total),
        "download": (work.batches, download),
        "largefile-initializer": (work.large_blobs, initializer),
        "largefile-parter": (work.parts, parter),
        "largefile-recombinator": (work.large_blobs, recombinator),
    }
    warm = {
        name: FunctionLoad(count, seconds, dep.slots(name), dep.memory_mb[name])
        for name, (count, seconds) in busy.items()
    }
    windows = _arrival_windows(warm, listing_total / max(1, find_slots))
    loads = {}
    for name, load in warm.items():
        # Lambda starts as many environments as the work arriving keeps busy, at most its concurrency.
        needed = math.ceil(load.busy_seconds / windows[name]) if windows.get(name) else load.invocations
        starts = min(load.invocations, max(0, load.slots), needed) if cold else 0
        start = cal.cold_start_seconds * _slowdown(StepCost(), load.memory_mb, cal, limits)
        loads[name] = replace(
            load,
            busy_seconds=load.busy_seconds + starts * start,
            cold_starts=starts,
            cold_seconds=starts * start,
        )
    # After the last page: its download batch, or the largest blob's chain (initializer, its parts in waves
    # of the parter's concurrency, recombinator), each a hop away from the one before.
    hop = cal.hop_seconds
    chain = hop + loads["download"].warm_seconds_each
    if work.large_blobs:
        waves = math.ceil(work.largest_blob_parts / max(1, loads["largefile-parter"].slots))
        recombine = loads["largefile-recombinator"]
        largest = work.largest_blob / work.large_bytes * (recombine.busy_seconds - recombine.cold_seconds)
        chain = max(
            chain,
            3 * hop
            + loads["largefile-initializer"].warm_seconds_each
            + waves * loads["largefile-parter"].warm_seconds_each
            + largest,
        )
    first_page = (
        listing_start + min(work.listed, t.page_size) * listing_each + per_page if work.listed else 0.0
    )
    return loads, listing if work.listed else 0.0, first_page, chain if work.blobs else 0.0


def _report_seconds(work: Workload, limits: Limits, lat: Limits) -> float:
    """The run report reads the run's counter shards and its failure items (at most MAX_LISTED_FAILURES of
    them, never every blob's): one partition key, read at 3,000 RCU a second at most, a 1 MB page a request."""
    data = (COUNT_SHARDS + min(work.not_copied, MAX_LISTED_FAILURES)) * limits.blob_item_bytes
    return max(data / 4096 / limits.item_rcu_per_s, math.ceil(data / 1e6) * lat.dynamodb_latency_s)


def _expired(loads: Mapping[str, FunctionLoad], listing: float, max_age: float) -> dict[str, float]:
    """The share of each function's tasks that would wait longer than `max_age` (their queue's retention).

    Events arrive evenly over a window and are taken at the function's rate; when they arrive faster, the
    queue grows and the event arriving at t waits t × (drain / window − 1)."""
    share: dict[str, float] = {}
    for name, window in _arrival_windows(loads, listing).items():
        excess = loads[name].drain_seconds - window
        share[name] = 0.0 if excess <= max_age or not loads[name].invocations else 1.0 - max_age / excess
    find = loads["find-blobs"]
    wait = find.drain_seconds - (listing if find.slots > 0 else 0.0)
    share["find-blobs"] = 0.0 if wait <= max_age or not find.invocations else 1.0 - max_age / wait
    return share


def _warnings(
    work: Workload,
    dep: Deployment,
    loads: Mapping[str, FunctionLoad],
    expired: Mapping[str, float],
    report: float,
    binding: str,
    hottest: int,
) -> tuple[str, ...]:
    found = []
    reserved = sum(c for c in dep.concurrency.values() if c > 0)
    if reserved + 100 > dep.account_concurrency:
        found.append(
            f"the functions reserve {reserved} concurrent executions: Lambda needs the account's quota "
            f"({dep.account_concurrency}) to exceed that by 100 (ask for an increase)"
        )
    for name, load in loads.items():
        if load.invocations and load.slots <= 0:
            found.append(f"{name} has reserved concurrency 0: its {load.invocations} invocations never run")
    for name, share in expired.items():
        if share > 0:
            found.append(
                f"about {share:.0%} of {name}'s tasks would wait longer than they can be kept "
                f"({dep.max_event_age_s / 3600:g} h: the queue's retention, or the event age of a step "
                "invoked asynchronously) and never run: the run would not finish"
            )
    shortest = min(
        dep.timeout_s[name] for name in ("download", "largefile-initializer", "largefile-recombinator")
    )
    if report > shortest:
        found.append(
            f"the report reads the run's failure items (at least {report:.0f} s): more than the "
            f"{shortest:g} s timeout of a function that can settle the last blob"
        )
    if binding == LEDGER_BOUND:
        found.append(
            f"the ledger's busiest item takes {hottest} transactional writes "
            f"({1000 * hottest / max(1, work.blobs):.0f} per 1,000 blobs) and sets the duration"
        )
    if work.not_copied:
        found.append(
            f"{work.not_copied} selected blob(s) are recorded without a copy (archived or too large)"
        )
    return tuple(found)


def _usage(work: Workload, loads: Mapping[str, FunctionLoad], limits: Limits, tuning: Tuning) -> Usage:
    """Requests by service, counted from the steps' code paths (steps/*.py, backends/*.py) on a first copy
    (nothing in S3 yet, nothing fails, no large blob with a Content-MD5)."""
    parts_each = work.parts / work.large_blobs if work.large_blobs else 0.0
    plain = work.small_blobs - work.chunked_blobs
    copied = work.small_blobs + work.large_blobs
    s3_put = (
        plain  # PutObject
        + 2 * work.chunked_blobs
        + work.chunks  # create, parts, complete
        + work.large_blobs * (2 + math.ceil(parts_each / 1000))
        + work.parts  # create, complete, ListParts; UploadPart
        + work.batches
        + work.large_blobs  # the manifest's part of each batch and of each large blob
        + work.pages  # the ranged ListObjectsV2 of each page
        + 1  # the report
    )
    s3_get = 0
    if tuning.verify == "readback":  # each object read back, then tagged
        s3_put, s3_get = s3_put + copied, copied
    write_units = (
        6  # start_run: three items in a transaction
        + work.pages * 3  # the page item: created, registered, published
        + (work.blobs * 2 + work.register_writes * 2)  # blob items and a counter shard, transactionally
        + work.containers * 4  # finish_container
        + work.small_blobs * 3  # claim; finish (the blob item, transactionally)
        + work.batches * 2  # the batch's counter shard, in the same transaction
        + work.large_blobs
        * (2 + 6)  # initializer: set_upload + attempt; recombinator: attempt, claim, finish
        + work.parts * 3  # attempt, the part's checksum item, parts_done
        + work.batches  # download's attempt counter
        + sum(load.invocations for name, load in loads.items() if name == "find-blobs")
        + 2  # the report recorded
    )
    read_units = (
        work.batches  # download reads the run's counters once an invocation
        + work.large_blobs * (2 + math.ceil(parts_each * 100 / 4096))  # initializer, recombinator
        + work.parts  # the parter reads the blob's record
        + work.containers
        + work.batches
        + work.large_blobs
        + work.containers  # the counter shards with each run read
        + math.ceil(min(work.not_copied, MAX_LISTED_FAILURES) * limits.blob_item_bytes / 4096)  # report
    )
    sns_messages = work.containers + work.batches + 2 * work.large_blobs + work.parts
    sns_messages += max(0, loads["find-blobs"].invocations - work.containers)  # listing continued
    sns_requests = (
        math.ceil(work.containers / PUBLISH_BATCH)
        + math.ceil((work.batches + work.large_blobs) / PUBLISH_BATCH)
        + work.pages  # each page's last, partial batch
        + work.large_blobs * (math.ceil(parts_each / PUBLISH_BATCH) + 1)
        + max(0, loads["find-blobs"].invocations - work.containers)
    )
    invocations = sum(load.invocations for load in loads.values())
    duration = max((load.drain_seconds for load in loads.values() if load.invocations), default=0.0)
    warm = sum(min(load.invocations, load.slots) for load in loads.values() if load.slots > 0)
    secrets = sum(
        min(load.invocations, max(1, load.slots) * load.drain_seconds / 60)
        for load in loads.values()
        if load.invocations
    )
    queues = sum(1 for name, load in loads.items() if load.invocations and name != "launch-qualification")
    # Each message is sent by SNS into the step's queue, received by the event source mapping and deleted
    # (batch size 1); a mapping's pollers (5 at least) long-poll 20 s when the queue is empty.
    sqs = 3 * sns_messages + queues * SQS_POLLERS * math.ceil(duration / SQS_LONG_POLL_S)
    kms = (
        sns_requests  # a data key per publish to the encrypted topics (an upper bound)
        + queues * 2 * duration / 300  # the queues' data keys, reused 300 s by SNS and by Lambda
        + 0.01 * (copied + work.chunked_blobs + work.large_blobs + s3_get)  # S3 bucket keys: 99 % fewer
        + warm * (1 + duration / 300)  # Lambda's environment at each cold start; DynamoDB's table key
        + secrets  # each read of the secret
    )
    # Log lines (START, END, REPORT, the metrics) per invocation, and a "blob copied" line per blob;
    # X-Ray's default rule samples one request a second and 5 % of the rest, per function.
    log_bytes = invocations * 700 + copied * 600 + work.pages * 500
    xray = sum(
        min(load.invocations, load.drain_seconds + 0.05 * load.invocations)
        for load in loads.values()
        if load.invocations
    )
    return Usage(
        lambda_requests=invocations,
        gb_seconds={name: load.gb_seconds for name, load in loads.items()},
        s3_put_requests=s3_put,
        s3_get_requests=s3_get,
        dynamodb_write_units=write_units,
        dynamodb_read_units=read_units,
        sns_requests=sns_requests,
        sns_messages=sns_messages,
        sqs_requests=sqs,
        kms_requests=kms,
        secrets_requests=secrets,
        log_bytes=log_bytes,
        xray_traces=xray,
        azure_reads=work.azure_reads,
        azure_lists=work.pages + 1,
        egress_bytes=work.bytes,
    )
