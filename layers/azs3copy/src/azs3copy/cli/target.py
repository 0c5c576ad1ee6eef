"""Where the commands act: an AWS account (boto3's credentials, names from --prefix) or the local environment
(--local: the deployment record `make up` wrote); the settings secret they read and write."""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
)

from azs3copy.backends.wire_logs import quiet_wire_loggers
from azs3copy.settings import parse_settings

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=5, read_timeout=900)


class CliError(Exception):
    """A failure to report in one line (exit status 1)."""


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
                    if error_code(error) == "ResourceNotFoundException":
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

    def _queue_of(self, arn: str) -> str:
        account, name = arn.split(":")[4], arn.split(":")[5]
        url: str = self.client("sqs").get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)[
            "QueueUrl"
        ]
        return url

    def queue_url(self, component: str) -> str | None:
        """The SQS queue a step reads through its event source mapping (None for launch-qualification)."""
        if self.local is not None:
            url = self.local.get("queue_urls", {}).get(component)
            return str(url) if url else None
        mappings = self.client("lambda").list_event_source_mappings(FunctionName=self.function(component))
        for mapping in mappings.get("EventSourceMappings", []):
            if ":sqs:" in mapping.get("EventSourceArn", ""):
                return self._queue_of(mapping["EventSourceArn"])
        return None

    def dlq_url(self, component: str) -> str | None:
        """The function's dead-letter queue: its step queue's redrive target, or the on-failure destination of
        its asynchronous invocations (launch-qualification)."""
        if self.local and self.local.get("dlq_urls", {}).get(component):
            return str(self.local["dlq_urls"][component])
        try:
            config = self.client("lambda").get_function_event_invoke_config(
                FunctionName=self.function(component)
            )
        except ClientError as error:
            if error_code(error) != "ResourceNotFoundException":
                raise
            config = {}
        arn = config.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination") or ""
        if ":sqs:" in arn:
            return self._queue_of(arn)
        queue = self.queue_url(component)
        if queue is None:
            return None
        attributes = self.client("sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=["RedrivePolicy"])
        policy = attributes.get("Attributes", {}).get("RedrivePolicy")
        target = str(json.loads(policy).get("deadLetterTargetArn", "")) if policy else ""
        return self._queue_of(target) if ":sqs:" in target else None

    def ledger(self) -> Any:
        from azs3copy.backends.dynamodb import DynamoLedger

        return DynamoLedger(self.client("dynamodb"), self.ledger_table)


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def resolve_target(args: argparse.Namespace) -> Target:
    if args.local or args.deployment:
        from azs3copy.cli.local_target import LocalEnvironmentError, answers, load_deployment

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


def azure_source(creds: Any) -> Any:
    from azs3copy.backends.azure_auth import blob_service_client
    from azs3copy.backends.azure_blob import AzureBlobSource

    return AzureBlobSource(blob_service_client(creds), creds=creds)
