"""Generated containers of blobs, copied end to end: Azurite, moto server, the six handlers driven by real SNS
envelopes, and (when hypothesis draws it) every message delivered twice at the same moment.

The property, for every blob of the container as Azure lists it:
- a blob S3 can hold (its key is at most 1,024 UTF-8 bytes, its metadata fits in S3's 2 KiB) is in S3 byte
  for byte as stored (Content-Encoding and all), with its content settings and metadata, in one version;
- a blob S3 cannot hold is not in S3 and the run report records it failed, with a reason, under its own
  blob id (never as its container's listing, never with another blob);
and the run finishes (its report is written), nothing else is written to the bucket, no upload is left open.

The example budget is a settings profile: AZS3COPY_HYPOTHESIS_PROFILE=deep (`make test-deep`) runs more."""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient, ContainerClient, ContentSettings
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase

from devenv.emulators import Azurite, MotoServer
from tests.support.encodings import encoded
from tests.support.pump import REPO
from tests.support.stack import Stack, handler_stack

MiB = 1 << 20
CHUNK = 5 * MiB  # the smallest S3 allows: a small blob over it goes up as a multipart upload of chunks
PART = 5 * MiB
THRESHOLD = CHUNK + 2  # so chunk - 1, chunk, chunk + 1 are small and threshold ± 1 straddle the two paths
MAX_KEY_BYTES = 1024  # S3's
MAX_METADATA_BYTES = 2048  # S3's, for all user metadata of an object
REPORTS = "_azs3copy/reports/"
CONTAINER_CHARS = 13  # "p" + 12 hex digits: every key starts with these and "/"
KEY_PREFIX_BYTES = CONTAINER_CHARS + 1

settings.register_profile(
    "default",
    max_examples=int(os.environ.get("AZS3COPY_HYPOTHESIS_EXAMPLES", "10")),
    deadline=None,
    derandomize=True,  # the same examples on every machine and every run of `make test`
    database=None,
    # No shrinking here: one example is a whole run, a failure is reported as found (and is the same on
    # every machine); `make test-deep` shrinks what it finds.
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    print_blob=True,
)
settings.register_profile(
    "deep",
    parent=settings.get_profile("default"),
    max_examples=int(os.environ.get("AZS3COPY_HYPOTHESIS_EXAMPLES", "150")),
    derandomize=False,
    database=DirectoryBasedExampleDatabase(REPO / ".hypothesis" / "examples"),  # failures found are replayed
    phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink),
)
PROFILE = os.environ.get("AZS3COPY_HYPOTHESIS_PROFILE", "default")


# --- what a generated blob is ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BlobSpec:
    name: str
    size: int
    kind: str = "block"  # block, append, page
    encoding: str | None = None  # the stored Content-Encoding: gzip, deflate, br
    content_type: str | None = None
    content_language: str | None = None
    content_disposition: str | None = None
    cache_control: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    seed: int = 0

    def data(self) -> bytes:
        fill = random.Random(f"{self.seed}:{self.name}").randbytes
        return encoded(self.encoding, self.size, fill) if self.encoding else fill(self.size)


def key_name(target_bytes: int, stem: str = "k") -> str:
    """A blob name whose key (`<container>/<name>`) is exactly `target_bytes` UTF-8 bytes."""
    return stem + "x" * (target_bytes - KEY_PREFIX_BYTES - len(stem.encode()))


#: Characters real names hold that URLs, S3 keys and ledger keys treat specially.
HOSTILE = "#%+? /.&=;:@$,!'()*[]{}~^`|<>\"\u00a0\u3000é名😀𝄞\u0301"
name_chars = st.characters(
    codec="utf-8",
    categories=("L", "M", "N", "P", "S", "Zs"),
    exclude_characters="\\",  # Azure turns a backslash into '/': the test would have to guess the name
    include_characters=HOSTILE,
)


