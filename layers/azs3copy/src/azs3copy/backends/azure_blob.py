"""BlobSource on Azure Blob Storage (azure-storage-blob).

Every ranged read names the ETag the blob had when it was listed (If-Match) and asks Azure for the MD5 of
each range it sends, so a blob overwritten mid-copy or bytes corrupted on the way are caught, never copied.

Bytes are read as stored. A blob with a Content-Encoding (gzip, deflate, br) is not decoded on the way
(`decompress=False`), and the MD5 is compared here rather than by the SDK: its `validate_content` hashes the
body the HTTP stack has already decoded, which never matches the MD5 Azure computed over the stored bytes."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError
from azure.storage.blob import BlobPrefix, BlobProperties, BlobServiceClient

from azs3copy.backends.azure_auth import classify_azure_error
from azs3copy.checksums import md5_b64
from azs3copy.errors import Azs3copyError, ChecksumMismatchError, SourceChangedError, SourceVanishedError
from azs3copy.messages import BlobRef, ContentSettings, SourceBlob
from azs3copy.settings import AzureCredentials
from azs3copy.transports import ListPage

#: Azure sends the MD5 of a range only for ranges of at most 4 MiB; longer reads are made of such pieces, read
#: in parallel, each one request.
MD5_RANGE = 4 * 1024 * 1024
#: The request header that asks Azure for the MD5 of the range it answers with (in Content-MD5).
RANGE_MD5_HEADER = "x-ms-range-get-content-md5"
#: A piece whose bytes do not match their MD5 is read once more before the mismatch is raised, as the SDK's
#: own checksum retry did: one flipped bit in flight should not cost a retry of the whole message.
PIECE_ATTEMPTS = 2


def _md5_b64(value: Any) -> str | None:
    return base64.b64encode(bytes(value)).decode() if value else None


def quoted(etag: str) -> str:
    """ETags as Azure's response headers spell them (listings leave the quotes off)."""
    return f'"{etag.strip(chr(34))}"'


#: What Azure answers a listing that asks for index tags when the credential may not read them (a SAS without
#: the `t` permission, a role without the blob tags read action).
_NO_TAG_PERMISSION = {"AuthorizationPermissionMismatch", "AuthorizationFailure"}


def _tags(props: BlobProperties, readable: bool) -> dict[str, str] | None:
    if not readable or (props.tags is None and (props.tag_count or 0) > 0):
        return None  # not readable with this credential (a listing may also leave them out)
    return dict(props.tags or {})


