"""`azs3copy set-azure-credentials`: the Azure credentials, from the environment or standard input, into
the secret (never from the command line, never printed)."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any, TextIO

from azs3copy.cli.target import CliError, Target, azure_source, read_secret, write_secret
from azs3copy.errors import Azs3copyError
from azs3copy.settings import parse_settings

AZURE_ENV = (
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_STORAGE_ACCOUNT_URL",
    "AZURE_AUTHORITY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_CONNECTION_STRING",
)


def azure_from_environment(env: dict[str, str]) -> dict[str, str]:
    """The secret's `azure` object from the AZURE_* variables (exactly one kind of credential)."""
    url = env.get("AZURE_STORAGE_ACCOUNT_URL")
    kinds: list[tuple[str, dict[str, str]]] = []
    if env.get("AZURE_STORAGE_CONNECTION_STRING"):
        kinds.append(("connection string", {"connection_string": env["AZURE_STORAGE_CONNECTION_STRING"]}))
    if env.get("AZURE_STORAGE_SAS_TOKEN"):
        kinds.append(("SAS token", {"sas_token": env["AZURE_STORAGE_SAS_TOKEN"]}))
    principal = {k: env[v] for k, v in _SP_ENV.items() if env.get(v)}
    if principal:
        if env.get("AZURE_AUTHORITY"):
            principal["authority"] = env["AZURE_AUTHORITY"]
        kinds.append(("service principal", principal))
    if not kinds:
        raise CliError(
            "no Azure credentials in the environment: set AZURE_TENANT_ID, AZURE_CLIENT_ID, "
            "AZURE_CLIENT_SECRET and AZURE_STORAGE_ACCOUNT_URL (service principal), or AZURE_STORAGE_SAS_TOKEN "
            "and AZURE_STORAGE_ACCOUNT_URL, or AZURE_STORAGE_CONNECTION_STRING; or pipe a JSON object to --stdin"
        )
    if len(kinds) > 1:
        raise CliError(
            f"the environment holds more than one kind of Azure credential ({', '.join(k for k, _ in kinds)}): "
            "unset all but one"
        )
    azure = dict(kinds[0][1])
    if url and "connection_string" not in azure:
        azure["account_url"] = url
    return azure


_SP_ENV = {
    "tenant_id": "AZURE_TENANT_ID",
    "client_id": "AZURE_CLIENT_ID",
    "client_secret": "AZURE_CLIENT_SECRET",
}


def azure_from_stdin(stream: TextIO) -> dict[str, Any]:
    text = stream.read()
    try:
        document = json.loads(text)
    except ValueError:
        raise CliError(
            "stdin is not a JSON object (give the 'azure' keys of the secret, see docs/design.md)"
        ) from None
    if isinstance(document, dict) and isinstance(document.get("azure"), dict) and len(document) == 1:
        document = document["azure"]
    if not isinstance(document, dict) or not document:
        raise CliError("stdin must hold a JSON object with the 'azure' keys of the secret")
    return document


def cmd_set_azure_credentials(target: Target, args: argparse.Namespace, out: TextIO) -> int:
    azure = azure_from_stdin(args.stdin_stream) if args.stdin else azure_from_environment(dict(os.environ))
    document = read_secret(target)
    document["azure"] = azure
    settings = parse_settings(json.dumps(document))  # validated before anything is written
    assert settings.azure is not None
    if args.check:
        source = azure_source(settings.azure)
        try:
            containers = source.list_containers()
        except Azs3copyError as error:
            raise CliError(f"Azure refused the new credentials; nothing written: {error}") from None
        print(f"checked: the account lists {len(containers)} container(s)", file=out)
    write_secret(target, document)
    where = (
        f", account {settings.azure.account_url}"
        if settings.azure.account_url and "?" not in settings.azure.account_url
        else ""
    )
    print(f"Azure credentials written to {target.secret_id} (mode: {settings.azure.mode}{where})", file=out)
    return 0
