"""The CRC-32 combine maths: the CRC of a whole object from the CRCs of its parts."""

from __future__ import annotations

import os

from hypothesis import given
from hypothesis import strategies as st

from tests.unit.steps.common import MiB


@given(st.lists(st.binary(max_size=3000), min_size=1, max_size=8))
def test_crc32_combine_gives_the_crc32_of_the_concatenation(pieces: list[bytes]) -> None:
    import zlib

    from azs3copy.checksums import Segment, combined_crc32, crc32_combine, crc32_of

    assert combined_crc32([Segment(len(p), crc32_of(p)) for p in pieces]) == crc32_of(b"".join(pieces))
    head, tail = pieces[0], b"".join(pieces[1:])
    assert crc32_combine(zlib.crc32(head), zlib.crc32(tail), len(tail)) == zlib.crc32(head + tail)


def test_crc32_combine_of_parts_of_one_size_matches_zlib_at_part_sizes() -> None:
    from azs3copy.checksums import Segment, combined_crc32, crc32_of

    data = os.urandom(5 * MiB * 3 + 12345)
    parts = [data[i : i + 5 * MiB] for i in range(0, len(data), 5 * MiB)]
    assert combined_crc32([Segment(len(p), crc32_of(p)) for p in parts]) == crc32_of(data)


def test_a_digest_hands_back_each_chunks_crc32_and_combines_the_whole_from_them() -> None:
    from azs3copy.checksums import Digest, crc32_of, md5_b64

    chunks = [os.urandom(5 * 1024 * 1024 + 3), b"", os.urandom(1000), os.urandom(7)]
    digest = Digest()
    assert [digest.update(chunk) for chunk in chunks] == [crc32_of(chunk) for chunk in chunks]
    whole = b"".join(chunks)
    assert digest.crc32 == crc32_of(whole) and digest.md5 == md5_b64(whole) and digest.size == len(whole)
