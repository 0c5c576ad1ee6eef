"""Stored bytes of an exact size that are a valid stream of a Content-Encoding (gzip, deflate, br).

Blobs in real accounts hold compressed bytes with their Content-Encoding; the copy must carry them over as
stored. To put such a blob at a size boundary, the streams are built from stored (uncompressed) blocks,
whose overhead is known to the byte: deflate's stored blocks (5 bytes each) inside the gzip or zlib
framing, brotli's uncompressed meta-blocks (3 bytes each, RFC 7932 section 9.2)."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable

Fill = Callable[[int], bytes]

DEFLATE_BLOCK = 65535  # the largest stored deflate block
BROTLI_BLOCK = 1 << 16  # an uncompressed meta-block with a 4-nibble length
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # no name, no mtime, unknown OS
ZLIB_HEADER = b"\x78\x01"


def _split(total: int, overhead: int, per_block: int, block_max: int) -> tuple[int, int] | None:
    """(payload bytes, blocks) such that payload + overhead + blocks × per_block == total, or None."""
    blocks = 1
    while True:
        payload = total - overhead - blocks * per_block
        if payload < 0:
            return None
        if payload <= blocks * block_max:
            return payload, blocks
        blocks += 1


def _pieces(payload: bytes, blocks: int) -> list[bytes]:
    size, extra = divmod(len(payload), blocks)
    pieces, offset = [], 0
    for index in range(blocks):
        length = size + (1 if index < extra else 0)
        pieces.append(payload[offset : offset + length])
        offset += length
    return pieces


def _stored_deflate(payload: bytes, blocks: int) -> bytes:
    out = bytearray()
    pieces = _pieces(payload, blocks)
    for index, piece in enumerate(pieces):
        final = 1 if index == len(pieces) - 1 else 0
        out += bytes([final]) + struct.pack("<HH", len(piece), len(piece) ^ 0xFFFF) + piece
    return bytes(out)


def gzip_stream(total: int, fill: Fill) -> bytes | None:
    """A gzip member of exactly `total` bytes (at least 23), or None when none is that short."""
    split = _split(total, len(GZIP_HEADER) + 8, 5, DEFLATE_BLOCK)
    if split is None:
        return None
    payload = fill(split[0])
    trailer = struct.pack("<II", zlib.crc32(payload), len(payload) & 0xFFFFFFFF)
    return GZIP_HEADER + _stored_deflate(payload, split[1]) + trailer


def deflate_stream(total: int, fill: Fill) -> bytes | None:
    """A zlib stream (HTTP's `deflate`) of exactly `total` bytes (at least 11), or None."""
    split = _split(total, len(ZLIB_HEADER) + 4, 5, DEFLATE_BLOCK)
    if split is None:
        return None
    payload = fill(split[0])
    return ZLIB_HEADER + _stored_deflate(payload, split[1]) + struct.pack(">I", zlib.adler32(payload))


class _Bits:
    """Bits packed least significant first, as brotli reads them."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.value = 0
        self.count = 0

    def put(self, value: int, count: int) -> None:
        self.value |= value << self.count
        self.count += count
        while self.count >= 8:
            self.out.append(self.value & 0xFF)
            self.value >>= 8
            self.count -= 8

    def align(self) -> None:
        if self.count:
            self.out.append(self.value & 0xFF)
            self.value = self.count = 0


def brotli_stream(total: int, fill: Fill) -> bytes | None:
    """A brotli stream of exactly `total` bytes: window bits 16, uncompressed meta-blocks of at most 64 KiB,
    an empty last meta-block. None for the sizes (2 to 4 bytes) no such stream has."""
    if total == 1:
        return b"\x06"  # WBITS 16, ISLAST, ISLASTEMPTY: the empty stream
    split = _split(total, 1, 3, BROTLI_BLOCK)
    if split is None or split[0] < split[1]:  # an uncompressed meta-block holds at least one byte
        return None
    bits = _Bits()
    bits.put(0, 1)  # WBITS = 16
    for piece in _pieces(fill(split[0]), split[1]):
        bits.put(0, 1)  # ISLAST = 0
        bits.put(0, 2)  # MNIBBLES = 4
        bits.put(len(piece) - 1, 16)  # MLEN - 1
        bits.put(1, 1)  # ISUNCOMPRESSED
        bits.align()
        bits.out += piece
    bits.put(1, 1)  # ISLAST
    bits.put(1, 1)  # ISLASTEMPTY
    bits.align()
    return bytes(bits.out)


STREAMS: dict[str, Callable[[int, Fill], bytes | None]] = {
    "gzip": gzip_stream,
    "deflate": deflate_stream,
    "br": brotli_stream,
}


def encoded(encoding: str, total: int, fill: Fill) -> bytes:
    """`total` stored bytes for a blob with this Content-Encoding: a valid stream where one is that long,
    otherwise bytes that only claim the encoding (which real accounts hold too; they are copied as stored)."""
    stream = STREAMS[encoding](total, fill)
    return stream if stream is not None else fill(total)
