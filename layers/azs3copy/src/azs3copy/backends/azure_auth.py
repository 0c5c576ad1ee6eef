"""Sign in to Azure Storage and say clearly what went wrong when it refuses.

`blob_service_client(creds)` builds the one `BlobServiceClient` a warm Lambda container uses for a given
credential (service principal, SAS token, connection string or account key), with a connection pool sized
for concurrent ranged reads. For a service principal, the msal token cache inside the credential is reused
by every call, and the SDK asks for a new token in the last five minutes of the old one's life.

`classify_azure_error(exc, creds)` turns whatever the Azure SDK raised into an `Azs3copyError` that says what
happened and whether a retry can help. A sign-in failure (wrong tenant, client id or secret) becomes an
`AzureAuthError` naming the setting to check; it is raised by the credential itself, before the storage SDK's
own retry loop can try the wrong secret again. No message carries a credential's value.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Self

import requests
from azure.core.credentials import AccessToken, AccessTokenInfo, TokenRequestOptions
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    DecodeError,
    HttpResponseError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline.transport import RequestsTransport
from azure.identity import ClientSecretCredential
from azure.storage.blob import BlobServiceClient, ExponentialRetry

from azs3copy.backends.wire_logs import quiet_wire_loggers
from azs3copy.errors import (
    AccessDeniedError,
    Azs3copyError,
    AzureAuthError,
    ChecksumMismatchError,
    ConfigError,
    FatalError,
    NeedsRehydrationError,
    SourceChangedError,
    SourceVanishedError,
    TransientError,
)
from azs3copy.redaction import redact
from azs3copy.settings import CLOUDS, AzureCredentials

#: Connections kept open to the storage account: room for ~16 concurrent ranged reads plus listing.
POOL_SIZE = 32
#: Largest range the service returns a transactional MD5 for; reads with `validate_content=True` use it.
TRANSACTIONAL_MD5_LIMIT = 4 * 1024 * 1024
CONNECT_TIMEOUT = 10
READ_TIMEOUT = 60
#: How much of a response body the transport reads at a time. azure-core's default is 4 KiB (the storage
#: SDK's 256 KiB default applies only to a transport it builds itself): a 4 MiB range took 1,024 reads
#: through urllib3 and a join of the pieces, about 40 % of the download path's CPU in bench/profile_bytes.py.
#: One read of a whole range is one buffer, handed on without a copy.
READ_BLOCK = TRANSACTIONAL_MD5_LIMIT
#: The storage SDK's own retries of throttling and dropped connections (about 1, 4 and 10 s apart);
#: anything still failing after them goes back to Lambda's retry of the whole event.
RETRY_TOTAL = 3
RETRY_INITIAL_BACKOFF = 1
RETRY_INCREMENT_BASE = 3
#: Credentials whose clients stay cached (a rotated secret gets a new client; the old ones are closed).
CACHE_SIZE = 4

ROLE_NEEDED = "Storage Blob Data Reader"
_KNOWN_AUTHORITIES = {authority for authority, _suffix in CLOUDS.values()}

ConnectionVerify = bool | str


def disable_instance_discovery(authority: str) -> bool:
    """True for an authority that is not one of Microsoft's clouds (Azure Stack, a local stand-in)."""
    return authority.rstrip("/").lower() not in _KNOWN_AUTHORITIES


