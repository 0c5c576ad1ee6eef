"""The local runtime against moto server: a function deployed the way Terraform deploys one (tag, environment,
timeout, reserved concurrency, event invoke config with an SQS on-failure destination, SNS subscription,
EventBridge Scheduler schedules), run by the runtime with the probe handler in
tests/integration/runtime_lambdas/probe."""

from __future__ import annotations

import io
import json
import os
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from devenv.emulators import MotoServer
from devenv.runtime import Runtime, aws_client

LAMBDAS = Path(__file__).parent / "runtime_lambdas"
TIMEOUT = 2
EVENT_AGE = 1  # the aged function's maximum_event_age (Lambda's least is 60 s: too long to wait for here)
NIGHTLY_INPUT = {"tag": "scheduled", "source": "schedule"}


@dataclass
class Deployed:
    runtime: Runtime
    function: str
    topic: str
    dlq: str
    probe_log: Path
    moto: MotoServer
    invoke_url: str
    aged_function: str = ""
    aged_dlq: str = ""
    schedules: dict[str, str] = field(default_factory=dict)  # role ("nightly", "soon", "off") → name

    def client(self, service: str) -> Any:
        return aws_client(service, self.moto.endpoint, "us-east-1")

    def post(self, path: str) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(f"{self.invoke_url}{path}", data=b"", method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    def lambda_client(self) -> Any:
        return aws_client("lambda", self.invoke_url, "us-east-1")

    def calls(self) -> list[dict[str, Any]]:
        if not self.probe_log.exists():
            return []
        return [json.loads(line) for line in self.probe_log.read_text().splitlines() if line.strip()]

    def calls_tagged(self, tag: str) -> list[dict[str, Any]]:
        return [call for call in self.calls() if call["ask"].get("tag") == tag]

    def publish(self, **ask: Any) -> None:
        self.client("sns").publish(TopicArn=self.topic, Message=json.dumps(ask))

    def dead_letters(self, queue: str | None = None) -> list[dict[str, Any]]:
        sqs = self.client("sqs")
        found = []
        while True:
            messages = sqs.receive_message(QueueUrl=queue or self.dlq, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not messages:
                return found
            for message in messages:
                found.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=queue or self.dlq, ReceiptHandle=message["ReceiptHandle"])


def wait_for(condition: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not true within {timeout} s")


@pytest.fixture(scope="module")
def deployed(moto_server: MotoServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    prefix = f"rt{uuid.uuid4().hex[:6]}"
    tmp = tmp_path_factory.mktemp("runtime")
    endpoint = moto_server.endpoint

    def client(service: str) -> Any:
        return aws_client(service, endpoint, "us-east-1")

    role = client("iam").create_role(RoleName=f"{prefix}-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "# the runtime runs tests/integration/runtime_lambdas/probe\n")
    sqs = client("sqs")

    def probe(name: str, timeout: int, reserved: int, invoke_config: dict[str, Any]) -> tuple[str, str]:
        """A probe function with an SQS on-failure destination: (function ARN, dead-letter queue URL)."""
        arn = client("lambda").create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=role,
            Handler="handler.lambda_handler",
            Code={"ZipFile": code.getvalue()},
            Timeout=timeout,
            MemorySize=256,
            Environment={"Variables": {"PROBE_SETTING": "from-moto", "PROBE_LOG": str(tmp / "probe.jsonl")}},
            Tags={"azs3copy:component": "probe"},
        )["FunctionArn"]
        client("lambda").put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=reserved)
        dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        # botocore refuses an event age under 60 s before sending; moto stores what it is sent
        unchecked = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
        ).client("lambda", endpoint_url=endpoint, config=Config(parameter_validation=False))
        unchecked.put_function_event_invoke_config(
            FunctionName=name, DestinationConfig={"OnFailure": {"Destination": dlq_arn}}, **invoke_config
        )
        return arn, dlq

    name = f"{prefix}-probe"
    function_arn, dlq = probe(name, TIMEOUT, 2, {"MaximumRetryAttempts": 2})
    client("lambda").create_function_url_config(FunctionName=name, AuthType="NONE")
    aged = f"{prefix}-aged"
    _, aged_dlq = probe(aged, 10, 1, {"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": EVENT_AGE})
    topic = client("sns").create_topic(Name=f"{prefix}-topic")["TopicArn"]
    client("sns").subscribe(TopicArn=topic, Protocol="lambda", Endpoint=function_arn)

    scheduler = client("scheduler")
    soon = (datetime.now(UTC) + timedelta(seconds=20)).strftime("%Y-%m-%dT%H:%M:%S")
    schedules = {
        "nightly": ("cron(0 2 * * ? *)", "ENABLED", NIGHTLY_INPUT, function_arn),
        "soon": (f"at({soon})", "ENABLED", {"tag": "at-schedule"}, function_arn),
        "off": ("rate(1 minute)", "DISABLED", {"tag": "disabled-schedule"}, function_arn),
    }
    # Later schedules (another deployment's) list first, 50 to a page: ours are on the second page.
    elsewhere = f"arn:aws:lambda:us-east-1:123456789012:function:{prefix}-elsewhere"
    decoys = {f"decoy-{i:02d}": ("rate(1 day)", "ENABLED", {}, elsewhere) for i in range(50)}
    for role_name, (expression, state, event, target) in {**schedules, **decoys}.items():
        scheduler.create_schedule(
            Name=f"{prefix}-{role_name}",
            ScheduleExpression=expression,
            FlexibleTimeWindow={"Mode": "OFF"},
            State=state,
            Target={"Arn": target, "RoleArn": role, "Input": json.dumps(event)},
        )
    runtime = Runtime(
        endpoint, lambdas_root=LAMBDAS, log_dir=tmp / "logs", retry_delays=(0.1, 0.2), name_prefix=prefix
    )
    port = runtime.start()
    try:
        yield Deployed(
            runtime,
            name,
            topic,
            dlq,
            tmp / "probe.jsonl",
            moto_server,
            f"http://127.0.0.1:{port}",
            aged_function=aged,
            aged_dlq=aged_dlq,
            schedules={role_name: f"{prefix}-{role_name}" for role_name in schedules},
        )
    finally:
        runtime.stop()
        for role_name in {**schedules, **decoys}:
            scheduler.delete_schedule(Name=f"{prefix}-{role_name}")


def test_the_runtime_reads_what_was_deployed(deployed: Deployed) -> None:
    spec = deployed.runtime.functions[deployed.function]
    assert (spec.component, spec.handler, spec.timeout, spec.memory) == (
        "probe",
        "handler.lambda_handler",
        2,
        256,
    )
    assert spec.reserved == 2 and deployed.runtime.pools[deployed.function].size == 2
    assert spec.max_retries == 2 and spec.on_failure and spec.on_failure.endswith("-probe-dlq")
    assert len(deployed.runtime.subscriptions) == 1
    assert deployed.runtime.functions[deployed.aged_function].max_event_age == EVENT_AGE


def test_an_sns_message_reaches_the_handler_as_lambdas_sns_event_with_the_functions_environment(
    deployed: Deployed,
) -> None:
    deployed.publish(tag="hello")
    call = wait_for(lambda: deployed.calls_tagged("hello"))[0]
    assert call["event_source"] == "aws:sns"
    assert call["env"] == {
        "PROBE_SETTING": "from-moto",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": deployed.moto.endpoint,
        "AWS_LAMBDA_FUNCTION_NAME": deployed.function,
    }
    assert call["function_name"] == deployed.function and call["memory"] == 256
    assert 0 < call["remaining_ms"] <= TIMEOUT * 1000


def test_a_failing_event_is_retried_with_one_request_id_then_lands_in_the_on_failure_queue(
    deployed: Deployed,
) -> None:
    deployed.publish(tag="doomed", fail=True)
    records = wait_for(deployed.dead_letters, timeout=30)
    calls = deployed.calls_tagged("doomed")
    assert len(calls) == 3  # the first attempt and maximum_retry_attempts = 2
    assert len({call["request_id"] for call in calls}) == 1
    assert len(records) == 1
    record = records[0]
    assert record["version"] == "1.0"
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestContext"]["requestId"] == calls[0]["request_id"]
    assert record["requestContext"]["functionArn"].endswith(f":function:{deployed.function}:$LATEST")
    assert record["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    assert record["responsePayload"]["errorType"] == "RuntimeError"
    assert "asked to fail: doomed" in record["responsePayload"]["errorMessage"]
    sns = record["requestPayload"]["Records"][0]["Sns"]
    assert json.loads(sns["Message"]) == {"tag": "doomed", "fail": True}
    assert sns["TopicArn"] == deployed.topic and "SigningCertUrl" in sns and "UnsubscribeUrl" in sns


def test_a_duplicate_delivery_is_a_new_event_with_a_fresh_request_id(deployed: Deployed) -> None:
    deployed.publish(tag="twice")
    deployed.publish(tag="twice")
    calls = wait_for(lambda: len(deployed.calls_tagged("twice")) == 2 and deployed.calls_tagged("twice"))
    assert calls[0]["request_id"] != calls[1]["request_id"]


def test_an_invocation_past_the_timeout_is_killed_and_reported_as_task_timed_out(deployed: Deployed) -> None:
    started = time.monotonic()
    response = deployed.lambda_client().invoke(
        FunctionName=deployed.function, Payload=b'{"tag": "slow", "sleep": 30}'
    )
    elapsed = time.monotonic() - started
    payload = json.loads(response["Payload"].read())
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Sandbox.Timedout"
    assert f"Task timed out after {TIMEOUT:.2f} seconds" in payload["errorMessage"]
    assert TIMEOUT <= elapsed < TIMEOUT + 5
    pid = deployed.calls_tagged("slow")[0]["pid"]
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    after = deployed.lambda_client().invoke(FunctionName=deployed.function, Payload=b'{"tag": "after"}')
    assert "FunctionError" not in after and json.loads(after["Payload"].read())["tag"] == "after"


def test_the_invoke_api_answers_like_lambda(deployed: Deployed) -> None:
    client = deployed.lambda_client()
    response = client.invoke(FunctionName=deployed.function, Payload=b'{"tag": "sync"}')
    assert response["StatusCode"] == 200 and json.loads(response["Payload"].read())["tag"] == "sync"
    response = client.invoke(
        FunctionName=deployed.function, InvocationType="Event", Payload=b'{"tag": "async"}'
    )
    assert response["StatusCode"] == 202
    wait_for(lambda: deployed.calls_tagged("async"))
    with pytest.raises(ClientError) as missing:
        client.invoke(FunctionName="no-such-function", Payload=b"{}")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_warm_workers_are_reused_within_the_reserved_concurrency(deployed: Deployed) -> None:
    client = deployed.lambda_client()
    for i in range(6):
        client.invoke(FunctionName=deployed.function, Payload=json.dumps({"tag": f"warm{i}"}).encode())
    pids = {deployed.calls_tagged(f"warm{i}")[0]["pid"] for i in range(6)}
    assert len(pids) <= 2


def test_queued_events_run_as_many_at_once_as_the_reserved_concurrency_and_no_more(
    deployed: Deployed,
) -> None:
    client = deployed.lambda_client()
    for i in range(5):
        payload = json.dumps({"tag": f"overlap{i}", "overlap": 1.0}).encode()
        client.invoke(FunctionName=deployed.function, InvocationType="Event", Payload=payload)
    counter = Path(str(deployed.probe_log) + ".running")
    wait_for(lambda: all(deployed.calls_tagged(f"overlap{i}") for i in range(5)), timeout=60)
    wait_for(lambda: counter.read_text().split()[0] == "0", timeout=30)
    _, most = counter.read_text().split()
    assert int(most) == 2, "the probe's reserved concurrency is 2: both workers busy at once, never a third"


# --- EventBridge Scheduler --------------------------------------------------------------------------------


def test_the_runtime_finds_every_enabled_schedule_of_its_functions_past_the_first_page(
    deployed: Deployed,
) -> None:
    found = {schedule.name: schedule for schedule in deployed.runtime.schedules}
    assert set(found) == {deployed.schedules["nightly"], deployed.schedules["soon"]}  # not the disabled one
    nightly = found[deployed.schedules["nightly"]]
    assert (nightly.expression, nightly.timezone, json.loads(nightly.input)) == (
        "cron(0 2 * * ? *)",
        "UTC",
        NIGHTLY_INPUT,
    )


def test_firing_a_schedule_invokes_its_function_asynchronously_with_the_schedules_input(
    deployed: Deployed,
) -> None:
    status, body = deployed.post(f"/local/schedules/{deployed.schedules['nightly']}/fire")
    assert status == 202
    call = wait_for(lambda: deployed.calls_tagged("scheduled"))[0]
    assert call["ask"] == NIGHTLY_INPUT and call["event_source"] is None
    assert call["request_id"] == body["requestId"]
    assert call["function_name"] == deployed.function
    status, body = deployed.post(f"/local/schedules/{deployed.schedules['off']}/fire")
    assert status == 404 and "is not enabled here" in body["message"]
    assert not deployed.calls_tagged("disabled-schedule")


def test_an_at_schedule_fires_by_the_clock(deployed: Deployed) -> None:
    call = wait_for(lambda: deployed.calls_tagged("at-schedule"), timeout=40)[0]
    assert call["function_name"] == deployed.function
    time.sleep(1)
    assert len(deployed.calls_tagged("at-schedule")) == 1  # at(...) fires once


def test_an_event_older_than_the_maximum_event_age_goes_to_the_on_failure_queue_unprocessed(
    deployed: Deployed,
) -> None:
    client = deployed.lambda_client()
    # One worker: the second event waits behind the first for longer than the function's event age.
    for ask in ({"tag": "ahead", "sleep": EVENT_AGE + 1.5}, {"tag": "too-old"}):
        response = client.invoke(
            FunctionName=deployed.aged_function, InvocationType="Event", Payload=json.dumps(ask).encode()
        )
        assert response["StatusCode"] == 202
    records = wait_for(lambda: deployed.dead_letters(deployed.aged_dlq), timeout=30)
    assert deployed.calls_tagged("ahead") and not deployed.calls_tagged("too-old")
    assert len(records) == 1
    record = records[0]
    assert record["requestContext"]["condition"] == "EventAgeExceeded"
    assert record["requestContext"]["approximateInvokeCount"] == 0
    assert record["requestContext"]["functionArn"].endswith(f":function:{deployed.aged_function}:$LATEST")
    assert record["requestPayload"] == {"tag": "too-old"}
    assert "responsePayload" not in record


# --- what runs: the deployed zips -------------------------------------------------------------------------


def zipped(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def test_the_deployed_function_zip_and_pure_python_layer_run_not_the_source_tree(
    moto_server: MotoServer, tmp_path: Path
) -> None:
    """A function deployed from build/ runs that zip's handler with the layer's package on its path, as on
    Lambda; a layer with native modules (built for Lambda's platform) is left to this environment."""
    prefix = f"zp{uuid.uuid4().hex[:6]}"
    build = tmp_path / "build"
    (build / "functions").mkdir(parents=True)
    (build / "layers").mkdir()
    function_zip = zipped(
        {
            "handler.py": "import layered\n\n"
            "def lambda_handler(event, context):\n"
            "    return {'code': 'zip', 'layer': layered.WHERE, 'path': layered.__file__}\n"
        }
    )
    core_zip = zipped({"python/layered.py": "WHERE = 'core layer zip'\n"})
    native_zip = zipped({"python/fast/_speed.cpython-312-aarch64-linux-gnu.so": "not for this machine"})
    (build / "functions" / "probe.zip").write_bytes(function_zip)
    (build / "layers" / "core.zip").write_bytes(core_zip)
    (build / "layers" / "native.zip").write_bytes(native_zip)

    lam = aws_client("lambda", moto_server.endpoint, "us-east-1")
    role = aws_client("iam", moto_server.endpoint, "us-east-1").create_role(
        RoleName=f"{prefix}-role", AssumeRolePolicyDocument="{}"
    )["Role"]["Arn"]
    layers = [
        lam.publish_layer_version(LayerName=f"{prefix}-{name}", Content={"ZipFile": content})[
            "LayerVersionArn"
        ]
        for name, content in (("core", core_zip), ("native", native_zip))
    ]
    lam.create_function(
        FunctionName=f"{prefix}-probe",
        Runtime="python3.12",
        Role=role,
        Handler="handler.lambda_handler",
        Code={"ZipFile": function_zip},
        Layers=layers,
        Tags={"azs3copy:component": "probe"},
    )
    runtime = Runtime(
        moto_server.endpoint,
        lambdas_root=LAMBDAS,  # its probe/handler.py would answer otherwise
        build_dir=build,
        log_dir=tmp_path / "logs",
        name_prefix=prefix,
    )
    runtime.start()
    try:
        spec = runtime.functions[f"{prefix}-probe"]
        assert spec.code_path == build / "functions" / "probe.zip"
        assert spec.layer_paths == [build / "layers" / "core.zip" / "python"]
        assert any("native modules for Lambda" in line for line in spec.provenance), spec.provenance
        reply = runtime.pool_for(f"{prefix}-probe").invoke({})
        assert reply["ok"], reply
        assert reply["result"]["code"] == "zip" and reply["result"]["layer"] == "core layer zip"
        assert reply["result"]["path"].startswith(str(build / "layers" / "core.zip")), reply
    finally:
        runtime.stop()


def test_a_function_with_reserved_concurrency_0_is_throttled_not_left_hanging(
    moto_server: MotoServer, tmp_path: Path
) -> None:
    prefix = f"zc{uuid.uuid4().hex[:6]}"
    client = lambda service: aws_client(service, moto_server.endpoint, "us-east-1")  # noqa: E731
    role = client("iam").create_role(RoleName=f"{prefix}-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    name = f"{prefix}-probe"
    client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="handler.lambda_handler",
        Code={"ZipFile": zipped({"handler.py": "def lambda_handler(event, context):\n    return 1\n"})},
        Tags={"azs3copy:component": "probe"},
    )
    client("lambda").put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    dlq = client("sqs").create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = client("sqs").get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    client("lambda").put_function_event_invoke_config(
        FunctionName=name, DestinationConfig={"OnFailure": {"Destination": dlq_arn}}
    )
    runtime = Runtime(
        moto_server.endpoint, lambdas_root=LAMBDAS, log_dir=tmp_path / "logs", name_prefix=prefix
    )
    port = runtime.start()
    try:
        invoker = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
        ).client(
            "lambda",
            endpoint_url=f"http://127.0.0.1:{port}",
            config=Config(retries={"mode": "standard", "max_attempts": 1}),
        )
        with pytest.raises(ClientError) as throttled:
            invoker.invoke(FunctionName=name, Payload=b"{}")
        assert throttled.value.response["Error"]["Code"] == "TooManyRequestsException"
        invoker.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"tag": "never run"}')
        [message] = wait_for(
            lambda: client("sqs").receive_message(QueueUrl=dlq, WaitTimeSeconds=1).get("Messages")
        )
        record = json.loads(message["Body"])
        assert record["requestContext"]["condition"] == "EventAgeExceeded"
        assert record["requestPayload"] == {"tag": "never run"}
        assert runtime.pools[name].stats["invocations"] == 0 and runtime.idle()
    finally:
        runtime.stop()


def test_a_function_url_is_served_on_loopback_with_the_url_event_and_its_response(deployed: Deployed) -> None:
    with urllib.request.urlopen(f"{deployed.invoke_url}/local/function-urls", timeout=10) as response:
        urls = json.loads(response.read())
    assert list(urls) == [deployed.function] and urls[deployed.function].startswith("http://127.0.0.1:")
    text = urllib.request.Request(
        urls[deployed.function] + "hook", data=b'{"a": 1}', method="POST", headers={"X-Custom-Header": "Yes"}
    )
    text.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(text, timeout=10) as response:
        assert response.status == 207 and response.headers["X-Probe"] == "url"
        seen = json.loads(response.read())
    assert seen["method"] == "POST" and seen["rawPath"] == "/hook" and seen["body"] == '{"a": 1}'
    assert seen["headers"]["x-custom-header"] == "Yes" and seen["isBase64Encoded"] is False
    binary = urllib.request.Request(urls[deployed.function], data=b"\x00\xff", method="PUT")
    binary.add_header("Content-Type", "application/octet-stream")
    with urllib.request.urlopen(binary, timeout=10) as response:
        seen = json.loads(response.read())
    assert seen["isBase64Encoded"] is True and seen["body"] == "AP8="
    options = urllib.request.Request(urls[deployed.function], method="OPTIONS")
    with urllib.request.urlopen(options, timeout=10) as response:
        assert json.loads(response.read())["method"] == "OPTIONS"
