import json

import pytest

from azs3copy.errors import ConfigError
from azs3copy.settings import RunSettings, parse_begindate, parse_isactive, parse_settings

SAS = {"account_url": "https://acct.blob.core.windows.net", "sas_token": "sv=2024&sig=abc"}


def secret(**values: object) -> str:
    document: dict[str, object] = {"isactive": True, "begindate": "2024-01-01", "azure": SAS}
    document.update(values)
    return json.dumps({key: value for key, value in document.items() if value is not ...})


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), ("true", True), ("FALSE", False), (" True ", True), ("False", False)],
)
def test_isactive_accepts_booleans_and_true_false_strings_in_any_case(value: object, expected: bool) -> None:
    assert parse_isactive(value) is expected


@pytest.mark.parametrize("value", ["no", "yes", 0, 1, None, "", "off", [True]])
def test_isactive_anything_else_is_a_configuration_error_naming_key_and_value(value: object) -> None:
    with pytest.raises(ConfigError) as error:
        parse_isactive(value)
    assert "isactive" in str(error.value)
    assert json.dumps(value) in str(error.value)


def test_missing_isactive_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="'isactive' is missing"):
        parse_settings(secret(isactive=...))


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("2024-03-05", "2024-03-05T00:00:00+00:00"),
        ("2024-03-05T10:20:30", "2024-03-05T10:20:30+00:00"),
        ("2024-03-05T10:20:30Z", "2024-03-05T10:20:30+00:00"),
        ("2024-03-05T10:20:30.123456+02:00", "2024-03-05T08:20:30.123456+00:00"),
    ],
)
def test_begindate_is_iso8601_in_utc_without_truncation(text: str, iso: str) -> None:
    assert parse_begindate(text).isoformat() == iso


@pytest.mark.parametrize("value", ["yesterday", "2024-13-01", "", 20240101, None, "01/02/2024"])
def test_unparseable_begindate_is_a_configuration_error(value: object) -> None:
    with pytest.raises(ConfigError, match="begindate"):
        parse_begindate(value)


def test_invalid_json_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="not valid JSON"):
        parse_settings("{isactive: true")


def test_unknown_keys_are_named() -> None:
    with pytest.raises(ConfigError, match="isActive"):
        parse_settings(secret(isActive=True))


def test_credentials_never_appear_in_repr() -> None:
    settings = parse_settings(secret())
    assert "sig=abc" not in repr(settings)
    assert settings.azure is not None and settings.azure.mode == "sas"


def test_two_kinds_of_credentials_are_refused() -> None:
    with pytest.raises(ConfigError, match="more than one kind"):
        parse_settings(secret(azure={**SAS, "connection_string": "x"}))


def test_bad_container_name_is_refused() -> None:
    with pytest.raises(ConfigError, match="Bad_Name"):
        parse_settings(secret(containers=["Bad_Name"]))


def test_optional_filters_parse() -> None:
    settings = parse_settings(
        secret(containers=["alpha", "beta"], include=["*.csv"], exclude="tmp/*", destination_prefix="mig/")
    )
    assert settings.containers == ("alpha", "beta")
    assert settings.include == ("*.csv",)
    assert settings.exclude == ("tmp/*",)
    assert settings.destination_prefix == "mig/"


def test_destination_prefix_may_not_use_the_report_prefix() -> None:
    with pytest.raises(ConfigError, match="destination_prefix"):
        parse_settings(secret(destination_prefix="_azs3copy/x/"))


# -- Azure sign-in settings: clouds and the service principal (issue 7) ----------------------------------

SP = {"tenant_id": "t-1", "client_id": "c-1", "client_secret": "sp-secret-value"}


@pytest.mark.parametrize(
    ("authority", "host", "suffix"),
    [
        (None, "https://login.microsoftonline.com", "core.windows.net"),
        ("usgovernment", "https://login.microsoftonline.us", "core.usgovcloudapi.net"),
        ("AzureUSGovernment", "https://login.microsoftonline.us", "core.usgovcloudapi.net"),
        ("https://login.microsoftonline.us/", "https://login.microsoftonline.us", "core.usgovcloudapi.net"),
        ("china", "https://login.chinacloudapi.cn", "core.chinacloudapi.cn"),
        ("https://login.chinacloudapi.cn", "https://login.chinacloudapi.cn", "core.chinacloudapi.cn"),
    ],
)
def test_service_principal_cloud_sets_authority_and_account_url_suffix(
    authority: str | None, host: str, suffix: str
) -> None:
    azure = {**SP, "account_name": "acct", **({"authority": authority} if authority else {})}
    creds = parse_settings(secret(azure=azure)).require_azure()
    assert creds.mode == "service-principal"
    assert creds.authority == host
    assert creds.account_url == f"https://acct.blob.{suffix}"


