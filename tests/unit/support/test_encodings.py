"""The encoded blobs the generated-blob test stores are what they claim: a gzip, deflate or brotli stream of
exactly the size asked for, which a decoder turns back into the payload."""

from __future__ import annotations

import base64
import gzip
import json
import random
import shutil
import subprocess
import zlib

import pytest

from tests.support.encodings import brotli_stream, deflate_stream, encoded, gzip_stream

MiB = 1 << 20
SIZES = [1, 2, 4, 5, 10, 11, 22, 23, 24, 100, 65535 + 23, 65536 + 23, 65541 + 23, 5 * MiB - 1, 5 * MiB + 1]


def fill(size: int) -> bytes:
    return random.Random(size).randbytes(size)


@pytest.mark.parametrize("size", SIZES)
def test_gzip_and_deflate_streams_have_the_exact_size_and_decode(size: int) -> None:
    for build, decode, shortest in (
        (gzip_stream, gzip.decompress, 23),
        (deflate_stream, zlib.decompress, 11),
    ):
        stream = build(size, fill)
        if size < shortest:
            assert stream is None
            continue
        assert stream is not None and len(stream) == size
        assert decode(stream) == fill(len(decode(stream)))


def test_a_size_no_stream_has_is_filled_with_bytes_that_only_claim_the_encoding() -> None:
    assert encoded("gzip", 5, fill) == fill(5)
    assert encoded("br", 0, fill) == b""


@pytest.mark.skipif(shutil.which("node") is None, reason="node (Azurite's runtime) decodes brotli here")
def test_brotli_streams_have_the_exact_size_and_decode() -> None:
    streams = {size: brotli_stream(size, fill) for size in SIZES}
    assert {size for size, stream in streams.items() if stream is None} == {2, 4}
    built = {size: stream for size, stream in streams.items() if stream is not None}
    assert all(len(stream) == size for size, stream in built.items())
    script = (
        "const zlib = require('zlib');"
        "const input = JSON.parse(require('fs').readFileSync(0));"
        "console.log(JSON.stringify(input.map(s => zlib.brotliDecompressSync(Buffer.from(s, 'base64'))"
        ".toString('base64'))));"
    )
    payload = json.dumps([base64.b64encode(stream).decode() for stream in built.values()])
    result = subprocess.run(
        ["node", "-e", script], input=payload, capture_output=True, text=True, check=True, timeout=60
    )
    decoded = [base64.b64decode(item) for item in json.loads(result.stdout)]
    for stream, payload_bytes in zip(built.values(), decoded, strict=True):
        assert payload_bytes == fill(len(payload_bytes))
        assert len(stream) - len(payload_bytes) <= 4 + 3 * (len(payload_bytes) // 65536 + 1)  # stored blocks
