"""The fault suite's world: its own moto server and Azurite, a fault proxy in front of each, terraform/envs/local
applied to that moto server, and the local runtime playing Lambda for what Terraform deployed.

The functions reach the emulators through the proxies by their ordinary endpoint settings: S3 through
`AWS_ENDPOINT_URL_S3` (SNS, SQS, DynamoDB and Secrets Manager go straight to moto), Azure through the
BlobEndpoint of the connection string in the secret. The Azure account's key is a recognisable canary, so the
suite can look for it everywhere a secret must never appear.

At the end of the session the scenario table is written to build/reliability.md if the whole suite ran (every
scenario has a row, passed or not, and nothing was deselected), else to build/reliability-partial.md;
`make reliability-report` copies a whole run's table into docs/reliability.md.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from azure.storage.blob import BlobServiceClient
from botocore.exceptions import ClientError

from devenv.emulators import Azurite, MotoServer, read_list_sas
from devenv.event_sources import QueuePoller
from devenv.faultproxy import FaultProxy
from devenv.runtime import Runtime

REPO = Path(__file__).resolve().parents[2]
TF_ROOT = REPO / "terraform" / "envs" / "local"
TF_RC = REPO / ".local" / "terraformrc"
REGION = "us-east-1"
ACCOUNT = "canaryacct"
#: A valid base64 account key that anyone can recognise in a log line, a message or a state file.
CANARY = "AZS3COPYCANARY" + secrets.token_hex(25)
WRONG_KEY = "AZS3COPYCANARYWRONG" + "A" * 45
#: The parter's timeout in this deployment: short, so a stalled part upload is killed like on Lambda.
PARTER_TIMEOUT = 20
REPORT_PREFIX = "_azs3copy/reports/"

#: The table's rows, one per scenario that ran (passed or not), and the scenarios a whole run has.
ROWS: list[dict[str, Any]] = []
EXPECTED: list[str] = []
DESELECTED: list[str] = []


class Terraform:
    def __init__(self, work: Path, endpoint: str) -> None:
        self.work = work
        self.endpoint = endpoint
        self.state = work / "local.tfstate"
        self.env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
        self.env.update(
            TF_CLI_CONFIG_FILE=str(TF_RC),
            TF_IN_AUTOMATION="1",
            TF_DATA_DIR=str(work / "data"),
            TF_INPUT="0",
        )

    def run(self, *args: str, timeout: float = 420) -> str:
        result = subprocess.run(
            ["terraform", f"-chdir={TF_ROOT}", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert result.returncode == 0, (
            f"terraform {args[0]} failed:\n{result.stdout[-3000:]}\n{result.stderr}"
        )
        return result.stdout

    def vars(self) -> list[str]:
        return [f"-var=aws_endpoint={self.endpoint}"]


def aws(service: str, endpoint: str) -> Any:
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )
    return session.client(service, endpoint_url=endpoint)  # type: ignore[call-overload]


#: The signatures of the SAS tokens the suite put in the secret (the hygiene test looks for each).
SAS_SIGNATURES: list[str] = []


def connection_string(endpoint: str, key: str = CANARY) -> str:
    return f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={key};BlobEndpoint={endpoint}/{ACCOUNT};"


@dataclass
class Delivery:
    """Every step message delivered twice, as SNS's and SQS's at-least-once delivery may: when a step's poller
    receives a message, a copy (a new message with its own id) is put into the same queue, after its own
    random delay of up to 2 s (so out of order) or, with `at_once`, at once, for the function's other poller
    to run beside the first. A copy is not copied again."""

    seed: int = 7
    #: Copies waiting to be sent (none: the copies wait in the queues, which the runtime's idle check reads).
    pending: int = 0
    #: Messages sent twice since `on`.
    duplicated: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    saved: list[tuple[QueuePoller, Callable[..., None]]] = field(default_factory=list)

    def on(self, runtime: Runtime, *, at_once: bool = False) -> None:
        import random

        rng = random.Random(self.seed)
        self.duplicated = 0
        for poller in runtime.event_sources:
            original = poller.deliver

            def twice(
                sqs: Any,
                messages: list[dict[str, Any]],
                _deliver: Callable[..., None] = original,
                _url: str = poller.mapping.queue_url,
            ) -> None:
                for message in messages:
                    if "duplicate" in (message.get("MessageAttributes") or {}):
                        continue
                    with self.lock:
                        self.duplicated += 1
                        delay = 0 if at_once else rng.randint(0, 2)
                    sqs.send_message(
                        QueueUrl=_url,
                        MessageBody=message["Body"],
                        DelaySeconds=delay,
                        MessageAttributes={"duplicate": {"DataType": "String", "StringValue": "yes"}},
                    )
                _deliver(sqs, messages)

            self.saved.append((poller, original))
            poller.deliver = twice  # type: ignore[method-assign]

    def off(self, runtime: Runtime) -> None:
        for poller, original in self.saved:
            poller.deliver = original  # type: ignore[method-assign]
        self.saved.clear()


@dataclass
class World:
    moto: MotoServer
    azurite: Azurite
    s3_proxy: FaultProxy
    azure_proxy: FaultProxy
    terraform: Terraform
    outputs: dict[str, Any]
    runtime: Runtime
    log_dir: Path
    hygiene_queue: str
    azure: BlobServiceClient = field(init=False)
    delivery: Delivery = field(default_factory=Delivery)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.azure = BlobServiceClient.from_connection_string(
            connection_string(f"http://127.0.0.1:{self.azurite.port}")
        )

    def client(self, service: str) -> Any:
        return aws(service, self.moto.endpoint)

    @property
    def bucket(self) -> str:
        return str(self.outputs["bucket"])

    def name(self, directory: str) -> str:
        return str(self.outputs["function_names"][directory])

    def put_secret(self, document: dict[str, Any] | str) -> None:
        text = document if isinstance(document, str) else json.dumps(document)
        self.client("secretsmanager").put_secret_value(SecretId=self.outputs["secret_id"], SecretString=text)

    def configure(self, containers: list[str] | None, *, key: str = CANARY, **extra: Any) -> None:
        document: dict[str, Any] = {
            "isactive": True,
            "begindate": "2000-01-01",
            "azure": {"connection_string": connection_string(self.azure_proxy.endpoint, key)},
            **extra,
        }
        if containers is not None:
            document["containers"] = containers
        self.put_secret(document)

    def configure_sas(self, containers: list[str]) -> str:
        """The secret with an account SAS token (read and list, signed with the account's key) instead of a
        connection string; returns the token. Its signature goes on the hygiene test's list."""
        token = read_list_sas(ACCOUNT, CANARY, hours=2)
        signature = urllib.parse.parse_qs(token)["sig"][0]  # as it is, and as the token's URL carries it
        SAS_SIGNATURES.extend([signature, urllib.parse.quote(signature, safe="")])
        self.put_secret(
            {
                "isactive": True,
                "begindate": "2000-01-01",
                "azure": {"account_url": f"{self.azure_proxy.endpoint}/{ACCOUNT}", "sas_token": token},
                "containers": containers,
            }
        )
        return token

    def invocations(self) -> dict[str, int]:
        return {name: int(pool.stats["invocations"]) for name, pool in self.runtime.pools.items()}

    def launch(self) -> dict[str, Any]:
        """Invoke launch-qualification synchronously (like `aws lambda invoke`) with force."""
        reply: dict[str, Any] = self.runtime.pool_for(self.name("launch-qualification")).invoke(
            {"force": True}
        )
        return reply

    def fire_schedule(self) -> str:
        """Fire the deployed schedule, as EventBridge Scheduler does: an asynchronous invocation of
        launch-qualification with the schedule's input (Lambda's retry policy applies). Returns the request id."""
        [schedule] = self.runtime.schedules
        return self.runtime.fire(schedule)

    def wait_idle(self, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        quiet = 0
        while quiet < 3:
            if time.monotonic() > deadline:
                raise TimeoutError(f"still busy after {timeout:.0f} s: {self.runtime.stats()}")
            busy = self.delivery.pending > 0 or not self.runtime.idle()
            quiet = 0 if busy else quiet + 1
            time.sleep(0.5)

    def drain_dead_letters(self) -> list[dict[str, Any]]:
        sqs, found = self.client("sqs"), []
        for url in self.outputs["dlq_urls"].values():
            while True:
                messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
                if not messages:
                    break
                for message in messages:
                    found.append(json.loads(message["Body"]))
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        self.dead_letters.extend(found)
        return found

    def report(self, run_id: str) -> dict[str, Any] | None:
        """The run's report, or None if the run wrote none."""
        try:
            body = self.client("s3").get_object(Bucket=self.bucket, Key=f"{REPORT_PREFIX}{run_id}.json")[
                "Body"
            ]
        except ClientError as error:  # each client has its own exception classes: match on the code
            if error.response.get("Error", {}).get("Code") != "NoSuchKey":
                raise
            return None
        return dict(json.loads(body.read()))


def _apply_overrides(lambda_client: Any, s3_endpoint: str) -> None:
    """What this deployment changes after `terraform apply`: S3 through the proxy, credentials read on every
    invocation (the scenarios rewrite the secret), and a short parter timeout (its queue's visibility
    follows, below). (envs/local applies no
    TLS-only bucket policy: moto would deny every request with it, see terraform/envs/local/main.tf.)"""
    for function in lambda_client.list_functions()["Functions"]:
        variables = dict((function.get("Environment") or {}).get("Variables") or {})
        variables["AWS_ENDPOINT_URL_S3"] = s3_endpoint
        if "AZS3COPY_CREDENTIALS_TTL" in variables:
            variables["AZS3COPY_CREDENTIALS_TTL"] = "0"
        kwargs: dict[str, Any] = {"Environment": {"Variables": variables}}
        if function["FunctionName"].endswith("largefile-parter"):
            kwargs["Timeout"] = PARTER_TIMEOUT
        lambda_client.update_function_configuration(FunctionName=function["FunctionName"], **kwargs)


def _shorten_parter_visibility(sqs: Any, queue_url: str) -> None:
    """The parter's queue hides a message 6 x 900 s while it is worked on: with the timeout above, a killed
    parter's part would come back after 90 minutes. Three times the short timeout keeps the rule that a
    message is hidden longer than an invocation can run."""
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"VisibilityTimeout": str(3 * PARTER_TIMEOUT)})


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    if not TF_RC.exists() or not (REPO / "build" / "functions").is_dir():
        pytest.fail("run `make tf-config layers function-zips` first (make test-faults does)")
    work = tmp_path_factory.mktemp("faults")
    os.environ["AZURITE_ACCOUNTS"] = f"{ACCOUNT}:{CANARY}"
    try:
        azurite = Azurite.start(work)
    finally:
        del os.environ["AZURITE_ACCOUNTS"]
    with azurite, MotoServer.start(work) as moto:
        s3_proxy = FaultProxy(moto.endpoint, seed=11)
        azure_proxy = FaultProxy(f"http://127.0.0.1:{azurite.port}", seed=13)
        terraform = Terraform(work, moto.endpoint)
        terraform.run("init", "-input=false", "-no-color", f"-backend-config=path={terraform.state}")
        terraform.run("apply", "-auto-approve", "-input=false", "-no-color", *terraform.vars())
        outputs = {k: v["value"] for k, v in json.loads(terraform.run("output", "-json")).items()}
        _apply_overrides(aws("lambda", moto.endpoint), s3_proxy.endpoint)
        sns, sqs = aws("sns", moto.endpoint), aws("sqs", moto.endpoint)
        _shorten_parter_visibility(sqs, outputs["queue_urls"]["largefile-parter"])
        hygiene_queue = sqs.create_queue(QueueName="fault-suite-every-message")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=hygiene_queue, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        for topic in outputs["topic_arns"].values():
            sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        log_dir = work / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        # Every AWS call the functions' workers make (devenv.worker), for the least-privilege test.
        os.environ["AZS3COPY_LOCAL_CALL_LOG"] = str(log_dir / "aws-calls.jsonl")
        # The runtime's own records (retries, give-ups with the error) are scanned by the hygiene test too.
        runtime_log = logging.FileHandler(log_dir / "local-runtime.log", encoding="utf-8")
        runtime_log.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        logging.getLogger("devenv").addHandler(runtime_log)
        logging.getLogger("devenv").setLevel(logging.DEBUG)
        runtime = Runtime(
            moto.endpoint,
            region=REGION,
            lambdas_root=REPO / "lambdas",
            log_dir=log_dir,
            concurrency_cap=2,
            retry_delays=(0.5, 1.0),
        )
        runtime.start(0)
        world = World(
            moto, azurite, s3_proxy, azure_proxy, terraform, outputs, runtime, log_dir, hygiene_queue
        )
        try:
            yield world
        finally:
            runtime.stop()
            os.environ.pop("AZS3COPY_LOCAL_CALL_LOG", None)
            logging.getLogger("devenv").removeHandler(runtime_log)
            s3_proxy.close()
            azure_proxy.close()
            kept = REPO / ".local" / "faults-logs"
            shutil.rmtree(kept, ignore_errors=True)
            shutil.copytree(log_dir, kept, dirs_exist_ok=True)


