"""The six handlers copy through a service principal: the Entra stand-in signs it in, Azurite in OAuth mode
serves the blobs, moto server plays AWS. The bytes in S3 equal the bytes in Azure; a wrong secret stops the
run with an error that names the setting, and nothing is copied.

Neither the client secret, the wrong secret nor any access token the stand-in issued appears in a log record
(every logger at DEBUG, the Azure SDK's included), in what the test printed (the functions' structured log
lines among it), in an SNS message, in a dead-letter record or in the run report."""

from __future__ import annotations

import json
import logging
import os
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from aws_lambda_powertools import Logger

from azs3copy.backends.azure_auth import clear_client_cache
from azs3copy.errors import AzureAuthError
from devenv.emulators import MotoServer
from tests.support.oauth import CLIENT_ID, CLIENT_SECRET, STORAGE_SCOPE, OAuthWorld, oauth_world
from tests.support.pump import SnsPump, lambda_context, load_handler
from tests.support.stack import PART, THRESHOLD, Stack, handler_stack

WRONG_SECRET = "Wr0ng~secret.value_for-the-test"
#: The functions' Powertools logger: JSON lines to stdout, and its records propagate to caplog's handler.
FUNCTIONS_LOGGER = "azs3copy"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OAuthWorld]:
    with oauth_world(tmp_path_factory.mktemp("oauth-copy")) as started:
        yield started


@pytest.fixture(scope="module")
def dlq(moto_server: MotoServer) -> str:
    """The functions' dead-letter queue (`AZS3COPY_DLQ_URL`), where blobs failed for good are put."""
    sqs = boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
    ).client("sqs", endpoint_url=moto_server.endpoint)
    return str(sqs.create_queue(QueueName=f"sp-dlq-{uuid.uuid4().hex[:8]}")["QueueUrl"])


@pytest.fixture(scope="module")
def stack(moto_server: MotoServer, world: OAuthWorld, dlq: str) -> Iterator[Stack]:
    # What the local runtime gives a function that signs in to the stand-in: the system CAs plus the test CA.
    with handler_stack(
        moto_server,
        world.key_client(),
        world.azurite.connection_string,
        name="sp",
        extra_env={"REQUESTS_CA_BUNDLE": world.verify, "AZS3COPY_DLQ_URL": dlq},
    ) as built:
        Logger(
            service=FUNCTIONS_LOGGER
        )  # the handlers' logger, writing to this session's stdout, not a test's
        yield built
    clear_client_cache()


@pytest.fixture(autouse=True)
def cold_start(world: OAuthWorld) -> None:
    clear_client_cache()
    world.token_server.forget()


@dataclass
class Captured:
    caplog: pytest.LogCaptureFixture
    capsys: pytest.CaptureFixture[str]

    def places(self) -> dict[str, list[str]]:
        """Everything logged (each record with its arguments, extra fields and exception) and printed."""
        printed = self.capsys.readouterr()
        return {
            "log record": [record_text(record) for record in self.caplog.records],
            "printed": [printed.out, printed.err],
        }

    def start(self) -> None:
        """Forget what was captured so far: the test putting the secret in place logs it, the functions
        must not."""
        self.caplog.clear()
        self.capsys.readouterr()

    def azure_records(self) -> int:
        return sum(1 for record in self.caplog.records if record.name.startswith("azure"))

    def function_records(self) -> int:
        """Records of the package's own loggers. Powertools names a child logger after the service its
        module was first used under, so an earlier test in this process (the CLI has no service) can leave
        them outside the 'azs3copy' logger whose printed lines are captured: caplog sees them either way."""
        return sum(1 for record in self.caplog.records if ".azs3copy." in f".{record.name}.")


def record_text(record: logging.LogRecord) -> str:
    text = f"{record.name} {record.getMessage()} {json.dumps(record.__dict__, default=str)}"
    if record.exc_info:
        text += logging.Formatter().formatException(record.exc_info)
    return text


