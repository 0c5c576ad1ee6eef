import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from azs3copy.errors import Azs3copyError, AzureAuthError, MessageError, TransientError
from azs3copy.messages import (
    MESSAGE_BUDGET,
    BlobRef,
    ContentSettings,
    DownloadTask,
    LargefileInitializerTask,
    LargefileParterTask,
    LargefileRecombinatorTask,
    decode,
    download_tasks,
    encode,
)
from azs3copy.settings import parse_settings
from azs3copy.steps.context import Invocation
from azs3copy.steps.dispatch import dispatch
from azs3copy.steps.launch_qualification import launch_qualification
from tests.support.fakes import MemoryBlobSource, MemoryObjectSink
from tests.support.harness import Harness


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
    message = LargefileParterTask(
        "run-1", blob(owner="ops"), "alpha/a/b.txt", "up-1", 3, 10 << 20, 5 << 20, 9, 5 << 20
    )
    assert decode(encode(message)) == message
    large = LargefileInitializerTask("run-1", blob("ünïcode name ?#%+.bin"), "alpha/ünïcode name ?#%+.bin")
    assert decode(encode(large)) == large
    batch = DownloadTask("run-1", (blob("x"), blob("y")), ("mig/alpha/x", "mig/alpha/y"))
    assert decode(encode(batch)) == batch


def test_a_recombine_task_carries_where_a_read_back_continues_and_older_ones_still_decode() -> None:
    continued = LargefileRecombinatorTask("run-1", blob(), "alpha/a/b.txt", "up-1", 7, "version-3")
    assert decode(encode(continued)) == continued
    first = LargefileRecombinatorTask("run-1", blob(), "alpha/a/b.txt", "up-1")
    assert '"verify_from"' not in encode(first)  # as messages were before read-backs could continue
    assert decode(encode(first)) == first


def test_a_small_batch_written_before_keys_were_carried_still_decodes() -> None:
    older = encode(DownloadTask("run-1", (blob("x"),))).replace(',"keys":[]', "")
    assert '"keys"' not in older
    decoded = decode(older)
    assert isinstance(decoded, DownloadTask) and decoded.keys == () and decoded.blobs == (blob("x"),)


def test_a_small_batch_whose_keys_do_not_match_its_blobs_is_refused() -> None:
    text = encode(DownloadTask("run-1", (blob("x"), blob("y")), ("alpha/x", "alpha/y"))).replace(
        '"alpha/x",', ""
    )
    with pytest.raises(MessageError, match="2 blobs but 1 keys"):
        decode(text)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("not json", "not JSON"),
        ('{"v": 2, "kind": "largefile-initializer", "run_id": "r"}', "version 2"),
        ('{"v": 1, "kind": "nope", "run_id": "r"}', "unknown message kind"),
        ('{"v": 1, "kind": "largefile-initializer", "run_id": "r"}', "malformed largefile-initializer"),
        ('{"v": 1, "kind": "largefile-initializer"}', "no run_id"),
    ],
)
def test_bad_messages_are_refused_with_the_reason(text: str, problem: str) -> None:
    with pytest.raises(MessageError, match=problem):
        decode(text)


CREDENTIALS = {
    "sas": {
        "account_url": "https://acct.blob.core.windows.net",
        "sas_token": "sv=2024-05-04&ss=b&srt=co&sp=rl&se=2030-01-01&sig=SASSIGNATURE7f3a9c2e1d",
    },
    "connection-string": {
        "connection_string": "DefaultEndpointsProtocol=https;AccountName=acct;"
        "AccountKey=CONNSTRINGKEY4b8e2f6a1c9d==;EndpointSuffix=core.windows.net"
    },
    "account-key": {"account_name": "acct", "account_key": "ACCOUNTKEY9d1c5e7b3a2f=="},
    "service-principal": {
        "account_url": "https://acct.blob.core.windows.net",
        "tenant_id": "00000000-0000-0000-0000-000000000001",
        "client_id": "00000000-0000-0000-0000-000000000002",
        "client_secret": "CLIENTSECRET2e6f8a4c1b7d~",
    },
}


