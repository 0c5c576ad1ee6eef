"""Operator settings: the JSON document in the Secrets Manager secret.

Parsed strictly. A value that is not what the key allows is a `ConfigError` that names the key and shows the
value found (never the value of a credential). Nothing falls back to a placeholder default.

The launch reads the whole secret as it is at that moment and records what the run copies (`RunSettings`:
begindate, prefix, filters, destination prefix) with the run; every later step of that run uses the recorded
settings, so an edit of the secret mid-run neither splits the run nor breaks it. Only the credentials are
read from the secret by the functions that reach Azure (`parse_credentials`).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from azs3copy.errors import ConfigError

CredentialMode = Literal["service-principal", "sas", "connection-string", "account-key"]

#: Sign-in authority and storage endpoint suffix of each Azure cloud, by the names operators use.
CLOUDS: dict[str, tuple[str, str]] = {
    "public": ("https://login.microsoftonline.com", "core.windows.net"),
    "usgovernment": ("https://login.microsoftonline.us", "core.usgovcloudapi.net"),
    "china": ("https://login.chinacloudapi.cn", "core.chinacloudapi.cn"),
}
_CLOUD_ALIASES = {
    "azurecloud": "public",
    "azurepubliccloud": "public",
    "azureusgovernment": "usgovernment",
    "azureusgovernmentcloud": "usgovernment",
    "usgov": "usgovernment",
    "azurechinacloud": "china",
}

_CONTAINER_NAME = re.compile(r"^(\$root|\$web|\$logs|[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62})$")
_ACCOUNT_NAME = re.compile(r"^[a-z0-9]{3,24}$")
RESERVED_KEY_PREFIX = "_azs3copy/"
_KNOWN_KEYS = {
    "isactive",
    "begindate",
    "azure",
    "containers",
    "prefix",
    "include",
    "exclude",
    "destination_prefix",
    "storage_class",
    "tier_storage_classes",
    "events_token",
}
_AZURE_KEYS = {
    "account_url",
    "account_name",
    "tenant_id",
    "client_id",
    "client_secret",
    "authority",
    "cloud",
    "sas_token",
    "connection_string",
    "account_key",
}


@dataclass(frozen=True)
class AzureCredentials:
    """How to reach and sign in to the storage account. Credential values never appear in repr()."""

    mode: CredentialMode
    account_url: str | None
    authority: str
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    sas_token: str | None = field(default=None, repr=False)
    connection_string: str | None = field(default=None, repr=False)
    account_name: str | None = None
    account_key: str | None = field(default=None, repr=False)

    def secret_values(self) -> list[str]:
        """The values that must never be logged or published (for redaction and tests)."""
        values = [self.client_secret, self.sas_token, self.connection_string, self.account_key]
        if self.connection_string:  # its key or SAS alone, as an error message may quote just that part
            for part in self.connection_string.split(";"):
                name, _, secret = part.partition("=")
                if secret and name.strip().lower() in ("accountkey", "sharedaccesssignature"):
                    values.append(secret)
        return [value for value in values if value]


#: The S3 storage classes a PutObject or CreateMultipartUpload into a general-purpose bucket accepts (the
#: directory-bucket, Outposts and Snow classes are left out: azs3copy writes to an ordinary bucket).
STORAGE_CLASSES = (
    "STANDARD",
    "INTELLIGENT_TIERING",
    "STANDARD_IA",
    "ONEZONE_IA",
    "GLACIER_IR",
    "GLACIER",
    "DEEP_ARCHIVE",
    "REDUCED_REDUNDANCY",
)
#: Classes whose objects S3 serves only after a restore: a copy there cannot be read back (verify=readback).
UNREADABLE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})
#: Azure's online access tiers, as the listing names them; an archived blob is never copied (rehydrate first).
ACCESS_TIERS = ("Hot", "Cool", "Cold")


@dataclass(frozen=True)
class RunSettings:
    """What one run copies and where it puts it, as the launch read them from the secret; recorded with the
    run (no credential), used by each of its steps."""

    begindate: datetime
    prefix: str = ""
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    destination_prefix: str = ""
    #: The S3 storage class of every object the run writes, unless its blob's access tier has one of its own.
    storage_class: str = "STANDARD"
    #: (Azure access tier, S3 storage class) pairs: the class of the objects copied from blobs in that tier.
    tier_storage_classes: tuple[tuple[str, str], ...] = ()

    def storage_class_for(self, tier: str | None) -> str:
        """The S3 storage class of a blob's copy: its access tier's class when the rule names the tier."""
        wanted = (tier or "").lower()
        for name, storage_class in self.tier_storage_classes:
            if name.lower() == wanted:
                return storage_class
        return self.storage_class

    def storage_classes(self) -> set[str]:
        return {self.storage_class, *(storage_class for _tier, storage_class in self.tier_storage_classes)}

    def to_json(self) -> str:
        return json.dumps(
            {
                "begindate": self.begindate.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                "prefix": self.prefix,
                "include": list(self.include),
                "exclude": list(self.exclude),
                "destination_prefix": self.destination_prefix,
                "storage_class": self.storage_class,
                "tier_storage_classes": dict(self.tier_storage_classes),
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> RunSettings:
        data = json.loads(text)
        return cls(
            begindate=parse_begindate(data["begindate"]),
            prefix=str(data.get("prefix") or ""),
            include=tuple(str(pattern) for pattern in data.get("include") or ()),
            exclude=tuple(str(pattern) for pattern in data.get("exclude") or ()),
            destination_prefix=str(data.get("destination_prefix") or ""),
            # A run recorded before storage classes were settings wrote everything to S3 Standard.
            storage_class=str(data.get("storage_class") or "STANDARD"),
            tier_storage_classes=tuple((data.get("tier_storage_classes") or {}).items()),
        )


@dataclass(frozen=True)
class Settings:
    isactive: bool
    begindate: datetime
    azure: AzureCredentials | None
    containers: tuple[str, ...] | None = None
    prefix: str = ""
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    destination_prefix: str = ""
    #: None when the secret does not say: the deployment's default (AZS3COPY_STORAGE_CLASS) applies.
    storage_class: str | None = None
    tier_storage_classes: tuple[tuple[str, str], ...] = ()
    #: What Event Grid sends in the blob-events function URL's secret header (docs/operating.md).
    events_token: str | None = field(default=None, repr=False)

    def secret_values(self) -> list[str]:
        """The values that must never be logged or published: the Azure credentials and the events token."""
        values = self.azure.secret_values() if self.azure else []
        return values + ([self.events_token] if self.events_token else [])

    def require_azure(self) -> AzureCredentials:
        if self.azure is None:
            raise ConfigError(
                "the secret has no 'azure' credentials: put them in with `azs3copy set-azure-credentials`"
            )
        return self.azure

    def run_settings(self, default_storage_class: str = "STANDARD") -> RunSettings:
        """What a run launched now copies: recorded with the run, whatever the secret says later."""
        return RunSettings(
            self.begindate,
            self.prefix,
            self.include,
            self.exclude,
            self.destination_prefix,
            storage_class=self.storage_class or default_storage_class,
            tier_storage_classes=self.tier_storage_classes,
        )


def parse_isactive(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ConfigError(
        f'secret key \'isactive\' must be true or false (a JSON boolean or the string "true"/"false"), '
        f"found {json.dumps(value)}"
    )


def parse_begindate(value: Any) -> datetime:
    """ISO 8601 date or date-time; UTC when no zone is given. Blobs modified at or after it are copied."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(
            f"secret key 'begindate' must be an ISO 8601 date or date-time, found {json.dumps(value)}"
        )
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise ConfigError(
            f"secret key 'begindate' must be an ISO 8601 date or date-time "
            f"(e.g. 2024-01-31 or 2024-01-31T08:00:00Z), found {json.dumps(value)}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _string(document: Mapping[str, Any], key: str, where: str) -> str | None:
    value = document.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        shown = "a non-empty string" if key in _SECRET_FIELDS else json.dumps(value)
        raise ConfigError(f"secret key '{where}{key}' must be a non-empty string, found {shown}")
    return value.strip()


_SECRET_FIELDS = {"client_secret", "sas_token", "connection_string", "account_key"}


def _string_list(document: Mapping[str, Any], key: str) -> tuple[str, ...] | None:
    value = document.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise ConfigError(
            f"secret key '{key}' must be a list of non-empty strings, found {json.dumps(value)}"
        )
    return tuple(value)


def parse_storage_class(value: Any, where: str = "secret key 'storage_class'") -> str:
    """An S3 storage class, as S3 spells it (the case of the letters and hyphens for underscores forgiven)."""
    if isinstance(value, str):
        wanted = value.strip().upper().replace("-", "_")
        if wanted in STORAGE_CLASSES:
            return wanted
    raise ConfigError(
        f"{where} must be one of {', '.join(STORAGE_CLASSES)} (an S3 storage class), "
        f"found {json.dumps(value)}"
    )


def parse_tier_storage_classes(value: Any) -> tuple[tuple[str, str], ...]:
    """The rule from Azure's access tier to an S3 storage class: {"Cool": "STANDARD_IA", ...}."""
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise ConfigError(
            "secret key 'tier_storage_classes' must be a JSON object from an Azure access tier (Hot, Cool, "
            f'Cold) to an S3 storage class, like {{"Cool": "STANDARD_IA"}}, found {json.dumps(value)}'
        )
    rule: dict[str, str] = {}
    for tier, storage_class in value.items():
        name = next((known for known in ACCESS_TIERS if known.lower() == str(tier).strip().lower()), None)
        if name is None:
            why = (
                " (an archived blob is not copied: rehydrate it first)"
                if str(tier).lower() == "archive"
                else ""
            )
            raise ConfigError(
                f"secret key 'tier_storage_classes' has the tier {json.dumps(tier)}{why}: "
                f"the tiers are {', '.join(ACCESS_TIERS)}"
            )
        if name in rule:
            raise ConfigError(f"secret key 'tier_storage_classes' names the tier {name} more than once")
        rule[name] = parse_storage_class(storage_class, f"secret key 'tier_storage_classes.{tier}'")
    return tuple(rule.items())


def resolve_cloud(name_or_url: str | None) -> tuple[str, str]:
    """(authority host URL, storage endpoint suffix) for a cloud name or an authority URL."""
    if not name_or_url:
        return CLOUDS["public"]
    key = name_or_url.strip().lower().replace("_", "").replace("-", "").replace(" ", "")
    key = _CLOUD_ALIASES.get(key, key)
    if key in CLOUDS:
        return CLOUDS[key]
    if name_or_url.strip().lower().startswith("https://"):
        parts = urlsplit(name_or_url.strip())
        if parts.path.strip("/") or parts.query or parts.fragment or not parts.hostname:
            raise ConfigError(
                "secret key 'azure.authority' must be a cloud name or the authority's host URL alone "
                f"(like https://login.microsoftonline.us, without a tenant or path), found "
                f"{json.dumps(_shown_url(name_or_url))}"
            )
        host = f"https://{parts.hostname.lower()}" + (f":{parts.port}" if parts.port else "")
        for authority, suffix in CLOUDS.values():
            if authority == host:
                return authority, suffix
        return host, CLOUDS["public"][1]
    raise ConfigError(
        f"secret key 'azure.authority' must be one of {', '.join(CLOUDS)} or an https:// URL, "
        f"found {json.dumps(name_or_url)}"
    )


_AUTHORITIES = {authority: name for name, (authority, _suffix) in CLOUDS.items()}


def _shown_url(url: str) -> str:
    """A URL as an error message may show it: without its query, where a pasted SAS signature would be."""
    base, _, query = url.partition("?")
    return f"{base}?…" if query else base


def cloud_of_account_url(account_url: str) -> str | None:
    """The cloud name whose storage endpoint suffix the URL's host ends with (None for other hosts)."""
    host = (urlsplit(account_url).hostname or "").lower()
    for name, (_authority, suffix) in CLOUDS.items():
        if host.endswith(f".{suffix}"):
            return name
    return None


def _loopback(host: str | None) -> bool:
    """Whether a URL's host is this machine (the local emulator): nothing sent there crosses a network."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def connection_string_endpoint(connection_string: str) -> str | None:
    """The blob endpoint the storage SDK derives from a connection string (its own rule: BlobEndpoint, else
    DefaultEndpointsProtocol with AccountName and EndpointSuffix, else https; UseDevelopmentStorage is the
    local emulator), or None when the string names no endpoint."""
    fields: dict[str, str] = {}
    for part in connection_string.strip().rstrip(";").split(";"):
        name, _, value = part.partition("=")
        fields[name.strip().upper()] = value.strip()
    if fields.get("USEDEVELOPMENTSTORAGE") == "true":
        return "http://127.0.0.1:10000/devstoreaccount1"
    if fields.get("BLOBENDPOINT"):
        return fields["BLOBENDPOINT"]
    account, suffix = fields.get("ACCOUNTNAME"), fields.get("ENDPOINTSUFFIX")
    if account and suffix and fields.get("DEFAULTENDPOINTSPROTOCOL"):
        return f"{fields['DEFAULTENDPOINTSPROTOCOL']}://{account}.blob.{suffix}"
    return f"https://{account}.blob.{suffix or 'core.windows.net'}" if account else None


def _require_tls(mode: CredentialMode, account_url: str | None, connection_string: str | None) -> None:
    """A SAS token, an account key's signature or a connection string's secret travels with every request:
    only over HTTPS, or to the loopback emulator."""
    key = "azure.connection_string" if mode == "connection-string" else "azure.account_url"
    url = connection_string_endpoint(connection_string or "") if mode == "connection-string" else account_url
    if url is None or url.lower().startswith("https://"):
        return
    parts = urlsplit(url)
    if parts.scheme.lower() == "http" and _loopback(parts.hostname):
        return
    host = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    shown = f"{parts.scheme}://{host}" if parts.scheme else "an endpoint without https://"
    raise ConfigError(
        f"secret key '{key}' must reach the storage account over https:// (the credential would travel in "
        f"clear text), found {shown}; plain http:// is accepted only for a loopback emulator (127.0.0.1)"
    )


def parse_azure(value: Any) -> AzureCredentials | None:  # noqa: C901 (one branch per credential mode, each naming its keys)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigError("secret key 'azure' must be a JSON object")
    unknown = sorted(set(value) - _AZURE_KEYS)
    if unknown:
        raise ConfigError(f"secret key 'azure' has unknown keys: {', '.join(unknown)}")
    get = {key: _string(value, key, "azure.") for key in _AZURE_KEYS}
    account_url = get["account_url"]
    if account_url is not None and not re.match(r"^https?://", account_url):
        raise ConfigError(
            f"secret key 'azure.account_url' must be an http(s) URL, found {_shown_url(account_url)!r}"
        )
    url_cloud = cloud_of_account_url(account_url) if account_url else None
    authority, suffix = resolve_cloud(get["authority"] or get["cloud"] or url_cloud)
    if url_cloud is not None and authority in _AUTHORITIES and CLOUDS[url_cloud][0] != authority:
        raise ConfigError(
            f"secret key 'azure.authority' signs in to the {_AUTHORITIES[authority]} cloud ({authority}), but "
            f"'azure.account_url' {_shown_url(account_url or '')!r} is a storage account of the {url_cloud} cloud: "
            f"set 'azure.authority' to {url_cloud!r} or leave it out"
        )
    account_name = get["account_name"]
    if account_name is not None and not _ACCOUNT_NAME.match(account_name) and account_url is None:
        raise ConfigError(
            f"secret key 'azure.account_name' must be 3-24 lowercase letters and digits, found {account_name!r}"
        )
    if account_url is None and account_name is not None:
        account_url = f"https://{account_name}.blob.{suffix}"

    sp_keys = [key for key in ("tenant_id", "client_id", "client_secret") if get[key]]
    modes: list[CredentialMode] = []
    if sp_keys:
        modes.append("service-principal")
    if get["sas_token"]:
        modes.append("sas")
    if get["connection_string"]:
        modes.append("connection-string")
    if get["account_key"]:
        modes.append("account-key")
    if not modes:
        raise ConfigError(
            "secret key 'azure' holds no credentials: give tenant_id + client_id + client_secret "
            "(service principal), sas_token, connection_string, or account_name + account_key"
        )
    if len(modes) > 1:
        raise ConfigError(f"secret key 'azure' holds more than one kind of credential: {', '.join(modes)}")
    mode = modes[0]
    if mode == "service-principal" and len(sp_keys) < 3:
        missing = sorted({"tenant_id", "client_id", "client_secret"} - set(sp_keys))
        raise ConfigError(f"secret key 'azure' has a partial service principal: missing {', '.join(missing)}")
    if mode == "account-key" and account_name is None:
        raise ConfigError("secret key 'azure.account_key' needs 'azure.account_name' too")
    if mode != "connection-string" and account_url is None:
        raise ConfigError("secret key 'azure' needs 'account_url' (or 'account_name') for this credential")
    if mode == "service-principal" and account_url is not None and not account_url.startswith("https://"):
        raise ConfigError(
            f"secret key 'azure.account_url' must be an https:// URL for a service principal "
            f"(Azure accepts its tokens over HTTPS only), found {_shown_url(account_url)!r}"
        )
    _require_tls(mode, account_url, get["connection_string"])
    return AzureCredentials(
        mode=mode,
        account_url=account_url,
        authority=authority,
        tenant_id=get["tenant_id"],
        client_id=get["client_id"],
        client_secret=get["client_secret"],
        sas_token=get["sas_token"].lstrip("?") if get["sas_token"] else None,
        connection_string=get["connection_string"],
        account_name=account_name,
        account_key=get["account_key"],
    )


#: An events token: long enough not to be guessed, and only characters an HTTP header carries as they are.
_EVENTS_TOKEN = re.compile(r"^[A-Za-z0-9._~+/=-]{32,256}$")


def parse_events_token(value: Any) -> str | None:
    """The token Event Grid must send to the blob-events function URL (never shown in an error)."""
    if value is None:
        return None
    if not isinstance(value, str) or not _EVENTS_TOKEN.match(value):
        raise ConfigError(
            "secret key 'events_token' must be a string of 32 to 256 letters, digits or ._~+/=- "
            "(for example the output of `openssl rand -hex 32`)"
        )
    return value


def parse_settings(text: str | bytes) -> Settings:
    """Settings from the secret's JSON text. Raises ConfigError naming what is wrong."""
    try:
        document = json.loads(text)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"the secret is not valid JSON ({error})") from None
    if not isinstance(document, dict):
        raise ConfigError(f"the secret must be a JSON object, found a {type(document).__name__}")
    unknown = sorted(set(document) - _KNOWN_KEYS)
    if unknown:
        raise ConfigError(
            f"the secret has unknown keys: {', '.join(unknown)} (known: {', '.join(sorted(_KNOWN_KEYS))})"
        )
    for key in ("isactive", "begindate"):
        if key not in document:
            raise ConfigError(f"secret key '{key}' is missing")
    containers = _string_list(document, "containers")
    if containers == ():
        raise ConfigError(
            "secret key 'containers' is an empty list: name the containers to copy, or leave the key out "
            "to copy every container of the account"
        )
    for name in containers or ():
        if not _CONTAINER_NAME.match(name):
            raise ConfigError(
                f"secret key 'containers' has {name!r}, which is not an Azure container name "
                "(3-63 lowercase letters, digits and single hyphens)"
            )
    repeated = sorted({name for name in containers or () if (containers or ()).count(name) > 1})
    if repeated:
        raise ConfigError(f"secret key 'containers' names {', '.join(map(repr, repeated))} more than once")
    destination_prefix = _string(document, "destination_prefix", "") or ""
    if destination_prefix.startswith(RESERVED_KEY_PREFIX):
        raise ConfigError(
            f"secret key 'destination_prefix' must not start with {RESERVED_KEY_PREFIX!r} "
            "(where azs3copy keeps its run reports)"
        )
    if len(destination_prefix.encode()) > 512:
        raise ConfigError("secret key 'destination_prefix' is longer than 512 UTF-8 bytes")
    return Settings(
        isactive=parse_isactive(document["isactive"]),
        begindate=parse_begindate(document["begindate"]),
        azure=parse_azure(document.get("azure")),
        containers=containers,
        prefix=_string(document, "prefix", "") or "",
        include=_string_list(document, "include") or (),
        exclude=_string_list(document, "exclude") or (),
        destination_prefix=destination_prefix,
        storage_class=(
            parse_storage_class(document["storage_class"])
            if document.get("storage_class") is not None
            else None
        ),
        tier_storage_classes=parse_tier_storage_classes(document.get("tier_storage_classes")),
        events_token=parse_events_token(document.get("events_token")),
    )


def parse_credentials(text: str | bytes) -> AzureCredentials:
    """The Azure credentials of the secret's JSON text, and nothing else: the other keys belong to the launch,
    which checks them (a typo there written mid-run does not stop the run's copies)."""
    try:
        document = json.loads(text)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"the secret is not valid JSON ({error})") from None
    if not isinstance(document, dict):
        raise ConfigError(f"the secret must be a JSON object, found a {type(document).__name__}")
    creds = parse_azure(document.get("azure"))
    if creds is None:
        raise ConfigError(
            "the secret has no 'azure' credentials: put them in with `azs3copy set-azure-credentials`"
        )
    return creds
