"""The operator CLI against an account as Terraform leaves it (moto in-process), and its one-line errors.

Lambda invocations go to a fake Lambda (moto would need Docker to run a function) and `verify` reads a fake
Azure; the real pipeline, Azurite and the local environment end to end are in tests/e2e."""

from __future__ import annotations

import io
import json
import re
import sys
import time
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from azure.core.exceptions import HttpResponseError, ServiceRequestError
from botocore.exceptions import ClientError
from moto import mock_aws

from azs3copy.backends.dynamodb import DynamoLedger
from azs3copy.cli import enable, set_azure_credentials, verify
from azs3copy.cli import main as cli
from azs3copy.cli.set_azure_credentials import AZURE_ENV, azure_from_environment
from azs3copy.cli.target import Target
from azs3copy.errors import AzureAuthError, SourceChangedError
from azs3copy.functions import FUNCTIONS
from azs3copy.ledger import ListedBlob
from azs3copy.messages import BlobRef, DownloadTask, SourceBlob, encode
from azs3copy.transports import ListPage
from devenv.demo import azurite_environment
from devenv.emulators import free_port
from tests.support.aws import create_ledger_table

REGION = "us-east-1"
SECRET = "azs3copy"
BUCKET = "azs3copy-bucket"
TABLE = "azs3copy-ledger"
CONNECTION = (
    "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=c2VjcmV0a2V5;EndpointSuffix=core.windows.net"
)


class FakeLambda:
    """Records invocations; answers launch-qualification with `reply` (or an error)."""

    def __init__(self, real: Any = None) -> None:
        self.real = real
        self.calls: list[tuple[str, str, Any]] = []
        self.reply: dict[str, Any] = {"started": False, "reason": "isactive is false in the secret"}
        self.error: dict[str, Any] | None = None
        self.on_invoke: Any = None

    def __getattr__(self, name: str) -> Any:  # everything but invoke: moto's Lambda
        return getattr(self.real, name)

    def invoke(
        self, FunctionName: str, Payload: bytes, InvocationType: str = "RequestResponse"
    ) -> dict[str, Any]:
        self.calls.append((FunctionName, InvocationType, json.loads(Payload)))
        if self.on_invoke:
            self.on_invoke()
        if InvocationType == "Event":
            return {"StatusCode": 202, "Payload": io.BytesIO(b"")}
        if self.error:
            return {
                "StatusCode": 200,
                "FunctionError": "Unhandled",
                "Payload": io.BytesIO(json.dumps(self.error).encode()),
            }
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(self.reply).encode())}


