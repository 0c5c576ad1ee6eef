"""Destination keys: `<destination prefix><container>/<blob name>`, byte for byte."""

from __future__ import annotations

from azs3copy.errors import BlobRejectedError

MAX_KEY_BYTES = 1024


def object_key(destination_prefix: str, container: str, name: str) -> str:
    key = f"{destination_prefix}{container}/{name}"
    length = len(key.encode("utf-8"))
    if length > MAX_KEY_BYTES:
        raise BlobRejectedError(
            f"S3 key for {container}/{name[:60]}… would be {length} UTF-8 bytes; S3 allows {MAX_KEY_BYTES}"
        )
    return key
