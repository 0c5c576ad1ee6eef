"""`azs3copy plan` against an account as Terraform leaves it (moto in-process) and an in-memory Azure: what it
lists, what it reads of the deployment, and the arithmetic of its counts and costs, worked out here from the
blobs put in."""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from azs3copy.cli import main as cli
from azs3copy.cli import plan
from azs3copy.functions import PIPELINE
from azs3copy.scale.prices import PRICES
from tests.support.fakes import MemoryBlobSource

REGION = "us-east-1"
SECRET = "azs3copy"
MiB = 1 << 20
RESERVED = {f: n for f, n in zip(PIPELINE, (1, 3, 40, 5, 120, 7), strict=True)}
MEMORY = {f: n for f, n in zip(PIPELINE, (256, 512, 1024, 256, 2048, 1024), strict=True)}
NEW = datetime(2024, 6, 1, tzinfo=UTC)
OLD = datetime(2020, 1, 1, tzinfo=UTC)  # before the begindate


@pytest.fixture
def source() -> MemoryBlobSource:
    """photos: 30 × 1000 B, 3 × 7 MiB (streamed in 5 MiB chunks), 2 × 13 MiB (3 parts of 5 MiB each), one
    archived, one too old, one excluded, one directory marker; docs: 4 × 2 MiB."""
    azure = MemoryBlobSource()
    for i in range(30):
        azure.put("photos", f"p/img-{i:03d}.jpg", bytes(1000), last_modified=NEW)
    for i in range(3):
        azure.put("photos", f"p/mid-{i}.bin", bytes(7 * MiB), last_modified=NEW)
    for i in range(2):
        azure.put("photos", f"p/zbig-{i}.bin", bytes(13 * MiB), last_modified=NEW)
    azure.put("photos", "p/cold.jpg", bytes(1000), last_modified=NEW, tier="Archive")
    azure.put("photos", "p/old.jpg", bytes(1000), last_modified=OLD)
    azure.put("photos", "p/x.tmp", bytes(1000), last_modified=NEW)
    azure.put("photos", "p/dir", b"", last_modified=NEW, is_directory=True)
    for i in range(4):
        azure.put("docs", f"p/doc-{i}.pdf", bytes(2 * MiB), last_modified=NEW)
    azure.put("other", "p/not-named.bin", bytes(1000), last_modified=NEW)  # a container the secret omits
    return azure


@pytest.fixture
def account(monkeypatch: pytest.MonkeyPatch, source: MemoryBlobSource) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AZS3COPY_LOCAL", raising=False)
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        role = session.client("iam").create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("handler.py", "")
        lam = session.client("lambda")
        env = {
            "AZS3COPY_SECRET_ID": SECRET,
            "AZS3COPY_BUCKET": "bucket",
            "AZS3COPY_LEDGER_TABLE": "ledger",
            "AZS3COPY_LARGE_THRESHOLD": str(12 * MiB),
            "AZS3COPY_PART_SIZE": str(5 * MiB),
            "AZS3COPY_CHUNK_SIZE": str(5 * MiB),
        }
        for function in PIPELINE:
            name = f"azs3copy-{function}"
            lam.create_function(
                FunctionName=name,
                Runtime="python3.12",
                Role=role,
                Handler="handler.lambda_handler",
                Code={"ZipFile": code.getvalue()},
                MemorySize=MEMORY[function],
                Timeout=120 if function == "largefile-initializer" else 900,
                Architectures=["arm64"],
                Environment={"Variables": env},
            )
            lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=RESERVED[function])
            lam.put_function_event_invoke_config(FunctionName=name, MaximumEventAgeInSeconds=7200)
        document = {
            "isactive": False,
            "begindate": "2024-01-01T00:00:00Z",
            "containers": ["photos", "docs"],
            "exclude": ["*.tmp"],
            "azure": {"account_url": "https://acct.blob.core.windows.net", "sas_token": "sv=1&sig=x"},
        }
        session.client("secretsmanager").create_secret(Name=SECRET, SecretString=json.dumps(document))
        monkeypatch.setattr(plan, "azure_source", lambda creds: source)
        yield


