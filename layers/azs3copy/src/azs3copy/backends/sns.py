"""The SNS publisher: PublishBatch, up to 10 messages and 256 KiB a request, several requests at once."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from azs3copy.backends.aws_errors import classify_client_error
from azs3copy.errors import ConfigError, TransientError
from azs3copy.messages import SNS_MAX_BYTES


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
