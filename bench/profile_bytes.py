"""Where the per-byte CPU of a copy goes: the download's and the parter's byte path (Azure ranged reads with
their MD5, the CRC32, the S3 writes), run in this process against an Azurite and a moto server of its own,
under cProfile. The ledger and SNS are left out: they cost per request, not per byte.

    python -m bench.profile_bytes [--small 40] [--parts 8] [--top 25]

Prints CPU seconds per GiB of each path and the functions that spent the most time themselves (tottime);
the full profiles land in bench/.work/profiles/bytes-*.txt."""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from azure.storage.blob import BlobServiceClient

from azs3copy.backends.aws import client
from azs3copy.backends.azure_blob import AzureBlobSource
from azs3copy.backends.s3 import S3ObjectSink
from azs3copy.checksums import crc32_of
from azs3copy.messages import BlobRef
from azs3copy.settings import AzureCredentials
from azs3copy.steps import download as download_step
from azs3copy.steps.context import Deps, Topics, Tuning
from bench.common import WORK, MiB
from devenv.emulators import Azurite, MotoServer

PROFILES = WORK / "profiles"


def _ref(service: BlobServiceClient, container: str, name: str) -> BlobRef:
    props = service.get_blob_client(container, name).get_blob_properties()
    md5 = props.content_settings.content_md5
    import base64

    return BlobRef(
        container=container,
        name=name,
        size=int(props.size),
        etag=f'"{str(props.etag).strip(chr(34))}"',
        last_modified=props.last_modified or datetime.now(UTC),
        content_md5=base64.b64encode(bytes(md5)).decode() if md5 else None,
    )


def _profiled(label: str, work: Any, nbytes: int, top: int) -> float:
    profile = cProfile.Profile()
    cpu_before, wall = time.process_time(), time.monotonic()
    profile.enable()
    work()
    profile.disable()
    cpu, wall = time.process_time() - cpu_before, time.monotonic() - wall
    text = io.StringIO()
    pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(top)
    PROFILES.mkdir(parents=True, exist_ok=True)
    (PROFILES / f"bytes-{label}.txt").write_text(text.getvalue())
    per_gib = cpu / (nbytes / 1024**3)
    print(f"\n== {label}: {nbytes / MiB:.0f} MiB, {cpu:.2f} CPU s ({per_gib:.1f} per GiB), {wall:.2f} s wall")
    print("\n".join(text.getvalue().splitlines()[: top + 12]))
    return per_gib


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_bytes", description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=40, help="1 MiB blobs copied by the download path")
    parser.add_argument("--parts", type=int, default=8, help="16 MiB parts copied by the parter path")
    parser.add_argument("--medium", type=int, default=8, help="10 MiB blobs copied by the download path")
    parser.add_argument("--chunk-mib", type=int, default=8, help="the download's chunk size (MiB)")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with tempfile.TemporaryDirectory() as state:
        azurite = Azurite.start(Path(state))
        moto = MotoServer.start(Path(state))
        try:
            service = BlobServiceClient.from_connection_string(azurite.connection_string)
            service.create_container("profile")
            for i in range(args.small):
                service.get_blob_client("profile", f"small-{i:03d}").upload_blob(os.urandom(MiB))
            for i in range(args.medium):
                service.get_blob_client("profile", f"medium-{i:03d}").upload_blob(
                    os.urandom(10 * MiB), max_concurrency=4
                )
            big = os.urandom(16 * MiB * args.parts)
            service.get_blob_client("profile", "large").upload_blob(big, max_concurrency=4)
            del big
            session = boto3.session.Session()
            s3 = client("s3", session)
            s3 = session.client("s3", endpoint_url=moto.endpoint, config=s3.meta.config)
            s3.create_bucket(Bucket="dest")
            sink = S3ObjectSink(s3, "dest")
            creds = AzureCredentials(
                mode="connection-string",
                account_url=None,
                authority="",
                connection_string=azurite.connection_string,
            )
            from azs3copy.backends.azure_auth import blob_service_client

            source = AzureBlobSource(blob_service_client(creds))
            deps = Deps(ledger=None, publisher=None, topics=Topics(), sink=sink, source=source)  # type: ignore[arg-type]
            deps.tuning = replace(Tuning(), verify="checksum", chunk_size=args.chunk_mib * MiB)
            smalls = [_ref(service, "profile", f"small-{i:03d}") for i in range(args.small)]

            def copy_smalls() -> None:
                for ref in smalls:
                    download_step._copy_small_blob(deps, "run", ref, f"profile/{ref.name}")

            _profiled("download-1mib", copy_smalls, args.small * MiB, args.top)
            mediums = [_ref(service, "profile", f"medium-{i:03d}") for i in range(args.medium)]

            def copy_mediums() -> None:
                for ref in mediums:
                    download_step._copy_small_blob(deps, "run", ref, f"profile/{ref.name}")

            _profiled(
                f"download-10mib-chunk-{args.chunk_mib}mib", copy_mediums, args.medium * 10 * MiB, args.top
            )
            large = _ref(service, "profile", "large")
            upload = sink.create_upload("profile/large", download_step.object_attrs(large))

            def copy_parts() -> None:
                for number in range(1, args.parts + 1):
                    data = source.read_range(large, (number - 1) * 16 * MiB, 16 * MiB)
                    sink.upload_part("profile/large", upload, number, data, crc32_of(data))

            _profiled("parter-16mib", copy_parts, args.parts * 16 * MiB, args.top)
        finally:
            moto.stop()
            azurite.stop()


if __name__ == "__main__":
    main()