def test_sovereign_account_url_without_authority_signs_in_to_that_cloud() -> None:
    azure = {**SP, "account_url": "https://acct.blob.core.usgovcloudapi.net"}
    assert parse_settings(secret(azure=azure)).require_azure().authority == "https://login.microsoftonline.us"


def test_authority_of_another_cloud_than_the_account_url_is_refused_naming_both() -> None:
    azure = {**SP, "account_url": "https://acct.blob.core.chinacloudapi.cn", "authority": "public"}
    with pytest.raises(ConfigError, match=r"azure\.authority.*azure\.account_url.*china"):
        parse_settings(secret(azure=azure))


def test_private_authority_url_is_kept_for_a_private_cloud() -> None:
    azure = {
        **SP,
        "account_url": "https://acct.blob.example.test",
        "authority": "https://login.example.test/",
    }
    assert parse_settings(secret(azure=azure)).require_azure().authority == "https://login.example.test"


@pytest.mark.parametrize("authority", ["germany", "http://login.example.test", "login.microsoftonline.com"])
def test_unknown_cloud_name_or_non_https_authority_is_refused(authority: str) -> None:
    with pytest.raises(ConfigError, match=r"azure\.authority"):
        parse_settings(secret(azure={**SP, "account_name": "acct", "authority": authority}))


@pytest.mark.parametrize("missing", ["tenant_id", "client_id", "client_secret"])
def test_partial_service_principal_names_the_missing_setting(missing: str) -> None:
    azure = {key: value for key, value in {**SP, "account_name": "acct"}.items() if key != missing}
    with pytest.raises(ConfigError, match=missing):
        parse_settings(secret(azure=azure))


def test_client_secret_is_never_in_errors_or_repr() -> None:
    creds = parse_settings(secret(azure={**SP, "account_name": "acct"})).require_azure()
    assert "sp-secret-value" not in repr(creds)
    with pytest.raises(ConfigError) as raised:
        parse_settings(secret(azure={**SP, "account_name": "acct", "sas_token": "sig=x"}))
    assert "sp-secret-value" not in str(raised.value)


def test_service_principal_needs_an_https_account_url() -> None:
    with pytest.raises(ConfigError, match=r"azure\.account_url.*https://"):
        parse_settings(secret(azure={**SP, "account_url": "http://127.0.0.1:10000/devstoreaccount1"}))


@pytest.mark.parametrize(
    "authority",
    [
        "https://LOGIN.MicrosoftOnline.US",
        "HTTPS://login.microsoftonline.us/",
        " https://login.microsoftonline.us ",
    ],
)
def test_a_known_authority_url_is_recognised_whatever_its_case(authority: str) -> None:
    azure = {**SP, "account_name": "acct", "authority": authority}
    creds = parse_settings(secret(azure=azure)).require_azure()
    assert creds.authority == "https://login.microsoftonline.us"
    assert creds.account_url == "https://acct.blob.core.usgovcloudapi.net"


@pytest.mark.parametrize(
    "authority",
    [
        "https://login.microsoftonline.com/my-tenant-id",
        "https://login.microsoftonline.us/x/v2.0",
        "https://h/?a=1",
    ],
)
def test_an_authority_url_with_a_tenant_or_path_is_refused_naming_the_key(authority: str) -> None:
    with pytest.raises(ConfigError, match=r"azure\.authority.*without a tenant or path"):
        parse_settings(secret(azure={**SP, "account_name": "acct", "authority": authority}))


def test_a_sas_url_pasted_as_the_account_url_does_not_show_its_signature_in_the_error() -> None:
    pasted = "https://acct.blob.core.chinacloudapi.cn/?sv=2024-01-01&sp=rl&sig=PASTEDSIGNATURE"
    with pytest.raises(ConfigError) as raised:
        parse_settings(secret(azure={**SP, "account_url": pasted, "authority": "public"}))
    assert "azure.account_url" in str(raised.value)
    assert "PASTEDSIGNATURE" not in str(raised.value) and "sig=" not in str(raised.value)


def test_a_container_named_twice_is_refused_naming_it() -> None:
    with pytest.raises(ConfigError, match=r"containers.*'logs' more than once"):
        parse_settings(secret(containers=["logs", "data", "logs"]))


def test_an_empty_containers_list_is_a_configuration_error_naming_the_key() -> None:
    # Left out, every container of the account is copied; an empty list is a mistake, never "everything".
    with pytest.raises(ConfigError, match=r"secret key 'containers' is an empty list"):
        parse_settings(secret(containers=[]))


KEY = "a2V5a2V5a2V5a2V5"  # base64 of a fake account key


