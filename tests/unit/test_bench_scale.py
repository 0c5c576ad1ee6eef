"""bench/scale.py against the committed bench/results.json: the package's calibration is what it derives from
those measurements, its error is the worst of its checks, and what it writes adds up."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from azs3copy.scale.inputs import load_calibration
from bench import report, scale
from bench.common import ROOT

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results.json"


@pytest.fixture(scope="module")
def committed() -> dict[str, Any]:
    return dict(json.loads(RESULTS.read_text()))


@pytest.fixture(scope="module")
def shipped() -> dict[str, Any]:
    return dict(json.loads(scale.CALIBRATION.read_text()))


def test_the_shipped_calibration_is_what_the_committed_measurements_give(
    committed: dict[str, Any], shipped: dict[str, Any]
) -> None:
    # The worker's start is measured when bench.scale runs; the rest follows from results.json alone.
    derived = scale.calibrate(committed, cold_start=shipped["lambda"]["cold_start_seconds"])
    assert derived == shipped


def test_the_calibration_reads_the_measurements_it_names(committed: dict[str, Any]) -> None:
    document = scale.calibrate(committed, cold_start=1.0)
    steps = document["lambda"]["steps"]
    parter_rows = committed["memory"]["parter"]
    per_part = sum(row["seconds"] for row in parter_rows) / len(parter_rows)
    assert steps["largefile-parter"]["per_mib"] == pytest.approx(
        per_part / committed["memory"]["part_size_mib"]
    )
    smallest = min(committed["listing"]["runs"], key=lambda row: row["blobs"])
    assert document["lambda"]["listing_per_blob"] == pytest.approx(smallest["seconds"] / smallest["blobs"])
    cores = committed["machine"]["cores"]
    assert document["local"]["cores"] == cores and load_calibration("local", document).cores == cores


def test_apply_records_the_worst_check_and_the_100tb_figures(
    committed: dict[str, Any], shipped: dict[str, Any], tmp_path: Path
) -> None:
    results = scale.apply(
        copy.deepcopy(committed),
        tmp_path / "calibration.json",
        cold_start=shipped["lambda"]["cold_start_seconds"],
    )
    checks = results["scale_model"]["checks"]
    assert len(checks) == len(committed["copies"]["reports"]) + len(committed["listing"]["runs"]) - 1
    worst = max(abs(row["predicted_s"] / row["measured_s"] - 1) for row in checks)
    assert results["scale_model_error"] == pytest.approx(worst, abs=0.001)
    plan = results["scale_model"]["migration"]
    assert (plan["blobs"], plan["bytes"]) == (10_000_000, 100 * 10**12)
    aws = sum(line["usd"] for line in plan["cost"] if not line["service"].startswith("Azure"))
    assert results["scale_100tb_cost_usd"] == pytest.approx(aws, abs=0.05)
    # the slowest constraint, after the launch and before the report
    assert results["scale_100tb_hours"] == plan["hours"] >= max(plan["bounds_hours"].values()) - 0.01
    assert results["targets"]["scale_model_error"] is (worst <= 0.25)
    assert json.loads((tmp_path / "calibration.json").read_text())["measured"].startswith(
        "bench/results.json"
    )


def test_the_benchmarks_section_shows_the_model_the_curve_and_datasync(
    committed: dict[str, Any], shipped: dict[str, Any], tmp_path: Path
) -> None:
    results = scale.apply(
        copy.deepcopy(committed), tmp_path / "c.json", shipped["lambda"]["cold_start_seconds"]
    )
    text = report.section(results)
    plan = results["scale_model"]["migration"]
    assert "### The scale model" in text and f"**{plan['hours']:.1f} h**" in text
    assert f"${plan['datasync_usd']:,.2f}" in text and f"${plan['aws_usd']:,.2f}" in text
    assert "Time against concurrency" in text
    assert all(f"| {row['factor']:g} | {row['download']} |" in text for row in plan["curve"])
    for source in scale.INPUTS:
        assert source in text


def test_the_headline_runs_at_the_concurrency_the_operators_guide_documents_for_a_migration() -> None:
    guide = (ROOT / "docs" / "operating.md").read_text()
    section = guide.split("### Sizing a migration", 1)[1]
    block = section.split("```hcl", 1)[1].split("```", 1)[0]
    documented = {name.replace("_", "-"): int(n) for name, n in re.findall(r"(\w+)\s*=\s*(\d+)", block)}
    # launch-qualification keeps the module's default of 1
    assert {**documented, "launch-qualification": 1} == scale.MIGRATION_CONCURRENCY
    reserved = sum(documented.values()) + 1 + 10  # launch-qualification and blob_events' defaults
    assert reserved + 100 <= 1000  # within the account's default quota, 100 left unreserved
