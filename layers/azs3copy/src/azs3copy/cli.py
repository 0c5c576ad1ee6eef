"""azs3copy: the operator's command line, the same against an AWS account and the local environment.

Against AWS it uses the normal boto3 credentials and finds every name from the deployed functions
(`--prefix`, default `azs3copy`). With `--local` it reads `.local/deployment.json`, written by `make up`.
Every error is one line on stderr; the exit status is 1 for a failure, 2 for a usage error, and for
`run --wait` 3 when the run finished with no blob failed but some not copied (changed, vanished,
needs-rehydration).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import boto3
from azure.core.exceptions import AzureError
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
)

from azs3copy.errors import Azs3copyError, BlobRejectedError, ConfigError
from azs3copy.settings import parse_begindate, parse_settings
from azs3copy.wire_logs import quiet_wire_loggers

COMPONENTS = (
    "launch-qualification",
    "find-blobs",
    "download",
    "largefile-initializer",
    "largefile-parter",
    "largefile-recombinator",
)
AZURE_ENV = (
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_STORAGE_ACCOUNT_URL",
    "AZURE_AUTHORITY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_CONNECTION_STRING",
)
OK_STATES = ("copied", "skipped")
#: Terminal states that leave a blob uncopied without being a failure: overwritten or deleted in Azure
#: during the run, or in the archive tier.
NOT_COPIED_STATES = ("changed", "vanished", "needs-rehydration")
EXIT_NOT_COPIED = 3
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=5, read_timeout=900)


class CliError(Exception):
    """A failure to report in one line (exit status 1)."""


# --- where the system is ----------------------------------------------------------------------------------


@dataclass
class Target:
    """The deployed system: its names and a way to build clients for it."""

    session: boto3.session.Session
    prefix: str
    endpoint: str | None = None  # every AWS service but Lambda (local: moto)
    lambda_endpoint: str | None = None  # local: the runtime's Invoke API
    local: dict[str, Any] | None = None
    _names: dict[str, Any] = field(default_factory=dict)
    _clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            quiet_wire_loggers()  # put_secret_value's parameters are the credentials
            endpoint = self.lambda_endpoint if service == "lambda" and self.lambda_endpoint else self.endpoint
            self._clients[service] = self.session.client(
                service,  # type: ignore[call-overload]
                endpoint_url=endpoint,
                config=_CONFIG,
            )
        return self._clients[service]

    def function(self, component: str) -> str:
        if self.local:
            return str(self.local["function_names"][component])
        return f"{self.prefix}-{component}"

    def _environment(self) -> dict[str, str]:
        """The names the system uses, from find-blobs' environment (it reads all of them)."""
        if "env" not in self._names:
            if self.local:
                self._names["env"] = {
                    "AZS3COPY_SECRET_ID": self.local["secret_id"],
                    "AZS3COPY_BUCKET": self.local["bucket"],
                    "AZS3COPY_LEDGER_TABLE": self.local["ledger_table"],
                    "AZS3COPY_REPORT_PREFIX": self.local.get("report_prefix") or "_azs3copy/reports/",
                }
            else:
                name = self.function("find-blobs")
                try:
                    config = self.client("lambda").get_function_configuration(FunctionName=name)
                except ClientError as error:
                    if _code(error) == "ResourceNotFoundException":
                        region = self.session.region_name
                        raise CliError(
                            f"no function {name} in region {region}: is azs3copy deployed there? "
                            "(--prefix, --region, or --local for the local environment)"
                        ) from None
                    raise
                self._names["env"] = (config.get("Environment") or {}).get("Variables") or {}
        env: dict[str, str] = self._names["env"]
        return env

    def _name(self, variable: str) -> str:
        value = self._environment().get(variable)
        if not value:
            raise CliError(f"the deployed find-blobs function has no {variable} in its environment")
        return value

    @property
    def secret_id(self) -> str:
        return self._name("AZS3COPY_SECRET_ID")

    @property
    def bucket(self) -> str:
        return self._name("AZS3COPY_BUCKET")

    @property
    def ledger_table(self) -> str:
        return self._name("AZS3COPY_LEDGER_TABLE")

    @property
    def report_prefix(self) -> str:
        return self._environment().get("AZS3COPY_REPORT_PREFIX") or "_azs3copy/reports/"

    def dlq_url(self, component: str) -> str | None:
        if self.local and self.local.get("dlq_urls", {}).get(component):
            return str(self.local["dlq_urls"][component])
        try:
            config = self.client("lambda").get_function_event_invoke_config(
                FunctionName=self.function(component)
            )
        except ClientError as error:
            if _code(error) == "ResourceNotFoundException":
                return None
            raise
        arn = config.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination") or ""
        if ":sqs:" not in arn:
            return None
        account, name = arn.split(":")[4], arn.split(":")[5]
        url: str = self.client("sqs").get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)[
            "QueueUrl"
        ]
        return url

    def ledger(self) -> Any:
        from azs3copy.dynamo_ledger import DynamoLedger

        return DynamoLedger(self.client("dynamodb"), self.ledger_table)


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def resolve_target(args: argparse.Namespace) -> Target:
    if args.local or args.deployment:
        from azs3copy.local.environment import LocalEnvironmentError, answers, load_deployment

        try:
            deployment = load_deployment(Path(args.deployment) if args.deployment else None)
        except LocalEnvironmentError as error:
            raise CliError(str(error)) from None
        if not answers(deployment["aws_endpoint"] + "/moto-api/"):
            raise CliError(
                f"the local environment is not running (nothing answers at {deployment['aws_endpoint']}): "
                "start it with `make up`"
            )
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=deployment["region"]
        )
        return Target(
            session,
            prefix=args.prefix,
            endpoint=deployment["aws_endpoint"],
            lambda_endpoint=deployment["runtime_url"],
            local=deployment,
        )
    # boto3 reads AWS_DEFAULT_REGION; AWS_REGION (the AWS CLI's and Lambda's) is taken too
    region = args.region or os.environ.get("AWS_REGION") or None
    session = boto3.session.Session(profile_name=args.profile, region_name=region)
    if session.region_name is None:
        raise CliError(
            "no AWS region: pass --region or set AWS_REGION or AWS_DEFAULT_REGION (or a profile with a region)"
        )
    return Target(session, prefix=args.prefix)


