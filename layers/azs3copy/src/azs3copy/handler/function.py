"""What every handler shares: building the transports once per warm container, reading the secret, unpacking
the SQS or SNS event, counting attempts, and turning an Outcome into logs, metrics and a response.

The secret: launch-qualification reads all of it at every invocation (an edit made a moment before counts) and
records what the run copies with the run. find-blobs, download and the parter read only its Azure credentials,
kept for AZS3COPY_CREDENTIALS_TTL seconds; what they select and where they write comes from the run's record,
so a secret edited mid-run (even into one the launch would refuse) changes nothing in flight. Credentials
rotated mid-run are picked up at the first refusal by Azure, or when the cache expires (docs/operating.md)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from azs3copy.backends import aws
from azs3copy.backends.dynamodb import DynamoLedger
from azs3copy.backends.s3 import S3ObjectSink
from azs3copy.backends.sns import SnsPublisher
from azs3copy.errors import Azs3copyError, AzureAuthError, MessageError
from azs3copy.handler import queue
from azs3copy.handler.environment import RuntimeConfig
from azs3copy.messages import BlobRef, Message, SourceBlob, decode
from azs3copy.redaction import redact
from azs3copy.settings import AzureCredentials, parse_credentials, parse_settings
from azs3copy.steps.context import Deps, Invocation, Outcome
from azs3copy.steps.launch_qualification import launch_qualification
from azs3copy.transports import BlobSource, ListPage

logger = Logger(child=True)
M = TypeVar("M", bound=Message)
T = TypeVar("T")


class LambdaContextLike(Protocol):
    aws_request_id: str
    invoked_function_arn: str

    def get_remaining_time_in_millis(self) -> int: ...


def _azure_source(creds: AzureCredentials) -> BlobSource:
    from azs3copy.backends.azure_auth import blob_service_client
    from azs3copy.backends.azure_blob import AzureBlobSource

    return AzureBlobSource(blob_service_client(creds), creds=creds)


class SecretSource:
    """A worker's Azure source, signed in with the credentials the secret holds.

    A secret that gives no credentials (or cannot be read) fails each read, not the invocation: the error is
    raised where the step reads Azure, after the attempt was counted, so the step records it against the
    listing or the blobs it was given (retried first when a retry can help) and the run still ends. When Azure
    refuses the credentials, the secret is read again: credentials rotated since they were cached are used at
    the first refusal, not after the cache expires."""

    def __init__(self, function: Function) -> None:
        self.function = function
        self.creds: AzureCredentials | None = None
        self.error: Azs3copyError | None = None
        try:
            self.creds = function.credentials()
        except Azs3copyError as error:
            self.error = error

    def secrets(self) -> tuple[str, ...]:
        return tuple(self.creds.secret_values()) if self.creds else ()

    def _read(self, read: Callable[[BlobSource], T]) -> T:
        creds = self.creds
        if creds is None:
            error = self.error or AzureAuthError("no Azure credentials")
            raise type(error)(str(error))  # a new one each time: reads run on several threads
        try:
            return read(self.function.source_for(creds))
        except AzureAuthError:
            try:
                fresh = self.function.credentials(fresh=True)
            except Azs3copyError:
                fresh = creds  # the secret is unreadable now: the refusal stands
            if fresh == creds:
                raise
            self.creds = fresh
            logger.info("Azure refused the cached credentials; the secret holds new ones, used from now on")
        return read(self.function.source_for(fresh))

    def list_containers(self) -> list[str]:
        return self._read(lambda source: source.list_containers())

    def list_page(
        self, container: str, prefix: str, marker: str | None, page_size: int, delimiter: str | None = None
    ) -> ListPage:
        return self._read(lambda source: source.list_page(container, prefix, marker, page_size, delimiter))

    def get_blob(self, container: str, name: str) -> SourceBlob | None:
        return self._read(lambda source: source.get_blob(container, name))

    def read_range(self, blob: BlobRef, offset: int, length: int) -> bytes:
        return self._read(lambda source: source.read_range(blob, offset, length))

    def read_blob(self, blob: BlobRef) -> tuple[bytes, str]:
        return self._read(lambda source: source.read_blob(blob))


class Function:
    """One Lambda function's wiring. Clients are built at the first invocation, not at import.

    `settings`: the function reads the whole secret at every invocation (the launch). `source`: it reads Azure
    with the secret's credentials (find-blobs, download, the parter)."""

    def __init__(
        self,
        name: str,
        *,
        source: bool = False,
        sink: bool = True,
        settings: bool = False,
        source_factory: Callable[[AzureCredentials], BlobSource] = _azure_source,
    ) -> None:
        self.name = name
        self.wants_source = source
        self.wants_sink = sink
        self.wants_settings = settings
        self.source_factory = source_factory
        self._base: Deps | None = None
        self._secret: aws.SecretReader | None = None
        self._source: tuple[AzureCredentials, BlobSource] | None = None
        self._sqs: Any = None
        self.metrics = Metrics()

    def deps(self) -> Deps:
        if self._base is None:
            config = RuntimeConfig.from_env()
            self._base = Deps(
                ledger=DynamoLedger(aws.client("dynamodb"), config.ledger_table),
                publisher=SnsPublisher(aws.client("sns")),
                topics=config.topics(self.name),
                tuning=config.tuning(),
                sink=S3ObjectSink(aws.client("s3"), config.bucket, config.kms_key_id)
                if self.wants_sink
                else None,
            )
            if self.wants_settings or self.wants_source:
                ttl = 0 if self.wants_settings else config.credentials_ttl
                self._secret = aws.SecretReader(aws.client("secretsmanager"), config.secret_id, ttl)
        deps = Deps(**{**self._base.__dict__})
        if self._secret is None:
            return deps
        if self.wants_settings:  # errors go to the caller: the launch reports a bad secret
            settings = parse_settings(self._secret.text())
            deps.settings = settings
            deps.secrets = tuple(settings.secret_values())
            if settings.isactive and settings.azure is not None:
                deps.source = self.source_for(settings.azure)
            return deps
        source = SecretSource(self)
        deps.source, deps.secrets = source, source.secrets()
        secret = self._secret
        deps.load_settings = lambda: parse_settings(secret.text())  # a run recorded without its settings
        return deps

    def credentials(self, *, fresh: bool = False) -> AzureCredentials:
        """The Azure credentials the secret holds (kept for the TTL; `fresh`: read the secret again)."""
        if self._secret is None:
            raise AssertionError(f"{self.name} does not read the secret")
        return parse_credentials(self._secret.text(fresh=fresh))

    def source_for(self, creds: AzureCredentials) -> BlobSource:
        """The container's Azure source for these credentials (a new one when they changed)."""
        if self._source is None or self._source[0] != creds:
            self._source = (creds, self.source_factory(creds))
        return self._source[1]

    def _record_metrics(self, outcome: Outcome) -> None:
        self.metrics.add_metric(name="Invocations", unit=MetricUnit.Count, value=1)
        for state, count in outcome.states.items():
            self.metrics.add_metric(name=f"Blobs_{state}", unit=MetricUnit.Count, value=count)
        if outcome.bytes_copied:
            self.metrics.add_metric(name="BytesCopied", unit=MetricUnit.Bytes, value=outcome.bytes_copied)
        if outcome.published:
            self.metrics.add_metric(name="MessagesPublished", unit=MetricUnit.Count, value=outcome.published)

    def handle_message(
        self,
        event: dict[str, Any],
        context: LambdaContextLike,
        step: Callable[[Deps, M, Invocation], Outcome],
    ) -> dict[str, Any]:
        """One step's event: a batch from the function's SQS queue (its event source mapping), or one SNS
        notification delivered asynchronously (kept for direct invocations and `dlq redrive` of old records)."""
        if queue.is_queue_event(event):
            return self._handle_queue(event, context, step)
        records = event.get("Records") or []
        if len(records) != 1 or "Sns" not in records[0]:
            raise MessageError(
                f"{self.name} expects an SQS or SNS event, got {len(records)} record(s) of neither"
            )
        message = decode(records[0]["Sns"]["Message"])
        deps = self.deps()
        # Lambda retries an asynchronous event with the same request id: the ledger counts its attempts.
        attempt = deps.ledger.bump_attempt(message.run_id, self.name, context.aws_request_id)
        return self._run(event, context, step, deps, message, attempt)

    def _handle_queue(
        self,
        event: dict[str, Any],
        context: LambdaContextLike,
        step: Callable[[Deps, M, Invocation], Outcome],
    ) -> dict[str, Any]:
        """Each record in turn; a record that fails is reported in batchItemFailures (SQS delivers it again
        after a short delay, or moves it to the dead-letter queue after its last attempt), the others are
        deleted by Lambda. An error that is no record's fault (configuration) fails the whole batch."""
        deps = self.deps()
        failed: list[dict[str, str]] = []
        results: list[dict[str, Any]] = []
        for record in event["Records"]:
            attempt = queue.receive_count(record)
            try:
                message = decode(queue.message_text(record))
                results.append(self._run({"Records": [record]}, context, step, deps, message, attempt))
            except Exception as error:  # what Lambda would count as a failed record, retried or not
                if not isinstance(error, Azs3copyError):
                    logger.exception("record failed", extra={"message_id": record.get("messageId")})
                failed.append({"itemIdentifier": str(record["messageId"])})
                self._retry_later(record, attempt)
        return {"function": self.name, "results": results, "batchItemFailures": failed}

    def _retry_later(self, record: dict[str, Any], attempt: int) -> None:
        """Make a failed record visible again after the retry delay, not after the whole visibility timeout
        (six times the function's timeout). After its last attempt SQS moves it to the dead-letter queue
        when it is next received, so that happens after the delay too."""
        config = RuntimeConfig.from_env()
        if config.queue_url is None:
            return
        try:
            if self._sqs is None:
                self._sqs = aws.client("sqs")
            self._sqs.change_message_visibility(
                QueueUrl=config.queue_url,
                ReceiptHandle=record["receiptHandle"],
                VisibilityTimeout=config.retry_delay * attempt,
            )
        except (ClientError, BotoCoreError) as error:  # then it reappears after the visibility timeout
            logger.warning("could not shorten the retry delay", extra={"error": str(error)})

    def _run(
        self,
        event: dict[str, Any],
        context: LambdaContextLike,
        step: Callable[[Deps, M, Invocation], Outcome],
        deps: Deps,
        message: Message,
        attempt: int,
    ) -> dict[str, Any]:
        deps = Deps(**{**deps.__dict__})  # on_fatal is this message's
        invocation = Invocation(
            request_id=context.aws_request_id,
            final_attempt=attempt >= deps.tuning.max_attempts,
            remaining_seconds=lambda: context.get_remaining_time_in_millis() / 1000.0,
            attempt=attempt,
        )
        logger.append_keys(run_id=message.run_id, attempt=attempt)
        fatal: list[dict[str, str]] = []
        deps.on_fatal = lambda run_id, blob_id, reason: fatal.append(
            {"run_id": run_id, "blob": blob_id, "reason": reason}
        )
        try:
            outcome = step(deps, message, invocation)  # type: ignore[arg-type]
        except Azs3copyError as error:
            logger.error(
                "invocation failed",
                extra={
                    "error": redact(str(error), deps.secrets),
                    "retryable": error.retryable,
                    "kind": message.kind,
                },
            )
            self.metrics.add_metric(name="InvocationErrors", unit=MetricUnit.Count, value=1)
            raise
        finally:
            if fatal:
                self._dead_letter(event, context, attempt, fatal)
        self._record_metrics(outcome)
        return {"function": self.name, "run_id": message.run_id, **outcome.to_dict()}

    def _dead_letter(
        self, event: dict[str, Any], context: LambdaContextLike, attempt: int, failures: list[dict[str, str]]
    ) -> None:
        """Put blobs failed for good into the function's dead-letter queue, shaped like the record Lambda
        sends there when retries run out, so operators find every failure in one place."""
        message = f"{len(failures)} blob(s) failed for good: {failures[0]['reason']}"
        if self._send_to_dlq(event, context, attempt, "BlobFailed", "BlobFailed", message, failures):
            self.metrics.add_metric(name="BlobsDeadLettered", unit=MetricUnit.Count, value=len(failures))

    def _send_to_dlq(
        self,
        event: dict[str, Any],
        context: LambdaContextLike,
        attempt: int,
        condition: str,
        error_type: str,
        error_message: str,
        failures: list[dict[str, str]] | None = None,
    ) -> bool:
        """One record in the function's dead-letter queue, shaped like Lambda's on-failure record."""
        queue = RuntimeConfig.from_env().dlq_url
        if queue is None:
            logger.warning("no dead-letter queue configured", extra={"condition": condition})
            return False
        record = {
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "requestContext": {
                "requestId": context.aws_request_id,
                "functionArn": context.invoked_function_arn,
                "condition": condition,
                "approximateInvokeCount": attempt,
            },
            "requestPayload": event,
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST"},
            "responsePayload": {"errorType": error_type, "errorMessage": error_message},
            **({"failures": failures} if failures else {}),
        }
        try:
            if self._sqs is None:
                self._sqs = aws.client("sqs")
            self._sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(record))
        except (ClientError, BotoCoreError) as error:  # the ledger and the logs still hold the failure
            logger.error("could not write to the dead-letter queue", extra={"error": str(error)})
            return False
        return True

    def handle_launch(self, event: dict[str, Any], context: LambdaContextLike) -> dict[str, Any]:
        """Start a run. Invoked by hand (`azs3copy run`, a console test event) an error is raised to the
        caller. Invoked by the schedule, asynchronously, an error that no retry can fix (a bad secret, Azure
        refusing the credentials) is not raised: Lambda would run the launch twice more against the same
        refusal. It goes to the function's dead-letter queue at once (the dead-letter alarm fires, `azs3copy
        dlq show` lists it, and `dlq redrive` starts the run once the cause is fixed)."""
        scheduled = isinstance(event, dict) and event.get("source") == "schedule"
        force = bool(isinstance(event, dict) and event.get("force") is True)
        secrets: tuple[str, ...] = ()
        try:
            deps = self.deps()
            secrets = deps.secrets
            invocation = Invocation(
                request_id=context.aws_request_id,
                remaining_seconds=lambda: context.get_remaining_time_in_millis() / 1000.0,
            )
            outcome = launch_qualification(deps, force=force, invocation=invocation)
        except Azs3copyError as error:
            reason = redact(str(error), secrets)
            logger.error(
                "run not started",
                extra={"error": reason, "error_type": type(error).__name__, "retryable": error.retryable},
            )
            self.metrics.add_metric(name="InvocationErrors", unit=MetricUnit.Count, value=1)
            if not scheduled or error.retryable:
                raise
            self._send_to_dlq(event, context, 1, "LaunchFailed", type(error).__name__, reason)
            return {
                "function": self.name,
                "started": False,
                "error": reason,
                "errorType": type(error).__name__,
            }
        self._record_metrics(outcome)
        if outcome.detail.get("started"):
            self.metrics.add_metric(name="RunsStarted", unit=MetricUnit.Count, value=1)
        return {"function": self.name, **outcome.to_dict()}
