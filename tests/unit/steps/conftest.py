"""Every step test runs on both ledgers, as one contract: the in-memory fake and DynamoDB on moto."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from azs3copy.ledger import Ledger
from tests.support.ledgers import KINDS, open_ledger
from tests.unit.steps import common


@pytest.fixture(params=KINDS, autouse=True)
def ledger(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Ledger]:
    """The ledger of the test's harnesses (common.harness): one table for the whole test, as in a deployment,
    so a second run sees the first one."""
    with open_ledger(request.param, monkeypatch) as opened:
        monkeypatch.setattr(common, "LEDGER", opened)
        yield opened
