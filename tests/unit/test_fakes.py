"""The in-memory sink refuses what S3 refuses (moto does not: FIELD-NOTES), so a step test on it fails where a
real bucket would. The fake's versions are checked against moto in tests/integration/test_transport_contract.py,
the fake ledger's limits against moto in test_ledger_contract.py."""

from __future__ import annotations

import pytest

from azs3copy.checksums import crc32_of, md5_b64
from azs3copy.errors import ChecksumMismatchError, FatalError
from azs3copy.transports import WRITE_ID_BYTES, ObjectAttrs
from tests.support.fakes import MemoryObjectSink


def put(sink: MemoryObjectSink, key: str, metadata: dict[str, str] | None = None) -> str | None:
    return sink.put(
        key, b"x", crc32=crc32_of(b"x"), md5=md5_b64(b"x"), attrs=ObjectAttrs(metadata=metadata or {})
    )


def test_the_memory_sink_takes_a_key_of_1024_utf8_bytes_and_refuses_1025_as_s3_does() -> None:
    sink = MemoryObjectSink()
    put(sink, "k" * 1024)
    put(sink, "é" * 512)
    with pytest.raises(FatalError, match="KeyTooLongError"):
        put(sink, "é" * 512 + "k")
    with pytest.raises(FatalError, match="KeyTooLongError"):
        sink.create_upload("k" * 1025, ObjectAttrs())
    with pytest.raises(FatalError, match="KeyTooLongError"):
        sink.put_json("_reports/" + "k" * 1020, b"{}")
    assert sorted(len(key.encode()) for key in sink.objects) == [1024, 1024]


def test_the_memory_sink_refuses_more_than_2_kb_of_metadata_with_room_for_the_write_id() -> None:
    sink = MemoryObjectSink()
    room = 2048 - WRITE_ID_BYTES - len("m")  # names and values in UTF-8 bytes, the sink's write id with them
    put(sink, "c/fits", {"m": "v" * room})
    with pytest.raises(FatalError, match="MetadataTooLarge"):
        put(sink, "c/too-much", {"m": "v" * (room + 1)})
    with pytest.raises(FatalError, match="MetadataTooLarge"):
        put(sink, "c/too-much", {"m": "é" * (room // 2 + 1)})
    with pytest.raises(FatalError, match="MetadataTooLarge"):
        sink.create_upload("c/too-much", ObjectAttrs(metadata={"m": "v" * (room + 1)}))
    assert list(sink.objects) == ["c/fits"]


@pytest.mark.parametrize(
    "tags",
    [
        {f"t{n}": "v" for n in range(11)},  # more than 10
        {"k" * 129: "v"},
        {"k": "v" * 257},
        {"k": '"0x8DC1A2B3"'},  # quotes: the ETag as Azure spells it is not a tag value
    ],
)
def test_the_memory_sink_refuses_tags_s3_refuses_and_then_stores_nothing(tags: dict[str, str]) -> None:
    sink = MemoryObjectSink()
    with pytest.raises(FatalError, match="InvalidTag"):
        sink.put("c/a", b"x", crc32=crc32_of(b"x"), md5=md5_b64(b"x"), attrs=ObjectAttrs(tags=tags))
    with pytest.raises(FatalError, match="InvalidTag"):
        sink.create_upload("c/b", ObjectAttrs(tags=tags))
    assert not sink.objects and not sink.uploads


def test_the_memory_sink_checks_the_bytes_as_they_arrived_and_keeps_metadata_and_tags_only_with_them() -> (
    None
):
    sink = MemoryObjectSink()
    sink.on_arrival = lambda key, data: b"y"
    attrs = ObjectAttrs(metadata={"azs3copy-verified": "0x8DC1A2B3:1"}, tags={"owner": "ana"})
    with pytest.raises(ChecksumMismatchError, match="BadDigest"):
        sink.put("c/a", b"x", crc32=crc32_of(b"x"), md5=md5_b64(b"x"), attrs=attrs)
    assert sink.head("c/a") is None and sink.get_tags("c/a") is None
    sink.on_arrival = None
    sink.put("c/a", b"x", crc32=crc32_of(b"x"), md5=md5_b64(b"x"), attrs=attrs)
    info = sink.head("c/a")
    assert info is not None and info.metadata == attrs.metadata
    assert sink.get_tags("c/a") == {"owner": "ana"}
