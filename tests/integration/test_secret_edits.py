"""Editing the secret as an operator does, against the real handlers (Azurite, moto server, real SNS
envelopes) with the functions' default credentials cache: the launch right after an edit runs with the new
values, and a run keeps the values it was launched with whatever is written meanwhile."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient

from azs3copy.errors import ConfigError
from devenv.emulators import Azurite, MotoServer
from tests.support.pump import lambda_context, load_handler
from tests.support.stack import Stack, handler_stack


@pytest.fixture(scope="module")
def stack(moto_server: MotoServer, azurite: Azurite) -> Iterator[Stack]:
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    # The functions' default: a warm container keeps the secret's credentials for a minute.
    with handler_stack(
        moto_server,
        service,
        azurite.connection_string,
        name="edits",
        extra_env={"AZS3COPY_CREDENTIALS_TTL": "60"},
    ) as built:
        yield built


def write(stack: Stack, document: dict[str, Any]) -> None:
    stack.secrets.put_secret_value(SecretId=stack.secret_id, SecretString=json.dumps(document))


def test_editing_the_secret_then_launching_at_once_runs_with_the_new_values_until_the_report(
    stack: Stack,
) -> None:
    container = f"c{uuid.uuid4().hex[:10]}"
    stack.azure.create_container(container)
    blobs = {"logs/a.csv": b"a,1\n", "logs/b.csv": b"b,2\n", "logs/c.txt": b"c", "tmp/d.csv": b"d,4\n"}
    for name, data in blobs.items():
        stack.azure.get_blob_client(container, name).upload_blob(data, overwrite=True)
    document = {
        "isactive": False,
        "begindate": "2000-01-01",
        "azure": {"connection_string": stack.connection_string},
        "containers": [container],
    }
    launch = load_handler("launch-qualification")  # one warm container, as the console's test button hits
    pump = stack.pump()

    def invoke() -> dict[str, Any]:
        return dict(launch.lambda_handler({}, lambda_context("launch-qualification")))

    write(stack, document)
    assert invoke()["reason"] == "isactive is false in the secret"
    write(
        stack,
        {**document, "isactive": True, "prefix": "logs/", "include": ["*.csv"], "destination_prefix": "mig/"},
    )
    started = invoke()  # at once
    assert started["started"] is True, started
    # Mid-run the operator rewrites every selection key, with a typo among them.
    write(
        stack,
        {
            **document,
            "isactive": True,
            "begindate": "2100-01-01",
            "prefix": "",
            "include": ["*.txt"],
            "destination_prefix": "other/",
            "exclde": ["*"],
        },
    )
    pump.drain()
    assert not pump.failures, pump.failures
    assert stack.keys(f"mig/{container}/") == [f"mig/{container}/logs/a.csv", f"mig/{container}/logs/b.csv"]
    assert stack.keys("other/") == []
    for name in ("logs/a.csv", "logs/b.csv"):
        assert stack.object_bytes(f"mig/{container}/{name}") == blobs[name]
    report = stack.report(str(started["run_id"]))
    assert report["ok"] is True and report["counts"]["copied"] == 2 and report["found"] == 2
    with pytest.raises(ConfigError, match="unknown keys: exclde"):
        invoke()  # the typo is the next launch's to report