def usable(name: str) -> bool:
    """Azure takes it and the SDK can address it: not blank, no '.' or '..' segment (which URL handling
    collapses before signing), at most 1,024 characters."""
    segments = name.split("/")
    return bool(name.strip()) and len(name) <= 1024 and not any(s in (".", "..") for s in segments)


@st.composite
def names(draw: st.DrawFn, count: int) -> list[str]:
    """Names, often from one family (a stem and names that extend it: past '#', '/', ' ', '.', '%'), some
    padded to keys of 990 to 1,030 UTF-8 bytes (1,023, 1,024 and 1,025 most often)."""
    stem = draw(st.text(name_chars, min_size=1, max_size=12).filter(usable))
    extensions = st.sampled_from(
        ["", "#", "#2024", "#2024#1", "/", "/x", " ", ".", "..", "%", "%23", "+", "?a"]
    )
    out: list[str] = []
    for _ in range(count):
        shape = draw(st.sampled_from(["family", "family", "free", "long"]))
        if shape == "family":
            name = stem + draw(extensions) + draw(st.text(name_chars, max_size=6))
        elif shape == "free":
            name = draw(st.text(name_chars, min_size=1, max_size=40))
        else:
            wide = draw(st.sampled_from(["", "é", "名", "😀"])) * draw(st.integers(0, 40))
            target = draw(st.one_of(st.sampled_from([1023, 1024, 1025]), st.integers(990, 1030)))
            name = key_name(target, stem + wide)
        if usable(name) and name not in out:
            out.append(name)
    return out


BOUNDARIES = sorted(
    {0, 1, 2, CHUNK - 1, CHUNK, CHUNK + 1, THRESHOLD - 1, THRESHOLD, THRESHOLD + 1}
    | {2 * PART - 1, 2 * PART, 2 * PART + 1}
)
PAGE_SIZES = [0, 512, CHUNK - 512, CHUNK, CHUNK + 512, 2 * PART - 512, 2 * PART, 2 * PART + 512]
small_sizes = st.one_of(st.sampled_from([0, 1, 2, 3, 511, 512, 513]), st.integers(0, 64 * 1024))
#: C# identifiers, as Azure's metadata names are; not Azure Data Lake's directory marker (a blob with it is not a
#: file to copy), and not `_` alone, which Azurite's listing XML writes as the element's text (xml2js's
#: character key) and so loses: an emulator's quirk, not the copy's.
metadata_keys = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,15}\Z").filter(
    lambda key: key.lower() != "hdi_isfolder" and key != "_"
)
metadata_values = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40)


@st.composite
def metadata(draw: st.DrawFn) -> dict[str, str]:
    """Metadata well inside S3's 2 KiB, or (rarely) a value alone larger than it."""
    drawn = draw(st.dictionaries(metadata_keys, metadata_values, max_size=4))
    out: dict[str, str] = {}
    for key, value in drawn.items():  # Azure's metadata names are case-insensitive: one of each
        if key.lower() not in {k.lower() for k in out}:
            out[key] = value
    if draw(st.integers(0, 15)) == 0:
        out["oversized"] = "v" * (MAX_METADATA_BYTES + 1)
    return out


@st.composite
def blob_specs(draw: st.DrawFn, name: str, big: bool) -> BlobSpec:
    kind = draw(st.sampled_from(["block", "block", "append", "page"]))
    if kind == "page":
        size = draw(st.sampled_from(PAGE_SIZES if big else PAGE_SIZES[:2]))
    else:
        size = draw(st.sampled_from(BOUNDARIES) if big else small_sizes)
    return BlobSpec(
        name=name,
        size=size,
        kind=kind,
        encoding=draw(st.sampled_from([None, None, "gzip", "deflate", "br"])),
        content_type=draw(
            st.sampled_from([None, "text/plain; charset=utf-8", "application/json", "image/svg+xml"])
        ),
        content_language=draw(st.sampled_from([None, "de-DE", "en, fr"])),
        content_disposition=draw(st.sampled_from([None, "inline", 'attachment; filename="r p.csv"'])),
        cache_control=draw(st.sampled_from([None, "max-age=60", "no-cache, no-store"])),
        metadata=draw(metadata()),
        seed=draw(st.integers(0, 2**32)),
    )