# --- the secret -------------------------------------------------------------------------------------------


def read_secret(target: Target) -> dict[str, Any]:
    response = target.client("secretsmanager").get_secret_value(SecretId=target.secret_id)
    text = response.get("SecretString")
    if text is None:
        raise CliError(f"secret {target.secret_id} holds binary data; it must hold a JSON text")
    try:
        document = json.loads(text)
    except ValueError as error:
        raise CliError(f"secret {target.secret_id} is not valid JSON ({error})") from None
    if not isinstance(document, dict):
        raise CliError(f"secret {target.secret_id} must hold a JSON object")
    return document


def write_secret(target: Target, document: dict[str, Any]) -> None:
    text = json.dumps(document)
    parse_settings(text)  # a ConfigError names what is wrong; nothing is written
    target.client("secretsmanager").put_secret_value(SecretId=target.secret_id, SecretString=text)


def cmd_enable(target: Target, args: argparse.Namespace, out: TextIO) -> int:
    document = read_secret(target)
    if args.command == "enable":
        settings = parse_settings(json.dumps({**document, "isactive": True}))
        if settings.azure is None:
            raise CliError(
                "not enabled: the secret has no Azure credentials yet (azs3copy set-azure-credentials)"
            )
    document["isactive"] = args.command == "enable"
    write_secret(target, document)
    state = "enabled: runs start on the schedule" if document["isactive"] else "disabled: no new runs start"
    print(f"{state} (isactive = {str(document['isactive']).lower()} in {target.secret_id})", file=out)
    return 0


def cmd_set_begindate(target: Target, args: argparse.Namespace, out: TextIO) -> int:
    try:
        moment = parse_begindate(args.date)
    except ConfigError:
        raise CliError(
            f"bad date {args.date!r}: give an ISO 8601 date or date-time, e.g. 2024-01-31 or 2024-01-31T08:00:00Z"
        ) from None
    document = read_secret(target)
    document["begindate"] = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    write_secret(target, document)
    print(f"begindate = {document['begindate']}: blobs modified at or after it are copied", file=out)
    return 0


