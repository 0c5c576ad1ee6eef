"""BlobSource on Azure Blob Storage (azure-storage-blob).

Every ranged read names the ETag the blob had when it was listed (If-Match) and asks Azure for a
transactional MD5 of each response (`validate_content`), so a blob overwritten mid-copy or bytes corrupted on
the way are caught, never copied."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import AzureError
from azure.storage.blob import BlobProperties, BlobServiceClient

from azs3copy.backends.azure_auth import classify_azure_error
from azs3copy.errors import Azs3copyError, ChecksumMismatchError, SourceChangedError, SourceVanishedError
from azs3copy.messages import BlobRef, ContentSettings, SourceBlob
from azs3copy.settings import AzureCredentials
from azs3copy.transports import ListPage

#: Azure sends a transactional MD5 only for ranges of at most 4 MiB; larger reads are split and run in parallel.
MD5_RANGE = 4 * 1024 * 1024


def _md5_b64(value: Any) -> str | None:
    return base64.b64encode(bytes(value)).decode() if value else None


def quoted(etag: str) -> str:
    """ETags as Azure's response headers spell them (listings leave the quotes off)."""
    return f'"{etag.strip(chr(34))}"'


def source_blob(container: str, props: BlobProperties) -> SourceBlob:
    settings = props.content_settings
    # A listing's empty value is an empty XML element, which the SDK hands back as None: it is "".
    metadata = {key: value or "" for key, value in (props.metadata or {}).items()}
    ref = BlobRef(
        container=container,
        name=props.name,
        size=int(props.size or 0),
        etag=quoted(str(props.etag)),
        last_modified=props.last_modified,
        content_md5=_md5_b64(settings.content_md5),
        content=ContentSettings(
            content_type=settings.content_type,
            content_encoding=settings.content_encoding,
            content_language=settings.content_language,
            content_disposition=settings.content_disposition,
            cache_control=settings.cache_control,
        ),
        metadata=metadata,
    )
    tier = props.blob_tier
    return SourceBlob(
        ref=ref,
        tier=str(tier) if tier else None,
        archive_status=str(props.archive_status) if props.archive_status else None,
        is_directory=metadata.get("hdi_isfolder", "").lower() == "true",
    )


class AzureBlobSource:
    def __init__(
        self, service: BlobServiceClient, *, creds: AzureCredentials | None = None, read_concurrency: int = 4
    ) -> None:
        self.service = service
        self.creds = creds  # only to name the setting to check in sign-in errors
        self.read_concurrency = read_concurrency

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except Azs3copyError:
            raise
        except (AzureError, OSError, ValueError) as error:
            if "md5" in str(error).lower() and "mismatch" in str(error).lower():
                raise ChecksumMismatchError(f"{action}: {error}") from None
            # not chained: the SDK's own text can hold the request URL, and with it a SAS signature
            raise classify_azure_error(error, self.creds, what=action) from None

    def list_containers(self) -> list[str]:
        with self._errors("list containers"):
            return sorted(container.name for container in self.service.list_containers())

    def list_page(self, container: str, prefix: str, marker: str | None, page_size: int) -> ListPage:
        with self._errors(f"list blobs of container {container}"):
            client = self.service.get_container_client(container)
            pages = client.list_blobs(
                name_starts_with=prefix or None, include=["metadata"], results_per_page=page_size
            ).by_page(continuation_token=marker)
            page = next(pages, None)
            blobs = [source_blob(container, props) for props in page] if page is not None else []
            token: str | None = getattr(pages, "continuation_token", None)
            return ListPage(blobs, token or None)

    def read_range(self, blob: BlobRef, offset: int, length: int) -> bytes:
        if length == 0:
            return b""
        action = f"read {blob.blob_id} bytes {offset}-{offset + length - 1}"
        client = self.service.get_blob_client(blob.container, blob.name)
        try:
            data = self._read(client, blob, offset, length, action)
        except SourceChangedError:
            # If-Match fails (412) for a deleted blob too; tell the two apart.
            with self._errors(f"check {blob.blob_id}"):
                exists = client.exists()
            if not exists:
                raise SourceVanishedError(f"{blob.blob_id} was deleted after it was listed") from None
            raise
        if len(data) != length:
            raise ChecksumMismatchError(f"{action}: got {len(data)} bytes")
        return data

    def _read(self, client: Any, blob: BlobRef, offset: int, length: int, action: str) -> bytes:
        with self._errors(action):
            stream = client.download_blob(
                offset=offset,
                length=length,
                etag=blob.etag,
                match_condition=MatchConditions.IfNotModified,
                validate_content=True,
                max_concurrency=self.read_concurrency,
            )
            return bytes(stream.readall())