@pytest.mark.parametrize(
    ("azure", "key"),
    [
        (
            {"account_url": "http://acct.blob.core.windows.net", "sas_token": "sv=2024&sig=abc"},
            "azure.account_url",
        ),
        (
            {"account_url": "http://acct.blob.core.windows.net", "account_name": "acct", "account_key": KEY},
            "azure.account_url",
        ),
        (
            {
                "connection_string": f"DefaultEndpointsProtocol=http;AccountName=acct;AccountKey={KEY};"
                "EndpointSuffix=core.windows.net"
            },
            "azure.connection_string",
        ),
        (
            {
                "connection_string": "BlobEndpoint=http://acct.blob.core.windows.net/;SharedAccessSignature=sv=1&sig=S"
            },
            "azure.connection_string",
        ),
    ],
)
def test_a_credential_is_never_sent_over_plain_http_except_to_loopback(
    azure: dict[str, str], key: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_settings(secret(azure=azure))
    message = str(raised.value)
    assert key in message and "https://" in message
    assert KEY not in message and "sig=S" not in message and "sig=abc" not in message


@pytest.mark.parametrize(
    "azure",
    [
        {"account_url": "http://127.0.0.1:10000/devstoreaccount1", "sas_token": "sv=2024&sig=abc"},
        {
            "account_url": "http://localhost:10000/devstoreaccount1",
            "account_name": "devstoreaccount1",
            "account_key": KEY,
        },
        {"account_url": "http://[::1]:10000/devstoreaccount1", "sas_token": "sv=2024&sig=abc"},
        {
            "connection_string": f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={KEY};"
            "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
        },
        {"connection_string": "UseDevelopmentStorage=true"},
        # No EndpointSuffix: the SDK then ignores the protocol and uses https.
        {"connection_string": f"DefaultEndpointsProtocol=http;AccountName=acct;AccountKey={KEY}"},
        {
            "connection_string": f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={KEY};EndpointSuffix=core.windows.net"
        },
    ],
)
def test_https_and_the_loopback_emulator_are_accepted(azure: dict[str, str]) -> None:
    assert parse_settings(secret(azure=azure)).require_azure()


def test_storage_class_and_the_tier_rule_are_recorded_with_the_run_and_pick_each_blobs_class() -> None:
    parsed = parse_settings(
        secret(
            storage_class="intelligent-tiering",
            tier_storage_classes={"cool": "STANDARD_IA", "Cold": "GLACIER_IR"},
        )
    )
    run = RunSettings.from_json(parsed.run_settings().to_json())
    assert run.storage_class == "INTELLIGENT_TIERING"
    assert [run.storage_class_for(tier) for tier in ("Hot", "Cool", "COLD", None)] == [
        "INTELLIGENT_TIERING",
        "STANDARD_IA",
        "GLACIER_IR",
        "INTELLIGENT_TIERING",
    ]


def test_without_a_storage_class_in_the_secret_the_deployments_default_applies() -> None:
    parsed = parse_settings(secret())
    assert parsed.storage_class is None
    assert parsed.run_settings("STANDARD_IA").storage_class == "STANDARD_IA"
    assert parsed.run_settings().storage_class == "STANDARD"


def test_a_run_recorded_before_storage_classes_were_settings_writes_s3_standard() -> None:
    old = json.dumps({"begindate": "2024-01-01T00:00:00Z", "prefix": "", "include": [], "exclude": []})
    run = RunSettings.from_json(old)
    assert run.storage_class == "STANDARD" and run.storage_class_for("Cool") == "STANDARD"


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"storage_class": "COLDLINE"}, "'storage_class'"),
        ({"storage_class": 3}, "'storage_class'"),
        ({"storage_class": "EXPRESS_ONEZONE"}, "'storage_class'"),
        ({"tier_storage_classes": {"Cool": "FROZEN"}}, "'tier_storage_classes.Cool'"),
        ({"tier_storage_classes": {"Warm": "STANDARD_IA"}}, "'tier_storage_classes'"),
        ({"tier_storage_classes": {"Archive": "GLACIER"}}, "rehydrate"),
        ({"tier_storage_classes": {"cool": "GLACIER", "Cool": "GLACIER_IR"}}, "more than once"),
        ({"tier_storage_classes": ["Cool", "GLACIER"]}, "'tier_storage_classes'"),
    ],
)
def test_a_bad_storage_class_setting_is_refused_naming_its_key(values: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        parse_settings(secret(**values))


def test_events_token_is_optional_kept_out_of_repr_and_counted_among_the_secret_values() -> None:
    assert parse_settings(secret()).events_token is None
    token = "A1b2" * 10
    settings = parse_settings(secret(events_token=token))
    assert settings.events_token == token and token not in repr(settings)
    assert token in settings.secret_values() and "sv=2024&sig=abc" in settings.secret_values()


@pytest.mark.parametrize(
    "value",
    ["short", "x" * 31, "has space" * 5, "ünïcödé" * 6, 12345678901234567890123456789012345, "y" * 257],
)
def test_a_malformed_events_token_is_refused_without_showing_it(value: object) -> None:
    with pytest.raises(ConfigError, match="events_token") as error:
        parse_settings(secret(events_token=value))
    assert str(value) not in str(error.value)