# --- the table --------------------------------------------------------------------------------------------

COLUMNS = [
    ("scenario", "scenario"),
    ("blobs", "blobs"),
    ("copied", "copied"),
    ("failed", "recorded not copied"),
    ("not_listed", "not listed"),
    ("lost", "lost"),
    ("corrupt", "corrupt"),
    ("dlq", "DLQ records"),
    ("invocations", "invocations"),
    ("rerun", "next run copied"),
    ("seconds", "seconds"),
    ("fired", "faults fired"),
    ("report", "run report / error"),
    ("outcome", "outcome"),
]
KNOWN_DEFECT = "known defect (xfail)"


class KnownDefect(AssertionError):
    """The one invariant a scenario marked xfail is known to break; any other failure is a plain FAIL."""


def _cell(value: Any) -> str:
    return str(value).replace("|", "/").replace("\n", " ")


@contextmanager
def table_row(name: str, known_defect: str | None = None) -> Iterator[dict[str, Any]]:
    """A row of the table for one scenario, added however the scenario ends: the test fills it in as it
    goes, and its outcome is pass, FAIL (with the first line of the error) or the known defect."""
    started = time.monotonic()
    row: dict[str, Any] = {"scenario": name}
    try:
        yield row
    except BaseException as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        if known_defect is not None and isinstance(error, KnownDefect):
            row["outcome"] = f"{KNOWN_DEFECT}: {known_defect}"
        else:
            row["outcome"] = f"FAIL: {type(error).__name__}: {first[:160]}"
        raise
    else:
        row["outcome"] = "pass" if known_defect is None else "FAIL: passed, but is marked as a known defect"
    finally:
        row["seconds"] = round(time.monotonic() - started)
        ROWS.append(row)


