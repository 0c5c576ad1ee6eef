"""The function's environment, read once and checked: a missing or malformed variable is a ConfigError that
names it. Nothing falls back to a placeholder."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from azs3copy.errors import ConfigError
from azs3copy.functions import FUNCTIONS, HANDS_TO, snake, topic_variable
from azs3copy.planner import MAX_PART_SIZE, MiB
from azs3copy.settings import parse_storage_class
from azs3copy.steps.context import MAX_LISTING_SHARDS, MAX_PAGE_SIZE, Topics, Tuning

PREFIX = "AZS3COPY_"


def _int(env: Mapping[str, str], name: str, default: int, minimum: int, maximum: int | None = None) -> int:
    raw = env.get(PREFIX + name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(
            f"environment variable {PREFIX}{name} must be a whole number, found {raw!r}"
        ) from None
    if value < minimum:
        raise ConfigError(f"environment variable {PREFIX}{name} must be at least {minimum}, found {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"environment variable {PREFIX}{name} must be at most {maximum}, found {value}")
    return value


@dataclass(frozen=True)
class RuntimeConfig:
    env: Mapping[str, str]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RuntimeConfig:
        return cls(dict(os.environ if env is None else env))

    def require(self, name: str) -> str:
        value = self.env.get(PREFIX + name, "").strip()
        if not value:
            raise ConfigError(f"environment variable {PREFIX}{name} is not set for this function")
        return value

    def optional(self, name: str) -> str | None:
        value = self.env.get(PREFIX + name, "").strip()
        return value or None

    @property
    def secret_id(self) -> str:
        return self.require("SECRET_ID")

    @property
    def bucket(self) -> str:
        return self.require("BUCKET")

    @property
    def ledger_table(self) -> str:
        return self.require("LEDGER_TABLE")

    @property
    def kms_key_id(self) -> str | None:
        return self.optional("KMS_KEY_ID")

    @property
    def dlq_url(self) -> str | None:
        """The function's own dead-letter queue, for blobs failed by errors no retry can fix."""
        return self.optional("DLQ_URL")

    @property
    def queue_url(self) -> str | None:
        """The SQS queue the function's event source mapping reads (unset for launch-qualification)."""
        return self.optional("QUEUE_URL")

    @property
    def retry_delay(self) -> int:
        """Seconds before a failed record is delivered again, times its attempt (Lambda's asynchronous
        retries waited about 1 and 2 minutes)."""
        return _int(self.env, "RETRY_DELAY", 60, 0, 3600)

    @property
    def credentials_ttl(self) -> int:
        """Seconds a warm worker keeps the Azure credentials it read from the secret."""
        return _int(self.env, "CREDENTIALS_TTL", 60, 0)

    def topics(self, function: str) -> Topics:
        """The topics `function` publishes to, each required (a ConfigError naming its variable when it is
        missing, at the first invocation, before anything is written); the others are left empty."""
        if function not in HANDS_TO:
            raise ConfigError(f"no function {function!r} (known: {', '.join(FUNCTIONS)})")
        return Topics(**{snake(to): self.require(topic_variable(to)) for to in HANDS_TO[function]})

    def tuning(self) -> Tuning:
        verify = (self.optional("VERIFY") or "checksum").lower()
        if verify not in ("checksum", "readback"):
            raise ConfigError(
                f"environment variable {PREFIX}VERIFY must be checksum or readback, found {verify!r}"
            )
        try:
            return Tuning(
                large_threshold=_int(self.env, "LARGE_THRESHOLD", 100 * MiB, 1),
                part_size=_int(self.env, "PART_SIZE", 16 * MiB, 5 * MiB),
                chunk_size=_int(self.env, "CHUNK_SIZE", 16 * MiB, 5 * MiB),
                max_attempts=_int(self.env, "MAX_ATTEMPTS", 3, 1),
                verify="checksum" if verify == "checksum" else "readback",
                report_prefix=self.optional("REPORT_PREFIX") or "_azs3copy/reports/",
                page_size=_int(self.env, "PAGE_SIZE", MAX_PAGE_SIZE, 1, MAX_PAGE_SIZE),
                listing_shards=_int(self.env, "LISTING_SHARDS", 32, 0, MAX_LISTING_SHARDS),
                copy_threads=_int(self.env, "COPY_THREADS", 4, 1),
                max_part_size=_int(self.env, "MAX_PART_SIZE", MAX_PART_SIZE, 5 * MiB),
                stale_run_seconds=_int(self.env, "STALE_RUN_SECONDS", 12 * 3600, 60),
                storage_class=parse_storage_class(
                    self.optional("STORAGE_CLASS") or "STANDARD",
                    f"environment variable {PREFIX}STORAGE_CLASS",
                ),
            )
        except ValueError as error:  # Tuning's own checks
            raise ConfigError(f"environment: {error}") from None
