"""AWS clients and the reader of the settings secret.

Clients are created by the handlers (once per warm container), never at import time. Endpoints come from the
standard variables (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`), which only the local environment sets.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from azs3copy.backends.aws_errors import classify_client_error
from azs3copy.backends.wire_logs import quiet_wire_loggers
from azs3copy.errors import ConfigError

CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    max_pool_connections=32,
    connect_timeout=10,
    read_timeout=120,
)

#: S3 requests are signed without the SHA-256 of their body (x-amz-content-sha256: UNSIGNED-PAYLOAD): every
#: PutObject and UploadPart carries a CRC32 (a PutObject its Content-MD5 too) that S3 checks, so hashing each
#: byte once more with SHA-256 adds CPU and no check. Measured with botocore 1.44: over HTTPS (AWS) it already
#: leaves out the SHA-256 of a PutObject that carries a Content-MD5, but signs every UploadPart's body, which
#: this setting stops; over plain HTTP (the local moto) botocore signs every body unless told, and with this
#: setting it does not either, so local runs spend what AWS runs spend. The header and the rest of the
#: request stay signed.
S3_CONFIG = CLIENT_CONFIG.merge(Config(s3={"payload_signing_enabled": False}))


def client(service: str, session: boto3.session.Session | None = None) -> Any:
    quiet_wire_loggers()  # botocore would log request parameters and response bodies (secrets) at DEBUG
    config = S3_CONFIG if service == "s3" else CLIENT_CONFIG
    return (session or boto3.session.Session()).client(service, config=config)  # type: ignore[call-overload]


class SecretReader:
    """The secret's JSON text, read through a cache of `ttl` seconds per warm container (0: read every time)."""

    def __init__(self, secrets: Any, secret_id: str, ttl: float) -> None:
        self.secrets = secrets
        self.secret_id = secret_id
        self.ttl = ttl
        self._cached: tuple[float, str] | None = None

    def text(self, *, fresh: bool = False) -> str:
        """The secret's value; `fresh` reads it again whatever the cache holds."""
        now = time.monotonic()
        if self._cached and not fresh and now - self._cached[0] < self.ttl:
            return self._cached[1]
        try:
            response = self.secrets.get_secret_value(SecretId=self.secret_id)
        except (ClientError, BotoCoreError) as error:
            raise classify_client_error(error, f"read secret {self.secret_id}") from error
        text = response.get("SecretString")
        if text is None:
            raise ConfigError(f"secret {self.secret_id} holds binary data; it must hold a JSON text")
        self._cached = (now, text)
        return str(text)


def request_id() -> str:
    return uuid.uuid4().hex