class ServicePrincipalCredential:
    """A `ClientSecretCredential` whose sign-in failures are `AzureAuthError` at once.

    The storage SDK retries any Azure error several times with back-off, which for a wrong secret only
    delays the answer (and can lock the app out). Raising an error that is not an `AzureError` from inside
    the pipeline stops it at the first refusal. A token endpoint that cannot be reached or is busy (after
    azure-identity's own retries) raises a `TransientError`, so Lambda retries the event later.
    """

    def __init__(self, creds: AzureCredentials, *, connection_verify: ConnectionVerify = True) -> None:
        if creds.mode != "service-principal" or not (
            creds.tenant_id and creds.client_id and creds.client_secret
        ):
            raise ValueError("ServicePrincipalCredential needs service-principal credentials")
        self.creds = creds
        self._inner = ClientSecretCredential(
            creds.tenant_id,
            creds.client_id,
            creds.client_secret,
            authority=creds.authority,
            disable_instance_discovery=disable_instance_discovery(creds.authority),
            connection_verify=connection_verify,
            connection_timeout=CONNECT_TIMEOUT,
            read_timeout=READ_TIMEOUT,
        )

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        try:
            return self._inner.get_token(
                *scopes, claims=claims, tenant_id=tenant_id, enable_cae=enable_cae, **kwargs
            )
        except ClientAuthenticationError as error:
            raise sign_in_error(error, self.creds) from None

    def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        try:
            return self._inner.get_token_info(*scopes, options=options)
        except ClientAuthenticationError as error:
            raise sign_in_error(error, self.creds) from None

    def close(self) -> None:
        self._inner.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _transport(connection_verify: ConnectionVerify) -> RequestsTransport:
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=POOL_SIZE, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return RequestsTransport(
        session=session,
        session_owner=True,
        connection_verify=connection_verify,
        connection_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        connection_data_block_size=READ_BLOCK,
    )


def _build_client(creds: AzureCredentials, connection_verify: ConnectionVerify) -> BlobServiceClient:
    options: dict[str, Any] = {
        "transport": _transport(connection_verify),
        "retry_policy": ExponentialRetry(
            initial_backoff=RETRY_INITIAL_BACKOFF,
            increment_base=RETRY_INCREMENT_BASE,
            retry_total=RETRY_TOTAL,
            random_jitter_range=1,
        ),
        "max_single_get_size": TRANSACTIONAL_MD5_LIMIT,
        "max_chunk_get_size": TRANSACTIONAL_MD5_LIMIT,
    }
    if creds.mode == "connection-string":
        assert creds.connection_string is not None
        return BlobServiceClient.from_connection_string(creds.connection_string, **options)
    if creds.mode == "service-principal" and not (creds.account_url or "").startswith("https://"):
        raise ConfigError(
            f"azure.account_url must be an https:// URL for a service principal (Azure sends its tokens over "
            f"HTTPS only), found {redact(str(creds.account_url), creds.secret_values())!r}"
        )
    if creds.account_url is None:
        raise AzureAuthError(
            "azure.account_url is missing: the storage account URL is needed for this credential"
        )
    credential: Any
    if creds.mode == "service-principal":
        credential = ServicePrincipalCredential(creds, connection_verify=connection_verify)
    elif creds.mode == "sas":
        credential = creds.sas_token
    else:
        credential = {"account_name": creds.account_name, "account_key": creds.account_key}
    return BlobServiceClient(creds.account_url, credential=credential, **options)


_cache: OrderedDict[tuple[AzureCredentials, ConnectionVerify], BlobServiceClient] = OrderedDict()
_cache_lock = threading.Lock()


def blob_service_client(
    creds: AzureCredentials, *, connection_verify: ConnectionVerify = True
) -> BlobServiceClient:
    """The container's one client for these credentials (built on first use, then reused).

    `connection_verify` is for tests against local HTTPS servers (a CA bundle path). Left at True, the
    transport trusts the system store, or the bundle named by `REQUESTS_CA_BUNDLE` when it is set.
    """
    quiet_wire_loggers()  # urllib3 would log each request line, a SAS signature with it, at DEBUG
    key = (creds, connection_verify)
    with _cache_lock:
        client = _cache.get(key)
        if client is not None:
            _cache.move_to_end(key)
            return client
        client = _build_client(creds, connection_verify)
        _cache[key] = client
        while len(_cache) > CACHE_SIZE:
            _key, old = _cache.popitem(last=False)
            _close(old)
        return client


def clear_client_cache() -> None:
    """Close and forget every cached client (tests; a Lambda container never needs it)."""
    with _cache_lock:
        while _cache:
            _key, client = _cache.popitem()
            _close(client)


