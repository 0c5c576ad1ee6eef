"""A service principal signs in for real on this machine: a local Entra stand-in issues the token over HTTPS,
Azurite in OAuth mode checks it, and the bytes read through the client equal the bytes stored."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.pipeline.policies import _authentication as azure_authentication
from azure.storage.blob import (
    AccountSasPermissions,
    BlobServiceClient,
    ResourceTypes,
    generate_account_sas,
)

from azs3copy.backends.azure_auth import azure_errors, blob_service_client, clear_client_cache
from azs3copy.errors import AccessDeniedError, AzureAuthError, ConfigError, TransientError
from azs3copy.settings import parse_azure
from devenv.emulators import AZURITE_ACCOUNT, AZURITE_KEY, Azurite, free_port
from tests.support.oauth import CLIENT_ID, CLIENT_SECRET, STORAGE_SCOPE, TENANT_ID, OAuthWorld, oauth_world

MiB = 1 << 20


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OAuthWorld]:
    with oauth_world(tmp_path_factory.mktemp("oauth")) as started:
        yield started


@pytest.fixture(autouse=True)
def fresh_container_state(world: OAuthWorld) -> Iterator[None]:
    """Each test is a cold Lambda container: no cached client, no token, and a fresh request log."""
    clear_client_cache()
    world.token_server.forget()
    world.token_server.token_lifetime = 3599
    yield
    clear_client_cache()


@pytest.fixture(scope="module")
def blobs(world: OAuthWorld) -> tuple[str, dict[str, bytes]]:
    container = f"sp{uuid.uuid4().hex[:10]}"
    data = {"small.txt": b"hello, service principal\n", "large.bin": os.urandom(21 * MiB + 12345)}
    client = world.key_client().create_container(container)
    for name, body in data.items():
        client.upload_blob(name, body)
    return container, data


def read_all(client: BlobServiceClient, container: str, name: str) -> bytes:
    stream = client.get_blob_client(container, name).download_blob(validate_content=True, max_concurrency=4)
    return stream.readall()


def test_service_principal_lists_containers_and_reads_small_and_large_blobs_byte_exact(
    world: OAuthWorld, blobs: tuple[str, dict[str, bytes]]
) -> None:
    container, data = blobs
    client = blob_service_client(world.creds(), connection_verify=world.verify)
    assert container in [item.name for item in client.list_containers()]
    for name, body in data.items():
        got = read_all(client, container, name)
        assert hashlib.sha256(got).hexdigest() == hashlib.sha256(body).hexdigest(), name
    requests = world.token_server.token_requests
    assert [(r.status, r.tenant, r.client_id, r.scope, r.grant_type) for r in requests] == [
        (200, TENANT_ID, CLIENT_ID, STORAGE_SCOPE, "client_credentials")
    ]


def test_a_warm_container_reuses_its_token_across_reads(
    world: OAuthWorld, blobs: tuple[str, dict[str, bytes]]
) -> None:
    container, data = blobs
    for _ in range(3):
        client = blob_service_client(
            world.creds(), connection_verify=world.verify
        )  # each invocation asks anew
        assert read_all(client, container, "small.txt") == data["small.txt"]
    assert len(world.token_server.token_requests) == 1


def test_a_token_is_refreshed_before_it_expires(
    world: OAuthWorld, blobs: tuple[str, dict[str, bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    container, data = blobs
    # The SDK refreshes 240-300 s before expiry (a random jitter); without the jitter, at 300 s.
    monkeypatch.setattr(azure_authentication, "MAX_REFRESH_JITTER_SECONDS", 0)
    world.token_server.token_lifetime = 303  # inside the refresh window after 3 s
    client = blob_service_client(world.creds(), connection_verify=world.verify)
    assert read_all(client, container, "small.txt") == data["small.txt"]
    assert read_all(client, container, "small.txt") == data["small.txt"]
    assert len(world.token_server.token_requests) == 1
    time.sleep(3.5)
    assert read_all(client, container, "small.txt") == data["small.txt"]
    assert len(world.token_server.token_requests) == 2


@pytest.mark.parametrize(
    ("override", "setting"),
    [
        ({"client_secret": "wrong-secret-value-123"}, "azure.client_secret"),
        ({"client_id": "11111111-2222-3333-4444-555555555555"}, "azure.client_id"),
        ({"tenant_id": "99999999-8888-7777-6666-555555555555"}, "azure.tenant_id"),
    ],
)
def test_wrong_service_principal_fails_at_once_with_an_error_naming_the_setting(
    world: OAuthWorld, blobs: tuple[str, dict[str, bytes]], override: dict[str, str], setting: str
) -> None:
    container, _ = blobs
    creds = world.creds(**override)
    client = blob_service_client(creds, connection_verify=world.verify)
    started = time.monotonic()
    with pytest.raises(AzureAuthError) as raised, azure_errors(creds, what=f"read {container}/small.txt"):
        read_all(client, container, "small.txt")
    assert time.monotonic() - started < 5, "a refused sign-in must not be retried with back-off"
    assert not raised.value.retryable
    message = str(raised.value)
    assert setting in message
    for value in (CLIENT_SECRET, "wrong-secret-value-123"):
        assert value not in message
    asked = world.token_server.seen
    assert len([r for r in asked if r.is_token or r.status != 200]) == 1, "asked Entra exactly once"


def test_a_token_endpoint_that_cannot_be_reached_is_retryable_and_blames_no_setting(
    world: OAuthWorld, blobs: tuple[str, dict[str, bytes]]
) -> None:
    container, _ = blobs
    creds = world.creds(authority=f"https://127.0.0.1:{free_port()}")  # nothing listens there
    client = blob_service_client(creds, connection_verify=world.verify)
    with pytest.raises(TransientError) as raised, azure_errors(creds, what=f"read {container}/small.txt"):
        read_all(client, container, "small.txt")
    message = str(raised.value)
    assert raised.value.retryable
    assert "could not be reached" in message and "a retry can help" in message
    assert "check azure." not in message and CLIENT_SECRET not in message


class StaticToken:
    """A credential that hands out a fixed bearer token (to see Azurite refuse a bad one)."""

    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 3600)


def test_azurite_refuses_a_token_it_cannot_accept(
    world: OAuthWorld, blobs: tuple[str, dict[str, bytes]]
) -> None:
    container, _ = blobs
    client = BlobServiceClient(
        world.azurite.endpoint,
        credential=StaticToken("not-a-jwt"),
        connection_verify=world.verify,
        retry_total=0,
    )
    with pytest.raises(AzureAuthError, match=r"azure\.tenant_id"), azure_errors(world.creds()):
        read_all(client, container, "small.txt")


def test_a_service_principal_over_plain_http_is_refused_before_any_token_is_asked_for(
    world: OAuthWorld, azurite: Azurite
) -> None:
    with pytest.raises(ConfigError, match=r"azure\.account_url.*https://"):
        world.creds(account_url=azurite.endpoint)
    assert world.token_server.token_requests == []


# -- the other credential modes, against plain Azurite -------------------------------------------------------


@pytest.fixture(scope="module")
def plain_blob(azurite: Azurite) -> tuple[str, bytes]:
    container = f"modes{uuid.uuid4().hex[:8]}"
    body = os.urandom(9 * MiB + 7)
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    service.create_container(container).upload_blob("blob.bin", body)
    return container, body


def account_sas(permission: AccountSasPermissions) -> str:
    return generate_account_sas(
        AZURITE_ACCOUNT,
        AZURITE_KEY,
        resource_types=ResourceTypes(service=True, container=True, object=True),
        permission=permission,
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )


def test_sas_token_mode_reads_byte_exact(azurite: Azurite, plain_blob: tuple[str, bytes]) -> None:
    container, body = plain_blob
    creds = parse_azure(
        {
            "account_url": azurite.endpoint,
            "sas_token": "?" + account_sas(AccountSasPermissions(read=True, list=True)),
        }
    )
    assert creds is not None and creds.mode == "sas"
    client = blob_service_client(creds)
    assert container in [item.name for item in client.list_containers()]
    assert read_all(client, container, "blob.bin") == body


def test_sas_token_without_list_permission_is_access_denied_naming_what_it_needs(
    azurite: Azurite, plain_blob: tuple[str, bytes]
) -> None:
    token = account_sas(AccountSasPermissions(read=True))
    creds = parse_azure({"account_url": azurite.endpoint, "sas_token": token})
    assert creds is not None
    client = blob_service_client(creds)
    with pytest.raises(AccessDeniedError) as raised, azure_errors(creds, what="list containers"):
        list(client.list_containers())
    assert "sp=rl" in str(raised.value)
    signature = token.split("sig=")[1].split("&")[0]
    assert signature not in str(raised.value)


def test_connection_string_mode_reads_byte_exact(azurite: Azurite, plain_blob: tuple[str, bytes]) -> None:
    container, body = plain_blob
    creds = parse_azure({"connection_string": azurite.connection_string})
    assert creds is not None and creds.mode == "connection-string"
    assert read_all(blob_service_client(creds), container, "blob.bin") == body


def test_account_key_mode_reads_byte_exact(azurite: Azurite, plain_blob: tuple[str, bytes]) -> None:
    container, body = plain_blob
    creds = parse_azure(
        {"account_url": azurite.endpoint, "account_name": AZURITE_ACCOUNT, "account_key": AZURITE_KEY}
    )
    assert creds is not None and creds.mode == "account-key"
    assert read_all(blob_service_client(creds), container, "blob.bin") == body


def test_wrong_account_key_is_an_auth_error_naming_the_key_setting(
    azurite: Azurite, plain_blob: tuple[str, bytes]
) -> None:
    container, _ = plain_blob
    wrong = "d3Jvbmcta2V5LXZhbHVl" * 4
    creds = parse_azure(
        {"account_url": azurite.endpoint, "account_name": AZURITE_ACCOUNT, "account_key": wrong}
    )
    assert creds is not None
    # Azure answers 403 AuthenticationFailed, Azurite 403 AuthorizationFailure: either names the key.
    with (
        pytest.raises((AzureAuthError, AccessDeniedError), match=r"azure\.account_key") as raised,
        azure_errors(creds),
    ):
        read_all(blob_service_client(creds), container, "blob.bin")
    assert wrong not in str(raised.value)


def test_tls_files_are_trusted_only_through_the_bundle(world: OAuthWorld) -> None:
    bundle = Path(world.verify).read_text()
    assert Path(world.tls.ca).read_text() in bundle
    assert os.environ.get("REQUESTS_CA_BUNDLE") != world.verify
