"""Checksums in the forms S3 and Azure speak: CRC32 and MD5, base64 of the big-endian digest."""

from __future__ import annotations

import base64
import hashlib
import zlib


def crc32_b64(value: int) -> str:
    return base64.b64encode(value.to_bytes(4, "big")).decode()


def crc32_of(data: bytes | memoryview) -> str:
    return crc32_b64(zlib.crc32(data))


def md5_b64(data: bytes | memoryview) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


class Digest:
    """CRC32 and MD5 of a stream of chunks, fed in order."""

    def __init__(self) -> None:
        self._crc = 0
        self._md5 = hashlib.md5()
        self.size = 0

    def update(self, chunk: bytes | memoryview) -> None:
        self._crc = zlib.crc32(chunk, self._crc)
        self._md5.update(chunk)
        self.size += len(chunk)

    @property
    def crc32(self) -> str:
        return crc32_b64(self._crc)

    @property
    def md5(self) -> str:
        return base64.b64encode(self._md5.digest()).decode()