class CurrentStdout:
    """Writes to whatever `sys.stdout` is at the time: capsys replaces it in each phase of a test."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


@pytest.fixture
def captured(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> Iterator[Captured]:
    """Every logger at DEBUG into caplog (the functions' and the Azure SDK's included), and the functions'
    JSON log lines into capsys."""
    caplog.set_level(logging.DEBUG)
    for name in ("azure", "msal", FUNCTIONS_LOGGER):
        caplog.set_level(logging.DEBUG, logger=name)
    handler = getattr(logging.getLogger(FUNCTIONS_LOGGER), "powertools_handler", None)
    assert isinstance(handler, logging.StreamHandler), "the stack fixture set up the functions' logger"
    stream = handler.setStream(CurrentStdout())  # type: ignore[arg-type]  # into capsys, for this test
    try:
        yield Captured(caplog, capsys)
    finally:
        handler.setStream(stream)


def secret_values(world: OAuthWorld) -> dict[str, str]:
    values = {"client secret": CLIENT_SECRET, "wrong client secret": WRONG_SECRET}
    for number, token in enumerate(world.token_server.issued_tokens, start=1):
        values[f"access token {number}"] = token
        values[f"signature of access token {number}"] = token.rsplit(".", 1)[1]
    return values


def dead_letters(stack: Stack, queue: str) -> list[str]:
    bodies = []
    while messages := stack.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            bodies.append(message["Body"])
            stack.sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def assert_no_secret_in(places: dict[str, list[str]], world: OAuthWorld) -> None:
    found = [
        (where, name, text)
        for where, texts in places.items()
        for text in texts
        for name, value in secret_values(world).items()
        if value in text
    ]
    if not found:
        return
    raise AssertionError([(where, name, text[:300]) for where, name, text in found])


def pumped(pump: SnsPump, stack: Stack, queue: str) -> dict[str, list[str]]:
    """The SNS envelopes the handlers were given, and what was dead-lettered (by the functions, or as an
    event whose retries ran out)."""
    return {
        "SNS message": [json.dumps(envelope) for envelope in pump.envelopes],
        "dead-letter record": dead_letters(stack, queue)
        + [json.dumps({"function": f, "event": e, "error": error}) for f, e, error in pump.failures],
    }


def configure(stack: Stack, world: OAuthWorld, containers: list[str] | None, **azure: str) -> None:
    document: dict[str, Any] = {
        "isactive": True,
        "begindate": "2000-01-01",
        "azure": world.secret_azure(**azure),
    }
    if containers is not None:
        document["containers"] = containers
    stack.secrets.put_secret_value(SecretId=stack.secret_id, SecretString=json.dumps(document))


def new_container(stack: Stack, blobs: dict[str, bytes]) -> str:
    name = f"sp{uuid.uuid4().hex[:10]}"
    client = stack.azure.create_container(name)
    for blob, data in blobs.items():
        client.upload_blob(blob, data)
    return name


def test_small_and_large_blobs_copy_byte_exact_through_a_service_principal(
    stack: Stack, world: OAuthWorld, dlq: str, captured: Captured
) -> None:
    blobs = {"small.csv": b"id,value\n1,one\n" * 1000, "large.bin": os.urandom(3 * PART + 4321)}
    container = new_container(stack, blobs)
    configure(stack, world, [container])
    captured.start()
    pump = stack.pump()
    run_id = stack.launch()
    pump.drain()
    assert not pump.failures
    assert stack.assert_identical(container) == len(blobs)
    report = stack.report(run_id)
    assert report["counts"]["copied"] == 2 and report["ok"] is True
    asked = world.token_server.token_requests
    assert asked, "the handlers signed in through the token endpoint"
    assert {(r.status, r.client_id, r.scope) for r in asked} == {(200, CLIENT_ID, STORAGE_SCOPE)}
    assert len(asked) == 1, "one token for the warm container, reused by every handler call"

    places = {**captured.places(), **pumped(pump, stack, dlq), "run report": [json.dumps(report)]}
    assert world.token_server.issued_tokens and captured.azure_records(), "the checks below look somewhere"
    assert captured.function_records(), "the functions' log records were captured"
    assert len(places["SNS message"]) >= 5
    assert_no_secret_in(places, world)


def test_a_wrong_secret_fails_the_run_naming_the_setting_and_copies_nothing(
    stack: Stack, world: OAuthWorld, dlq: str, captured: Captured
) -> None:
    container = new_container(stack, {"small.csv": b"never copied", "large.bin": os.urandom(THRESHOLD + 1)})
    configure(stack, world, [container], client_secret=WRONG_SECRET)
    dead_letters(stack, dlq)
    captured.start()
    pump = stack.pump()
    run_id = stack.launch()  # the containers are named in the secret: the run starts, listing signs in
    pump.drain()
    assert stack.keys(container) == []
    assert not stack.open_uploads()
    report = stack.report(run_id)  # the run still ends, and its report says why
    assert report["ok"] is False and report["counts"]["failed"] == 1 and report["counts"]["copied"] == 0
    [failure] = report["failures"]
    assert failure["blob"] == f"{container}/"
    assert "AzureAuthError" in failure["reason"] and "azure.client_secret" in failure["reason"]
    assert pump.invocations["find-blobs"] == 1, "a refused sign-in is not retried"
    refused = world.token_server.token_requests
    assert [r.status for r in refused] == [401], "one sign-in, no retry inside the SDK either"

    places = {**captured.places(), **pumped(pump, stack, dlq), "run report": [json.dumps(report)]}
    [record] = places["dead-letter record"]  # the listing, failed for good, dead-lettered by find-blobs
    assert json.loads(record)["failures"][0]["blob"] == f"{container}/"
    assert captured.azure_records() and captured.function_records()
    assert_no_secret_in(places, world)


def test_a_wrong_secret_stops_the_launch_when_it_has_to_list_the_containers(
    stack: Stack, world: OAuthWorld, captured: Captured
) -> None:
    configure(stack, world, None, client_secret=WRONG_SECRET)
    captured.start()
    with pytest.raises(AzureAuthError, match=r"azure\.client_secret") as raised:
        load_handler("launch-qualification").lambda_handler(
            {"force": True}, lambda_context("launch-qualification")
        )
    assert len(world.token_server.token_requests) == 1
    places = {**captured.places(), "exception": [str(raised.value), repr(raised.value)]}
    assert captured.azure_records(), "the Azure SDK's refused sign-in was logged and looked at"
    assert_no_secret_in(places, world)


def test_a_wrong_secret_at_a_scheduled_launch_is_dead_lettered_once_and_not_raised_for_lambda_to_retry(
    stack: Stack, world: OAuthWorld, dlq: str, captured: Captured
) -> None:
    """The schedule invokes launch-qualification asynchronously: a raised error would be run twice more by
    Lambda against the same refusal. The refusal goes to the dead-letter queue instead, once."""
    configure(stack, world, None, client_secret=WRONG_SECRET)
    dead_letters(stack, dlq)
    captured.start()
    context = lambda_context("launch-qualification")
    reply = load_handler("launch-qualification").lambda_handler({"source": "schedule"}, context)
    assert reply["started"] is False and reply["errorType"] == "AzureAuthError", reply
    assert "azure.client_secret" in reply["error"]
    assert [r.status for r in world.token_server.token_requests] == [401], "one sign-in, no retry"
    [body] = dead_letters(stack, dlq)
    record = json.loads(body)
    assert record["requestContext"]["condition"] == "LaunchFailed"
    assert record["requestContext"]["requestId"] == context.aws_request_id
    assert record["requestPayload"] == {"source": "schedule"}
    assert record["responsePayload"]["errorType"] == "AzureAuthError"
    assert "azure.client_secret" in record["responsePayload"]["errorMessage"]
    places = {**captured.places(), "dead-letter record": [body], "reply": [json.dumps(reply)]}
    assert captured.function_records(), "the functions' log records were captured"
    assert_no_secret_in(places, world)
