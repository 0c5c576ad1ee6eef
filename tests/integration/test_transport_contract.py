"""One contract for every BlobSource and every ObjectSink: the in-memory fakes and the real ones (Azurite,
moto server). The engine's tests run on the fakes, so the fakes must behave like the real services."""

from __future__ import annotations

import gzip
import os
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from azure.storage.blob import BlobServiceClient
from azure.storage.blob import ContentSettings as AzureContentSettings
from botocore.stub import ANY, Stubber

from azs3copy.backends import s3 as s3_backend
from azs3copy.backends.azure_blob import AzureBlobSource
from azs3copy.backends.s3 import S3ObjectSink
from azs3copy.checksums import crc32_of, md5_b64
from azs3copy.errors import (
    ChecksumMismatchError,
    NeedsRehydrationError,
    PartReplacedError,
    SourceChangedError,
    SourceVanishedError,
    UploadGoneError,
)
from azs3copy.messages import BlobRef, ContentSettings
from azs3copy.transports import WRITE_ID_METADATA, BlobSource, CompletedPart, ObjectAttrs, ObjectSink
from devenv.emulators import Azurite, MotoServer
from tests.support.fakes import MemoryBlobSource, MemoryObjectSink


@dataclass
class SourceKit:
    source: BlobSource
    put: Callable[..., None]
    delete: Callable[[str, str], None]
    archive: Callable[[str, str], None]


