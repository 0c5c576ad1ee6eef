"""Checksums in the forms S3 and Azure speak: CRC32 and MD5, base64 of the big-endian digest."""

from __future__ import annotations

import base64
import hashlib
import zlib
from dataclasses import dataclass


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

    def update(self, chunk: bytes | memoryview) -> str:
        """Take the next chunk; returns its own CRC32 (base64). Each byte goes through the CRC once: the
        whole stream's CRC32 is combined from the chunks' (a few microseconds a chunk, no bytes)."""
        crc = zlib.crc32(chunk)
        self._crc = crc32_combine(self._crc, crc, len(chunk)) if self.size else crc
        self._md5.update(chunk)
        self.size += len(chunk)
        return crc32_b64(crc)

    @property
    def crc32(self) -> str:
        return crc32_b64(self._crc)

    @property
    def md5(self) -> str:
        return base64.b64encode(self._md5.digest()).decode()


@dataclass(frozen=True)
class Segment:
    length: int
    crc32: str


_CRC32_POLY = 0xEDB88320  # CRC-32 as zlib and S3 compute it, bit-reflected


def _gf2_multiply(a: int, b: int) -> int:
    """a·b modulo the CRC-32 polynomial, both bit-reflected (bit 31 is x^0)."""
    product, mask = 0, 1 << 31
    while mask:
        if a & mask:
            product ^= b
        b = (b >> 1) ^ _CRC32_POLY if b & 1 else b >> 1
        mask >>= 1
    return product


def _x_to_8n(n: int) -> int:
    """x^(8n) modulo the polynomial: what appending n bytes does to a CRC register."""
    result, square = 1 << 31, 1 << 23  # x^0, x^8
    while n:
        if n & 1:
            result = _gf2_multiply(square, result)
        square = _gf2_multiply(square, square)
        n >>= 1
    return result


def crc32_combine(crc1: int, crc2: int, length2: int) -> int:
    """The CRC-32 of A followed by B, from crc32(A), crc32(B) and len(B), without the bytes."""
    return _gf2_multiply(_x_to_8n(length2), crc1) ^ crc2


def combined_crc32(segments: list[Segment]) -> str:
    """The CRC32 (base64) of the whole object from the CRC32 of each of its segments, in order."""
    shifts: dict[int, int] = {}  # parts share one length: x^(8n) is computed once
    crc = 0
    for segment in segments:
        shift = shifts.get(segment.length)
        if shift is None:
            shift = shifts[segment.length] = _x_to_8n(segment.length)
        crc = _gf2_multiply(shift, crc) ^ int.from_bytes(base64.b64decode(segment.crc32), "big")
    return crc32_b64(crc)


def composite_crc32(segments: list[Segment]) -> str:
    """S3's COMPOSITE checksum of a multipart object: the CRC32 of the parts' CRC32s, then -<parts>."""
    raw = b"".join(base64.b64decode(segment.crc32) for segment in segments)
    return f"{crc32_of(raw)}-{len(segments)}"
