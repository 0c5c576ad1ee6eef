"""What the scale model is given besides the work: how long each step takes (the Calibration the bench
measures), what the run runs on (the Deployment), and the services' documented limits (Limits)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any

from azs3copy.functions import PIPELINE
from azs3copy.planner import MiB
from azs3copy.steps.context import Tuning

# --- how long a step takes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepCost:
    """Seconds one invocation of a step takes: fixed + per blob + per MiB, as the bench measured it.
    `cpu_share` is the part of it spent on the CPU, which Lambda slows down below 1,769 MB of memory."""

    fixed: float = 0.0
    per_blob: float = 0.0
    per_mib: float = 0.0
    cpu_share: float = 1.0

    def seconds(self, invocations: float, blobs: float = 0.0, nbytes: float = 0.0) -> float:
        return invocations * self.fixed + blobs * self.per_blob + nbytes / MiB * self.per_mib


@dataclass(frozen=True)
class Calibration:
    """The measured per-step costs (written by `python -m bench.scale` from bench/results.json)."""

    name: str  # "lambda": an account; "local": this machine's local environment
    measured: str  # where the numbers come from
    steps: Mapping[str, StepCost]
    listing_per_blob: float  # find-blobs seconds per blob listed (selected or not)
    hop_seconds: float  # from a publish to the start of the invocation it feeds
    #: Local only: the machine's cores, and the CPU seconds (all processes) and moto-seconds (moto is one
    #: Python process: one core at most) the machine spends per second of uncontended step time.
    cores: float | None = None
    cpu_per_step_second: float = 0.0
    moto_per_step_second: float = 0.0
    #: CPU seconds a new execution environment spends before its first invocation (interpreter, imports,
    #: clients): once per environment, billed by Lambda as the INIT phase.
    cold_start_seconds: float = 0.0

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any], measured: str) -> Calibration:
        return cls(
            name=name,
            measured=measured,
            steps={f: StepCost(**data["steps"][f]) for f in PIPELINE},
            listing_per_blob=float(data["listing_per_blob"]),
            hop_seconds=float(data["hop_seconds"]),
            cores=data.get("cores"),
            cpu_per_step_second=float(data.get("cpu_per_step_second", 0.0)),
            moto_per_step_second=float(data.get("moto_per_step_second", 0.0)),
            cold_start_seconds=float(data.get("cold_start_seconds", 0.0)),
        )


CALIBRATION_FILE = "calibration.json"


def load_calibration(name: str, document: Mapping[str, Any] | None = None) -> Calibration:
    """The calibration shipped with the package (or `document`, the same shape): "lambda" or "local"."""
    data = document or json.loads(resources.files("azs3copy.scale").joinpath(CALIBRATION_FILE).read_text())
    return Calibration.from_dict(name, data[name], str(data["measured"]))


# --- the deployment and the limits --------------------------------------------------------------------------

#: The Terraform module's defaults (terraform/modules/azs3copy/variables.tf; a unit test reads them there).
MODULE_CONCURRENCY = {
    "launch-qualification": 1,
    "find-blobs": 4,
    "download": 50,
    "largefile-initializer": 10,
    "largefile-parter": 200,
    "largefile-recombinator": 20,
}
MODULE_MEMORY_MB = {
    "launch-qualification": 256,
    "find-blobs": 512,
    "download": 1024,
    "largefile-initializer": 256,
    "largefile-parter": 1024,
    "largefile-recombinator": 1024,
}
MODULE_TIMEOUT_S = {
    "launch-qualification": 60,
    "find-blobs": 900,
    "download": 900,
    "largefile-initializer": 120,
    "largefile-parter": 900,
    "largefile-recombinator": 900,
}


#: SQS's longest retention, which the module's step queues keep (terraform/modules/function/main.tf).
QUEUE_RETENTION_S = 14 * 24 * 3600.0


@dataclass(frozen=True)
class Deployment:
    """What the run runs on: per function its concurrency (reserved, or -1 for the account's unreserved pool;
    locally the runtime's workers), memory and timeout, and the functions' tuning."""

    concurrency: Mapping[str, int] = field(default_factory=lambda: dict(MODULE_CONCURRENCY))
    memory_mb: Mapping[str, int] = field(default_factory=lambda: dict(MODULE_MEMORY_MB))
    timeout_s: Mapping[str, float] = field(default_factory=lambda: dict(MODULE_TIMEOUT_S))
    architecture: str = "arm64"
    # How long a step's message can wait: the module's queues keep messages 14 days (a deployment from before
    # the queues waited in Lambda's asynchronous queue, at most 6 hours).
    max_event_age_s: float = QUEUE_RETENTION_S
    account_concurrency: int = 1000
    tuning: Tuning = field(default_factory=Tuning)

    def scaled(self, factor: float) -> Deployment:
        """Every reserved concurrency times `factor` (at least 1); unreserved functions stay unreserved."""
        return replace(
            self,
            concurrency={f: c if c < 0 else max(1, round(c * factor)) for f, c in self.concurrency.items()},
        )

    def slots(self, function: str) -> int:
        """Executions of `function` that can run at once."""
        reserved = self.concurrency.get(function, -1)
        if reserved >= 0:
            return reserved
        # Lambda keeps 100 of the account's concurrency unreserved; unreserved functions share what is left.
        pool = self.account_concurrency - sum(c for c in self.concurrency.values() if c > 0)
        return max(1, pool)


@dataclass(frozen=True)
class Limits:
    """The services' limits and latencies the model uses, each with where it is documented."""

    # https://docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html: 1,000 concurrent executions per
    # account and Region by default (a quota increase raises it); 100 of them stay unreserved.
    account_concurrency: int = 1000
    # https://docs.aws.amazon.com/lambda/latest/dg/scaling-behavior.html: each function gains at most 1,000
    # execution environments every 10 seconds.
    scale_step: int = 1000
    scale_period_s: float = 10.0
    # https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html: CPU in proportion to memory, one
    # vCPU at 1,769 MB.
    mb_per_vcpu: int = 1769
    # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/burst-adaptive-capacity.html: a
    # partition serves at most 1,000 WCU and 3,000 RCU a second, and one item never spans partitions.
    item_wcu_per_s: float = 1000.0
    item_rcu_per_s: float = 3000.0
    # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html: a
    # transactional write of an item up to 1 KB costs 2 WCU; a strongly consistent read up to 4 KB 1 RCU.
    transact_wcu: float = 2.0
    # https://docs.aws.amazon.com/AmazonS3/latest/userguide/optimizing-performance.html: at least 3,500
    # PUT/COPY/POST/DELETE and 5,500 GET/HEAD requests a second per partitioned prefix.
    s3_put_per_prefix: float = 3500.0
    s3_get_per_prefix: float = 5500.0
    # https://docs.aws.amazon.com/general/latest/gr/sns.html: Publish (and each message of PublishBatch) in
    # us-east-1: 30,000 messages a second (9,000 or fewer in other Regions).
    sns_messages_per_s: float = 30000.0
    # https://learn.microsoft.com/azure/storage/common/scalability-targets-standard-account: a standard account
    # takes 20,000 requests a second and serves 50 Gbps of egress outside its primary regions (40,000 and
    # 200 Gbps in the US and Europe); the model takes the lower figures.
    azure_requests_per_s: float = 20000.0
    azure_egress_bytes_per_s: float = 50e9 / 8
    # https://learn.microsoft.com/azure/storage/blobs/scalability-targets: one block blob takes up to 3,000
    # requests a second; its throughput is bounded by the account's.
    azure_blob_requests_per_s: float = 3000.0
    # https://docs.aws.amazon.com/AmazonS3/latest/userguide/optimizing-performance-guidelines.html: "roughly
    # 100-200 milliseconds" for a small object; the model takes 100 ms a request.
    s3_latency_s: float = 0.1
    # DynamoDB documents "single-digit millisecond" latency; the model takes 10 ms.
    dynamodb_latency_s: float = 0.01
    # Neither documented as a figure nor measurable here (no Azure): assumed equal to S3's.
    azure_latency_s: float = 0.1
    sns_latency_s: float = 0.05  # a PublishBatch request: assumed, not documented
    # A run's blob item in the ledger (keys, state, size, times): about 250 bytes; a Query page holds 1 MB
    # (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Query.Pagination.html).
    blob_item_bytes: int = 250


LIMITS = Limits()