def _close(client: BlobServiceClient) -> None:
    credential = client.credential
    client.close()
    if isinstance(credential, ServicePrincipalCredential):
        credential.close()


# -- errors ------------------------------------------------------------------------------------------------

_AADSTS = re.compile(r"AADSTS(\d+)")
_TENANT_CODES = {90002, 900023, 50059, 90013}
_CLIENT_CODES = {700016, 7000112, 900144, 700038}
_SECRET_CODES = {7000215, 7000222, 7000218, 7000216}
_CLOUD_CODES = {500011, 900382, 50049}
_POLICY_CODES = {53003, 53000, 530003, 530032}
#: Entra's "try again" answers: a transient service error, a request throttled.
_BUSY_CODES = {90033, 50196, 90006}
_BUSY_STATUS = re.compile(r"HTTP Error: (429|5\d\d)\b")


def _entra_detail(text: str) -> str:
    """Entra's own explanation: the code and its first sentence, without trace ids and timestamps."""
    match = _AADSTS.search(text)
    if not match:
        return ""
    sentence = text[match.start() :].split(" Trace ID:")[0]
    first = re.split(r"(?<=\.)\s", sentence, maxsplit=1)[0]
    return f" (Entra: {first})"


def _sign_in_unavailable(error: BaseException, text: str, code: int | None) -> str | None:
    """Why the token endpoint did not answer the sign-in, when the fault is its and not the settings':
    unreachable, timed out, busy (429, 5xx) or answering with something that is not Entra's JSON."""
    causes = [item for item in (error.__cause__, error.__context__) if item is not None]
    if any(isinstance(item, (ServiceRequestError, ServiceResponseError)) for item in causes):
        return "the token endpoint could not be reached"
    if any(isinstance(item, DecodeError) for item in causes) or "JSON is invalid" in text:
        return "the token endpoint answered with something other than Entra's JSON (a proxy or outage page)"
    busy = _BUSY_STATUS.search(text)
    if busy:
        return f"the token endpoint answered HTTP {busy.group(1)}"
    if code in _BUSY_CODES or "temporarily_unavailable" in text:
        return "Entra reported a transient error"
    return None


def sign_in_error(error: BaseException, creds: AzureCredentials) -> AzureAuthError | TransientError:
    """The error for a failed service-principal sign-in: `AzureAuthError` naming the setting to check when
    Entra refused the settings, `TransientError` when the token endpoint was unreachable or busy (a retry
    can help; the settings may well be right)."""
    text = redact(" ".join(str(item) for item in (error, error.__cause__) if item), _secrets(creds))
    match = _AADSTS.search(text)
    code = int(match.group(1)) if match else None
    detail = _entra_detail(text)
    who = f"tenant {creds.tenant_id!r} at {creds.authority}"
    unavailable = _sign_in_unavailable(error, text, code)
    if unavailable:
        return TransientError(
            f"Azure sign-in did not complete: {unavailable} ({creds.authority}); a retry can help"
            f"{detail or ': ' + _first_line(text)}"
        )
    if code in _TENANT_CODES or "Unable to get authority configuration" in text or "invalid_tenant" in text:
        message = (
            f"Azure sign-in failed: the tenant was not found at the authority; check azure.tenant_id "
            f"(the directory (tenant) ID of the app registration) and azure.authority (the cloud it is in), "
            f"found tenant {creds.tenant_id!r} at {creds.authority}{detail}"
        )
    elif code in _CLIENT_CODES:
        message = (
            f"Azure sign-in failed: no enabled application with this client id in {who}; check "
            f"azure.client_id (the application (client) ID of the app registration), found "
            f"{creds.client_id!r}{detail}"
        )
    elif code == 7000222:
        message = (
            f"Azure sign-in failed: the client secret of application {creds.client_id!r} has expired; "
            f"create a new one and store it in azure.client_secret{detail}"
        )
    elif code in _SECRET_CODES or "invalid_client" in text:
        message = (
            f"Azure sign-in failed: the client secret was refused for application {creds.client_id!r} in "
            f"{who}; check azure.client_secret (the secret's Value, not its Secret ID){detail}"
        )
    elif code in _CLOUD_CODES:
        message = (
            f"Azure sign-in failed: Azure Storage is not known to {creds.authority}; check azure.authority "
            f"(public, usgovernment or china: the cloud of the storage account){detail}"
        )
    elif code in _POLICY_CODES:
        message = (
            f"Azure sign-in failed: a Conditional Access policy of {who} blocks application "
            f"{creds.client_id!r}; check azure.client_id and the tenant's policies{detail}"
        )
    else:
        message = (
            f"Azure sign-in failed for application {creds.client_id!r} in {who}; check azure.tenant_id, "
            f"azure.client_id, azure.client_secret and azure.authority{detail or ': ' + _first_line(text)}"
        )
    return AzureAuthError(message)


