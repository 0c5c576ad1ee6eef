"""End to end on one machine: `up` (Azurite, moto server, terraform apply of envs/local, the local runtime),
blobs into Azurite, `azs3copy run --wait`, every object compared byte for byte with its blob, a second run
that copies nothing, a blob uploaded then arriving through its Event Grid event at the deployed function URL,
`down`. The environment lives in a temporary state directory, so a developer's own
`make up` in .local/ is left alone."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from azs3copy.cli import main as cli
from azs3copy.keys import object_key
from devenv.demo import TAGGED, Dataset, arrive_by_event, azurite_environment, latest_report, put_dataset
from devenv.emulators import REPO_ROOT
from devenv.environment import LocalPaths, down, process_alive, up
from devenv.runtime import aws_client

pytestmark = pytest.mark.slow
MiB = 1 << 20


@dataclass
class Local:
    paths: LocalPaths
    deployment: dict[str, Any]
    dataset: Dataset

    def cli(self, *args: str, env: Mapping[str, str] | None = None) -> tuple[int, str]:
        """The CLI in this process, in `env` in place of the environment (default: left as it is)."""
        out = io.StringIO()
        with pytest.MonkeyPatch.context() as patch:
            if env is not None:
                for name in set(os.environ) - set(env):
                    patch.delenv(name)
                for name, value in env.items():
                    patch.setenv(name, value)
            code = cli.main(["--deployment", str(self.paths.deployment), *args], out=out)
        return code, out.getvalue()

    def s3(self) -> Any:
        return aws_client("s3", self.deployment["aws_endpoint"], self.deployment["region"])


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    # What `make up` builds first (quick when up to date): the provider mirror config, layers, function zips.
    subprocess.run(["make", "-s", "tf-config", "layers", "function-zips"], cwd=REPO_ROOT, check=True)
    paths = LocalPaths(state_dir=tmp_path_factory.mktemp("local-env"))
    try:
        deployment = up(paths)
        assert up(paths) == deployment  # a second `up` finds it running and changes nothing
        dataset = put_dataset(
            deployment["azure"]["connection_string"], small=60, large=2, large_size=12 * MiB, seed=7
        )
        yield Local(paths, deployment, dataset)
    finally:
        down(paths)


def test_first_run_copies_every_blob_byte_for_byte(local: Local) -> None:
    # A shell that exports a service principal of its own, as many developers' do: the demo's credential wins.
    shell = {**os.environ, "AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c", "AZURE_CLIENT_SECRET": "s"}
    azurite = azurite_environment(local.deployment["azure"]["connection_string"], shell)
    assert local.cli("set-azure-credentials", "--check", env=azurite)[0] == 0
    assert local.cli("set-begindate", "2000-01-01")[0] == 0
    assert local.cli("enable")[0] == 0

    code, out = local.cli("run", "--wait", "--timeout", "240")
    assert code == 0, out
    report = latest_report(local.deployment)
    assert report["counts"]["copied"] == local.dataset.count
    assert report["bytes_copied"] == local.dataset.total_bytes

    s3, bucket = local.s3(), local.deployment["bucket"]
    for (container, name), digest in local.dataset.digests.items():
        body = s3.get_object(Bucket=bucket, Key=object_key("", container, name))["Body"].read()
        assert hashlib.sha256(body).hexdigest() == digest, f"{container}/{name}"
    for container in {container for container, _ in local.dataset.digests}:
        code, out = local.cli("verify", container)
        assert code == 0 and " 0 missing, 0 different" in out, out
        assert "and their index tags" in out, out
    container, name, tags = TAGGED
    held = s3.get_object_tagging(Bucket=bucket, Key=f"{container}/{name}")["TagSet"]
    assert {tag["Key"]: tag["Value"] for tag in held if tag["Key"] != "azs3copy-verified"} == tags


def test_second_run_copies_nothing(local: Local) -> None:
    code, out = local.cli("run", "--wait", "--timeout", "120")
    assert code == 0, out
    report = latest_report(local.deployment)
    assert report["bytes_copied"] == 0
    assert report["counts"]["copied"] == 0
    assert report["counts"]["skipped"] == local.dataset.count


def test_a_blob_uploaded_after_the_runs_arrives_through_its_event(local: Local) -> None:
    seconds = arrive_by_event(local.deployment)  # verified and byte-identical in S3, or None
    assert seconds is not None and seconds < 60
    code, out = local.cli("status", "--run", f"{datetime.now(UTC):%Y%m%d}-events")
    assert code == 0 and "copied" in out, out


def test_nothing_failed_on_the_way(local: Local) -> None:
    code, out = local.cli("dlq", "show")
    assert code == 0 and "no failed events" in out, out


def test_down_stops_every_process_it_started(local: Local) -> None:
    pids = dict(json.loads(local.paths.pids.read_text()))
    down(local.paths)
    assert not any(process_alive(name, pid) for name, pid in pids.items())
    assert not local.paths.deployment.exists()
    code, _ = local.cli("status")
    assert code == 1
    down(local.paths)  # twice is fine
