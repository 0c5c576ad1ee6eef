"""Lambda cost of a run under the Terraform sizing: GB-seconds and requests per GiB copied.

Memory per function comes from the defaults of `function_memory_mb` in terraform/modules/azs3copy/variables.tf;
durations are the ones the local runtime logged for each invocation (REPORT lines), rounded up to the
millisecond as Lambda bills them. Durations measured on this shared 2-core machine are longer than on Lambda,
where every invocation has its own CPU share, so the GB-seconds are an upper bound."""

from __future__ import annotations

import math
import re
from typing import Any

from bench.common import ROOT

VARIABLES = ROOT / "terraform" / "modules" / "azs3copy" / "variables.tf"
GiB = 1024**3


def terraform_memory_defaults() -> dict[str, int]:
    """{directory name under lambdas/: MiB} from the `function_memory_mb` variable's optional() defaults."""
    text = VARIABLES.read_text()
    block = re.search(r'variable "function_memory_mb" \{(.*?)\n\}', text, re.S)
    if block is None:
        raise RuntimeError(f"no function_memory_mb variable in {VARIABLES}")
    return {
        name.replace("_", "-"): int(value)
        for name, value in re.findall(r"(\w+)\s*=\s*optional\(number,\s*(\d+)\)", block.group(1))
    }


def lambda_cost(invocations: dict[str, list[tuple[float, int]]], bytes_copied: int) -> dict[str, Any]:
    memory = terraform_memory_defaults()
    per_function: dict[str, dict[str, float]] = {}
    total_gbs = 0.0
    total_requests = 0
    for component, calls in invocations.items():
        if not calls:
            continue
        mb = memory[component]
        gbs = sum(math.ceil(ms) / 1000 * mb / 1024 for ms, _ in calls)
        per_function[component] = {
            "memory_mb": mb,
            "requests": len(calls),
            "gb_seconds": round(gbs, 2),
            "mean_seconds": round(sum(ms for ms, _ in calls) / len(calls) / 1000, 3),
        }
        total_gbs += gbs
        total_requests += len(calls)
    gib = bytes_copied / GiB
    return {
        "gb_seconds": round(total_gbs, 2),
        "requests": total_requests,
        "gib_copied": round(gib, 3),
        "gb_seconds_per_gb": round(total_gbs / gib, 2) if gib else None,
        "requests_per_gb": round(total_requests / gib, 1) if gib else None,
        "per_function": per_function,
    }