@st.composite
def containers(draw: st.DrawFn) -> list[BlobSpec]:
    """One to eight blobs; at most two near the chunk, threshold and part sizes (they cost megabytes)."""
    picked = draw(names(draw(st.integers(1, 8))))
    bigs = draw(st.integers(0, min(2, len(picked))))
    return [draw(blob_specs(name, index < bigs)) for index, name in enumerate(picked)]


# --- the named cases, always run ---------------------------------------------------------------------------


def _spec(name: str, size: int, **kwargs: Any) -> BlobSpec:
    return BlobSpec(name=name, size=size, seed=7, **kwargs)


ISSUE_CONTAINER = [  # what a real account holds next to ordinary blobs (issue 12's "done when")
    _spec("index.html", 4000, encoding="gzip", content_type="text/html"),
    _spec("logs/app.log.z", 3000, encoding="deflate", content_type="text/plain"),
    _spec("app.js", 2500, encoding="br", content_type="application/javascript"),
    _spec(key_name(MAX_KEY_BYTES, "exact-"), 100),
    _spec(key_name(MAX_KEY_BYTES + 1, "over-"), 100),
    _spec("archive", THRESHOLD + 1),
    _spec("archive#2024", THRESHOLD + 1),
    _spec("ordinary.txt", 10, metadata={"owner": "finance"}),
]
AROUND_THE_CHUNK_AND_THRESHOLD = [
    _spec(f"s{size}", size) for size in (0, 1, CHUNK - 1, CHUNK, CHUNK + 1, THRESHOLD, THRESHOLD + 1)
]
AROUND_THE_PARTS = [
    _spec(f"p{size}", size, encoding="gzip" if size == 2 * PART + 1 else None)
    for size in (2 * PART - 1, 2 * PART, 2 * PART + 1)
]
APPEND_AND_PAGE_BLOBS = [
    _spec("append-small", 1000, kind="append", encoding="gzip"),
    _spec("append-big", CHUNK + 1, kind="append"),
    _spec("page-small", 512, kind="page"),
    _spec("page-big", 2 * PART + 512, kind="page", encoding="deflate"),
    _spec("page-empty", 0, kind="page"),
]
METADATA_AND_SETTINGS = [
    _spec(
        "with settings",
        300,
        content_type="text/csv",
        content_language="de-DE",
        content_disposition='attachment; filename="r.csv"',
        cache_control="max-age=60",
        metadata={"Owner": "finance", "tag": "x=y;z", "reviewed": ""},
    ),
    _spec("metadata too large", 300, metadata={"big": "v" * (MAX_METADATA_BYTES + 1)}),
    _spec("metadata too large, big blob", THRESHOLD, metadata={"big": "v" * (MAX_METADATA_BYTES + 1)}),
]
PREFIX_FAMILY = [
    _spec(name, THRESHOLD + 1 if name in ("a", "a#b") else 20)
    for name in ("a", "a#b", "a#b#c", "a/b", "a b", "a.", "a%", "a+", "a?b", "a#")
]


# --- the world ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(moto_server: MotoServer, azurite: Azurite) -> Iterator[Stack]:
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    tuning = {
        "AZS3COPY_LARGE_THRESHOLD": str(THRESHOLD),
        "AZS3COPY_PART_SIZE": str(PART),
        "AZS3COPY_CHUNK_SIZE": str(CHUNK),
    }
    with handler_stack(
        moto_server, service, azurite.connection_string, name="gen", extra_env=tuning
    ) as built:
        built.s3.put_bucket_versioning(Bucket=built.bucket, VersioningConfiguration={"Status": "Enabled"})
        yield built