def _first_line(text: str, limit: int = 300) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line[:limit]


def _error_code(error: HttpResponseError) -> str:
    code = getattr(error, "error_code", None)
    if not code and error.response is not None:
        headers = getattr(error.response, "headers", None) or {}
        code = headers.get("x-ms-error-code")
    return str(getattr(code, "value", code) or "")  # the storage SDK gives a StorageErrorCode enum


def _credential_setting(creds: AzureCredentials | None) -> str:
    return {
        "service-principal": "azure.tenant_id, azure.client_id and azure.authority",
        "sas": "azure.sas_token",
        "connection-string": "azure.connection_string",
        "account-key": "azure.account_name and azure.account_key",
    }[creds.mode if creds else "service-principal"]


def _secrets(creds: AzureCredentials | None) -> list[str]:
    return creds.secret_values() if creds else []


def classify_azure_error(  # noqa: C901 (one branch per kind of Azure answer, in the order they are told apart)
    exc: BaseException, creds: AzureCredentials | None = None, *, what: str = ""
) -> Azs3copyError:
    """The azs3copy error for an exception raised by the Azure SDK (or by its transport).

    `what` says what was being done (e.g. "read logs/a.csv bytes 0-99") for the message; with `creds`
    the message names the exact setting of that credential mode to check.
    """
    if isinstance(exc, Azs3copyError):
        return exc
    where = f" ({what})" if what else ""
    text = redact(str(exc), _secrets(creds))
    status = getattr(exc, "status_code", None)
    code = _error_code(exc) if isinstance(exc, HttpResponseError) else ""
    short = f"{status or ''} {code}".strip()

    if isinstance(exc, ClientAuthenticationError) and status is None:
        # Raised by a credential (no HTTP response from storage): a sign-in failure.
        if creds is not None and creds.mode == "service-principal":
            return sign_in_error(exc, creds)
        return AzureAuthError(
            f"Azure sign-in failed; check {_credential_setting(creds)}: {_first_line(text)}"
        )
    if status == 401 or code in ("InvalidAuthenticationInfo", "NoAuthenticationInformation"):
        return AzureAuthError(
            f"the storage account refused the credentials{where} ({short}); check {_credential_setting(creds)}"
            + (
                " (the tenant must be the storage account's, in the cloud azure.authority names)"
                if creds is None or creds.mode == "service-principal"
                else ""
            )
        )
    if status == 403:
        return _forbidden(code, creds, where, short)
    if code in ("BlobArchived", "BlobBeingRehydrated") or "archived blob" in text:
        return NeedsRehydrationError(
            f"the blob is in the archive tier{where}; rehydrate it to the hot or cool tier in Azure and run again"
        )
    if code == "ContainerNotFound":
        return ConfigError(
            f"the container does not exist in the storage account{where}; check the secret key 'containers' "
            "(a container deleted since the run started reads the same)"
        )
    if isinstance(exc, ResourceNotFoundError) or status == 404:
        return SourceVanishedError(
            f"not found in Azure{where} ({short or 'not found'}): deleted after listing"
        )
    if isinstance(exc, ResourceModifiedError) or status in (412, 416) or code == "ConditionNotMet":
        return SourceChangedError(f"the blob changed in Azure after it was listed{where} ({short})")
    if "MD5 mismatch" in text or "CRC64 mismatch" in text:
        return ChecksumMismatchError(
            f"bytes read from Azure did not match their checksum{where}: {_first_line(text)}"
        )
    if status is not None and (status in (408, 429) or status >= 500):
        return TransientError(f"Azure Storage is busy or failing{where} ({short}); a retry can help")
    if isinstance(exc, (ServiceRequestError, ServiceResponseError, DecodeError)):
        return TransientError(
            f"the connection to Azure failed{where} ({type(exc).__name__}): {_first_line(text)}"
        )
    if isinstance(exc, (TimeoutError, ConnectionError, requests.exceptions.RequestException)):
        return TransientError(
            f"the connection to Azure failed{where} ({type(exc).__name__}): {_first_line(text)}"
        )
    if isinstance(exc, HttpResponseError):
        return FatalError(f"Azure Storage refused the request{where} ({short}): {_first_line(text)}")
    if isinstance(exc, AzureError):
        return TransientError(f"Azure SDK error{where} ({type(exc).__name__}): {_first_line(text)}")
    return FatalError(f"unexpected error talking to Azure{where} ({type(exc).__name__}): {_first_line(text)}")


