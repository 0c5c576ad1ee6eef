"""What the step tests share: settings with SAS credentials, a harness over the in-memory source and sink and
the test's ledger, and the check that every blob arrived byte for byte."""

from __future__ import annotations

import json

from azs3copy.errors import TransientError
from azs3copy.ledger import Finish, Ledger
from azs3copy.settings import parse_settings
from azs3copy.steps.verify import VERIFIED_MARK
from tests.support.fakes import MemoryBlobSource, MemoryLedger, MemoryObjectSink
from tests.support.harness import Harness

MiB = 1 << 20


SAS = {"account_url": "https://acct.blob.core.windows.net", "sas_token": "sv=1&sig=TOPSECRET"}


def settings(**extra: object):  # type: ignore[no-untyped-def]
    return parse_settings(json.dumps({"isactive": True, "begindate": "2020-01-01", "azure": SAS, **extra}))


#: The ledger the harnesses of the running test share; conftest.py sets it, for each kind of ledger in turn.
LEDGER: Ledger | None = None


def harness(source: MemoryBlobSource, sink: MemoryObjectSink | None = None, **kwargs: object) -> Harness:
    kwargs.setdefault("ledger", LEDGER or MemoryLedger())
    return Harness(
        source=source, sink=sink or MemoryObjectSink(), settings=kwargs.pop("settings", settings()), **kwargs
    )  # type: ignore[arg-type]


def assert_copied(source: MemoryBlobSource, sink: MemoryObjectSink, prefix: str = "") -> None:
    for container, blobs in source.containers.items():
        for name, blob in blobs.items():
            key = f"{prefix}{container}/{name}"
            assert key in sink.objects, f"{key} missing"
            assert sink.objects[key].data == blob.data, f"{key} differs"


class RecordingRefused(MemoryLedger):
    """DynamoDB refusing, `refusals` times, the transaction that records blobs copied (throttling, or a
    TransactionConflict on a counter shard that did not clear within the ledger's own retries)."""

    def __init__(self, refusals: int) -> None:
        super().__init__()
        self.refusals = refusals

    def finish_many(self, run_id: str, finishes: list[Finish]) -> set[str]:
        if any(finish.state == "copied" for finish in finishes) and self.refusals > 0:
            self.refusals -= 1
            raise TransientError(
                "ledger finish: transaction still cancelled after 8 attempts (TransactionConflict)"
            )
        return super().finish_many(run_id, finishes)


def mark_of(sink: MemoryObjectSink, key: str) -> str | None:
    """The verified mark the object at key carries: in its metadata (written with it) or its tags (set after a
    read-back); None when it has none."""
    held = sink.objects[key]
    return held.attrs.metadata.get(VERIFIED_MARK) or held.tags.get(VERIFIED_MARK)