def source_blob(container: str, props: BlobProperties, *, tags_readable: bool = True) -> SourceBlob:
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
        tier=str(props.blob_tier) if props.blob_tier else None,
        tags=_tags(props, tags_readable),
    )
    return SourceBlob(
        ref=ref,
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
        #: Whether this credential may read index tags: found out by the first listing that asks for them.
        self.tags_readable = True
        #: One pool for the pieces of every read, kept for the life of the source (a warm container): a pool a
        #: read started and stopped threads for every part. Room for four reads at once (download's copies).
        self._pieces = ThreadPoolExecutor(max_workers=4 * read_concurrency, thread_name_prefix="azure-read")

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except Azs3copyError:
            raise
        except (AzureError, OSError, ValueError) as error:
            # not chained: the SDK's own text can hold the request URL, and with it a SAS signature
            raise classify_azure_error(error, self.creds, what=action) from None

    def list_containers(self) -> list[str]:
        with self._errors("list containers"):
            return sorted(container.name for container in self.service.list_containers())

    def list_page(
        self, container: str, prefix: str, marker: str | None, page_size: int, delimiter: str | None = None
    ) -> ListPage:
        with self._errors(f"list blobs of container {container}"):
            if self.tags_readable:
                try:
                    return self._list_page(container, prefix, marker, page_size, delimiter)
                except HttpResponseError as error:
                    if (
                        error.status_code != 403
                        or getattr(error, "error_code", None) not in _NO_TAG_PERMISSION
                    ):
                        raise
                    self.tags_readable = False  # list without them; each blob says its tags were not read
            return self._list_page(container, prefix, marker, page_size, delimiter)

    def _list_page(
        self, container: str, prefix: str, marker: str | None, page_size: int, delimiter: str | None
    ) -> ListPage:
        include = ["metadata", "tags"] if self.tags_readable else ["metadata"]
        client = self.service.get_container_client(container)
        listing: Any  # the SDK's pager; walk_blobs' pages hold BlobPrefix entries among the blobs
        if delimiter:
            listing = client.walk_blobs(
                name_starts_with=prefix or None,
                include=include,
                delimiter=delimiter,
                results_per_page=page_size,
            )
        else:
            listing = client.list_blobs(
                name_starts_with=prefix or None, include=include, results_per_page=page_size
            )
        pages = listing.by_page(continuation_token=marker)
        page = list(next(pages, None) or [])
        blobs = [
            source_blob(container, entry, tags_readable=self.tags_readable)
            for entry in page
            if isinstance(entry, BlobProperties)
        ]
        prefixes = [str(entry.name) for entry in page if isinstance(entry, BlobPrefix)]
        token: str | None = getattr(pages, "continuation_token", None)
        return ListPage(blobs, token or None, prefixes)

    def get_blob(self, container: str, name: str) -> SourceBlob | None:
        with self._errors(f"read the properties of {container}/{name}"):
            client = self.service.get_blob_client(container, name)
            try:
                props = client.get_blob_properties()
            except ResourceNotFoundError:
                return None
            if (
                props.tag_count and self.tags_readable
            ):  # the properties count the tags, Get Blob Tags has them
                try:
                    props.tags = client.get_blob_tags()
                except HttpResponseError as error:
                    if (
                        error.status_code != 403
                        or getattr(error, "error_code", None) not in _NO_TAG_PERMISSION
                    ):
                        raise
                    self.tags_readable = False
            return source_blob(container, props, tags_readable=self.tags_readable)

    def read_range(self, blob: BlobRef, offset: int, length: int) -> bytes:
        return self._read(blob, offset, length)[0]

    def read_blob(self, blob: BlobRef) -> tuple[bytes, str]:
        data, md5 = self._read(blob, 0, blob.size)
        return data, md5 or md5_b64(data)

    def _read(self, blob: BlobRef, offset: int, length: int) -> tuple[bytes, str | None]:
        """The bytes, and their MD5 when they came as one range (the one Azure sent and they matched)."""
        if length == 0:
            return b"", None
        client = self.service.get_blob_client(blob.container, blob.name)
        end = offset + length
        pieces = [(start, min(MD5_RANGE, end - start)) for start in range(offset, end, MD5_RANGE)]
        md5: str | None = None
        try:
            if len(pieces) == 1:
                data, md5 = self._read_piece(client, blob, offset, length)
            else:
                data = b"".join(piece for piece, _ in self._read_pieces(client, blob, pieces))
        except SourceChangedError:
            # If-Match fails (412) for a deleted blob too; tell the two apart.
            with self._errors(f"check {blob.blob_id}"):
                exists = client.exists()
            if not exists:
                raise SourceVanishedError(f"{blob.blob_id} was deleted after it was listed") from None
            raise
        if len(data) != length:
            raise ChecksumMismatchError(
                f"read {blob.blob_id} bytes {offset}-{end - 1}: got {len(data)} bytes"
            )
        return data, md5

    def _read_pieces(
        self, client: Any, blob: BlobRef, pieces: list[tuple[int, int]]
    ) -> list[tuple[bytes, str]]:
        """The pieces in order, at most `read_concurrency` of this read in flight at a time."""
        found: list[tuple[bytes, str]] = []
        for start in range(0, len(pieces), self.read_concurrency):
            batch = pieces[start : start + self.read_concurrency]
            futures = [self._pieces.submit(self._read_piece, client, blob, *piece) for piece in batch]
            try:
                found += [future.result() for future in futures]
            finally:
                for future in futures:
                    future.cancel()
        return found

    def _read_piece(self, client: Any, blob: BlobRef, offset: int, length: int) -> tuple[bytes, str]:
        """One range of at most MD5_RANGE bytes, as stored, checked against the MD5 Azure sends with it;
        returns the bytes and that MD5."""
        action = f"read {blob.blob_id} bytes {offset}-{offset + length - 1}"
        found, sent = "", None
        for _ in range(PIECE_ATTEMPTS):
            data, sent = self._get(client, blob, offset, length, action)
            found = md5_b64(data)
            if found == sent:
                return data, found
        raise ChecksumMismatchError(f"{action}: the bytes have MD5 {found}, Azure sent {sent or 'no MD5'}")

    def _get(
        self, client: Any, blob: BlobRef, offset: int, length: int, action: str
    ) -> tuple[bytes, str | None]:
        """One GET of a range: its bytes as stored, and the Content-MD5 of the response they came in."""
        answers: list[str | None] = []  # one per response: a request the SDK sent again adds one
        with self._errors(action):
            stream = client.download_blob(
                offset=offset,
                length=length,
                etag=blob.etag,
                match_condition=MatchConditions.IfNotModified,
                decompress=False,
                headers={RANGE_MD5_HEADER: "true"},
                raw_response_hook=lambda response: answers.append(
                    response.http_response.headers.get("Content-MD5")
                ),
                max_concurrency=1,
            )
            data = bytes(stream.readall())
        return data, answers[-1] if answers else None
