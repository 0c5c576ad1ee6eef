"""The Azure listing asks for index tags, and lists without them when the credential may not read them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobProperties, ContentSettings

from azs3copy.backends.azure_blob import AzureBlobSource


def props(name: str, tags: dict[str, str] | None, tag_count: int | None) -> BlobProperties:
    blob = BlobProperties(
        name=name, etag="0x1", size=3, last_modified=datetime(2024, 1, 1, tzinfo=UTC), tag_count=tag_count
    )
    blob.content_settings = ContentSettings()
    blob.tags = tags
    return blob


class Container:
    """Azure as it answers a credential without the blob tags read action, or one with it."""

    def __init__(self, may_read_tags: bool) -> None:
        self.may_read_tags, self.includes = may_read_tags, []  # type: list[list[str]]

    def list_blobs(self, name_starts_with: str | None, include: list[str], results_per_page: int) -> Any:
        self.includes.append(include)
        if "tags" in include and not self.may_read_tags:
            error = HttpResponseError(message="This request is not authorized to perform this operation")
            error.status_code, error.error_code = 403, "AuthorizationPermissionMismatch"
            raise error
        tagged = props("tagged", {"owner": "ana"} if "tags" in include else None, 1)
        listed = [tagged, props("plain", None, None)]

        class Listing:
            def by_page(self, continuation_token: str | None) -> Any:
                return iter([listed])

        return Listing()


class Service:
    def __init__(self, container: Container) -> None:
        self.container = container

    def get_container_client(self, name: str) -> Container:
        return self.container


def test_a_listing_returns_each_blobs_index_tags() -> None:
    container = Container(may_read_tags=True)
    page = AzureBlobSource(Service(container)).list_page("c", "", None, 10)  # type: ignore[arg-type]
    assert [blob.ref.tags for blob in page.blobs] == [{"owner": "ana"}, {}]
    assert container.includes == [["metadata", "tags"]]


def test_without_the_tags_read_action_the_listing_goes_on_without_tags_and_says_so_per_blob() -> None:
    container = Container(may_read_tags=False)
    source = AzureBlobSource(Service(container))  # type: ignore[arg-type]
    first = source.list_page("c", "", None, 10)
    second = source.list_page("c", "", None, 10)
    assert [blob.ref.tags for blob in first.blobs + second.blobs] == [None, None, None, None]
    # asked once with tags, then never again for this credential
    assert container.includes == [["metadata", "tags"], ["metadata"], ["metadata"]]
