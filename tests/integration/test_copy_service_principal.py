"""The six handlers copy through a service principal: the Entra stand-in signs it in, Azurite in OAuth mode
serves the blobs, moto server plays AWS. The bytes in S3 equal the bytes in Azure; a wrong secret stops the
run with an error that names the setting, and nothing is copied."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from azs3copy.azure_auth import clear_client_cache
from azs3copy.errors import AzureAuthError
from azs3copy.local.emulators import MotoServer
from tests.support.oauth import CLIENT_ID, CLIENT_SECRET, STORAGE_SCOPE, OAuthWorld, oauth_world
from tests.support.pump import lambda_context, load_handler
from tests.support.stack import PART, THRESHOLD, Stack, handler_stack

WRONG_SECRET = "Wr0ng~secret.value_for-the-test"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OAuthWorld]:
    with oauth_world(tmp_path_factory.mktemp("oauth-copy")) as started:
        yield started


@pytest.fixture(scope="module")
def stack(moto_server: MotoServer, world: OAuthWorld) -> Iterator[Stack]:
    # What the local runtime gives a function that signs in to the stand-in: the system CAs plus the test CA.
    with handler_stack(
        moto_server,
        world.key_client(),
        world.azurite.connection_string,
        name="sp",
        extra_env={"REQUESTS_CA_BUNDLE": world.verify},
    ) as built:
        yield built
    clear_client_cache()


@pytest.fixture(autouse=True)
def cold_start(world: OAuthWorld) -> None:
    clear_client_cache()
    world.token_server.forget()


def configure(stack: Stack, world: OAuthWorld, containers: list[str] | None, **azure: str) -> None:
    document: dict[str, Any] = {
        "isactive": True,
        "begindate": "2000-01-01",
        "azure": world.secret_azure(**azure),
    }
    if containers is not None:
        document["containers"] = containers
    stack.secrets.put_secret_value(SecretId=stack.secret_id, SecretString=json.dumps(document))


def new_container(stack: Stack, blobs: dict[str, bytes]) -> str:
    name = f"sp{uuid.uuid4().hex[:10]}"
    client = stack.azure.create_container(name)
    for blob, data in blobs.items():
        client.upload_blob(blob, data)
    return name


def test_small_and_large_blobs_copy_byte_exact_through_a_service_principal(
    stack: Stack, world: OAuthWorld
) -> None:
    blobs = {"small.csv": b"id,value\n1,one\n" * 1000, "large.bin": os.urandom(3 * PART + 4321)}
    container = new_container(stack, blobs)
    configure(stack, world, [container])
    pump = stack.pump()
    run_id = stack.launch()
    pump.drain()
    assert not pump.failures
    assert stack.assert_identical(container) == len(blobs)
    report = stack.report(run_id)
    assert report["counts"]["copied"] == 2 and report["ok"] is True
    asked = world.token_server.token_requests
    assert asked, "the handlers signed in through the token endpoint"
    assert {(r.status, r.client_id, r.scope) for r in asked} == {(200, CLIENT_ID, STORAGE_SCOPE)}
    assert len(asked) == 1, "one token for the warm container, reused by every handler call"


def test_a_wrong_secret_fails_the_run_naming_the_setting_and_copies_nothing(
    stack: Stack, world: OAuthWorld
) -> None:
    container = new_container(stack, {"small.csv": b"never copied", "large.bin": os.urandom(THRESHOLD + 1)})
    configure(stack, world, [container], client_secret=WRONG_SECRET)
    pump = stack.pump()
    run_id = stack.launch()  # the containers are named in the secret: the run starts, listing signs in
    pump.drain()
    assert stack.keys(container) == []
    assert not stack.open_uploads()
    report = stack.report(run_id)  # the run still ends, and its report says why
    assert report["ok"] is False and report["counts"]["failed"] == 1 and report["counts"]["copied"] == 0
    [failure] = report["failures"]
    assert failure["blob"] == f"{container}/"
    assert "AzureAuthError" in failure["reason"] and "azure.client_secret" in failure["reason"]
    assert WRONG_SECRET not in json.dumps(report) and CLIENT_SECRET not in json.dumps(report)
    assert pump.invocations["find-blobs"] == 1, "a refused sign-in is not retried"
    refused = world.token_server.token_requests
    assert [r.status for r in refused] == [401], "one sign-in, no retry inside the SDK either"


def test_a_wrong_secret_stops_the_launch_when_it_has_to_list_the_containers(
    stack: Stack, world: OAuthWorld
) -> None:
    configure(stack, world, None, client_secret=WRONG_SECRET)
    with pytest.raises(AzureAuthError, match=r"azure\.client_secret") as raised:
        load_handler("launch-qualification").lambda_handler(
            {"force": True}, lambda_context("launch-qualification")
        )
    assert WRONG_SECRET not in str(raised.value)
    assert len(world.token_server.token_requests) == 1