def upload(container: ContainerClient, spec: BlobSpec) -> None:
    data = spec.data()
    content = ContentSettings(
        content_type=spec.content_type,
        content_encoding=spec.encoding,
        content_language=spec.content_language,
        content_disposition=spec.content_disposition,
        cache_control=spec.cache_control,
    )
    client = container.get_blob_client(spec.name)
    if spec.kind == "block":
        client.upload_blob(data, content_settings=content, metadata=spec.metadata)
    elif spec.kind == "append":
        client.create_append_blob(content_settings=content, metadata=spec.metadata)
        for offset in range(0, len(data), 4 * MiB):
            client.append_block(data[offset : offset + 4 * MiB])
    else:
        client.create_page_blob(len(data), content_settings=content, metadata=spec.metadata)
        for offset in range(0, len(data), 4 * MiB):
            piece = data[offset : offset + 4 * MiB]
            client.upload_page(piece, offset=offset, length=len(piece))


def s3_holds(key: str, metadata: dict[str, str]) -> bool:
    """Whether S3 can hold a copy: the key within 1,024 bytes, the blob's metadata within 2 KiB. (Metadata is
    generated well under 2 KiB or over it on its own, so azs3copy's own source metadata never decides.)"""
    size = sum(len(k.encode()) + len(v.encode()) for k, v in metadata.items())
    return len(key.encode()) <= MAX_KEY_BYTES and size <= MAX_METADATA_BYTES


def bucket_versions(stack: Stack) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for page in stack.s3.get_paginator("list_object_versions").paginate(Bucket=stack.bucket):
        found += page.get("Versions", []) + page.get("DeleteMarkers", [])
    return [entry for entry in found if not entry["Key"].startswith(REPORTS)]


def empty_bucket(stack: Stack) -> None:
    """Remove every object version but the run reports, and every open upload."""
    versions = bucket_versions(stack)
    for start in range(0, len(versions), 1000):
        batch = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in versions[start : start + 1000]]
        stack.s3.delete_objects(Bucket=stack.bucket, Delete={"Objects": batch, "Quiet": True})
    for upload_ in stack.open_uploads():
        stack.s3.abort_multipart_upload(Bucket=stack.bucket, Key=upload_["Key"], UploadId=upload_["UploadId"])


def check_copy(stack: Stack, container: ContainerClient, key: str, name: str, problems: list[str]) -> None:
    """The object at `key` is the blob as stored, with its content settings and metadata."""
    props = container.get_blob_client(name).get_blob_properties()
    stored = container.download_blob(name, decompress=False).readall()
    body = stack.s3.get_object(Bucket=stack.bucket, Key=key)
    data = body["Body"].read()
    if data != stored:
        problems.append(f"{name!r}: S3 holds {len(data)} bytes that differ from the {len(stored)} stored")
    settings_ = props.content_settings
    expected = {
        "ContentType": settings_.content_type,
        "ContentEncoding": settings_.content_encoding,
        "ContentLanguage": settings_.content_language,
        "ContentDisposition": settings_.content_disposition,
        "CacheControl": settings_.cache_control,
    }
    for header, value in expected.items():
        if value and body.get(header) != value:
            problems.append(f"{name!r}: {header} is {body.get(header)!r} in S3, {value!r} in Azure")
    copied = {k: v for k, v in body["Metadata"].items() if not k.startswith("azs3copy-")}
    wanted = {k.lower(): v for k, v in (props.metadata or {}).items()}  # S3 metadata names are lower case
    if copied != wanted:
        problems.append(f"{name!r}: metadata {copied} in S3, {wanted} in Azure")
    if body["Metadata"].get("azs3copy-source-etag", "").strip('"') != str(props.etag).strip('"'):
        problems.append(
            f"{name!r}: source ETag {body['Metadata'].get('azs3copy-source-etag')!r}, Azure's {props.etag}"
        )