def write_table(rows: list[dict[str, Any]], path: Path) -> None:
    lines = [
        "# Reliability: the fault and bad-input suite",
        "",
        "Written by `make reliability-report` (tests/faults/, from build/reliability.md) after a run of the whole",
        "suite; do not edit by hand (a run of part of the suite writes build/reliability-partial.md instead). Each row",
        "is one scenario run through the local runtime",
        "(terraform/envs/local on moto, handlers in warm worker processes with Lambda's timeout and retry policy, SQS",
        "on-failure destinations) with the fault proxy between the functions and the emulators.",
        "",
        "Columns: blobs in the scenario's container; copied: in S3 byte-identical after the faulty run (each must",
        "have one object version and no failure in the report, or the outcome names the problem); recorded not",
        "copied (failed, changed, vanished or needs-rehydration, with a reason, in the run report, and not in S3);",
        "not listed (the run or the container's listing stopped with an error the launch reply or the run report",
        "records, so those blobs were never looked at); lost (none of these); corrupt (an S3 object whose bytes",
        "differ from the blob's); records in the functions' dead-letter queues; function invocations; blobs the",
        "next run, without the fault, copied (it must be exactly the ones not copied); the proxy rules that acted,",
        "with how many requests each (every rule of a scenario must act at least once); the run report's counts or",
        "the launch's error; and the outcome: pass, FAIL with the first problem found, or a known defect (the",
        "scenario is marked xfail for exactly the problems named, and fails for any other).",
        "",
        "Every blob recorded `failed`, and every container whose listing failed, must be in a dead-letter queue:",
        "either in a `BlobFailed` record the function wrote itself (an error no retry can fix), matched by the",
        "exact blob id `<container>/<name>` (`<container>/` for a listing) and run id, or in Lambda's record of an",
        "event whose retries ran out, matched by the blob ids and run id of the event's message. Blobs recorded",
        "`changed` or `vanished` (overwritten or deleted in Azure after they were listed) and `needs-rehydration`",
        "are exempt: they are not failures of the copy, no dead-letter record is written for them, and the next",
        "run picks up the blob as it then is (the run report names them).",
        "",
        "Two scenarios stand for what hand-picked blobs miss. Duplicates at the same time: every SNS message",
        "delivered twice at once, so the two copies race for the ledger's claims, the initializer's upload and the",
        "recombinator's completion. Blobs real accounts hold: gzip, deflate and br stored bytes (copied as stored,",
        "still compressed, with their Content-Encoding), keys of exactly 1,024 UTF-8 bytes, names that extend each",
        "other past `#` (two large blobs), and a key of 1,025 bytes, which S3 cannot hold: that blob alone is",
        "recorded failed, by this run and the next, and no other blob of its container is held up.",
        "",
        "Generated inputs go further than these rows: tests/integration/test_generated_blobs.py (hypothesis, a",
        "fixed budget of examples in `make test`, many more with `make test-deep`) generates containers of block,",
        "append and page blobs with hostile names (unicode, `#`, `%`, `+`, `?`, spaces, `/`, trailing dots,",
        "names that are prefixes of each other, keys of 1,023 to 1,025 bytes), sizes at 0, 1, n-1, n and n+1 of",
        "the chunk, threshold and part sizes, stored gzip/deflate/br bytes, content settings and metadata, with",
        "duplicates delivered at the same time, and checks that every blob is in S3 byte for byte with its headers",
        "and metadata or recorded failed with a reason under its own name, that the run finishes and that nothing",
        "else is written.",
        "",
        "| " + " | ".join(title for _, title in COLUMNS) + " |",
        "|" + "|".join("---" for _ in COLUMNS) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(key, "")) for key, _ in COLUMNS) + " |")
    lost = sum(int(row.get("lost") or 0) for row in rows)
    corrupt = sum(int(row.get("corrupt") or 0) for row in rows)
    failed = sum(1 for row in rows if str(row.get("outcome", "")).startswith("FAIL"))
    known = sum(1 for row in rows if str(row.get("outcome", "")).startswith(KNOWN_DEFECT))
    lines += [
        "",
        f"{len(rows)} scenarios: {len(rows) - failed - known} passed, {failed} failed, {known} known defects "
        f"(xfail); {lost} blobs lost, {corrupt} corrupt.",
        "",
    ]
    path.write_text("\n".join(lines))


