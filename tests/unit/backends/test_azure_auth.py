"""Sign-in settings, the one-client-per-credential cache and the error messages, without a network."""

from __future__ import annotations

import string
from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import StorageErrorCode
from hypothesis import given
from hypothesis import strategies as st

from azs3copy.backends.azure_auth import (
    POOL_SIZE,
    TRANSACTIONAL_MD5_LIMIT,
    ServicePrincipalCredential,
    azure_errors,
    blob_service_client,
    classify_azure_error,
    clear_client_cache,
    sign_in_error,
)
from azs3copy.errors import (
    AccessDeniedError,
    AzureAuthError,
    ChecksumMismatchError,
    ConfigError,
    FatalError,
    NeedsRehydrationError,
    SourceChangedError,
    SourceVanishedError,
    TransientError,
)
from azs3copy.settings import AzureCredentials, parse_azure

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "0b7f3d6e-5c1a-4f9e-8a2b-6d4c3e2f1a09"
SECRET = "Xy7~q.unit-test-secret_Q9w8E7r6T5y4"


def sp(**overrides: str) -> AzureCredentials:
    document = {"account_name": "acct", "tenant_id": TENANT, "client_id": CLIENT, "client_secret": SECRET}
    document.update(overrides)
    creds = parse_azure(document)
    assert creds is not None
    return creds


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    clear_client_cache()
    yield
    clear_client_cache()


# -- sovereign clouds --------------------------------------------------------------------------------------

CLOUD_CASES = [
    (None, "https://login.microsoftonline.com", "https://acct.blob.core.windows.net"),
    ("public", "https://login.microsoftonline.com", "https://acct.blob.core.windows.net"),
    ("AzureCloud", "https://login.microsoftonline.com", "https://acct.blob.core.windows.net"),
    (
        "https://login.microsoftonline.com/",
        "https://login.microsoftonline.com",
        "https://acct.blob.core.windows.net",
    ),
    ("usgovernment", "https://login.microsoftonline.us", "https://acct.blob.core.usgovcloudapi.net"),
    ("AzureUSGovernment", "https://login.microsoftonline.us", "https://acct.blob.core.usgovcloudapi.net"),
    (
        "https://login.microsoftonline.us",
        "https://login.microsoftonline.us",
        "https://acct.blob.core.usgovcloudapi.net",
    ),
    ("china", "https://login.chinacloudapi.cn", "https://acct.blob.core.chinacloudapi.cn"),
    ("AzureChinaCloud", "https://login.chinacloudapi.cn", "https://acct.blob.core.chinacloudapi.cn"),
    (
        "https://login.chinacloudapi.cn",
        "https://login.chinacloudapi.cn",
        "https://acct.blob.core.chinacloudapi.cn",
    ),
]


@pytest.mark.parametrize(("authority", "expected_authority", "expected_url"), CLOUD_CASES)
def test_cloud_by_name_or_url_sets_sign_in_authority_and_storage_endpoint_suffix(
    authority: str | None, expected_authority: str, expected_url: str
) -> None:
    creds = sp(**({"authority": authority} if authority else {}))
    assert creds.authority == expected_authority
    assert creds.account_url == expected_url


@pytest.mark.parametrize(("authority", "expected_authority", "expected_url"), CLOUD_CASES)
def test_known_cloud_signs_in_with_instance_discovery_and_the_clouds_authority(
    authority: str | None, expected_authority: str, expected_url: str
) -> None:
    client = blob_service_client(sp(**({"authority": authority} if authority else {})))
    credential = client.credential
    assert isinstance(credential, ServicePrincipalCredential)
    inner: Any = credential._inner
    assert inner._authority == expected_authority
    assert inner._instance_discovery is True
    assert client.url.startswith(expected_url)