@pytest.fixture(params=["memory", "azurite"])
def kit(request: pytest.FixtureRequest) -> SourceKit:
    if request.param == "memory":
        memory = MemoryBlobSource()

        def put_memory(
            container: str,
            name: str,
            data: bytes,
            content: ContentSettings | None = None,
            metadata: dict[str, str] | None = None,
        ) -> None:
            memory.put(container, name, data, content=content, metadata=metadata)

        def archive_memory(container: str, name: str) -> None:
            memory.containers[container][name].tier = "Archive"

        return SourceKit(memory, put_memory, memory.delete, archive_memory)
    azurite: Azurite = request.getfixturevalue("azurite")
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    created: set[str] = set()

    def put_azure(
        container: str,
        name: str,
        data: bytes,
        content: ContentSettings | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        if container not in created:
            if not service.get_container_client(container).exists():
                service.create_container(container)
            created.add(container)
        settings = AzureContentSettings(**{k: v for k, v in vars(content).items() if v}) if content else None
        service.get_blob_client(container, name).upload_blob(
            data, overwrite=True, content_settings=settings, metadata=metadata
        )

    return SourceKit(
        AzureBlobSource(service),
        put_azure,
        lambda c, n: service.get_blob_client(c, n).delete_blob(),
        lambda c, n: service.get_blob_client(c, n).set_standard_blob_tier("Archive"),
    )


def container_name() -> str:
    return f"k{uuid.uuid4().hex[:12]}"


def listed(kit: SourceKit, container: str, name: str) -> BlobRef:
    marker = None
    while True:
        page = kit.source.list_page(container, "", marker, 100)
        for blob in page.blobs:
            if blob.ref.name == name:
                return blob.ref
        marker = page.marker
        if marker is None:
            raise AssertionError(f"{name} not listed")


def test_listing_pages_cover_every_blob_once_with_prefix(kit: SourceKit) -> None:
    container = container_name()
    names = [f"dir/{i:03d}" for i in range(23)] + ["other/x"]
    for name in names:
        kit.put(container, name, name.encode())
    seen: list[str] = []
    marker = None
    pages = 0
    while True:
        page = kit.source.list_page(container, "dir/", marker, 5)
        seen += [blob.ref.name for blob in page.blobs]
        pages += 1
        marker = page.marker
        if marker is None:
            break
    assert sorted(seen) == names[:-1]
    assert pages == 5
    assert container in kit.source.list_containers()


def test_a_listing_with_a_delimiter_pages_its_blobs_and_virtual_directories_in_name_order(
    kit: SourceKit,
) -> None:
    """What listing shards rest on: with `/`, each virtual directory below the prefix is one entry (its prefix,
    up to the `/`), counted in the page like a blob, in name order with them; the blobs below it are not."""
    container = container_name()
    names = ["a-b", "a/1", "a/2/3", "a0", "b/x", "top", "d/", "\u00e9t\u00e9/1", "sp ace/#1", "z//y"]
    for name in names:
        kit.put(container, name, name.encode())
    blobs: list[str] = []
    entries: list[str] = []
    prefixes: list[str] = []
    marker = None
    while True:
        page = kit.source.list_page(container, "", marker, 3, "/")
        assert len(page.blobs) + len(page.prefixes) <= 3
        blobs += [blob.ref.name for blob in page.blobs]
        prefixes += page.prefixes
        entries += sorted([blob.ref.name for blob in page.blobs] + page.prefixes, key=str.encode)
        marker = page.marker
        if marker is None:
            break
    assert blobs == ["a-b", "a0", "top"]
    assert prefixes == ["a/", "b/", "d/", "sp ace/", "z/", "\u00e9t\u00e9/"]
    assert entries == sorted(entries, key=str.encode)
    below = kit.source.list_page(container, "a/", None, 10, "/")
    assert [blob.ref.name for blob in below.blobs] == ["a/1"] and below.prefixes == ["a/2/"]
    assert below.marker is None


def test_listing_carries_size_etag_md5_content_settings_and_metadata(kit: SourceKit) -> None:
    container = container_name()
    content = ContentSettings(content_type="text/csv", content_language="fr", cache_control="no-store")
    kit.put(container, "a.csv", b"1,2,3\n", content, {"owner": "team"})
    ref = listed(kit, container, "a.csv")
    assert ref.size == 6
    assert ref.etag.startswith('"') and ref.etag.endswith('"')
    assert ref.content_md5 == md5_b64(b"1,2,3\n")
    assert ref.content.content_type == "text/csv" and ref.content.content_language == "fr"
    assert ref.content.cache_control == "no-store"
    assert ref.metadata == {"owner": "team"}
    assert ref.last_modified.tzinfo is not None and ref.last_modified <= datetime.now(UTC)


def test_an_empty_metadata_value_is_listed_as_an_empty_string(kit: SourceKit) -> None:
    # Azure lists an empty value as an empty XML element, which the SDK hands back as None.
    container = container_name()
    kit.put(container, "flagged", b"x", None, {"reviewed": "", "owner": "team"})
    assert listed(kit, container, "flagged").metadata == {"reviewed": "", "owner": "team"}


def test_a_blob_read_by_name_is_the_blob_a_listing_shows_and_none_once_deleted(kit: SourceKit) -> None:
    container = container_name()
    content = ContentSettings(content_type="text/plain", cache_control="no-cache")
    kit.put(container, "dir/one name.txt", b"hello", content, {"owner": "team", "empty": ""})
    found = kit.source.get_blob(container, "dir/one name.txt")
    assert found is not None and not found.archived and not found.is_directory
    assert found.ref == listed(kit, container, "dir/one name.txt")
    assert kit.source.get_blob(container, "dir/missing") is None
    kit.delete(container, "dir/one name.txt")
    assert kit.source.get_blob(container, "dir/one name.txt") is None
    kit.put(container, "cold", b"zzz")
    kit.archive(container, "cold")
    archived = kit.source.get_blob(container, "cold")
    assert archived is not None and archived.archived


def test_ranged_reads_return_exact_bytes(kit: SourceKit) -> None:
    container = container_name()
    data = os.urandom(9 * 1024 * 1024 + 3)
    kit.put(container, "blob", data)
    ref = listed(kit, container, "blob")
    assert kit.source.read_range(ref, 0, 10) == data[:10]
    assert (
        kit.source.read_range(ref, 4 * 1024 * 1024 - 5, 5 * 1024 * 1024)
        == data[4 * 1024 * 1024 - 5 : 9 * 1024 * 1024 - 5]
    )
    assert kit.source.read_range(ref, len(data) - 3, 3) == data[-3:]


@pytest.mark.parametrize("size", [0, 1000, 4 * 1024 * 1024, 4 * 1024 * 1024 + 1])
def test_a_whole_blob_is_read_with_the_md5_of_its_bytes(kit: SourceKit, size: int) -> None:
    """read_blob hands back the MD5 the download sends to S3 as Content-MD5: for one range, the one Azure
    sent (the bytes were checked against it), else computed; either way the MD5 of the bytes."""
    container = container_name()
    data = os.urandom(size)
    kit.put(container, "whole", data)
    found, md5 = kit.source.read_blob(listed(kit, container, "whole"))
    assert found == data and md5 == md5_b64(data)


def compressed(encoding: str, size: int) -> bytes:
    """Bytes as a blob stored with this Content-Encoding holds them. Random content does not shrink, so the
    stored bytes span several 4 MiB ranges. (No brotli encoder here: br is opaque bytes under that name.)"""
    content = os.urandom(size)
    if encoding == "gzip":
        return gzip.compress(content)
    if encoding == "deflate":
        return zlib.compress(content)
    return content


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_a_blob_stored_with_a_content_encoding_reads_as_stored_still_compressed(
    kit: SourceKit, encoding: str
) -> None:
    container = container_name()
    stored = compressed(encoding, 5 * 1024 * 1024)
    kit.put(container, f"log.{encoding}", stored, ContentSettings("text/plain", content_encoding=encoding))
    ref = listed(kit, container, f"log.{encoding}")
    assert ref.content.content_encoding == encoding and ref.size == len(stored)
    assert ref.content_md5 == md5_b64(stored)  # what Azure computed over the stored bytes
    assert kit.source.read_range(ref, 0, len(stored)) == stored
    assert kit.source.read_range(ref, 3, 100) == stored[3:103]
    boundary = 4 * 1024 * 1024  # where one piece of a long read ends and the next begins
    assert kit.source.read_range(ref, boundary - 7, 20) == stored[boundary - 7 : boundary + 13]


def test_read_of_an_overwritten_blob_raises_source_changed(kit: SourceKit) -> None:
    container = container_name()
    kit.put(container, "blob", b"first version")
    ref = listed(kit, container, "blob")
    kit.put(container, "blob", b"second version")
    with pytest.raises(SourceChangedError):
        kit.source.read_range(ref, 0, 5)


def test_read_of_a_deleted_blob_raises_source_vanished(kit: SourceKit) -> None:
    container = container_name()
    kit.put(container, "blob", b"here")
    ref = listed(kit, container, "blob")
    kit.delete(container, "blob")
    with pytest.raises(SourceVanishedError):
        kit.source.read_range(ref, 0, 4)


def test_archived_blob_is_listed_as_archived_and_cannot_be_read(kit: SourceKit) -> None:
    container = container_name()
    kit.put(container, "cold", b"ice")
    kit.archive(container, "cold")
    page = kit.source.list_page(container, "", None, 10)
    assert page.blobs[0].archived
    with pytest.raises((NeedsRehydrationError, SourceChangedError)):
        kit.source.read_range(page.blobs[0].ref, 0, 3)


# --- sinks --------------------------------------------------------------------------------------------------


@pytest.fixture(params=["memory", "moto"])
def sink(request: pytest.FixtureRequest) -> Iterator[ObjectSink]:
    if request.param == "memory":
        yield MemoryObjectSink()
        return
    moto: MotoServer = request.getfixturevalue("moto_server")
    client = boto3.client(
        "s3",
        endpoint_url=moto.endpoint,
        region_name="us-east-1",
        aws_access_key_id="t",
        aws_secret_access_key="t",
    )
    bucket = f"contract-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=bucket)
    yield S3ObjectSink(client, bucket)


ATTRS = ObjectAttrs(
    ContentSettings(content_type="text/plain", content_disposition="inline"),
    {"azs3copy-source-etag": '"0x1"', "k": "v"},
)


def test_put_head_read_delete_round_trip(sink: ObjectSink) -> None:
    data = b"hello, \xff bytes"
    sink.put("c/ünï code?#%+.txt", data, crc32=crc32_of(data), md5=md5_b64(data), attrs=ATTRS)
    info = sink.head("c/ünï code?#%+.txt")
    assert info is not None and info.size == len(data)
    assert info.metadata == ATTRS.metadata
    assert info.content.content_type == "text/plain" and info.content.content_disposition == "inline"
    assert b"".join(sink.read("c/ünï code?#%+.txt")) == data
    sink.delete("c/ünï code?#%+.txt", info.version_id)
    assert sink.head("c/ünï code?#%+.txt") is None


def test_an_object_with_a_content_encoding_reads_back_as_stored(sink: ObjectSink) -> None:
    stored = gzip.compress(os.urandom(100_000))
    attrs = ObjectAttrs(ContentSettings("text/csv", content_encoding="gzip"), dict(ATTRS.metadata))
    sink.put("c/log.csv.gz", stored, crc32=crc32_of(stored), md5=md5_b64(stored), attrs=attrs)
    info = sink.head("c/log.csv.gz")
    assert info is not None and info.size == len(stored) and info.content.content_encoding == "gzip"
    assert b"".join(sink.read("c/log.csv.gz")) == stored  # not decoded on the way back either
    assert b"".join(sink.read("c/log.csv.gz", start=10)) == stored[10:]


def test_multipart_lists_more_than_a_thousand_parts_and_completes(sink: ObjectSink) -> None:
    upload = sink.create_upload("c/big", ATTRS)
    bodies = {n: bytes([n % 256]) * 7 for n in range(1, 1003)}
    etags = {n: sink.upload_part("c/big", upload, n, body, crc32_of(body)) for n, body in bodies.items()}
    parts = list(sink.list_parts("c/big", upload))
    assert [part.number for part in parts] == list(range(1, 1003))  # ListParts paginated to the end
    assert all(part.size == 7 for part in parts)
    small = [CompletedPart(n, etags[n], crc32_of(bodies[n])) for n in (1,)]
    sink.complete("c/big", upload, small)
    assert b"".join(sink.read("c/big")) == bodies[1]


def test_a_multipart_object_has_the_full_object_crc32_and_reads_from_an_offset(sink: ObjectSink) -> None:
    bodies = [os.urandom(5 * 1024 * 1024), os.urandom(1000)]
    data = b"".join(bodies)
    upload = sink.create_upload("c/whole", ATTRS)
    etags = [sink.upload_part("c/whole", upload, n, body, crc32_of(body)) for n, body in enumerate(bodies, 1)]
    parts = [CompletedPart(n, etags[n - 1], crc32_of(body)) for n, body in enumerate(bodies, 1)]
    version = sink.complete("c/whole", upload, parts, crc32=crc32_of(data))
    info = sink.head("c/whole", version, checksums=True)
    assert info is not None and info.size == len(data)
    assert info.crc32 == crc32_of(data) and info.checksum_type == "FULL_OBJECT"
    assert b"".join(sink.read("c/whole", version, 5 * 1024 * 1024 - 3)) == data[-1003:]


def test_a_put_object_reports_the_crc32_it_was_sent_with(sink: ObjectSink) -> None:
    """verify=checksum compares the CRC32 S3 holds for an object written by one PutObject: S3 keeps the
    checksum sent in the x-amz-checksum-crc32 header, whether or not an SDK named its algorithm too."""
    data = os.urandom(300_000)
    version = sink.put("c/one-put", data, crc32=crc32_of(data), md5=md5_b64(data), attrs=ATTRS)
    info = sink.head("c/one-put", version, checksums=True)
    assert info is not None and info.size == len(data)
    assert info.crc32 == crc32_of(data) and info.checksum_type == "FULL_OBJECT"


def test_completing_with_a_part_etag_the_part_no_longer_has_is_refused_and_the_upload_stays_open(
    sink: ObjectSink,
) -> None:
    body = os.urandom(1000)
    upload = sink.create_upload("c/again", ATTRS)
    etag = sink.upload_part("c/again", upload, 1, body, crc32_of(body))
    stale = CompletedPart(
        1, '"' + "0" * 32 + '"', crc32_of(body)
    )  # the ETag of an earlier upload of the part
    with pytest.raises(PartReplacedError):
        sink.complete("c/again", upload, [stale])
    assert [part.etag for part in sink.list_parts("c/again", upload)] == [etag]  # still open
    sink.complete("c/again", upload, [CompletedPart(1, etag, crc32_of(body))])
    assert b"".join(sink.read("c/again")) == body


def test_aborted_upload_is_gone(sink: ObjectSink) -> None:
    upload = sink.create_upload("c/gone", ATTRS)
    sink.abort("c/gone", upload)
    sink.abort("c/gone", upload)  # twice is fine
    with pytest.raises(UploadGoneError):
        sink.upload_part("c/gone", upload, 1, b"x", crc32_of(b"x"))
    with pytest.raises(UploadGoneError):
        list(sink.list_parts("c/gone", upload))


def test_list_sizes_returns_the_key_range_in_byte_order(sink: ObjectSink) -> None:
    for key in ["p/a", "p/b", "p/c", "p/é", "q/a"]:
        sink.put(key, key.encode(), crc32=crc32_of(key.encode()), md5=md5_b64(key.encode()), attrs=ATTRS)
    assert list(sink.list_sizes("p/", "p/a", "p/c")) == [("p/b", 3), ("p/c", 3)]
    assert [key for key, _ in sink.list_sizes("p/", "p/", "p/\U0010ffff")] == ["p/a", "p/b", "p/c", "p/é"]


def test_tags_belong_to_the_version_they_were_set_on(sink: ObjectSink) -> None:
    assert sink.get_tags("c/tagged") is None
    version = sink.put("c/tagged", b"one", crc32=crc32_of(b"one"), md5=md5_b64(b"one"), attrs=ATTRS)
    assert sink.get_tags("c/tagged") == {}
    sink.put_tags("c/tagged", version, {"azs3copy-verified": "0x8DC1A2B3:3"})
    assert sink.get_tags("c/tagged") == {"azs3copy-verified": "0x8DC1A2B3:3"}
    sink.put("c/tagged", b"two", crc32=crc32_of(b"two"), md5=md5_b64(b"two"), attrs=ATTRS)
    assert sink.get_tags("c/tagged") == {}  # a new object, or version, starts without the old one's tags


MARKED = ObjectAttrs(metadata={"azs3copy-verified": "0x8DC1A2B3:300000"}, tags={"owner": "ana"})


def marked(sink: ObjectSink, key: str) -> tuple[str | None, dict[str, str] | None]:
    """The object's verified mark (metadata) and its tags; (None, None) when there is no object."""
    info = sink.head(key)
    return (info.metadata.get("azs3copy-verified") if info else None), sink.get_tags(key)


def test_an_object_written_with_its_mark_and_tags_carries_them_and_a_refused_write_leaves_neither(
    sink: ObjectSink,
) -> None:
    """verify=checksum writes the verified mark (metadata) and the blob's tags in the same request as the
    bytes (PutObject, CreateMultipartUpload): the object, when S3 accepts its checksums, has them from its first
    moment; when S3 refuses them, neither the object nor its mark exists."""
    held = ("0x8DC1A2B3:300000", {"owner": "ana"})
    data = os.urandom(300_000)
    with pytest.raises(ChecksumMismatchError, match="BadDigest"):
        sink.put("c/marked", data, crc32=crc32_of(data + b"!"), md5=md5_b64(data), attrs=MARKED)
    assert marked(sink, "c/marked") == (None, None)
    sink.put("c/marked", data, crc32=crc32_of(data), md5=md5_b64(data), attrs=MARKED)
    assert marked(sink, "c/marked") == held
    bodies = [os.urandom(5 * 1024 * 1024), os.urandom(1000)]
    upload = sink.create_upload("c/marked-big", MARKED)
    etags = [sink.upload_part("c/marked-big", upload, n, b, crc32_of(b)) for n, b in enumerate(bodies, 1)]
    parts = [CompletedPart(n, etags[n - 1], crc32_of(body)) for n, body in enumerate(bodies, 1)]
    assert marked(sink, "c/marked-big") == (None, None)  # no object until the upload completes
    with pytest.raises(ChecksumMismatchError, match="BadDigest"):
        sink.complete("c/marked-big", upload, parts, crc32=crc32_of(bodies[0]))
    assert marked(sink, "c/marked-big") == (None, None)  # refused: still no object, so no mark either
    sink.complete("c/marked-big", upload, parts, crc32=crc32_of(b"".join(bodies)))
    assert marked(sink, "c/marked-big") == held
    assert b"".join(sink.read("c/marked-big")) == b"".join(bodies)


@pytest.fixture(params=["memory", "moto"])
def versioned_sink(request: pytest.FixtureRequest) -> Iterator[ObjectSink]:
    if request.param == "memory":
        yield MemoryObjectSink(versioned=True)
        return
    moto: MotoServer = request.getfixturevalue("moto_server")
    client = boto3.client(
        "s3",
        endpoint_url=moto.endpoint,
        region_name="us-east-1",
        aws_access_key_id="t",
        aws_secret_access_key="t",
    )
    bucket = f"versioned-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=bucket)
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    yield S3ObjectSink(client, bucket)


def test_a_versioned_bucket_keeps_each_version_with_its_bytes_and_tags(versioned_sink: ObjectSink) -> None:
    sink = versioned_sink

    def put(data: bytes) -> str | None:
        return sink.put("c/v", data, crc32=crc32_of(data), md5=md5_b64(data), attrs=ATTRS)

    first, second = put(b"one"), put(b"second")
    assert first and second and first != second
    assert b"".join(sink.read("c/v", first)) == b"one"  # a version is read as it was written
    older = sink.head("c/v", first)
    assert older is not None and older.size == 3 and older.version_id == first
    current = sink.head("c/v")
    assert current is not None and current.version_id == second
    sink.put_tags("c/v", first, {"azs3copy-verified": "one"})
    assert sink.get_tags("c/v") == {}  # the tags of the current version
    sink.delete("c/v", second)  # removing the current version brings back the one before it
    current = sink.head("c/v")
    assert current is not None and current.version_id == first and b"".join(sink.read("c/v")) == b"one"
    assert sink.get_tags("c/v") == {"azs3copy-verified": "one"}
    sink.delete("c/v", None)  # a delete marker on top: no current object, the version is still there
    assert sink.head("c/v") is None and sink.get_tags("c/v") is None
    assert list(sink.list_sizes("c/", "c/", "c/w")) == []
    kept = sink.head("c/v", first)
    assert kept is not None and kept.size == 3


def test_a_sink_refuses_bytes_that_do_not_match_their_checksums_as_s3_does(sink: ObjectSink) -> None:
    """S3 refuses (BadDigest) a PutObject or UploadPart whose bytes do not match the CRC32 or Content-MD5
    sent with them, and a completion whose whole-object CRC32 differs; nothing is stored, the upload stays."""
    with pytest.raises(ChecksumMismatchError, match="BadDigest"):
        sink.put("c/a", b"x", crc32=crc32_of(b"y"), md5=md5_b64(b"x"), attrs=ATTRS)
    with pytest.raises(ChecksumMismatchError, match="BadDigest"):
        sink.put("c/a", b"x", crc32=crc32_of(b"x"), md5=md5_b64(b"y"), attrs=ATTRS)
    assert sink.head("c/a") is None
    upload = sink.create_upload("c/big", ATTRS)
    with pytest.raises(ChecksumMismatchError, match="BadDigest"):
        sink.upload_part("c/big", upload, 1, b"x", crc32_of(b"y"))
    assert not list(sink.list_parts("c/big", upload))
    etag = sink.upload_part("c/big", upload, 1, b"x", crc32_of(b"x"))
    with pytest.raises(ChecksumMismatchError, match="BadDigest"):
        sink.complete("c/big", upload, [CompletedPart(1, etag, crc32_of(b"x"))], crc32=crc32_of(b"y"))
    assert [part.number for part in sink.list_parts("c/big", upload)] == [1]
    sink.complete("c/big", upload, [CompletedPart(1, etag, crc32_of(b"x"))], crc32=crc32_of(b"x"))
    assert b"".join(sink.read("c/big")) == b"x"


# --- what the S3 sink sends (botocore Stubber: the exact requests) ------------------------------------------


def stubbed_s3() -> tuple[Any, Stubber]:
    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
    return client, Stubber(client)


def test_the_s3_sink_sends_the_checksums_of_the_bytes_it_puts_and_uploads() -> None:
    client, stubber = stubbed_s3()
    data, part = b"bytes read from Azure", b"one part's bytes"
    stubber.add_response(
        "put_object",
        {"VersionId": "v1"},
        {
            "Bucket": "dest",
            "Key": "c/a.txt",
            "Body": data,
            "ContentMD5": md5_b64(data),
            "ChecksumCRC32": crc32_of(data),
            "Metadata": {**ATTRS.metadata, WRITE_ID_METADATA: ANY},
            "ContentType": "text/plain",
            "ContentDisposition": "inline",
            "ServerSideEncryption": "aws:kms",
            "SSEKMSKeyId": "key-arn",
        },
    )
    stubber.add_response(
        "upload_part",
        {"ETag": '"e1"'},
        {
            "Bucket": "dest",
            "Key": "c/big",
            "UploadId": "u1",
            "PartNumber": 3,
            "Body": part,
            "ChecksumCRC32": crc32_of(part),
        },
    )
    sink = S3ObjectSink(client, "dest", "key-arn")
    with stubber:
        assert sink.put("c/a.txt", data, crc32=crc32_of(data), md5=md5_b64(data), attrs=ATTRS) == "v1"
        assert sink.upload_part("c/big", "u1", 3, part, crc32_of(part)) == '"e1"'
    stubber.assert_no_pending_responses()


def test_a_put_the_sdk_had_to_resend_removes_the_version_its_first_attempt_left(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first PutObject was stored but its answer lost; botocore resent it (RetryAttempts 1). The other
    version with the same write id goes; a version some other write left stays."""
    monkeypatch.setattr(s3_backend.uuid, "uuid4", lambda: uuid.UUID(int=7))
    write_id = uuid.UUID(int=7).hex
    client, stubber = stubbed_s3()
    stubber.add_response("put_object", {"VersionId": "v2", "ResponseMetadata": {"RetryAttempts": 1}})
    stubber.add_response(
        "list_object_versions",
        {
            "Versions": [
                {"Key": "c/a.txt", "VersionId": "v2"},
                {"Key": "c/a.txt", "VersionId": "v1"},
                {"Key": "c/a.txt", "VersionId": "v0"},
                {"Key": "c/a.txt.bak", "VersionId": "b1"},
            ],
            "IsTruncated": False,
        },
        {"Bucket": "dest", "Prefix": "c/a.txt"},
    )
    stubber.add_response(
        "head_object",
        {"Metadata": {WRITE_ID_METADATA: write_id}},
        {"Bucket": "dest", "Key": "c/a.txt", "VersionId": "v1"},
    )
    stubber.add_response("delete_object", {}, {"Bucket": "dest", "Key": "c/a.txt", "VersionId": "v1"})
    stubber.add_response(
        "head_object",
        {"Metadata": {WRITE_ID_METADATA: "an earlier run's write"}},
        {"Bucket": "dest", "Key": "c/a.txt", "VersionId": "v0"},
    )
    data = b"bytes"
    with stubber:
        version = S3ObjectSink(client, "dest").put(
            "c/a.txt", data, crc32=crc32_of(data), md5=md5_b64(data), attrs=ATTRS
        )
    assert version == "v2"
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize("operation", ["put_object", "upload_part"])
def test_bytes_s3_refuses_as_not_matching_their_checksum_are_a_retryable_mismatch(operation: str) -> None:
    client, stubber = stubbed_s3()
    stubber.add_client_error(
        operation,
        service_error_code="BadDigest",
        service_message="The CRC32 you specified did not match the calculated checksum.",
        http_status_code=400,
    )
    sink = S3ObjectSink(client, "dest")
    with stubber, pytest.raises(ChecksumMismatchError, match="BadDigest") as raised:
        if operation == "put_object":
            sink.put("c/a", b"x", crc32=crc32_of(b"y"), md5=md5_b64(b"x"), attrs=ATTRS)
        else:
            sink.upload_part("c/a", "u1", 1, b"x", crc32_of(b"y"))
    assert raised.value.retryable