def azure_from_environment(env: dict[str, str]) -> dict[str, str]:
    """The secret's `azure` object from the AZURE_* variables (exactly one kind of credential)."""
    url = env.get("AZURE_STORAGE_ACCOUNT_URL")
    kinds: list[tuple[str, dict[str, str]]] = []
    if env.get("AZURE_STORAGE_CONNECTION_STRING"):
        kinds.append(("connection string", {"connection_string": env["AZURE_STORAGE_CONNECTION_STRING"]}))
    if env.get("AZURE_STORAGE_SAS_TOKEN"):
        kinds.append(("SAS token", {"sas_token": env["AZURE_STORAGE_SAS_TOKEN"]}))
    principal = {k: env[v] for k, v in _SP_ENV.items() if env.get(v)}
    if principal:
        if env.get("AZURE_AUTHORITY"):
            principal["authority"] = env["AZURE_AUTHORITY"]
        kinds.append(("service principal", principal))
    if not kinds:
        raise CliError(
            "no Azure credentials in the environment: set AZURE_TENANT_ID, AZURE_CLIENT_ID, "
            "AZURE_CLIENT_SECRET and AZURE_STORAGE_ACCOUNT_URL (service principal), or AZURE_STORAGE_SAS_TOKEN "
            "and AZURE_STORAGE_ACCOUNT_URL, or AZURE_STORAGE_CONNECTION_STRING; or pipe a JSON object to --stdin"
        )
    if len(kinds) > 1:
        raise CliError(
            f"the environment holds more than one kind of Azure credential ({', '.join(k for k, _ in kinds)}): "
            "unset all but one"
        )
    azure = dict(kinds[0][1])
    if url and "connection_string" not in azure:
        azure["account_url"] = url
    return azure


_SP_ENV = {
    "tenant_id": "AZURE_TENANT_ID",
    "client_id": "AZURE_CLIENT_ID",
    "client_secret": "AZURE_CLIENT_SECRET",
}


def azure_from_stdin(stream: TextIO) -> dict[str, Any]:
    text = stream.read()
    try:
        document = json.loads(text)
    except ValueError:
        raise CliError(
            "stdin is not a JSON object (give the 'azure' keys of the secret, see docs/design.md)"
        ) from None
    if isinstance(document, dict) and isinstance(document.get("azure"), dict) and len(document) == 1:
        document = document["azure"]
    if not isinstance(document, dict) or not document:
        raise CliError("stdin must hold a JSON object with the 'azure' keys of the secret")
    return document


def cmd_set_azure_credentials(target: Target, args: argparse.Namespace, out: TextIO) -> int:
    azure = azure_from_stdin(args.stdin_stream) if args.stdin else azure_from_environment(dict(os.environ))
    document = read_secret(target)
    document["azure"] = azure
    settings = parse_settings(json.dumps(document))  # validated before anything is written
    assert settings.azure is not None
    if args.check:
        source = _azure_source(settings.azure)
        try:
            containers = source.list_containers()
        except Azs3copyError as error:
            raise CliError(f"Azure refused the new credentials; nothing written: {error}") from None
        print(f"checked: the account lists {len(containers)} container(s)", file=out)
    write_secret(target, document)
    where = (
        f", account {settings.azure.account_url}"
        if settings.azure.account_url and "?" not in settings.azure.account_url
        else ""
    )
    print(f"Azure credentials written to {target.secret_id} (mode: {settings.azure.mode}{where})", file=out)
    return 0


def _azure_source(creds: Any) -> Any:
    from azs3copy.azure_auth import blob_service_client
    from azs3copy.azure_source import AzureBlobSource

    return AzureBlobSource(blob_service_client(creds), creds=creds)


# --- runs -------------------------------------------------------------------------------------------------


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def read_report(target: Target, key: str) -> dict[str, Any] | None:
    try:
        body = target.client("s3").get_object(Bucket=target.bucket, Key=key)["Body"].read()
    except ClientError as error:
        if _code(error) in ("NoSuchKey", "404"):
            return None
        raise
    report: dict[str, Any] = json.loads(body)
    return report


def _failures(target: Target, run_id: str, limit: int = 50) -> list[dict[str, str]]:
    found = []
    for record in target.ledger().blobs(run_id):
        if record.state in OK_STATES or record.state in ("pending", "working"):
            continue
        found.append({"blob": record.blob_id, "state": record.state, "reason": record.reason or ""})
        if len(found) >= limit:
            break
    return found


