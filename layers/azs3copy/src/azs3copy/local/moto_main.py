"""moto in server mode, with two fixes for what the local environment relies on.

DynamoDB requests are taken one at a time. moto's DynamoDB backend has no lock: two concurrent
UpdateItem/TransactWriteItems calls that ADD to the same attribute can both read the old value, and one
increment is lost (seen here: 313 blobs recorded copied, the run's counter at 312, so the run never
finished). Real DynamoDB applies them atomically. The ledger's counters rely on that, so locally DynamoDB
calls are serialized; every other service stays concurrent.

A repeated CreateFunction that asks for exactly the function that exists (same code, role, handler,
runtime, environment, layers, sizing) gets that function back instead of a 409. The AWS SDK resends a
request whose response it did not receive; when the first attempt had created the function, the resend
got "Function already exist", which the Terraform provider retries for five minutes while it holds its
lock on every function create, and the apply failed (seen in CI: the whole of `terraform apply` stalled
5 minutes, then `azs3copy-download` failed with 409). A request for a different function of the same
name still gets the 409.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from typing import Any

from moto.awslambda.exceptions import UnknownFunctionException
from moto.awslambda.responses import LambdaResponse
from moto.dynamodb.responses import DynamoHandler
from moto.server import main

_lock = threading.Lock()
_call_action = DynamoHandler.call_action


def _serialized(self: DynamoHandler) -> Any:
    with _lock:
        return _call_action(self)


DynamoHandler.call_action = _serialized  # type: ignore[method-assign]

_create_function = LambdaResponse.create_function
_create_lock = threading.Lock()


def _requested(spec: dict[str, Any]) -> dict[str, Any]:
    """What a CreateFunction request asks for, in the terms of the stored function's configuration."""
    code = spec.get("Code", {})
    digest = hashlib.sha256(base64.b64decode(code["ZipFile"])).digest() if "ZipFile" in code else None
    return {
        "CodeSha256": base64.b64encode(digest).decode() if digest else None,
        "Role": spec.get("Role"),
        "Handler": spec.get("Handler"),
        "Runtime": spec.get("Runtime"),
        "Environment": spec.get("Environment", {}).get("Variables", {}),
        "Layers": sorted(spec.get("Layers", [])),
        "MemorySize": spec.get("MemorySize", 128),
        "Timeout": spec.get("Timeout", 3),
    }


def _existing(config: dict[str, Any]) -> dict[str, Any]:
    return {
        "CodeSha256": config.get("CodeSha256"),
        "Role": config.get("Role"),
        "Handler": config.get("Handler"),
        "Runtime": config.get("Runtime"),
        "Environment": config.get("Environment", {}).get("Variables", {}),
        "Layers": sorted(layer["Arn"] for layer in config.get("Layers", [])),
        "MemorySize": config.get("MemorySize"),
        "Timeout": config.get("Timeout"),
    }


def _idempotent_create(self: LambdaResponse) -> Any:
    with _create_lock:
        name = self.json_body["FunctionName"].rsplit(":", 1)[-1]
        try:
            existing = self.backend.get_function(name, None)
        except UnknownFunctionException:
            return _create_function(self)
        config = existing.get_configuration(on_create=True)
        if _existing(config) == _requested(self.json_body):
            return 201, {"status": 201}, json.dumps(config)
        return _create_function(self)  # the 409 for a different function of the same name


LambdaResponse.create_function = _idempotent_create  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
