"""`azs3copy --deployment FILE plan` against the local environment's parts: Azurite holding the blobs, moto
server holding the six functions (as Terraform deploys them: tag, memory, timeout, environment, reserved
concurrency) and the secret, and the local runtime serving them, whose workers per function are the
concurrency a local run has."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient

from azs3copy.cli import main as cli
from azs3copy.functions import PIPELINE
from devenv.emulators import Azurite, MotoServer
from devenv.runtime import Runtime, aws_client

REPO = Path(__file__).resolve().parents[2]
MiB = 1 << 20
RESERVED = dict(zip(PIPELINE, (1, 2, 12, 3, 9, 4), strict=True))
MEMORY = dict(zip(PIPELINE, (256, 512, 1024, 256, 1024, 1024), strict=True))


@dataclass
class Local:
    deployment: Path
    runtime: Runtime
    containers: dict[str, list[int]]  # the sizes of the blobs put in each container
    prefix: str


@pytest.fixture(scope="module")
def local(
    moto_server: MotoServer, azurite: Azurite, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Local]:
    prefix = f"pl{uuid.uuid4().hex[:6]}"
    tmp = tmp_path_factory.mktemp("plan")

    def client(service: str) -> Any:
        return aws_client(service, moto_server.endpoint, "us-east-1")

    containers = {f"{prefix}-small": [3000] * 40 + [2 * MiB] * 2, f"{prefix}-large": [24 * MiB, 1000]}
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    for name, sizes in containers.items():
        service.create_container(name)
        for index, size in enumerate(sizes):
            service.get_blob_client(name, f"b-{index:03d}.bin").upload_blob(b"x" * size)
        service.get_blob_client(name, "skip.tmp").upload_blob(b"excluded")
    secret = f"{prefix}-settings"
    document = {
        "isactive": False,
        "begindate": "2024-01-01T00:00:00Z",
        "containers": list(containers),
        "exclude": ["*.tmp"],
        "azure": {"connection_string": azurite.connection_string},
    }
    client("secretsmanager").create_secret(Name=secret, SecretString=json.dumps(document))
    role = client("iam").create_role(RoleName=f"{prefix}-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "# the runtime runs lambdas/<component>/ from the source tree\n")
    env = {
        "AZS3COPY_SECRET_ID": secret,
        "AZS3COPY_BUCKET": f"{prefix}-bucket",
        "AZS3COPY_LEDGER_TABLE": f"{prefix}-ledger",
        "AZS3COPY_LARGE_THRESHOLD": str(10 * MiB),
        "AZS3COPY_PART_SIZE": str(5 * MiB),
    }
    lam = client("lambda")
    for function in PIPELINE:
        name = f"{prefix}-{function}"
        lam.create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=role,
            Handler="handler.lambda_handler",
            Code={"ZipFile": code.getvalue()},
            MemorySize=MEMORY[function],
            Timeout=900,
            Environment={"Variables": env},
            Tags={"azs3copy:component": function},
        )
        lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=RESERVED[function])
    runtime = Runtime(
        moto_server.endpoint, lambdas_root=REPO / "lambdas", log_dir=tmp / "logs", name_prefix=prefix
    )
    port = runtime.start()
    record = tmp / "deployment.json"
    record.write_text(
        json.dumps(
            {
                "kind": "local",
                "region": "us-east-1",
                "aws_endpoint": moto_server.endpoint,
                "runtime_url": f"http://127.0.0.1:{port}",
                "secret_id": secret,
                "bucket": env["AZS3COPY_BUCKET"],
                "ledger_table": env["AZS3COPY_LEDGER_TABLE"],
                "function_names": {function: f"{prefix}-{function}" for function in PIPELINE},
                "report_prefix": "_azs3copy/reports/",
            }
        )
    )
    try:
        yield Local(record, runtime, containers, prefix)
    finally:
        runtime.stop()


def plan(local: Local, *args: str) -> dict[str, Any]:
    out = io.StringIO()
    code = cli.main(["--deployment", str(local.deployment), "plan", "--json", *args], out=out)
    assert code == 0, out.getvalue()
    return dict(json.loads(out.getvalue()))


def test_plan_lists_azurite_and_predicts_at_the_runtimes_concurrency(local: Local) -> None:
    doc = plan(local)
    sizes = [size for group in local.containers.values() for size in group]
    assert doc["where"] == "local"
    assert (doc["blobs"], doc["bytes"]) == (len(sizes), sum(sizes))  # skip.tmp excluded in both
    listed = {row["name"]: (row["listed"], row["selected"]) for row in doc["listing"]["containers"]}
    assert listed == {name: (len(group) + 1, len(group)) for name, group in local.containers.items()}
    bins = {row["bin"]: row["blobs"] for row in doc["histogram"]}
    assert bins == {"< 1 KiB": 1, "1 KiB – 4 KiB": 40, "1 MiB – 4 MiB": 2, "16 MiB – 64 MiB": 1}
    work = doc["work"]
    # small: 25 + 15 × 3000 B with the two 2 MiB in one batch; the other container's 1000 B; 24 MiB in 5 parts
    assert (work["batches"], work["large_blobs"], work["parts"]) == (3, 1, 5)
    workers = {row["component"]: row["workers"] for row in local.runtime.stats()["functions"].values()}
    assert doc["deployment"]["concurrency"] == workers
    assert all(workers[f] == min(RESERVED[f], local.runtime.cap) for f in PIPELINE)
    assert doc["deployment"]["memory_mb"] == MEMORY
    prediction = doc["prediction"]
    assert prediction["calibration"].startswith("local")
    assert 0 < prediction["seconds"] < 600 and prediction["binding"] in prediction["bounds_seconds"]
    assert doc["cost"]["aws_usd"] > 0 and doc["cost"]["prices"]["as_of"]


def test_a_sample_of_the_local_listing_is_said_to_be_one(local: Local) -> None:
    doc = plan(local, "--sample", "5")
    assert doc["listing"]["sampled_containers"] == [f"{local.prefix}-small"]
    assert doc["blobs"] == 5 + len(local.containers[f"{local.prefix}-large"])
