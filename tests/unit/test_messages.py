from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from azs3copy.errors import MessageError
from azs3copy.model import (
    MESSAGE_BUDGET,
    BlobRef,
    ContentSettings,
    LargeBlob,
    PartTask,
    SmallBatch,
    batch_small_blobs,
    decode,
    encode,
)


def blob(name: str = "a/b.txt", size: int = 10, **metadata: str) -> BlobRef:
    return BlobRef(
        "alpha",
        name,
        size,
        '"0x8D1"',
        datetime(2024, 5, 1, 12, 0, 1, 250000, tzinfo=UTC),
        "1B2M2Y8AsgTpgAmY7PhCfg==",
        ContentSettings(content_type="text/plain", cache_control="no-cache"),
        metadata,
    )


def test_messages_round_trip_with_identity_and_content_settings() -> None:
    message = PartTask("run-1", blob(owner="ops"), "alpha/a/b.txt", "up-1", 3, 10 << 20, 5 << 20, 9, 5 << 20)
    assert decode(encode(message)) == message
    large = LargeBlob("run-1", blob("ünïcode name ?#%+.bin"), "alpha/ünïcode name ?#%+.bin")
    assert decode(encode(large)) == large
    batch = SmallBatch("run-1", (blob("x"), blob("y")), ("mig/alpha/x", "mig/alpha/y"))
    assert decode(encode(batch)) == batch


def test_a_small_batch_written_before_keys_were_carried_still_decodes() -> None:
    older = encode(SmallBatch("run-1", (blob("x"),))).replace(',"keys":[]', "")
    assert '"keys"' not in older
    decoded = decode(older)
    assert isinstance(decoded, SmallBatch) and decoded.keys == () and decoded.blobs == (blob("x"),)


def test_a_small_batch_whose_keys_do_not_match_its_blobs_is_refused() -> None:
    text = encode(SmallBatch("run-1", (blob("x"), blob("y")), ("alpha/x", "alpha/y"))).replace(
        '"alpha/x",', ""
    )
    with pytest.raises(MessageError, match="2 blobs but 1 keys"):
        decode(text)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("not json", "not JSON"),
        ('{"v": 2, "kind": "large", "run_id": "r"}', "version 2"),
        ('{"v": 1, "kind": "nope", "run_id": "r"}', "unknown message kind"),
        ('{"v": 1, "kind": "large", "run_id": "r"}', "malformed large"),
        ('{"v": 1, "kind": "large"}', "no run_id"),
    ],
)
def test_bad_messages_are_refused_with_the_reason(text: str, problem: str) -> None:
    with pytest.raises(MessageError, match=problem):
        decode(text)


def test_messages_carry_nothing_secret() -> None:
    text = encode(LargeBlob("run-1", blob(), "alpha/a/b.txt"))
    for word in ("secret", "sas", "sig=", "AccountKey", "client"):
        assert word not in text


@given(st.lists(st.tuples(st.text(min_size=1, max_size=300), st.integers(0, 90 << 20)), max_size=400))
def test_batches_stay_under_the_sns_limit_and_keep_every_blob_once(entries: list[tuple[str, int]]) -> None:
    blobs = [blob(f"{i}-{name}", size, note="x" * (i % 50)) for i, (name, size) in enumerate(entries)]
    pairs = [(b, f"destination/prefix/{b.container}/{b.name}") for b in blobs]
    batches = batch_small_blobs("run-1", pairs, max_blobs=25, max_bytes=64 << 20)
    assert [pair for batch in batches for pair in zip(batch.blobs, batch.keys, strict=True)] == pairs
    for batch in batches:
        assert len(encode(batch).encode()) <= MESSAGE_BUDGET
        assert 1 <= len(batch.blobs) <= 25
        assert len(batch.blobs) == 1 or sum(b.size for b in batch.blobs) <= 64 << 20