def _forbidden(code: str, creds: AzureCredentials | None, where: str, short: str) -> Azs3copyError:
    mode = creds.mode if creds else None
    if code == "AuthenticationFailed":
        return AzureAuthError(
            f"the storage account refused the credentials{where} ({short}); check {_credential_setting(creds)}"
            + (" (signature, expiry 'se=', start 'st=')" if mode == "sas" else "")
        )
    if code == "AuthorizationPermissionMismatch":
        if mode == "sas":
            need = "a SAS token with read and list permissions (sp=rl) in azure.sas_token"
        elif mode == "service-principal" or mode is None:
            need = f"the role '{ROLE_NEEDED}' for the service principal on the storage account or container"
        else:
            need = "a key with read access"
        return AccessDeniedError(f"Azure Storage denied the read{where} ({short}); it needs {need}")
    if code == "AuthorizationResourceTypeMismatch":
        return AccessDeniedError(
            f"Azure Storage denied the request{where} ({short}); azure.sas_token must allow resource types "
            "service, container and object (srt=sco)"
        )
    if code == "AuthorizationServiceMismatch":
        return AccessDeniedError(
            f"Azure Storage denied the request{where} ({short}); azure.sas_token must allow the blob service (ss=b)"
        )
    if code in ("AuthorizationSourceIPMismatch", "AuthorizationProtocolMismatch"):
        return AccessDeniedError(
            f"Azure Storage denied the request{where} ({short}); azure.sas_token restricts the caller's IP "
            "address or protocol (sip=, spr=)"
        )
    if code == "KeyBasedAuthenticationNotPermitted":
        return AccessDeniedError(
            f"the storage account does not allow shared-key sign-in{where} ({short}); use a service principal "
            f"with the role '{ROLE_NEEDED}' or a user-delegation SAS"
        )
    if mode in ("sas", "connection-string", "account-key"):
        check = f"check {_credential_setting(creds)} and the account's network rules (firewall, private endpoints)"
    else:
        check = (
            f"check that the service principal has the role '{ROLE_NEEDED}' on the account or container, "
            "and the account's network rules (firewall, private endpoints)"
        )
    return AccessDeniedError(f"Azure Storage denied the request{where} ({short or '403'}); {check}")


@contextmanager
def azure_errors(creds: AzureCredentials | None = None, *, what: str = "") -> Iterator[None]:
    """Raise the classified azs3copy error for anything the Azure SDK raises inside the block."""
    try:
        yield
    except Azs3copyError:
        raise
    except Exception as error:
        # Not chained: an SDK error's text can hold a request URL with a SAS signature.
        raise classify_azure_error(error, creds, what=what) from None