def pytest_deselected(items: list[pytest.Item]) -> None:
    DESELECTED.extend(item.nodeid for item in items)


def _not_whole(session: pytest.Session) -> str | None:
    """Why this session is not a run of the whole fault suite, or None if it is."""
    if DESELECTED:
        return f"{len(DESELECTED)} tests were deselected"
    here = Path(__file__).resolve().parent
    base = session.config.invocation_params.dir
    whole = False
    for arg in session.config.args:
        if "::" in str(arg):
            continue
        path = (base / str(arg)).resolve()
        whole = whole or here == path or here.is_relative_to(path)
    if not whole:
        return "tests/faults/ was not run as a whole"
    ran = {str(row["scenario"]) for row in ROWS}
    missing = [name for name in EXPECTED if name not in ran]
    if missing:
        return f"{len(missing)} of {len(EXPECTED)} scenarios did not run (first: {missing[0]})"
    return None


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not ROWS:
        return
    why = _not_whole(session)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    # Under build/, never docs/: a test run leaves the checkout as it found it. `make reliability-report`
    # copies a whole run's table into docs/reliability.md.
    if why is None:
        table = REPO / "build" / "reliability.md"
        message = f"{table.relative_to(REPO)} written ({len(ROWS)} scenarios): `make reliability-report` copies it into docs/"
    else:
        table = REPO / "build" / "reliability-partial.md"
        message = f"not a whole run ({why}); this run's table: {table.relative_to(REPO)}"
    table.parent.mkdir(exist_ok=True)
    write_table(ROWS, table)
    if reporter is not None:
        reporter.write_line(message)
