"""A local sign-in world: the Entra stand-in (token server) and Azurite in OAuth mode, both on HTTPS with a
throwaway CA, plus `AzureCredentials` for the service principal they agree on."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from azure.storage.blob import BlobServiceClient

from azs3copy.settings import AzureCredentials, parse_azure
from devenv.emulators import AZURITE_ACCOUNT, AZURITE_KEY, Azurite
from devenv.token_server import TlsFiles, TokenServer, make_tls

TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT_ID = "0b7f3d6e-5c1a-4f9e-8a2b-6d4c3e2f1a09"
CLIENT_SECRET = "Xy7~q.local-test-secret_Q9w8E7r6T5y4U3i2O1p0"
STORAGE_SCOPE = "https://storage.azure.com/.default"


@dataclass
class OAuthWorld:
    tls: TlsFiles
    token_server: TokenServer
    azurite: Azurite

    @property
    def verify(self) -> str:
        """`connection_verify` for clients in this process: the system bundle plus the test CA."""
        return str(self.tls.ca_bundle)

    def secret_azure(self, **overrides: str) -> dict[str, str]:
        """The `azure` object of the secret for the service principal (with any value overridden)."""
        document = {
            "account_url": self.azurite.endpoint,
            "tenant_id": TENANT_ID,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "authority": self.token_server.authority,
        }
        document.update(overrides)
        return document

    def creds(self, **overrides: str) -> AzureCredentials:
        creds = parse_azure(self.secret_azure(**overrides))
        assert creds is not None
        return creds

    def key_client(self) -> BlobServiceClient:
        """A shared-key client on the OAuth Azurite, to put test data in place."""
        return BlobServiceClient(
            self.azurite.endpoint,
            credential={"account_name": AZURITE_ACCOUNT, "account_key": AZURITE_KEY},
            connection_verify=self.verify,
        )


@contextmanager
def oauth_world(directory: Path) -> Iterator[OAuthWorld]:
    tls = make_tls(directory / "tls")
    with (
        TokenServer(
            tls, tenant_id=TENANT_ID, client_id=CLIENT_ID, client_secret=CLIENT_SECRET
        ) as token_server,
        Azurite.start(directory, oauth_cert=tls.cert, oauth_key=tls.key) as azurite,
    ):
        yield OAuthWorld(tls, token_server, azurite)


def with_secret(creds: AzureCredentials, secret: str) -> AzureCredentials:
    return replace(creds, client_secret=secret)