def print_run(target: Target, run: Any, out: TextIO) -> dict[str, Any] | None:
    report = read_report(target, run.report_key) if run.report_key else None
    now = time.time()
    end = run.finished_at or now
    state = "finished" if run.report_key else "running"
    print(f"run {run.run_id}: {state}", file=out)
    started = datetime.fromtimestamp(run.started_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    print(f"  started   {started}, duration {_duration(end - run.started_at)}", file=out)
    print(
        f"  containers {', '.join(run.containers)}"
        + (f" (listing: {run.listing_pending} left)" if run.listing_pending > 0 else ""),
        file=out,
    )
    counts = {state: count for state, count in run.counts.items() if count}
    in_progress = max(0, run.found - run.done)
    line = ", ".join(f"{state} {count}" for state, count in counts.items()) or "none finished yet"
    print(
        f"  found     {run.found}: {line}" + (f", in progress {in_progress}" if in_progress else ""), file=out
    )
    elapsed = max(1e-6, end - run.started_at)
    print(
        f"  bytes     {_bytes(run.bytes_copied)} copied, {_bytes(run.bytes_copied / elapsed)}/s",
        file=out,
    )
    failures = report["failures"] if report else []
    if not report and any(run.counts.get(s) for s in run.counts if s not in OK_STATES):
        failures = _failures(target, run.run_id)
    total = report.get("failures_total", len(failures)) if report else len(failures)
    if failures:
        print(f"  not copied ({total}):", file=out)
        for item in failures[:20]:
            print(f"    {item['state']:17} {item['blob']}: {item['reason']}", file=out)
        if total > 20:
            print(
                f"    … {total - 20} more (the report s3://{target.bucket}/{run.report_key} lists them)",
                file=out,
            )
    if run.report_key:
        print(f"  report    s3://{target.bucket}/{run.report_key}", file=out)
    return report


def cmd_status(target: Target, args: argparse.Namespace, out: TextIO) -> int:
    try:
        document = read_secret(target)
        settings = parse_settings(json.dumps(document))
        mode = settings.azure.mode if settings.azure else "none set"
        print(
            f"settings: isactive {str(settings.isactive).lower()}, begindate "
            f"{settings.begindate.strftime('%Y-%m-%dT%H:%M:%SZ')}, Azure credentials: {mode}",
            file=out,
        )
    except ConfigError as error:
        print(f"settings: the secret is not valid: {error}", file=out)
    ledger = target.ledger()
    run_id = args.run or ledger.latest_run_id()
    if run_id is None:
        print("no run yet (azs3copy run starts one)", file=out)
        return 0
    run = ledger.get_run(run_id)
    if run is None:
        raise CliError(f"run {run_id} is not in the ledger {target.ledger_table}")
    print_run(target, run, out)
    return 0


def invoke_launch(target: Target, force: bool) -> dict[str, Any]:
    name = target.function("launch-qualification")
    payload = json.dumps({"force": True} if force else {}).encode()
    try:
        response = target.client("lambda").invoke(FunctionName=name, Payload=payload)
    except ClientError as error:
        if _code(error) == "ResourceNotFoundException":
            raise CliError(
                f"no function {name}: is azs3copy deployed here? (--prefix, --region, --local)"
            ) from None
        raise
    raw = response["Payload"].read()
    try:
        body = json.loads(raw or b"null")
    except ValueError:
        body = raw.decode(errors="replace")[:500]
    if response.get("FunctionError"):
        message = (
            f"{body.get('errorType')}: {body.get('errorMessage')}" if isinstance(body, dict) else str(body)
        )
        hint = " (azs3copy run --force starts one anyway)" if "RunInProgress" in message else ""
        raise CliError(f"{name} failed: {message}{hint}")
    result: dict[str, Any] = body if isinstance(body, dict) else {}
    return result


def cmd_run(target: Target, args: argparse.Namespace, out: TextIO) -> int:
    result = invoke_launch(target, args.force)
    if not result.get("started"):
        raise CliError(f"no run started: {result.get('reason', 'launch-qualification said no')}")
    run_id = str(result["run_id"])
    containers = result.get("containers") or []
    print(f"run {run_id} started: {len(containers)} container(s): {', '.join(containers)}", file=out)
    if not args.wait:
        print("follow it with: azs3copy status" + (" --local" if target.local else ""), file=out)
        return 0
    run = follow(target, run_id, args.timeout, out)
    print_run(target, run, out)
    return run_outcome(run, out)


def run_outcome(run: Any, out: TextIO) -> int:
    """The exit status of `run --wait` for a finished run, with one line saying why when it is not 0:
    1 if any blob failed, EXIT_NOT_COPIED if none failed but some were not copied, 0 otherwise."""
    failed = sum(n for state, n in run.counts.items() if state not in OK_STATES + NOT_COPIED_STATES)
    not_copied = {state: run.counts.get(state, 0) for state in NOT_COPIED_STATES if run.counts.get(state)}
    detail = ", ".join(f"{state} {n}" for state, n in not_copied.items())
    if failed:
        print(
            f"result: {failed} blob(s) failed" + (f"; not copied: {detail}" if detail else "") + " (exit 1)",
            file=out,
        )
        return 1
    if not_copied:
        print(
            f"result: no blob failed, but {sum(not_copied.values())} not copied: {detail} "
            f"(exit {EXIT_NOT_COPIED}; the next run takes changed blobs, rehydrate archived ones first)",
            file=out,
        )
        return EXIT_NOT_COPIED
    return 0


def follow(target: Target, run_id: str, timeout: float, out: TextIO) -> Any:
    """Poll the ledger until the run's report is written; show progress. Returns the final RunRecord."""
    ledger = target.ledger()
    deadline = time.monotonic() + timeout
    interactive = getattr(out, "isatty", lambda: False)()

    def snapshot() -> Any:
        run = ledger.get_run(run_id)
        if run is None:
            raise CliError(f"run {run_id} is not in the ledger {target.ledger_table}")
        return run

    def describe(run: Any) -> str:
        elapsed = max(1e-6, time.time() - run.started_at)
        c = run.counts
        other = sum(n for s, n in c.items() if s not in ("copied", "skipped", "failed"))
        return (
            f"found {run.found}  copied {c.get('copied', 0)}  skipped {c.get('skipped', 0)}  "
            f"failed {c.get('failed', 0)}"
            + (f"  other {other}" if other else "")
            + f"  {_bytes(run.bytes_copied)}  {_bytes(run.bytes_copied / elapsed)}/s"
        )

    if interactive:
        try:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
        except ImportError:  # the package without its [cli] extra: the plain progress lines below
            interactive = False
    if interactive:
        console = Console(file=out)
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task(run_id, total=None, detail="listing…")
            while True:
                run = snapshot()
                total = run.found if run.listing_pending <= 0 else None
                progress.update(task, completed=run.done, total=total, detail=describe(run))
                if run.report_key:
                    progress.update(task, total=run.found, completed=run.done)
                    return run
                if time.monotonic() > deadline:
                    raise CliError(f"run {run_id} is still going after {timeout:.0f} s (azs3copy status)")
                time.sleep(0.5)
    last = 0.0
    while True:
        run = snapshot()
        if run.report_key:
            print(f"  {run.done}/{run.found}  {describe(run)}", file=out)
            return run
        if time.monotonic() - last >= 5:
            print(f"  {run.done}/{run.found}  {describe(run)}", file=out, flush=True)
            last = time.monotonic()
        if time.monotonic() > deadline:
            raise CliError(f"run {run_id} is still going after {timeout:.0f} s (azs3copy status)")
        time.sleep(0.5)


# --- dead-letter queues -----------------------------------------------------------------------------------


def _components(args: argparse.Namespace) -> list[str]:
    if args.function:
        name = args.function.removeprefix(f"{args.prefix}-")
        if name not in COMPONENTS:
            raise CliError(f"unknown function {args.function!r}: one of {', '.join(COMPONENTS)}")
        return [name]
    return list(COMPONENTS)


def _peek(sqs: Any, url: str, limit: int, visibility: int) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    while len(seen) < limit:
        batch = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=min(10, limit - len(seen)),
            VisibilityTimeout=visibility,
            WaitTimeSeconds=0,
        ).get("Messages", [])
        if not batch:
            break
        for message in batch:
            seen.setdefault(message["MessageId"], message)
    return list(seen.values())


