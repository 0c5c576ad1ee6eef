"""`azs3copy verify CONTAINER[/PREFIX]`: compare Azure with S3 byte for byte: missing, different, extra."""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TextIO

from azs3copy.cli.target import Target, azure_source, read_secret
from azs3copy.errors import BlobRejectedError, SourceChangedError, SourceVanishedError
from azs3copy.messages import BlobRef
from azs3copy.settings import parse_settings
from azs3copy.transports import BlobSource

#: How much of a blob one read asks Azure for while it is hashed.
READ_CHUNK = 8 * 1024 * 1024


@dataclass
class Comparison:
    identical: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    different: list[tuple[str, str]] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)  # in S3, and no blob of that name in Azure
    not_selected: int = 0  # blobs listed in Azure that the settings do not select
    not_selected_in_s3: list[str] = field(default_factory=list)  # objects of such blobs


def _s3_objects(s3: Any, bucket: str, prefix: str) -> Iterator[dict[str, Any]]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        yield from page.get("Contents", [])


def _stream_hash(chunks: Iterator[bytes]) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def _blob_chunks(source: BlobSource, ref: BlobRef) -> Iterator[bytes]:
    """The blob's bytes as Azure stores them, in chunks: the copy's own reads (a Content-Encoding such as gzip
    is not decoded, each range is checked against the MD5 Azure sends, and the version is the one listed)."""
    for offset in range(0, ref.size, READ_CHUNK):
        yield source.read_range(ref, offset, min(READ_CHUNK, ref.size - offset))


def _tag_problem(s3: Any, bucket: str, key: str, ref: BlobRef) -> str | None:
    """How the object's tags differ from the blob's index tags (azs3copy's own verified mark aside), if they
    do; None too when the credential may not read the blob's tags (the summary says so)."""
    from azs3copy.steps.verify import VERIFIED_MARK

    if ref.tags is None:
        return None
    held = s3.get_object_tagging(Bucket=bucket, Key=key).get("TagSet", [])
    found = {tag["Key"]: tag["Value"] for tag in held if tag["Key"] != VERIFIED_MARK}
    if found == ref.tags:
        return None
    missing = sorted(set(ref.tags) - set(found))
    changed = sorted(name for name in set(ref.tags) & set(found) if ref.tags[name] != found[name])
    extra = sorted(set(found) - set(ref.tags))
    parts = [
        f"{label} {', '.join(names)}"
        for label, names in (("missing", missing), ("different", changed), ("extra", extra))
        if names
    ]
    return "tags differ from the blob's index tags: " + "; ".join(parts)


def cmd_verify(target: Target, args: argparse.Namespace, out: TextIO) -> int:  # noqa: C901 (one comparison loop with a branch per outcome)
    from azs3copy.backends.azure_auth import azure_errors
    from azs3copy.keys import object_key
    from azs3copy.steps.find_blobs import selected
    from azs3copy.steps.verify import META_PREFIX

    container, _, prefix = args.location.partition("/")
    document = read_secret(target)
    settings = parse_settings(json.dumps(document))
    selection = settings.run_settings()
    creds = settings.require_azure()
    source = azure_source(creds)
    s3 = target.client("s3")
    bucket = target.bucket
    key_prefix = object_key(settings.destination_prefix, container, prefix)
    objects = {item["Key"]: item for item in _s3_objects(s3, bucket, key_prefix)}
    result = Comparison()
    blobs = []
    listed: set[str] = set()  # the key of every blob in Azure, selected or not
    marker: str | None = None
    while True:
        page = source.list_page(container, prefix, marker, 5000)
        for blob in page.blobs:
            try:
                listed.add(object_key(settings.destination_prefix, blob.ref.container, blob.ref.name))
            except BlobRejectedError:
                pass  # a key S3 would refuse: no object can be named after this blob
            if blob.is_directory:
                continue
            if not args.all and not selected(selection, blob):
                result.not_selected += 1
                continue
            blobs.append(blob.ref)
        marker = page.marker
        if marker is None:
            break
    expected = {object_key(settings.destination_prefix, ref.container, ref.name): ref for ref in blobs}

    def compare(key: str) -> tuple[str, str | None]:
        ref = expected[key]
        item = objects.get(key)
        if item is None:
            return key, "missing"
        if int(item["Size"]) != ref.size:
            return key, f"size {item['Size']} in S3, {ref.size} in Azure"
        head = s3.head_object(Bucket=bucket, Key=key)
        stored = head.get("Metadata", {}).get(f"{META_PREFIX}etag")
        tags = _tag_problem(s3, bucket, key, ref)
        if tags:
            return key, tags
        if args.quick:
            if stored != ref.etag:
                return key, f"source ETag recorded in S3 is {stored}, the blob's is {ref.etag}"
            return key, None
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        s3_size, s3_hash = _stream_hash(body.iter_chunks(1 << 20))
        try:
            # The SDK's errors can hold the request URL and with it a SAS signature: classified and redacted.
            with azure_errors(creds, what=f"read {ref.blob_id}"):
                az_size, az_hash = _stream_hash(_blob_chunks(source, ref))
        except (SourceChangedError, SourceVanishedError) as error:
            return key, f"the blob changed in Azure while it was compared ({error}): verify again"
        if (s3_size, s3_hash) != (az_size, az_hash):
            return key, f"bytes differ (SHA-256 {s3_hash[:12]}… in S3, {az_hash[:12]}… in Azure)"
        return key, None

    with ThreadPoolExecutor(max_workers=8) as pool:
        for key, problem in pool.map(compare, sorted(expected)):
            if problem is None:
                result.identical.append(key)
            elif problem == "missing":
                result.missing.append(key)
            else:
                result.different.append((key, problem))
    ours = ("_azs3copy/", target.report_prefix)
    unexpected = sorted(key for key in objects if key not in expected and not key.startswith(ours))
    result.extra = [key for key in unexpected if key not in listed]
    result.not_selected_in_s3 = [key for key in unexpected if key in listed]
    method = (
        "size and the source ETag recorded in the object's metadata"
        if args.quick
        else "SHA-256 of every byte read from both sides"
    )
    untagged = sum(1 for ref in blobs if ref.tags is None)
    method += (
        " and their index tags"
        if not untagged
        else " (index tags not compared: the credential may not read them)"
    )
    print(
        f"verify {args.location}: {len(expected)} blob(s) compared by {method}: {len(result.identical)} identical, "
        f"{len(result.missing)} missing, {len(result.different)} different, {len(result.extra)} extra in S3"
        + (
            f" ({result.not_selected} blob(s) not selected by the settings, not compared"
            + (f", {len(result.not_selected_in_s3)} of them in S3" if result.not_selected_in_s3 else "")
            + "; --all compares them)"
            if result.not_selected
            else ""
        ),
        file=out,
    )
    for key in result.missing[:50]:
        print(f"  missing    s3://{bucket}/{key}", file=out)
    for key, why in result.different[:50]:
        print(f"  different  s3://{bucket}/{key}: {why}", file=out)
    for key in result.extra[:50]:
        print(f"  extra      s3://{bucket}/{key} (no such blob in Azure)", file=out)
    for key in result.not_selected_in_s3[:50]:
        print(
            f"  unselected s3://{bucket}/{key} (the blob is in Azure; the settings do not select it)",
            file=out,
        )
    return 1 if result.missing or result.different else 0