def run_plan(*args: str, out: io.StringIO | None = None) -> tuple[int, str]:
    out = out or io.StringIO()
    code = cli.main(["--region", REGION, "plan", *args], out=out)
    return code, out.getvalue()


def plan_json(*args: str) -> dict[str, Any]:
    code, text = run_plan("--json", *args)
    assert code == 0, text
    return dict(json.loads(text))


SMALL_PLAIN = 30 + 4  # single PutObjects: 30 × 1000 B in photos, 4 × 2 MiB in docs
CHUNKED, CHUNKS = 3, 3 * 2  # 7 MiB in chunks of 5 MiB
LARGE, PARTS = 2, 2 * 3  # 13 MiB in parts of 5 MiB
BATCHES = 2 + 1  # photos: 25 blobs, then 8; docs: 4
BYTES = 30 * 1000 + 3 * 7 * MiB + 2 * 13 * MiB + 4 * 2 * MiB


def test_plan_counts_what_the_settings_select_and_nothing_else(account: None) -> None:
    doc = plan_json()
    assert doc["selection"]["containers"] == ["photos", "docs"]
    listed = {
        row["name"]: (row["listed"], row["selected"], row["archived"]) for row in doc["listing"]["containers"]
    }
    # photos: 36 selected of 39 listed (the old one, the .tmp and the directory marker are not); docs: 4
    assert listed == {"photos": (39, 36, 1), "docs": (4, 4, 0)}
    assert doc["bytes"] == BYTES and doc["blobs"] == 40 and doc["work"]["not_copied"] == 1
    work = doc["work"]
    # photos: 25 × 1000 B, then 5 × 1000 B with the three 7 MiB (under 64 MiB); docs: one batch of four
    assert (work["batches"], work["large_blobs"], work["parts"], work["pages"]) == (3, LARGE, PARTS, 2)
    bins = {row["bin"]: (row["blobs"], row["bytes"]) for row in doc["histogram"]}
    assert bins == {
        "< 1 KiB": (31, 31 * 1000),
        "1 MiB – 4 MiB": (4, 4 * 2 * MiB),
        "4 MiB – 16 MiB": (5, 3 * 7 * MiB + 2 * 13 * MiB),
    }


def test_plan_reads_the_deployed_concurrency_memory_event_age_and_tuning(account: None) -> None:
    deployment = plan_json()["deployment"]
    assert deployment["concurrency"] == RESERVED and deployment["memory_mb"] == MEMORY
    assert deployment["max_event_age_s"] == 7200 and deployment["architecture"] == "arm64"
    assert deployment["timeout_s"]["largefile-initializer"] == 120
    assert (
        deployment["tuning"]["large_threshold"] == 12 * MiB and deployment["tuning"]["part_size"] == 5 * MiB
    )
    functions = plan_json()["prediction"]["functions"]
    assert {name: row["concurrency"] for name, row in functions.items()} == RESERVED


def test_plan_of_steps_fed_by_queues_lets_work_wait_as_long_as_the_queue_keeps_it(account: None) -> None:
    # The steps read SQS queues (14 days) and have no asynchronous invoke config: no 6-hour limit applies.
    boto3.client("lambda", region_name="us-east-1").delete_function_event_invoke_config(
        FunctionName="azs3copy-find-blobs"
    )
    assert plan_json()["deployment"]["max_event_age_s"] == 14 * 24 * 3600


def test_plan_prices_the_requests_the_copy_would_make(account: None) -> None:
    cost = {line["service"]: line for line in plan_json()["cost"]["lines"]}
    # verify=checksum: a PutObject per plain blob; create, chunks, complete per streamed one; create,
    # complete, ListParts and the parts per large one; a manifest part per batch and per large blob; a
    # listing per page; the report. Nothing is read back.
    puts = SMALL_PLAIN + 2 * CHUNKED + CHUNKS + 3 * LARGE + PARTS + BATCHES + LARGE + 2 + 1
    gets = 0
    assert cost["S3 requests"]["quantity"] == f"{puts:,} PUT/LIST, {gets:,} GET"
    assert cost["S3 requests"]["usd"] == pytest.approx(
        puts / 1000 * PRICES["s3_put_copy_post_list_per_1000"]
        + gets / 1000 * PRICES["s3_get_and_other_per_1000"],
        abs=1e-4,
    )
    assert cost["Azure egress"]["usd"] == 0  # the first 100 GB a month are free
    doc = plan_json()
    gb_seconds = sum(row["gb_seconds"] for row in doc["prediction"]["functions"].values())
    assert cost["Lambda compute"]["usd"] == pytest.approx(
        gb_seconds * PRICES["lambda_gb_second_arm64"], rel=1e-3, abs=1e-6
    )
    assert doc["cost"]["aws_usd"] == pytest.approx(
        sum(line["usd"] for line in doc["cost"]["lines"] if not line["service"].startswith("Azure")), abs=0.01
    )
    assert doc["cost"]["prices"]["as_of"] == PRICES["as_of"]


