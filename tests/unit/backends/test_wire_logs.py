"""With every logger at DEBUG, a secret read or written through azs3copy's clients is in no log record."""

from __future__ import annotations

import logging

import pytest
from moto import mock_aws

from azs3copy.backends.aws import client
from azs3copy.backends.wire_logs import WIRE_LOGGERS

CANARY = "client-secret-CANARY-7f3e~9"


def test_botocore_does_not_log_a_secret_value_even_at_debug(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in WIRE_LOGGERS:
        monkeypatch.setattr(logging.getLogger(name), "level", logging.NOTSET)
    caplog.set_level(logging.DEBUG)
    with mock_aws():
        secrets = client("secretsmanager")
        secrets.create_secret(Name="azs3copy", SecretString="{}")
        secrets.put_secret_value(
            SecretId="azs3copy", SecretString=f'{{"azure": {{"client_secret": "{CANARY}"}}}}'
        )
        assert CANARY in secrets.get_secret_value(SecretId="azs3copy")["SecretString"]
    assert any(record.name.startswith("botocore") for record in caplog.records), "DEBUG logging was on"
    leaks = [record.name for record in caplog.records if CANARY in record.getMessage()]
    assert leaks == []
