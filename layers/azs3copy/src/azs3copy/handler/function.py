"""What every handler shares: building the transports once per warm container, unpacking the SNS event,
counting attempts, and turning an Outcome into logs, metrics and a response."""

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
from azs3copy.errors import Azs3copyError, MessageError
from azs3copy.handler.environment import RuntimeConfig
from azs3copy.messages import Message, decode
from azs3copy.redaction import redact
from azs3copy.settings import Settings
from azs3copy.steps.context import Deps, Invocation, Outcome
from azs3copy.steps.launch_qualification import launch_qualification
from azs3copy.transports import BlobSource

logger = Logger(child=True)
M = TypeVar("M", bound=Message)


class LambdaContextLike(Protocol):
    aws_request_id: str
    invoked_function_arn: str

    def get_remaining_time_in_millis(self) -> int: ...


def _azure_source(settings: Settings) -> BlobSource:
    from azs3copy.backends.azure_auth import blob_service_client
    from azs3copy.backends.azure_blob import AzureBlobSource

    creds = settings.require_azure()
    return AzureBlobSource(blob_service_client(creds), creds=creds)


class Function:
    """One Lambda function's wiring. Clients are built at the first invocation, not at import."""

    def __init__(
        self,
        name: str,
        *,
        source: bool = False,
        sink: bool = True,
        settings: bool = True,
        source_factory: Callable[[Settings], BlobSource] = _azure_source,
    ) -> None:
        self.name = name
        self.wants_source = source
        self.wants_sink = sink
        self.wants_settings = settings or source
        self.source_factory = source_factory
        self._base: Deps | None = None
        self._loader: aws.SettingsLoader | None = None
        self._source: tuple[Settings, BlobSource] | None = None
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
            if self.wants_settings:
                self._loader = aws.SettingsLoader(
                    aws.client("secretsmanager"), config.secret_id, config.settings_ttl
                )
        deps = Deps(**{**self._base.__dict__})
        if self._loader is not None:
            settings = self._loader.get()
            deps.settings = settings
            deps.secrets = tuple(settings.azure.secret_values()) if settings.azure else ()
            if self.wants_source or (self.name == "launch-qualification" and settings.isactive):
                deps.source = self._source_for(settings)
        return deps

    def _source_for(self, settings: Settings) -> BlobSource:
        if self._source is None or self._source[0].azure != settings.azure:
            settings.require_azure()
            self._source = (settings, self.source_factory(settings))
        return self._source[1]

    def _record_metrics(self, outcome: Outcome) -> None:
        self.metrics.add_metric(name="Invocations", unit=MetricUnit.Count, value=1)
        for state, count in outcome.states.items():
            self.metrics.add_metric(name=f"Blobs_{state}", unit=MetricUnit.Count, value=count)
        if outcome.bytes_copied:
            self.metrics.add_metric(name="BytesCopied", unit=MetricUnit.Bytes, value=outcome.bytes_copied)
        if outcome.published:
            self.metrics.add_metric(name="MessagesPublished", unit=MetricUnit.Count, value=outcome.published)

    def handle_sns(
        self,
        event: dict[str, Any],
        context: LambdaContextLike,
        step: Callable[[Deps, M, Invocation], Outcome],
    ) -> dict[str, Any]:
        records = event.get("Records") or []
        if len(records) != 1 or "Sns" not in records[0]:
            raise MessageError(
                f"{self.name} expects an SNS event with one record, got {len(records)} record(s)"
            )
        message = decode(records[0]["Sns"]["Message"])
        deps = self.deps()
        attempt = deps.ledger.bump_attempt(message.run_id, self.name, context.aws_request_id)
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