def test_private_authority_disables_instance_discovery() -> None:
    creds = sp(authority="https://login.example.test", account_url="https://acct.blob.example.test")
    credential = blob_service_client(creds).credential
    assert isinstance(credential, ServicePrincipalCredential)
    inner: Any = credential._inner
    assert inner._authority == "https://login.example.test"
    assert inner._instance_discovery is False


def test_account_url_of_a_sovereign_cloud_picks_its_authority_when_none_is_given() -> None:
    creds = sp(account_url="https://acct.blob.core.chinacloudapi.cn")
    assert creds.authority == "https://login.chinacloudapi.cn"


# -- one client per credential -----------------------------------------------------------------------------


def test_equal_credentials_share_one_client_and_one_credential() -> None:
    first, second = sp(), sp()
    assert first is not second
    client = blob_service_client(first)
    assert blob_service_client(second) is client
    assert isinstance(client.credential, ServicePrincipalCredential)


def test_a_rotated_secret_gets_its_own_client() -> None:
    old = blob_service_client(sp())
    new = blob_service_client(sp(client_secret="rotated-" + SECRET))
    assert new is not old and new.credential is not old.credential


def test_clearing_the_cache_builds_a_new_client() -> None:
    old = blob_service_client(sp())
    clear_client_cache()
    assert blob_service_client(sp()) is not old


def test_each_credential_mode_builds_a_client() -> None:
    key = "a2V5" * 22
    sas = parse_azure({"account_url": "https://acct.blob.core.windows.net", "sas_token": "?sv=1&sig=abc"})
    account_key = parse_azure({"account_name": "acct", "account_key": key})
    connection = parse_azure(
        {
            "connection_string": f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={key};EndpointSuffix=core.windows.net"
        }
    )
    for creds in (sas, account_key, connection):
        assert creds is not None
        client = blob_service_client(creds)
        assert client.account_name == "acct"
        assert client.url.startswith("https://acct.blob.core.windows.net")


def test_transport_pools_enough_connections_for_concurrent_ranged_reads() -> None:
    client: Any = blob_service_client(sp())
    session = client._pipeline._transport.session
    assert session.get_adapter("https://acct.blob.core.windows.net")._pool_maxsize >= max(16, POOL_SIZE)
    assert client._config.max_single_get_size == TRANSACTIONAL_MD5_LIMIT == 4 * 1024 * 1024
    assert client._config.max_chunk_get_size == TRANSACTIONAL_MD5_LIMIT


# -- sign-in failures --------------------------------------------------------------------------------------


def entra_error(code: int, text: str) -> ClientAuthenticationError:
    return ClientAuthenticationError(
        message=f"Authentication failed: AADSTS{code}: {text} Trace ID: 1 Correlation ID: 2 Timestamp: 3"
    )


@pytest.mark.parametrize(
    ("error", "setting"),
    [
        (entra_error(90002, "Tenant 'x' not found. Check to make sure."), "azure.tenant_id"),
        (
            entra_error(900023, "Specified tenant identifier 'x' is neither a valid DNS name."),
            "azure.tenant_id",
        ),
        (
            ClientAuthenticationError(
                message="Authentication failed: Unable to get authority configuration for https://h/x."
            ),
            "azure.tenant_id",
        ),
        (
            entra_error(700016, "Application with identifier 'x' was not found in the directory."),
            "azure.client_id",
        ),
        (entra_error(7000215, "Invalid client secret provided. Ensure the secret."), "azure.client_secret"),
        (entra_error(7000222, "The provided client secret keys for app are expired."), "azure.client_secret"),
        (
            entra_error(500011, "The resource principal named https://storage.azure.com was not found."),
            "azure.authority",
        ),
    ],
)
def test_sign_in_failure_names_the_setting_to_check_and_is_not_retryable(
    error: ClientAuthenticationError, setting: str
) -> None:
    result = classify_azure_error(error, sp())
    assert isinstance(result, AzureAuthError) and not result.retryable
    assert setting in str(result)
    assert SECRET not in str(result)


