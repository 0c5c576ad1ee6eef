"""The third-party layer ships the SDK versions the tests run with."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==(\S+)", line.split("#", 1)[0].strip())
        if match:
            found[match.group(1).lower().replace("_", "-")] = match.group(2)
    return found


def test_the_layer_pins_the_aws_and_azure_sdks_the_tests_run_with() -> None:
    layer = pins(ROOT / "layers/azure-sdk/requirements.txt")
    dev = pins(ROOT / "requirements/dev.txt")
    # Lambda's runtime bundles an older boto3; the package relies on botocore 1.36+ (ChecksumType).
    for package in ("boto3", "botocore", "azure-storage-blob", "azure-identity", "aws-lambda-powertools"):
        assert package in layer, f"{package} is not in the layer"
    differing = {
        name: (layer[name], dev[name]) for name in layer.keys() & dev.keys() if layer[name] != dev[name]
    }
    assert not differing, f"layer and dev pins differ: {differing}"