@pytest.fixture
def account(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLambda]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    for name in (*AZURE_ENV, "AZS3COPY_LOCAL"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        role = session.client("iam").create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("handler.py", "")
        lam = session.client("lambda")
        env = {"AZS3COPY_SECRET_ID": SECRET, "AZS3COPY_BUCKET": BUCKET, "AZS3COPY_LEDGER_TABLE": TABLE}
        sqs = session.client("sqs")
        for component in FUNCTIONS:
            name = f"azs3copy-{component}"
            lam.create_function(
                FunctionName=name,
                Runtime="python3.12",
                Role=role,
                Handler="handler.lambda_handler",
                Code={"ZipFile": code.getvalue()},
                Environment={"Variables": env},
            )
            url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            lam.put_function_event_invoke_config(
                FunctionName=name,
                MaximumRetryAttempts=2,
                DestinationConfig={"OnFailure": {"Destination": arn}},
            )
        session.client("secretsmanager").create_secret(
            Name=SECRET, SecretString=json.dumps({"isactive": False, "begindate": "2024-01-01T00:00:00Z"})
        )
        session.client("s3").create_bucket(Bucket=BUCKET)
        create_ledger_table(session.client("dynamodb"), TABLE)
        fake = FakeLambda(lam)
        real_client = Target.client

        def client(self: Target, service: str) -> Any:
            return fake if service == "lambda" else real_client(self, service)

        monkeypatch.setattr(Target, "client", client)
        yield fake


def secret() -> dict[str, Any]:
    text = boto3.client("secretsmanager", region_name=REGION).get_secret_value(SecretId=SECRET)[
        "SecretString"
    ]
    return dict(json.loads(text))


def run_cli(*args: str, stdin: str = "") -> tuple[int, str]:
    out = io.StringIO()
    code = cli.main(["--region", REGION, *args], stdin=io.StringIO(stdin), out=out)
    return code, out.getvalue()


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("azs3copy: ") and "Traceback" not in err, err
    return err


# --- settings ---------------------------------------------------------------------------------------------


def test_enable_is_refused_until_azure_credentials_are_set(
    account: FakeLambda, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("enable")[0] == 1
    assert "set-azure-credentials" in one_line_error(capsys)
    assert secret()["isactive"] is False


def test_credentials_from_the_environment_then_enable_and_disable(
    account: FakeLambda, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", CONNECTION)
    code, out = run_cli("set-azure-credentials")
    assert code == 0 and "mode: connection-string" in out
    assert "c2VjcmV0a2V5" not in out + capsys.readouterr().err
    assert secret()["azure"] == {"connection_string": CONNECTION}
    assert run_cli("enable")[0] == 0 and secret()["isactive"] is True
    assert run_cli("disable")[0] == 0 and secret()["isactive"] is False


def test_service_principal_from_the_environment(account: FakeLambda, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AZURE_TENANT_ID": "tenant",
        "AZURE_CLIENT_ID": "client",
        "AZURE_CLIENT_SECRET": "s3cr3t-value",
        "AZURE_STORAGE_ACCOUNT_URL": "https://acct.blob.core.windows.net",
        "AZURE_AUTHORITY": "public",
    }.items():
        monkeypatch.setenv(name, value)
    code, out = run_cli("set-azure-credentials")
    assert code == 0 and "service-principal" in out and "s3cr3t-value" not in out
    assert secret()["azure"]["client_secret"] == "s3cr3t-value"
    assert secret()["azure"]["account_url"] == "https://acct.blob.core.windows.net"


def test_credentials_from_stdin(account: FakeLambda) -> None:
    document = {
        "azure": {"account_url": "https://acct.blob.core.windows.net", "sas_token": "?sv=2024&sig=abc"}
    }
    code, out = run_cli("set-azure-credentials", "--stdin", stdin=json.dumps(document))
    assert code == 0 and "mode: sas" in out and "sig=abc" not in out
    assert secret()["azure"]["sas_token"] == "?sv=2024&sig=abc"


@pytest.mark.parametrize(
    ("env", "stdin", "expected"),
    [
        ({}, None, "no Azure credentials in the environment"),
        (
            {"AZURE_STORAGE_CONNECTION_STRING": CONNECTION, "AZURE_STORAGE_SAS_TOKEN": "sv=1"},
            None,
            "more than one kind",
        ),
        ({}, "not json", "stdin is not a JSON object"),
        (
            {},
            '{"tenant_id": "t", "client_id": "c", "account_url": "https://a.blob.core.windows.net"}',
            "partial service principal",
        ),
    ],
)
def test_bad_credentials_are_one_line_and_nothing_is_written(
    account: FakeLambda,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    stdin: str | None,
    expected: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    args = ("set-azure-credentials", "--stdin") if stdin is not None else ("set-azure-credentials",)
    assert run_cli(*args, stdin=stdin or "")[0] == 1
    assert expected in one_line_error(capsys)
    assert "azure" not in secret()


def test_credentials_azure_refuses_are_one_line_and_nothing_is_written(
    account: FakeLambda, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Refusing:
        def list_containers(self) -> list[str]:
            raise AzureAuthError(
                "Azure refused the credentials (403 AuthenticationFailed): check azure.sas_token"
            )

    monkeypatch.setattr(set_azure_credentials, "azure_source", lambda creds: Refusing())
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_URL", "https://acct.blob.core.windows.net")
    monkeypatch.setenv("AZURE_STORAGE_SAS_TOKEN", "sv=2024&sig=WRONGSIGNATURE")
    assert run_cli("set-azure-credentials", "--check")[0] == 1
    err = one_line_error(capsys)
    assert "Azure refused the new credentials; nothing written" in err and "azure.sas_token" in err
    assert "WRONGSIGNATURE" not in err
    assert "azure" not in secret()


def test_credentials_aws_refuses_are_one_line(
    account: FakeLambda, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def refused(target: object) -> dict[str, Any]:
        error = {
            "Code": "InvalidClientTokenId",
            "Message": "The security token included in the request is invalid.",
        }
        raise ClientError({"Error": error}, "GetSecretValue")

    monkeypatch.setattr(enable, "read_secret", refused)
    assert run_cli("enable")[0] == 1
    err = one_line_error(capsys)
    assert "AWS refused the credentials (InvalidClientTokenId): The security token included" in err


def test_set_begindate_normalises_and_refuses_a_bad_date(
    account: FakeLambda, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("set-begindate", "2024-03-05")[0] == 0
    assert secret()["begindate"] == "2024-03-05T00:00:00Z"
    assert run_cli("set-begindate", "2024-02-30")[0] == 1
    assert "bad date '2024-02-30'" in one_line_error(capsys)
    assert secret()["begindate"] == "2024-03-05T00:00:00Z"


# --- runs -------------------------------------------------------------------------------------------------


def finished_run(state: str = "copied") -> str:
    """A finished run of two blobs: c/a.txt copied, c/b.txt ended in `state`."""
    failed = state != "copied"
    ledger = DynamoLedger(boto3.client("dynamodb", region_name=REGION), TABLE)
    run_id = f"20240101T000000Z-{int(time.time() * 1000) % 1000000:06d}"
    ledger.start_run(run_id, containers=["c"], begindate="2024-01-01", force=True, stale_after=60)
    listed = [
        ListedBlob(BlobRef("c", name, size, '"0x1"', datetime(2024, 1, 1, tzinfo=UTC)), f"c/{name}")
        for name, size in (("a.txt", 3), ("b.txt", 4))
    ]
    ledger.register_page(run_id, "c", 0, listed, [])
    ledger.finish_container(run_id, "c")
    ledger.finish(run_id, "c/a.txt", "copied", None, 3)
    ledger.finish(
        run_id,
        "c/b.txt",
        state,
        "AccessDeniedError: no" if failed else None,
        0 if failed else 4,
    )
    key = f"_azs3copy/reports/{run_id}.json"
    problems = [{"blob": "c/b.txt", "state": state, "reason": "AccessDeniedError: no"}] if failed else []
    report = {"run_id": run_id, "failures": problems, "failures_total": len(problems)}
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=BUCKET, Key=key, Body=json.dumps(report).encode()
    )
    ledger.mark_reported(run_id, key, time.time())
    return run_id


def test_status_shows_counts_bytes_and_failures_with_reasons(account: FakeLambda) -> None:
    code, out = run_cli("status")
    assert code == 0 and "no run yet" in out
    run_id = finished_run("failed")
    code, out = run_cli("status")
    assert code == 0
    assert f"run {run_id}: finished" in out
    assert "found     2: copied 1, failed 1" in out
    assert "3 B copied" in out
    assert "c/b.txt: AccessDeniedError: no" in out


def test_run_invokes_launch_qualification_and_explains_a_refusal(
    account: FakeLambda, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("run")[0] == 1
    assert "no run started: isactive is false" in one_line_error(capsys)
    assert account.calls == [("azs3copy-launch-qualification", "RequestResponse", {})]
    account.error = {"errorType": "RunInProgressError", "errorMessage": "run X has not finished"}
    assert run_cli("run")[0] == 1
    assert "--force" in one_line_error(capsys)
    account.error = None
    account.reply = {"started": True, "run_id": "R1", "containers": ["c"]}
    code, out = run_cli("run", "--force")
    assert code == 0 and "run R1 started" in out
    assert account.calls[-1][2] == {"force": True}


@pytest.mark.parametrize(
    ("state", "status", "result"),
    [
        ("copied", 0, None),
        ("failed", 1, "result: 1 blob(s) failed (exit 1)"),
        ("vanished", 3, "result: no blob failed, but 1 not copied: vanished 1 (exit 3;"),
        ("changed", 3, "result: no blob failed, but 1 not copied: changed 1 (exit 3;"),
        ("needs-rehydration", 3, "result: no blob failed, but 1 not copied: needs-rehydration 1 (exit 3;"),
    ],
)
def test_run_wait_exits_1_if_a_blob_failed_and_3_if_one_was_not_copied_without_failing(
    account: FakeLambda, state: str, status: int, result: str | None
) -> None:
    def start() -> None:
        account.reply = {"started": True, "run_id": finished_run(state), "containers": ["c"]}

    account.on_invoke = start
    code, out = run_cli("run", "--wait")
    assert code == status, out
    assert "report    s3://" in out
    if result is None:
        assert "result:" not in out
    else:
        assert out.rstrip().splitlines()[-1].startswith(result), out


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_run_wait_on_a_terminal_without_rich_shows_the_plain_progress(
    account: FakeLambda, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in ("rich", "rich.console", "rich.progress"):
        monkeypatch.setitem(sys.modules, module, None)  # as installed without the [cli] extra
    account.on_invoke = lambda: setattr(
        account, "reply", {"started": True, "run_id": finished_run(), "containers": ["c"]}
    )
    out = Terminal()
    code = cli.main(["--region", REGION, "run", "--wait"], out=out)
    assert code == 0
    assert "  2/2  found 2  copied 2  skipped 0  failed 0" in out.getvalue()


def test_run_wait_on_a_terminal_shows_a_progress_bar_with_the_counts(
    account: FakeLambda, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # a wide terminal: rich shortens what does not fit
    account.on_invoke = lambda: setattr(
        account, "reply", {"started": True, "run_id": finished_run(), "containers": ["c"]}
    )
    out = Terminal()
    code = cli.main(["--region", REGION, "run", "--wait"], out=out)
    assert code == 0
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())  # without the terminal's escapes
    assert "━" in shown, shown  # rich's bar
    assert "2/2" in shown and "found 2  copied 2  skipped 0  failed 0" in shown, shown
    assert "report    s3://" in shown


# --- dead-letter queues -----------------------------------------------------------------------------------


def failure_record(tag: str) -> str:
    message = {"v": 1, "kind": "find-blobs", "run_id": "R1", "container": tag, "marker": None, "page": 0}
    return json.dumps(
        {
            "version": "1.0",
            "timestamp": "2024-01-01T00:00:00.000Z",
            "requestContext": {
                "requestId": "req",
                "functionArn": f"arn:aws:lambda:{REGION}:123456789012:function:azs3copy-find-blobs:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": 3,
            },
            "requestPayload": {"Records": [{"Sns": {"Message": json.dumps(message)}}]},
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "responsePayload": {"errorType": "TransientError", "errorMessage": f"listing {tag} throttled"},
        }
    )


def test_dlq_show_lists_failed_events_without_consuming_them(account: FakeLambda) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.get_queue_url(QueueName="azs3copy-find-blobs-dlq")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody=failure_record("photos"))
    code, out = run_cli("dlq", "show")
    assert code == 0
    assert "find-blobs: 1 failed event(s)" in out
    assert "RetriesExhausted after 3 attempt(s)  find-blobs run R1 photos" in out
    assert "TransientError: listing photos throttled" in out
    code, again = run_cli("dlq", "show", "find-blobs")
    assert "find-blobs: 1 failed event(s)" in again and "photos" in again


def test_dlq_redrive_invokes_each_event_again_and_empties_the_queue(account: FakeLambda) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.get_queue_url(QueueName="azs3copy-find-blobs-dlq")["QueueUrl"]
    for tag in ("a", "b"):
        sqs.send_message(QueueUrl=url, MessageBody=failure_record(tag))
    code, out = run_cli("dlq", "redrive", "find-blobs")
    assert code == 0 and "redrove 2 event(s) to azs3copy-find-blobs" in out
    assert [(name, kind) for name, kind, _ in account.calls] == [
        (f"arn:aws:lambda:{REGION}:123456789012:function:azs3copy-find-blobs", "Event")
    ] * 2
    assert account.calls[0][2]["Records"][0]["Sns"]["Message"]
    assert "0 failed event(s)" in run_cli("dlq", "show", "find-blobs")[1]


def test_dlq_recorded_failures_are_shown_with_their_blobs_and_cleared_not_resent_by_redrive(
    account: FakeLambda,
) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.get_queue_url(QueueName="azs3copy-find-blobs-dlq")["QueueUrl"]
    record = json.loads(failure_record("photos"))
    record["requestContext"]["condition"] = "BlobFailed"
    record["responsePayload"] = {
        "errorType": "BlobFailed",
        "errorMessage": "1 blob(s) failed for good: denied",
    }
    record["failures"] = [{"run_id": "R1", "blob": "photos/", "reason": "AccessDeniedError: denied"}]
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(record))
    code, out = run_cli("dlq", "show", "find-blobs")
    assert code == 0 and "BlobFailed after 3 attempt(s)" in out and "failed: photos/" in out
    code, out = run_cli("dlq", "redrive", "find-blobs")
    assert code == 0 and "1 recorded failure(s) cleared" in out
    assert account.calls == []  # nothing sent again: the next run copies the blob
    assert "0 failed event(s)" in run_cli("dlq", "show", "find-blobs")[1]


def step_queue(component: str) -> tuple[str, str]:
    """The step's queue as Terraform makes it: redrive into its dead-letter queue, read by an event source
    mapping; its asynchronous invoke config is gone. (The queue URL, the dead-letter queue URL.)"""
    sqs, lam = boto3.client("sqs", region_name=REGION), boto3.client("lambda", region_name=REGION)
    name = f"azs3copy-{component}"
    dlq = sqs.get_queue_url(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(
        QueueName=f"{name}-queue",
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3})},
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, BatchSize=1)
    # In-process moto would invoke the function itself (through Docker) for each message sent to the queue.
    from moto.sqs.models import sqs_backends

    sqs_backends["123456789012"][REGION].queues[f"{name}-queue"].lambda_event_source_mappings.clear()
    lam.delete_function_event_invoke_config(FunctionName=name)
    return url, dlq


def test_dlq_shows_a_task_whose_attempts_ran_out_with_its_blobs_and_their_reasons_and_redrives_it_to_its_queue(
    account: FakeLambda,
) -> None:
    url, dlq = step_queue("download")
    sqs = boto3.client("sqs", region_name=REGION)
    when = datetime(2024, 1, 1, tzinfo=UTC)
    task = encode(
        DownloadTask("R7", tuple(BlobRef("photos", n, 10, "0x1", when) for n in ("a.jpg", "b.jpg")))
    )
    sqs.send_message(QueueUrl=dlq, MessageBody=task)  # as the redrive policy moves it: the body unchanged
    ledger = DynamoLedger(boto3.client("dynamodb", region_name=REGION), TABLE)
    ledger.finish("R7", "photos/b.jpg", "failed", "TransientError: Azure 503 ServerBusy", 0)
    code, out = run_cli("dlq", "show", "download")
    assert code == 0 and "download: 1 failed event(s)" in out
    assert "attempts ran out  download run R7 2 blob(s): photos/a.jpg, photos/b.jpg" in out
    assert "photos/b.jpg: failed: TransientError: Azure 503 ServerBusy" in out
    code, out = run_cli("dlq", "redrive", "download")
    assert code == 0 and "download: redrove 1 task(s) back to its queue" in out, out
    [back] = sqs.receive_message(QueueUrl=url).get("Messages", [])
    assert back["Body"] == task and account.calls == []  # SQS delivers it; nothing invoked by hand
    assert "0 failed event(s)" in run_cli("dlq", "show", "download")[1]


def test_dlq_of_an_unknown_function_is_one_line(
    account: FakeLambda, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("dlq", "show", "nope")[0] == 1
    assert "unknown function 'nope'" in one_line_error(capsys)


# --- errors before anything runs --------------------------------------------------------------------------


def test_missing_local_environment_says_make_up(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--deployment", str(tmp_path / "deployment.json"), "status"]) == 1
    assert "make up" in one_line_error(capsys)


def test_stopped_local_environment_says_make_up(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "deployment.json"
    dead = f"http://127.0.0.1:{free_port()}"
    file.write_text(json.dumps({"aws_endpoint": dead, "runtime_url": dead, "region": REGION}))
    assert cli.main(["--deployment", str(file), "status"]) == 1
    assert "not running" in one_line_error(capsys)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{}", "is not a deployment record `make up` wrote (no aws_endpoint, region)"),
        ("[1", "is not valid JSON"),
    ],
)
def test_a_damaged_deployment_record_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    file = tmp_path / "deployment.json"
    file.write_text(text)
    assert cli.main(["--deployment", str(file), "status"]) == 1
    err = one_line_error(capsys)
    assert expected in err and "make up" in err


def test_an_unexpected_error_is_still_one_line(
    account: FakeLambda, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(target: object, args: object, out: object) -> int:
        raise KeyError("counts")

    monkeypatch.setitem(cli.COMMANDS, "status", broken)
    assert run_cli("status")[0] == 1
    assert "unexpected KeyError: 'counts' (AZS3COPY_DEBUG=1 shows where)" in one_line_error(capsys)
    monkeypatch.setenv("AZS3COPY_DEBUG", "1")
    with pytest.raises(KeyError):
        run_cli("status")


def test_no_aws_credentials_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert cli.main(["--region", REGION, "status"]) == 1
    assert "no AWS credentials" in one_line_error(capsys)


@pytest.mark.parametrize("variable", ["AWS_REGION", "AWS_DEFAULT_REGION"])
def test_the_region_is_taken_from_aws_region_or_aws_default_region(
    account: FakeLambda, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv(variable, REGION)
    out = io.StringIO()
    assert cli.main(["status"], out=out) == 0
    assert "no run yet" in out.getvalue()


def test_no_region_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    assert cli.main(["status"]) == 1
    assert "no AWS region: pass --region or set AWS_REGION" in one_line_error(capsys)


def test_an_account_without_the_deployment_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        assert cli.main(["--region", REGION, "--prefix", "other", "status"]) == 1
    assert "no function other-find-blobs in region us-east-1" in one_line_error(capsys)


# --- verify -----------------------------------------------------------------------------------------------


class FakeAzure:
    """The AzureBlobSource surface `verify` uses: one listing page and ranged reads of each blob's bytes."""

    def __init__(self, blobs: dict[str, tuple[bytes, datetime]], read_error: Exception | None = None) -> None:
        self.blobs = blobs
        self.read_error = read_error

    def list_page(
        self, container: str, prefix: str, marker: str | None, page_size: int, delimiter: str | None = None
    ) -> ListPage:
        return ListPage(
            [
                SourceBlob(BlobRef(container, name, len(data), f'"{name}"', modified))
                for name, (data, modified) in sorted(self.blobs.items())
                if name.startswith(prefix)
            ],
            None,
        )

    def read_range(self, blob: BlobRef, offset: int, length: int) -> bytes:
        if self.read_error is not None:
            raise self.read_error
        return self.blobs[blob.name][0][offset : offset + length]


NEW = datetime(2024, 6, 1, tzinfo=UTC)
OLD = datetime(2020, 1, 1, tzinfo=UTC)  # before the secret's begindate (2024-01-01)


def with_azure(monkeypatch: pytest.MonkeyPatch, azure: FakeAzure, objects: dict[str, bytes]) -> None:
    client = boto3.client("secretsmanager", region_name=REGION)
    document = {**secret(), "azure": {"connection_string": CONNECTION}}
    client.put_secret_value(SecretId=SECRET, SecretString=json.dumps(document))
    for key, data in objects.items():
        boto3.client("s3", region_name=REGION).put_object(Bucket=BUCKET, Key=key, Body=data)
    monkeypatch.setattr(verify, "azure_source", lambda creds: azure)


def test_verify_tells_an_object_of_an_unselected_blob_from_one_with_no_blob_in_azure(
    account: FakeLambda, monkeypatch: pytest.MonkeyPatch
) -> None:
    azure = FakeAzure({"new.txt": (b"new bytes", NEW), "old.txt": (b"old bytes", OLD)})
    objects = {"c/new.txt": b"new bytes", "c/old.txt": b"old bytes", "c/gone.txt": b"deleted in Azure"}
    with_azure(monkeypatch, azure, objects)
    code, out = run_cli("verify", "c")
    assert code == 0, out
    assert "1 identical, 0 missing, 0 different, 1 extra in S3" in out
    assert (
        "(1 blob(s) not selected by the settings, not compared, 1 of them in S3; --all compares them)" in out
    )
    assert f"extra      s3://{BUCKET}/c/gone.txt (no such blob in Azure)" in out
    assert f"unselected s3://{BUCKET}/c/old.txt (the blob is in Azure" in out
    assert "c/old.txt (no such blob" not in out
    code, out = run_cli("verify", "c", "--all")
    assert code == 0 and "2 identical, 0 missing, 0 different, 1 extra in S3" in out, out


def test_verify_lists_missing_and_different_objects_and_exits_1(
    account: FakeLambda, monkeypatch: pytest.MonkeyPatch
) -> None:
    azure = FakeAzure(
        {
            "same.txt": (b"identical bytes", NEW),
            "sub/absent.txt": (b"never copied", NEW),
            "sub/flipped.bin": (b"abcdefgh", NEW),
            "sub/short.bin": (b"twelve bytes", NEW),
        }
    )
    objects = {
        "c/same.txt": b"identical bytes",
        "c/sub/flipped.bin": b"abcdefgX",  # the same size, one byte differs
        "c/sub/short.bin": b"twelve",
    }
    with_azure(monkeypatch, azure, objects)
    code, out = run_cli("verify", "c")
    assert code == 1, out
    assert (
        "4 blob(s) compared by SHA-256 of every byte read from both sides and their index tags: 1 identical, 1 missing, "
        in out
    )
    assert "2 different, 0 extra in S3" in out
    assert f"missing    s3://{BUCKET}/c/sub/absent.txt" in out
    assert f"different  s3://{BUCKET}/c/sub/flipped.bin: bytes differ (SHA-256 " in out
    assert f"different  s3://{BUCKET}/c/sub/short.bin: size 6 in S3, 12 in Azure" in out
    assert "same.txt" not in out.split("\n", 1)[1]  # an identical object is not listed

    code, out = run_cli("verify", "c/sub/")  # CONTAINER/PREFIX compares only what is under the prefix
    assert code == 1, out
    assert "3 blob(s) compared" in out and "0 identical, 1 missing, 2 different, 0 extra in S3" in out

    code, out = run_cli("verify", "c/same")
    assert code == 0 and "1 blob(s) compared" in out and "1 identical, 0 missing, 0 different" in out, out


def test_verify_an_azure_error_mid_read_is_one_line_without_the_sas_signature(
    account: FakeLambda, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    error = HttpResponseError(
        message="Value for one of the query parameters specified in the request URI is invalid: "
        "https://acct.blob.core.windows.net/c/new.txt?sv=2024-08-04&sig=SECRET&se=2030\nRequestId:1"
    )
    error.status_code = 400
    with_azure(monkeypatch, FakeAzure({"new.txt": (b"new bytes", NEW)}, error), {"c/new.txt": b"new bytes"})
    assert run_cli("verify", "c")[0] == 1
    err = one_line_error(capsys)
    assert "SECRET" not in err
    assert "Azure Storage refused the request (read c/new.txt)" in err


def test_verify_reports_a_blob_overwritten_while_it_was_compared_as_changed_not_identical(
    account: FakeLambda, monkeypatch: pytest.MonkeyPatch
) -> None:
    changed = SourceChangedError("c/new.txt changed after it was listed")
    with_azure(monkeypatch, FakeAzure({"new.txt": (b"new bytes", NEW)}, changed), {"c/new.txt": b"new bytes"})
    code, out = run_cli("verify", "c")
    assert code == 1 and "0 identical, 0 missing, 1 different" in out, out
    assert f"different  s3://{BUCKET}/c/new.txt: the blob changed in Azure while it was compared" in out


def test_an_unclassified_azure_error_is_one_line_without_the_sas_signature(
    account: FakeLambda, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def boom(target: Target, args: Any, out: Any) -> int:
        raise ServiceRequestError("connection reset\nGET https://acct.blob.core.windows.net/c?sig=SECRET")

    monkeypatch.setitem(cli.COMMANDS, "status", boom)
    assert run_cli("status")[0] == 1
    err = one_line_error(capsys)
    assert "SECRET" not in err and "the connection to Azure failed" in err


# --- the demo's environment -------------------------------------------------------------------------------


def test_the_demo_environment_holds_only_azurites_credential_whatever_the_shell_exports() -> None:
    shell = {
        "PATH": "/usr/bin",
        "AZURE_TENANT_ID": "tenant",
        "AZURE_CLIENT_ID": "client",
        "AZURE_CLIENT_SECRET": "s3cr3t",
        "AZURE_STORAGE_ACCOUNT_URL": "https://acct.blob.core.windows.net",
        "AZURE_STORAGE_SAS_TOKEN": "sv=1",
    }
    env = azurite_environment(CONNECTION, shell)
    assert env["PATH"] == "/usr/bin"
    assert azure_from_environment(env) == {"connection_string": CONNECTION}
    assert shell["AZURE_CLIENT_SECRET"] == "s3cr3t"  # the caller's mapping is left alone
