"""AWS clients and the pieces built on them: the SNS publisher and the cached settings loader.

Clients are created by the handlers (once per warm container), never at import time. Endpoints come from the
standard variables (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`), which only the local environment sets.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from azs3copy.aws_errors import classify_client_error
from azs3copy.errors import ConfigError, TransientError
from azs3copy.model import SNS_MAX_BYTES
from azs3copy.settings import Settings, parse_settings
from azs3copy.wire_logs import quiet_wire_loggers

CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    max_pool_connections=32,
    connect_timeout=10,
    read_timeout=120,
)


def client(service: str, session: boto3.session.Session | None = None) -> Any:
    quiet_wire_loggers()  # botocore would log request parameters and response bodies (secrets) at DEBUG
    return (session or boto3.session.Session()).client(service, config=CLIENT_CONFIG)  # type: ignore[call-overload]


class SnsPublisher:
    """Publishes with PublishBatch: up to 10 messages and 256 KiB a request, several requests at once."""

    def __init__(self, sns: Any, threads: int = 8) -> None:
        self.sns = sns
        self.threads = threads

    def publish(self, topic: str, bodies: list[str]) -> None:
        if not bodies:
            return
        if not topic:
            raise ConfigError("a topic ARN this function publishes to is not set in its environment")
        requests: list[list[str]] = []
        current: list[str] = []
        size = 0
        for body in bodies:
            length = len(body.encode())
            if current and (len(current) == 10 or size + length > SNS_MAX_BYTES):
                requests.append(current)
                current, size = [], 0
            current.append(body)
            size += length
        requests.append(current)
        if len(requests) == 1:
            self._send(topic, requests[0])
            return
        with ThreadPoolExecutor(max_workers=min(self.threads, len(requests))) as pool:
            list(pool.map(lambda batch: self._send(topic, batch), requests))

    def _send(self, topic: str, bodies: list[str]) -> None:
        entries = [{"Id": f"m{i}", "Message": body} for i, body in enumerate(bodies)]
        for attempt in range(6):
            try:
                response = self.sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=entries)
            except (ClientError, BotoCoreError) as error:
                raise classify_client_error(error, f"publish to {topic}") from error
            failed = {item["Id"] for item in response.get("Failed", [])}
            if not failed:
                return
            entries = [entry for entry in entries if entry["Id"] in failed]
            time.sleep(min(2.0, 0.1 * 2**attempt))
        raise TransientError(f"publish to {topic}: {len(entries)} message(s) still refused after retries")


class SettingsLoader:
    """The secret's settings, read through a cache of `ttl` seconds per warm container."""

    def __init__(self, secrets: Any, secret_id: str, ttl: float) -> None:
        self.secrets = secrets
        self.secret_id = secret_id
        self.ttl = ttl
        self._cached: tuple[float, Settings] | None = None

    def get(self) -> Settings:
        now = time.monotonic()
        if self._cached and now - self._cached[0] < self.ttl:
            return self._cached[1]
        try:
            response = self.secrets.get_secret_value(SecretId=self.secret_id)
        except (ClientError, BotoCoreError) as error:
            raise classify_client_error(error, f"read secret {self.secret_id}") from error
        text = response.get("SecretString")
        if text is None:
            raise ConfigError(f"secret {self.secret_id} holds binary data; it must hold a JSON text")
        settings = parse_settings(text)
        self._cached = (now, settings)
        return settings


def request_id() -> str:
    return uuid.uuid4().hex
