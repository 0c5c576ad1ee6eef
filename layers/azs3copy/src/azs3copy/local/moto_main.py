"""moto in server mode, with its DynamoDB requests taken one at a time.

moto's DynamoDB backend has no lock: two concurrent UpdateItem/TransactWriteItems calls that ADD to the
same attribute can both read the old value, and one increment is lost (seen here: 313 blobs recorded
copied, the run's counter at 312, so the run never finished). Real DynamoDB applies them atomically. The
ledger's counters rely on that, so locally DynamoDB calls are serialized; every other service stays
concurrent."""

from __future__ import annotations

import threading
from typing import Any

from moto.dynamodb.responses import DynamoHandler
from moto.server import main

_lock = threading.Lock()
_call_action = DynamoHandler.call_action


def _serialized(self: DynamoHandler) -> Any:
    with _lock:
        return _call_action(self)


DynamoHandler.call_action = _serialized  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
