"""What a run's usage costs: a small dated price table (list prices, us-east-1 for AWS), overridable with a JSON
file of the same keys (`azs3copy plan --prices FILE`).

List prices as published on the providers' pricing pages, without free tiers, savings plans or discounts; a
GB is 2^30 bytes, as AWS bills data. Azure's egress is an estimate: it depends on the account's region and
routing (here: internet egress from North America or Europe over Microsoft's network, tiered monthly).
Prices change: check the pages below before relying on a figure, and override what differs."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azs3copy.errors import ConfigError
from azs3copy.scale.model import Usage

GiB = 1024**3

#: The table and the date of the list prices it holds (the keys are the override file's). They were written
#: from the pricing pages as of that date, not read from them when the table was committed: check them.
PRICES: dict[str, Any] = {
    "as_of": "2025-06-01",
    "region": "us-east-1",
    "sources": [
        "https://aws.amazon.com/lambda/pricing/",
        "https://aws.amazon.com/s3/pricing/",
        "https://aws.amazon.com/dynamodb/pricing/on-demand/",
        "https://aws.amazon.com/sns/pricing/",
        "https://aws.amazon.com/sqs/pricing/",
        "https://aws.amazon.com/kms/pricing/",
        "https://aws.amazon.com/secrets-manager/pricing/",
        "https://aws.amazon.com/cloudwatch/pricing/",
        "https://aws.amazon.com/xray/pricing/",
        "https://aws.amazon.com/datasync/pricing/",
        "https://azure.microsoft.com/pricing/details/bandwidth/",
        "https://azure.microsoft.com/pricing/details/storage/blobs/",
    ],
    "lambda_gb_second_arm64": 0.0000133334,
    "lambda_gb_second_x86_64": 0.0000166667,
    "lambda_requests_per_million": 0.20,
    "s3_put_copy_post_list_per_1000": 0.005,
    "s3_get_and_other_per_1000": 0.0004,
    "dynamodb_write_units_per_million": 0.625,  # on demand
    "dynamodb_read_units_per_million": 0.125,
    "sns_requests_per_million": 0.50,  # each 64 KB of a publish request; deliveries to Lambda are free
    "sqs_requests_per_million": 0.40,
    "kms_requests_per_10000": 0.03,
    "secrets_manager_calls_per_10000": 0.05,
    "cloudwatch_logs_ingested_per_gb": 0.50,
    "xray_traces_recorded_per_million": 5.00,
    "azure_read_operations_per_10000": 0.0044,  # hot tier
    "azure_list_operations_per_10000": 0.055,
    # [up to this many GB in the month, $ per GB]; the first 100 GB a month are free
    "azure_egress_tiers": [[100, 0.0], [10240, 0.087], [51200, 0.083], [153600, 0.07], [512000, 0.05]],
    "datasync_per_gb": 0.0125,
    "datasync_task_execution": 0.55,
}


@dataclass(frozen=True)
class PriceTable:
    values: Mapping[str, Any]

    @property
    def as_of(self) -> str:
        return str(self.values["as_of"])

    def __getitem__(self, key: str) -> float:
        return float(self.values[key])


def load_prices(path: Path | None = None) -> PriceTable:
    """The package's table, with the keys of the JSON object in `path` (if any) replacing its own."""
    values = dict(PRICES)
    if path is not None:
        try:
            override = json.loads(path.read_text())
        except ValueError as error:
            raise ConfigError(f"price file {path} is not valid JSON ({error})") from None
        if not isinstance(override, dict):
            raise ConfigError(f"price file {path} must hold a JSON object of prices")
        unknown = sorted(set(override) - set(PRICES))
        if unknown:
            raise ConfigError(
                f"price file {path}: unknown key(s) {', '.join(unknown)} (known: {', '.join(PRICES)})"
            )
        for key, value in override.items():
            if key not in ("as_of", "region", "sources", "azure_egress_tiers") and not isinstance(
                value, int | float
            ):
                raise ConfigError(f"price file {path}: {key} must be a number, found {value!r}")
        values.update(override)
        if "as_of" not in override:
            values["as_of"] = f"{PRICES['as_of']}, with {path.name}"
    return PriceTable(values)


@dataclass(frozen=True)
class CostLine:
    service: str
    quantity: str  # what was counted, for the reader
    usd: float
    estimate: bool = False  # outside AWS's bill, or a rough count