def unavailable(message: str, cause: BaseException | None = None) -> ClientAuthenticationError:
    try:
        raise ClientAuthenticationError(message=message) from cause
    except ClientAuthenticationError as error:
        return error


@pytest.mark.parametrize(
    "error",
    [
        unavailable(
            "Authentication failed: HTTPSConnection(host='login.microsoftonline.com', port=443): Failed to "
            "establish a new connection: [Errno 111] Connection refused",
            ServiceRequestError("Connection refused"),
        ),
        unavailable("Authentication failed: read timed out", ServiceResponseError("timed out")),
        unavailable("Authentication failed: HTTP Error: 503"),
        unavailable("Authentication failed: HTTP Error: 429"),
        entra_error(90033, "A transient error has occurred. Please try again."),
        unavailable("Authentication failed: JSON is invalid: Expecting value\nContent: <html>Bad gateway"),
    ],
    ids=["unreachable", "timeout", "503", "429", "transient-AADSTS90033", "not-json"],
)
def test_a_token_endpoint_that_is_down_or_busy_is_retryable_not_a_settings_error(
    error: ClientAuthenticationError,
) -> None:
    result = classify_azure_error(error, sp())
    assert isinstance(result, TransientError) and result.retryable
    assert "a retry can help" in str(result) and SECRET not in str(result)
    assert "check azure." not in str(result)


def test_expired_secret_says_so() -> None:
    result = sign_in_error(entra_error(7000222, "The provided client secret keys for app are expired."), sp())
    assert "expired" in str(result) and "azure.client_secret" in str(result)


def test_unknown_sign_in_failure_lists_every_setting_and_entras_code() -> None:
    result = sign_in_error(entra_error(12345, "Something new happened."), sp())
    for setting in ("azure.tenant_id", "azure.client_id", "azure.client_secret", "azure.authority"):
        assert setting in str(result)
    assert "AADSTS12345" in str(result)


# A real client secret carries digits and symbols; a bare word could occur in the guidance text itself
# (hypothesis found "client_secre", which is part of "azure.client_secret").
secrets = st.text(alphabet=string.ascii_letters + string.digits + "~._-", min_size=12, max_size=40).filter(
    lambda value: any(c.isdigit() for c in value) and any(c in "~.-" for c in value)
)


@given(secret=secrets, code=st.sampled_from([90002, 700016, 7000215, 7000222, 500011, 53003, 1]))
def test_sign_in_messages_never_contain_the_secret_even_when_the_service_echoes_it(
    secret: str, code: int
) -> None:
    creds = sp(client_secret=secret)
    echoed = ClientAuthenticationError(
        message=f"AADSTS{code}: bad value '{secret}' for client_secret {secret}"
    )
    for result in (sign_in_error(echoed, creds), classify_azure_error(echoed, creds)):
        assert secret not in str(result)
        assert secret not in repr(result)


@given(secret=secrets)
def test_storage_error_messages_never_contain_a_sas_signature_or_token(secret: str) -> None:
    creds = parse_azure(
        {"account_url": "https://acct.blob.core.windows.net", "sas_token": f"sv=1&sig={secret}"}
    )
    error = ServiceRequestError(
        f"HTTPSConnectionPool(host='acct.blob.core.windows.net'): Max retries exceeded with url: "
        f"/c?restype=container&sv=1&sig={secret} (Caused by timeout)"
    )
    for given_creds in (creds, None):
        result = classify_azure_error(error, given_creds)
        assert isinstance(result, TransientError)
        assert secret not in str(result)


def test_account_key_in_a_connection_string_is_redacted() -> None:
    key = "c2VjcmV0LWtleS12YWx1ZQ=="
    creds = parse_azure(
        {"connection_string": f"AccountName=acct;AccountKey={key};EndpointSuffix=core.windows.net"}
    )
    result = classify_azure_error(HttpResponseError(message=f"oops AccountKey={key}"), creds)
    assert key not in str(result)


# -- storage responses -------------------------------------------------------------------------------------