@pytest.mark.parametrize("mode", sorted(CREDENTIALS))
def test_no_message_outcome_error_or_report_carries_a_credential(mode: str) -> None:
    settings = parse_settings(
        json.dumps({"isactive": True, "begindate": "2020-01-01", "azure": CREDENTIALS[mode]})
    )
    assert settings.azure is not None
    secrets = settings.azure.secret_values()
    assert secrets
    source, sink = MemoryBlobSource(), MemoryObjectSink()
    source.put("alpha", "fine.txt", b"ok")
    source.put("alpha", "large.bin", bytes(13 << 20))
    source.put("alpha", "doomed.txt", b"never")
    source.put("beta", "unlisted.txt", b"no")
    leaked = " ".join(secrets)  # what an SDK error can echo: the request URL, the credential itself

    def fail_doomed(blob: BlobRef, offset: int, length: int) -> None:
        if blob.name == "doomed.txt":
            raise TransientError(f"GET https://acct.blob.core.windows.net/alpha/doomed.txt?{leaked}: reset")

    def refuse_beta(container: str, prefix: str) -> None:
        if container == "beta":
            raise AzureAuthError(f"sign-in refused for {leaked}")

    source.before_read = fail_doomed
    source.before_list = refuse_beta
    h = Harness(source=source, sink=sink, settings=settings)
    texts: list[str] = []
    outcome = launch_qualification(h.deps())
    texts.append(json.dumps(outcome.to_dict()))
    while h.publisher.queue:
        _, body = h.publisher.queue.popleft()
        for attempt in range(1, h.tuning.max_attempts + 1):
            invocation = Invocation(
                request_id=f"r-{len(texts)}", final_attempt=attempt == h.tuning.max_attempts
            )
            try:
                texts.append(json.dumps(dispatch(h.deps(), decode(body), invocation).to_dict()))
                break
            except Azs3copyError as error:  # what Lambda records of a failed invocation
                texts.append(f"{type(error).__name__}: {error}")
    texts += [body for _, body in h.publisher.sent]
    texts += [reason for _, _, reason in h.fatal]
    run_id = str(outcome.detail["run_id"])
    texts += [record.reason or "" for record in h.ledger.blobs(run_id)]
    report = sink.objects[f"_azs3copy/reports/{run_id}.json"].data.decode()
    texts.append(report)
    assert json.loads(report)["counts"] == {
        "copied": 2,
        "skipped": 0,
        "failed": 2,  # doomed.txt after its retries, and beta's listing
        "changed": 0,
        "vanished": 0,
        "needs-rehydration": 0,
    }
    everything = "\n".join(texts)
    for secret in secrets:
        assert secret not in everything, f"a {mode} credential leaked"
    assert "SASSIGNATURE" not in everything


@given(st.lists(st.tuples(st.text(min_size=1, max_size=300), st.integers(0, 90 << 20)), max_size=400))
def test_batches_stay_under_the_sns_limit_and_keep_every_blob_once(entries: list[tuple[str, int]]) -> None:
    blobs = [blob(f"{i}-{name}", size, note="x" * (i % 50)) for i, (name, size) in enumerate(entries)]
    pairs = [(b, f"destination/prefix/{b.container}/{b.name}") for b in blobs]
    batches = download_tasks("run-1", pairs, max_blobs=25, max_bytes=64 << 20)
    assert [pair for batch in batches for pair in zip(batch.blobs, batch.keys, strict=True)] == pairs
    for batch in batches:
        assert len(encode(batch).encode()) <= MESSAGE_BUDGET
        assert 1 <= len(batch.blobs) <= 25
        assert len(batch.blobs) == 1 or sum(b.size for b in batch.blobs) <= 64 << 20