def _release(sqs: Any, url: str, messages: Sequence[dict[str, Any]]) -> None:
    for start in range(0, len(messages), 10):
        entries = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
            for i, m in enumerate(messages[start : start + 10])
        ]
        sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)


def describe_record(body: str) -> str:
    """One line for an on-failure record: when, how often, which message, why."""
    try:
        record = json.loads(body)
        context = record.get("requestContext", {})
        response = record.get("responsePayload") or {}
        payload = record.get("requestPayload")
    except (ValueError, AttributeError):
        return f"(not an on-failure record) {body[:200]}"
    what = "event " + json.dumps(payload)[:120]
    try:
        message = json.loads(payload["Records"][0]["Sns"]["Message"])
        kind = message.get("kind")
        subject = message.get("container") or ""
        if "blob" in message:
            subject = f"{message['blob']['container']}/{message['blob']['name']}"
        elif "blobs" in message:
            subject = f"{len(message['blobs'])} blob(s), first {message['blobs'][0]['container']}/{message['blobs'][0]['name']}"
        what = f"{kind} run {message.get('run_id')} {subject}" + (
            f" part {message['part']}" if "part" in message else ""
        )
    except (KeyError, IndexError, TypeError, ValueError):
        pass
    failures = record.get("failures") if isinstance(record, dict) else None
    if failures:  # blobs the function failed for good and dead-lettered itself
        names = ", ".join(str(f.get("blob")) for f in failures[:3])
        what += f"; failed: {names}" + (f" and {len(failures) - 3} more" if len(failures) > 3 else "")
    error = f"{response.get('errorType', '?')}: {str(response.get('errorMessage', '')).splitlines()[0] if response.get('errorMessage') else ''}"
    condition = context.get("condition", "?")
    return f"{record.get('timestamp', '?')}  {condition} after {context.get('approximateInvokeCount', '?')} attempt(s)  {what}\n      {error}"