def http_error(status: int, code: str, cls: type[HttpResponseError] = HttpResponseError) -> HttpResponseError:
    error = cls(message=f"{code} happened")
    error.status_code = status
    error.error_code = code
    return error


@pytest.mark.parametrize(
    ("error", "expected", "retryable"),
    [
        (http_error(403, "AuthorizationPermissionMismatch"), AccessDeniedError, False),
        (http_error(403, "AuthorizationFailure"), AccessDeniedError, False),
        (http_error(403, "AuthenticationFailed"), AzureAuthError, False),
        (http_error(401, "InvalidAuthenticationInfo", ClientAuthenticationError), AzureAuthError, False),
        (http_error(404, "BlobNotFound", ResourceNotFoundError), SourceVanishedError, False),
        (http_error(404, "ContainerNotFound", ResourceNotFoundError), ConfigError, False),
        (http_error(404, "ResourceNotFound"), SourceVanishedError, False),
        (http_error(412, "ConditionNotMet", ResourceModifiedError), SourceChangedError, False),
        (http_error(409, "BlobArchived"), NeedsRehydrationError, False),
        (
            HttpResponseError(message="This operation is not permitted on an archived blob."),
            NeedsRehydrationError,
            False,
        ),
        (http_error(503, "ServerBusy"), TransientError, True),
        (http_error(500, "InternalError"), TransientError, True),
        (http_error(429, "TooManyRequests"), TransientError, True),
        (ServiceRequestError("connection reset"), TransientError, True),
        (ServiceResponseError("read timed out"), TransientError, True),
        (TimeoutError("timed out"), TransientError, True),
        (
            HttpResponseError(message="MD5 mismatch. Expected value is 'a', computed value is 'b'."),
            ChecksumMismatchError,
            True,
        ),
        (http_error(400, "InvalidQueryParameterValue"), FatalError, False),
    ],
)
def test_storage_errors_map_to_what_happened_and_whether_a_retry_helps(
    error: BaseException, expected: type[Exception], retryable: bool
) -> None:
    result = classify_azure_error(error, sp(), what="read c/b bytes 0-9")
    assert isinstance(result, expected)
    assert result.retryable is retryable
    assert "read c/b bytes 0-9" in str(result)


def test_the_storage_sdks_error_code_enum_is_understood() -> None:
    error = http_error(403, "x")
    error.error_code = StorageErrorCode.AUTHENTICATION_FAILED
    result = classify_azure_error(error, sp())
    assert isinstance(result, AzureAuthError) and "AuthenticationFailed" in str(result)


def test_permission_mismatch_names_the_role_a_service_principal_needs() -> None:
    result = classify_azure_error(http_error(403, "AuthorizationPermissionMismatch"), sp())
    assert "Storage Blob Data Reader" in str(result)


def test_permission_mismatch_with_a_sas_token_names_the_permissions_it_needs() -> None:
    creds = parse_azure({"account_url": "https://acct.blob.core.windows.net", "sas_token": "sv=1&sig=abc"})
    result = classify_azure_error(http_error(403, "AuthorizationPermissionMismatch"), creds)
    assert "azure.sas_token" in str(result) and "sp=rl" in str(result)


def test_an_azs3copy_error_passes_through_unchanged() -> None:
    error = SourceVanishedError("gone")
    assert classify_azure_error(error) is error


def test_azure_errors_block_raises_the_classified_error_without_the_sdk_text_attached() -> None:
    with pytest.raises(SourceVanishedError) as raised, azure_errors(what="read c/b"):
        raise http_error(404, "BlobNotFound", ResourceNotFoundError)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_a_container_that_does_not_exist_names_the_containers_setting() -> None:
    result = classify_azure_error(
        http_error(404, "ContainerNotFound", ResourceNotFoundError), what="list logz"
    )
    assert isinstance(result, ConfigError)
    assert "secret key 'containers'" in str(result) and "list logz" in str(result)