def test_a_price_file_changes_the_price_it_names(account: None, tmp_path: Path) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"s3_put_copy_post_list_per_1000": 1.0}))
    cost = {line["service"]: line["usd"] for line in plan_json("--prices", str(prices))["cost"]["lines"]}
    puts = SMALL_PLAIN + 2 * CHUNKED + CHUNKS + 3 * LARGE + PARTS + BATCHES + LARGE + 2 + 1
    assert cost["S3 requests"] == pytest.approx(puts / 1000 * 1.0, abs=1e-4)


def test_a_sample_is_said_to_be_one_and_is_not_scaled_unless_asked(account: None) -> None:
    doc = plan_json("--sample", "10")
    assert doc["listing"]["sampled_containers"] == ["photos"] and doc["listing"]["scaled_to"] is None
    assert doc["blobs"] == 10 + 4  # the first 10 selected of photos (cold.jpg, then img-000 to img-008)
    code, text = run_plan("--sample", "10")
    assert code == 0 and "SAMPLE    only the first 10 selected blob(s) of photos" in text


def test_a_sample_scaled_to_the_selections_size_says_so(account: None) -> None:
    doc = plan_json("--sample", "10", "--scale-to", "80")
    # docs was listed whole (4); photos' 10 stand for the other 76
    assert doc["listing"]["scale_factor"] == pytest.approx(7.6)
    assert doc["blobs"] == 80
    code, text = run_plan("--sample", "10", "--scale-to", "80")
    assert code == 0 and "scaled ×7.60 to 80 blobs (--scale-to): every count below is an estimate" in text


def test_the_text_plan_shows_sizes_duration_cost_and_the_price_table(account: None) -> None:
    code, text = run_plan()
    assert code == 0
    assert (
        "plan: 2 container(s): photos, docs; exclude *.tmp, modified at or after 2024-01-01T00:00:00Z" in text
    )
    assert "listed    43 blob(s)" in text and "the run would copy 39 blob(s)" in text
    assert "(1 archived: recorded, not copied)" in text
    assert re.search(r"< 1 KiB\s+31 blobs", text)
    assert "  duration  " in text and "on Lambda, set by" in text
    assert f"list prices of {PRICES['as_of']}, us-east-1" in text
    assert "  prices used:" in text and "lambda_gb_second_arm64 = 1.33334e-05" in text
    assert "  listing photos: " in text  # progress, one line at most every 5 s when not on a terminal


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_listing_shows_rich_progress(
    account: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    code, text = run_plan(out=Terminal())
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)
    assert code == 0 and "listing docs: 4 listed, 4 selected (8.0 MiB)" in shown, shown


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--scale-to", "100"), "--scale-to scales a sample up: give --sample N too"),
        (("--sample", "0"), "--sample must be at least 1"),
        (("--sample", "10", "--scale-to", "5"), "--scale-to 5 is fewer than the 14 blobs"),
    ],
)
def test_wrong_options_are_one_line(
    account: None, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], says: str
) -> None:
    code, _ = run_plan(*args)
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and says in err, err


def test_a_wrong_price_file_is_one_line(
    account: None, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    prices = tmp_path / "p.json"
    prices.write_text('{"lambda": 1}')
    code, _ = run_plan("--prices", str(prices))
    err = capsys.readouterr().err
    assert code == 1 and "unknown key(s) lambda" in err and err.count("\n") == 1