def cmd_dlq(target: Target, args: argparse.Namespace, out: TextIO) -> int:
    sqs = target.client("sqs")
    total = 0
    for component in _components(args):
        url = target.dlq_url(component)
        if url is None:
            print(f"{component}: no SQS on-failure destination", file=out)
            continue
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        count = int(attributes["Attributes"]["ApproximateNumberOfMessages"])
        total += count
        if args.dlq_action == "show":
            print(f"{component}: {count} failed event(s)", file=out)
            if count:
                messages = _peek(sqs, url, args.max, 30)
                for message in messages:
                    print("    " + describe_record(message["Body"]), file=out)
                _release(sqs, url, messages)
            continue
        moved = skipped = cleared = 0
        while moved + skipped + cleared < args.max:
            messages = _peek(sqs, url, min(10, args.max - moved - skipped), 120)
            if not messages:
                break
            keep = []
            for message in messages:
                try:
                    record = json.loads(message["Body"])
                    payload = record["requestPayload"]
                    function = str(record["requestContext"]["functionArn"]).split(":$LATEST")[0]
                    condition = record["requestContext"].get("condition")
                except (ValueError, KeyError, TypeError):
                    keep.append(message)
                    skipped += 1
                    continue
                if condition == "BlobFailed":
                    # The blob is recorded failed and is not in S3: the next run copies it once the cause
                    # is fixed; sending the event again would find it already ended and change nothing.
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                    cleared += 1
                    continue
                target.client("lambda").invoke(
                    FunctionName=function, InvocationType="Event", Payload=json.dumps(payload).encode()
                )
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                moved += 1
            if keep:
                _release(sqs, url, keep)
                break
        if moved or skipped or cleared or count:
            note = f", {skipped} left in the queue (not on-failure records)" if skipped else ""
            if cleared:
                note += (
                    f", {cleared} recorded failure(s) cleared (the next `azs3copy run` copies those blobs)"
                )
            print(f"{component}: redrove {moved} event(s) to {target.function(component)}{note}", file=out)
    if args.dlq_action == "show" and total == 0:
        print("no failed events", file=out)
    return 0


# --- verify -----------------------------------------------------------------------------------------------


@dataclass
class Comparison:
    identical: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    different: list[tuple[str, str]] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)  # in S3, and no blob of that name in Azure
    not_selected: int = 0  # blobs listed in Azure that the settings do not select
    not_selected_in_s3: list[str] = field(default_factory=list)  # objects of such blobs


def _s3_objects(s3: Any, bucket: str, prefix: str) -> Iterator[dict[str, Any]]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        yield from page.get("Contents", [])