@dataclass(frozen=True)
class Cost:
    lines: tuple[CostLine, ...]

    @property
    def aws_usd(self) -> float:
        """AWS charges: everything but Azure's."""
        return sum(line.usd for line in self.lines if not line.service.startswith("Azure"))

    @property
    def azure_usd(self) -> float:
        return sum(line.usd for line in self.lines if line.service.startswith("Azure"))

    @property
    def total_usd(self) -> float:
        return self.aws_usd + self.azure_usd


def egress_usd(nbytes: float, prices: PriceTable) -> float:
    """Azure's internet egress for `nbytes` in one month, through the tiers."""
    gb, usd, floor = nbytes / GiB, 0.0, 0.0
    for ceiling, rate in prices.values["azure_egress_tiers"]:
        usd += max(0.0, min(gb, ceiling) - floor) * rate
        floor = ceiling
    tiers = prices.values["azure_egress_tiers"]
    return usd + max(0.0, gb - floor) * float(tiers[-1][1])


def estimate_cost(usage: Usage, prices: PriceTable, architecture: str = "arm64") -> Cost:
    gb_seconds = sum(usage.gb_seconds.values())
    rate = prices[f"lambda_gb_second_{architecture}"]
    lines = [
        CostLine("Lambda compute", f"{gb_seconds:,.0f} GB-s ({architecture})", gb_seconds * rate),
        CostLine(
            "Lambda requests",
            f"{usage.lambda_requests:,} invocations",
            usage.lambda_requests / 1e6 * prices["lambda_requests_per_million"],
        ),
        CostLine(
            "S3 requests",
            f"{usage.s3_put_requests:,} PUT/LIST, {usage.s3_get_requests:,} GET",
            usage.s3_put_requests / 1000 * prices["s3_put_copy_post_list_per_1000"]
            + usage.s3_get_requests / 1000 * prices["s3_get_and_other_per_1000"],
        ),
        CostLine(
            "DynamoDB",
            f"{usage.dynamodb_write_units:,.0f} write units, {usage.dynamodb_read_units:,.0f} read units",
            usage.dynamodb_write_units / 1e6 * prices["dynamodb_write_units_per_million"]
            + usage.dynamodb_read_units / 1e6 * prices["dynamodb_read_units_per_million"],
        ),
        CostLine(
            "SNS",
            f"{usage.sns_requests:,} publish requests ({usage.sns_messages:,} messages)",
            usage.sns_requests / 1e6 * prices["sns_requests_per_million"],
        ),
        CostLine(
            "SQS",
            f"{usage.sqs_requests:,} requests (the steps' queues: send, receive, delete, empty polls)",
            usage.sqs_requests / 1e6 * prices["sqs_requests_per_million"],
        ),
        CostLine(
            "KMS",
            f"{math.ceil(usage.kms_requests):,} requests, at most",
            usage.kms_requests / 1e4 * prices["kms_requests_per_10000"],
            estimate=True,
        ),
        CostLine(
            "Secrets Manager",
            f"{math.ceil(usage.secrets_requests):,} reads of the secret",
            usage.secrets_requests / 1e4 * prices["secrets_manager_calls_per_10000"],
        ),
        CostLine(
            "CloudWatch Logs",
            f"{usage.log_bytes / GiB:,.2f} GB ingested",
            usage.log_bytes / GiB * prices["cloudwatch_logs_ingested_per_gb"],
            estimate=True,
        ),
        CostLine(
            "X-Ray",
            f"{math.ceil(usage.xray_traces):,} traces",
            usage.xray_traces / 1e6 * prices["xray_traces_recorded_per_million"],
            estimate=True,
        ),
        CostLine(
            "Azure egress",
            f"{usage.egress_bytes / GiB:,.1f} GB out of Azure",
            egress_usd(usage.egress_bytes, prices),
            estimate=True,
        ),
        CostLine(
            "Azure operations",
            f"{usage.azure_reads:,} reads, {usage.azure_lists:,} listings",
            usage.azure_reads / 1e4 * prices["azure_read_operations_per_10000"]
            + usage.azure_lists / 1e4 * prices["azure_list_operations_per_10000"],
            estimate=True,
        ),
    ]
    return Cost(tuple(lines))


def datasync_usd(nbytes: float, prices: PriceTable, task_executions: int = 1) -> float:
    """What AWS DataSync charges for the same bytes (its per-GB fee and one task execution), Azure's egress
    and S3's own requests not included."""
    return nbytes / GiB * prices["datasync_per_gb"] + task_executions * prices["datasync_task_execution"]
