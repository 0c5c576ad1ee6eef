"""rclone (the Debian package) copying Azurite → moto, the reference to beat.

rclone reaches Azurite through a SAS URL (its `endpoint` setting is a domain suffix), needs `--s3-no-head`
against moto (its HEAD with `versionId=null` gets a 400 on an unversioned bucket), and runs without the
machine's CA-bundle variables."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from bench.common import clean_env
from devenv.emulators import AZURITE_ACCOUNT, AZURITE_KEY, read_list_sas


def _tuned(transfers: str) -> list[str]:
    return [
        "--transfers",
        transfers,
        "--checkers",
        "16",
        "--s3-upload-concurrency",
        "4",
        "--s3-chunk-size",
        "16M",
        "--s3-upload-cutoff",
        "100M",
        "--buffer-size",
        "16M",
        "--no-check-dest",
        "--s3-disable-checksum",
        "--ignore-checksum",
    ]


#: The flags tried (see `python -m bench.run --rclone-sweep`); the first is what the benchmark uses.
SETTINGS: dict[str, list[str]] = {
    "tuned": _tuned("{concurrency}"),
    "tuned-16": _tuned("16"),
    "defaults": [],
    "wide": [
        "--transfers",
        "16",
        "--checkers",
        "16",
        "--s3-upload-concurrency",
        "8",
        "--s3-chunk-size",
        "8M",
        "--no-check-dest",
        "--ignore-checksum",
    ],
}


def rclone_binary() -> str:
    binary = shutil.which("rclone")
    if binary is None:
        raise RuntimeError("rclone is not installed: `apt-get install -y rclone` (make bench does it)")
    return binary


def rclone_version() -> str:
    result = subprocess.run([rclone_binary(), "version"], capture_output=True, text=True, check=False)
    return result.stdout.splitlines()[0] if result.stdout else "unknown"


def write_config(path: Path, azurite_endpoint: str, moto_endpoint: str) -> Path:
    sas = read_list_sas(AZURITE_ACCOUNT, AZURITE_KEY)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "[az]\n"
        "type = azureblob\n"
        f"sas_url = {azurite_endpoint}?{sas}\n\n"
        "[s3]\n"
        "type = s3\n"
        "provider = Other\n"
        "access_key_id = testing\n"
        "secret_access_key = testing\n"
        "region = us-east-1\n"
        f"endpoint = {moto_endpoint}\n"
        "force_path_style = true\n"
    )
    path.chmod(0o600)
    return path


def run_rclone(
    config: Path, container: str, bucket: str, prefix: str, *, concurrency: int, setting: str = "tuned"
) -> float:
    """Copy the container to s3://bucket/prefix; returns the seconds rclone ran."""
    flags = [flag.format(concurrency=concurrency) for flag in SETTINGS[setting]]
    command = [
        rclone_binary(),
        "copy",
        f"az:{container}",
        f"s3:{bucket}/{prefix.rstrip('/')}",
        "--config",
        str(config),
        "--s3-no-head",
        "--s3-no-check-bucket",
        "--retries",
        "1",
        "--low-level-retries",
        "3",
        *flags,
    ]
    started = time.monotonic()
    result = subprocess.run(command, env=clean_env(), capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        raise RuntimeError(f"rclone failed ({result.returncode}): {result.stderr[-2000:]}")
    return elapsed