def _stream_hash(chunks: Iterator[bytes]) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def cmd_verify(target: Target, args: argparse.Namespace, out: TextIO) -> int:
    from azs3copy.azure_auth import azure_errors
    from azs3copy.engine import META_PREFIX, selected
    from azs3copy.keys import object_key

    container, _, prefix = args.location.partition("/")
    document = read_secret(target)
    settings = parse_settings(json.dumps(document))
    creds = settings.require_azure()
    source = _azure_source(creds)
    s3 = target.client("s3")
    bucket = target.bucket
    key_prefix = object_key(settings.destination_prefix, container, prefix)
    objects = {item["Key"]: item for item in _s3_objects(s3, bucket, key_prefix)}
    result = Comparison()
    blobs = []
    listed: set[str] = set()  # the key of every blob in Azure, selected or not
    marker: str | None = None
    while True:
        page = source.list_page(container, prefix, marker, 5000)
        for blob in page.blobs:
            try:
                listed.add(object_key(settings.destination_prefix, blob.ref.container, blob.ref.name))
            except BlobRejectedError:
                pass  # a key S3 would refuse: no object can be named after this blob
            if blob.is_directory:
                continue
            if not args.all and not selected(settings, blob):
                result.not_selected += 1
                continue
            blobs.append(blob.ref)
        marker = page.marker
        if marker is None:
            break
    expected = {object_key(settings.destination_prefix, ref.container, ref.name): ref for ref in blobs}

    def compare(key: str) -> tuple[str, str | None]:
        ref = expected[key]
        item = objects.get(key)
        if item is None:
            return key, "missing"
        if int(item["Size"]) != ref.size:
            return key, f"size {item['Size']} in S3, {ref.size} in Azure"
        head = s3.head_object(Bucket=bucket, Key=key)
        stored = head.get("Metadata", {}).get(f"{META_PREFIX}etag")
        if args.quick:
            if stored != ref.etag:
                return key, f"source ETag recorded in S3 is {stored}, the blob's is {ref.etag}"
            return key, None
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        s3_size, s3_hash = _stream_hash(body.iter_chunks(1 << 20))
        # The SDK's errors can hold the request URL and with it a SAS signature: classified and redacted.
        with azure_errors(creds, what=f"read {ref.blob_id}"):
            blob_client = source.service.get_blob_client(ref.container, ref.name)
            az_size, az_hash = _stream_hash(blob_client.download_blob(max_concurrency=4).chunks())
        if (s3_size, s3_hash) != (az_size, az_hash):
            return key, f"bytes differ (SHA-256 {s3_hash[:12]}… in S3, {az_hash[:12]}… in Azure)"
        return key, None

    with ThreadPoolExecutor(max_workers=8) as pool:
        for key, problem in pool.map(compare, sorted(expected)):
            if problem is None:
                result.identical.append(key)
            elif problem == "missing":
                result.missing.append(key)
            else:
                result.different.append((key, problem))
    ours = ("_azs3copy/", target.report_prefix)
    unexpected = sorted(key for key in objects if key not in expected and not key.startswith(ours))
    result.extra = [key for key in unexpected if key not in listed]
    result.not_selected_in_s3 = [key for key in unexpected if key in listed]
    method = (
        "size and the source ETag recorded in the object's metadata"
        if args.quick
        else "SHA-256 of every byte read from both sides"
    )
    print(
        f"verify {args.location}: {len(expected)} blob(s) compared by {method}: {len(result.identical)} identical, "
        f"{len(result.missing)} missing, {len(result.different)} different, {len(result.extra)} extra in S3"
        + (
            f" ({result.not_selected} blob(s) not selected by the settings, not compared"
            + (f", {len(result.not_selected_in_s3)} of them in S3" if result.not_selected_in_s3 else "")
            + "; --all compares them)"
            if result.not_selected
            else ""
        ),
        file=out,
    )
    for key in result.missing[:50]:
        print(f"  missing    s3://{bucket}/{key}", file=out)
    for key, why in result.different[:50]:
        print(f"  different  s3://{bucket}/{key}: {why}", file=out)
    for key in result.extra[:50]:
        print(f"  extra      s3://{bucket}/{key} (no such blob in Azure)", file=out)
    for key in result.not_selected_in_s3[:50]:
        print(
            f"  unselected s3://{bucket}/{key} (the blob is in Azure; the settings do not select it)",
            file=out,
        )
    return 1 if result.missing or result.different else 0


# --- the command line -------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="azs3copy",
        description="Operate azs3copy: settings, runs, failures and verification.",
        epilog="Against AWS: normal boto3 credentials (--profile, --region). Locally: --local after `make up`. "
        "Exit status: 0 success, 1 failure, 2 usage error; `run --wait` 3 when no blob failed but some were "
        "not copied.",
    )
    parser.add_argument(
        "--local",
        action="store_true",
        default=os.environ.get("AZS3COPY_LOCAL") == "1",
        help="use the local environment of `make up` (.local/deployment.json); also AZS3COPY_LOCAL=1",
    )
    parser.add_argument("--deployment", help="path of a local deployment file (implies --local)")
    parser.add_argument(
        "--prefix",
        default=os.environ.get("AZS3COPY_PREFIX", "azs3copy"),
        help="name_prefix of the deployment (default azs3copy; also AZS3COPY_PREFIX)",
    )
    parser.add_argument("--profile", help="AWS profile")
    parser.add_argument("--region", help="AWS region")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    status = commands.add_parser("status", help="the current or last run: counts, bytes, duration, failures")
    status.add_argument("--run", help="a run id (default: the latest)")
    commands.add_parser("enable", help="set isactive = true: runs start on the schedule")
    commands.add_parser("disable", help="set isactive = false: no new runs start")
    begindate = commands.add_parser("set-begindate", help="copy blobs modified at or after DATE")
    begindate.add_argument("date", metavar="DATE", help="ISO 8601, e.g. 2024-01-31 or 2024-01-31T08:00:00Z")
    creds = commands.add_parser(
        "set-azure-credentials",
        help="write the Azure credentials from the environment (AZURE_*) or stdin into the secret",
        description="Reads AZURE_TENANT_ID/AZURE_CLIENT_ID/AZURE_CLIENT_SECRET/AZURE_STORAGE_ACCOUNT_URL"
        "[/AZURE_AUTHORITY], or AZURE_STORAGE_SAS_TOKEN + AZURE_STORAGE_ACCOUNT_URL, or "
        "AZURE_STORAGE_CONNECTION_STRING; with --stdin, a JSON object with the 'azure' keys of the secret. "
        "Values are never taken from the command line and never printed.",
    )
    creds.add_argument("--stdin", action="store_true", help="read a JSON object from stdin instead")
    creds.add_argument("--check", action="store_true", help="list the account's containers before writing")
    run = commands.add_parser("run", help="start a run now (the manual invocation of launch-qualification)")
    run.add_argument(
        "--wait",
        action="store_true",
        help="follow it to its end; exit 1 if any blob failed, 3 if none failed but some were not copied "
        "(changed, vanished, needs-rehydration), 0 if every blob was copied or skipped",
    )
    run.add_argument("--force", action="store_true", help="start even if the last run has not finished")
    run.add_argument("--timeout", type=float, default=6 * 3600, help="seconds --wait waits (default 6 h)")
    dlq = commands.add_parser("dlq", help="failed events in the functions' on-failure queues")
    dlq_actions = dlq.add_subparsers(dest="dlq_action", required=True, metavar="ACTION")
    for action, text in (
        ("show", "list failed events and their errors"),
        ("redrive", "invoke each failed event again and remove it"),
    ):
        sub = dlq_actions.add_parser(action, help=text)
        sub.add_argument("function", nargs="?", help="one function (directory name, e.g. download)")
        sub.add_argument(
            "--max", type=int, default=10 if action == "show" else 1000, help="at most this many"
        )
    verify = commands.add_parser("verify", help="compare Azure with S3: missing, different and extra objects")
    verify.add_argument("location", metavar="CONTAINER[/PREFIX]")
    verify.add_argument(
        "--quick", action="store_true", help="compare size and recorded source ETag, not bytes"
    )
    verify.add_argument("--all", action="store_true", help="also blobs the settings do not select")
    return parser