# --- the property ------------------------------------------------------------------------------------------


def copy_and_judge(stack: Stack, blobs: list[BlobSpec], duplicate: bool) -> list[str]:
    """Write the blobs into a fresh container, run the pipeline over it, and return every way the property
    does not hold (empty when it does). The container and the bucket are emptied afterwards."""
    name = f"p{uuid.uuid4().hex[: CONTAINER_CHARS - 1]}"
    container = stack.azure.create_container(name)
    try:
        for spec in blobs:
            upload(container, spec)
        listed = {blob.name: blob for blob in container.list_blobs(include=["metadata"])}
        assert set(listed) == {spec.name for spec in blobs}, "Azure holds other names than were written"
        stack.configure([name])
        with stack.pump(duplicate=duplicate) as pump:
            run_id = stack.launch()
            pump.drain()
        problems = [f"{function} failed for good: {error[:300]}" for function, _, error in pump.failures]
        try:
            report = stack.report(run_id)
        except stack.s3.exceptions.NoSuchKey:
            return [*problems, "the run never finished: it wrote no report"]
        failures: dict[str, list[dict[str, str]]] = {}
        for failure in report["failures"]:
            failures.setdefault(failure["blob"], []).append(failure)
        versions: dict[str, int] = {}
        for entry in bucket_versions(stack):
            versions[entry["Key"]] = versions.get(entry["Key"], 0) + 1
        expected_keys = set()
        for blob_name, blob in listed.items():
            key = blob_id = f"{name}/{blob_name}"
            recorded = failures.pop(blob_id, [])
            if s3_holds(key, {k: v or "" for k, v in (blob.metadata or {}).items()}):
                expected_keys.add(key)
                if key not in versions:
                    problems.append(
                        f"{blob_name!r} ({blob.size} bytes) not copied: {recorded or 'no record'}"
                    )
                    continue
                check_copy(stack, container, key, blob_name, problems)
                if versions[key] != 1:
                    problems.append(f"{blob_name!r}: {versions[key]} object versions")
                if recorded:
                    problems.append(f"{blob_name!r} is copied, and the report records {recorded}")
            elif key in versions:
                problems.append(f"{blob_name!r}: S3 cannot hold it, yet {key!r} was written")
            elif len(recorded) != 1 or recorded[0]["state"] != "failed" or not recorded[0]["reason"]:
                problems.append(f"{blob_name!r} is not recorded failed with a reason, alone: {recorded}")
        problems += [
            f"the report records {blob_id!r}, no blob of the container: {f}"
            for blob_id, f in failures.items()
        ]
        problems += [f"{key!r} is in S3, no blob was copied there" for key in set(versions) - expected_keys]
        problems += [f"upload left open: {u['Key']!r}" for u in stack.open_uploads()]
        if report["found"] != len(listed):
            problems.append(f"the report found {report['found']} blobs of {len(listed)}")
        return problems
    finally:
        empty_bucket(stack)
        stack.azure.delete_container(name)


@settings(settings.get_profile(PROFILE))
@example(blobs=ISSUE_CONTAINER, duplicate=True)
@example(blobs=AROUND_THE_CHUNK_AND_THRESHOLD, duplicate=False)
@example(blobs=AROUND_THE_PARTS, duplicate=True)
@example(blobs=APPEND_AND_PAGE_BLOBS, duplicate=True)
@example(blobs=METADATA_AND_SETTINGS, duplicate=False)
@example(blobs=PREFIX_FAMILY, duplicate=True)
@given(blobs=containers(), duplicate=st.booleans())
def test_every_blob_is_copied_byte_for_byte_or_recorded_alone_with_its_reason(
    stack: Stack, blobs: list[BlobSpec], duplicate: bool
) -> None:
    problems = copy_and_judge(stack, blobs, duplicate)
    assert not problems, "\n".join(problems)