COMMANDS: dict[str, Callable[[Target, argparse.Namespace, TextIO], int]] = {
    "status": cmd_status,
    "enable": cmd_enable,
    "disable": cmd_enable,
    "set-begindate": cmd_set_begindate,
    "set-azure-credentials": cmd_set_azure_credentials,
    "run": cmd_run,
    "dlq": cmd_dlq,
    "verify": cmd_verify,
}


def main(argv: Sequence[str] | None = None, *, stdin: TextIO | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    args = build_parser().parse_args(argv)
    args.stdin_stream = stdin or sys.stdin
    try:
        target = resolve_target(args)
        return COMMANDS[args.command](target, args, out)
    except CliError as error:
        message = str(error)
    except ConfigError as error:
        message = f"invalid settings: {error}"
    except Azs3copyError as error:
        message = str(error)
    except AzureError as error:  # one the commands did not classify: still one line, signatures redacted
        from azs3copy.azure_auth import classify_azure_error

        message = str(classify_azure_error(error))
    except NoCredentialsError:
        message = "no AWS credentials found: configure a profile (--profile) or the AWS_* variables"
    except NoRegionError:
        message = "no AWS region: pass --region or set AWS_REGION or AWS_DEFAULT_REGION"
    except EndpointConnectionError as error:
        message = f"cannot reach {error.kwargs.get('endpoint_url', 'the AWS endpoint')}"
    except ClientError as error:
        code = _code(error)
        text = error.response.get("Error", {}).get("Message", "")
        if code in (
            "UnrecognizedClientException",
            "InvalidClientTokenId",
            "ExpiredTokenException",
            "ExpiredToken",
            "InvalidSignatureException",
        ):
            message = f"AWS refused the credentials ({code}): {text}"
        elif code in ("AccessDeniedException", "AccessDenied"):
            message = f"access denied ({error.operation_name}): {text}"
        elif code == "ResourceNotFoundException":
            message = f"not found ({error.operation_name}): {text}"
        else:
            message = f"{error.operation_name} failed ({code}): {text}"
    except BotoCoreError as error:
        message = f"AWS: {error}"
    except KeyboardInterrupt:
        message = "interrupted"
    except OSError as error:  # a file the command reads or writes (a deployment record, a report)
        message = f"{error.strerror or type(error).__name__}: {error.filename or error}"
    except (
        Exception
    ) as error:  # a defect, not the operator's input: still one line (AZS3COPY_DEBUG=1 shows it)
        if os.environ.get("AZS3COPY_DEBUG"):
            raise
        first = str(error).splitlines()[0] if str(error) else ""
        message = f"unexpected {type(error).__name__}: {first} (AZS3COPY_DEBUG=1 shows where)"
    print(f"azs3copy: {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
